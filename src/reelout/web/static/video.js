// Reelout console, a video's page: play the video (static/player.js) from the URLs the page
// carries in #player-data, with the rendition picker and the MP4 fallback.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = { video: null, hls: null, playerMode: null, hlsErrors: [] };
  window.reelout = state;  // for a person in DevTools and for the end-to-end tests

  function say(text) {
    const line = $("status");
    if (line) line.textContent = text;
    console.log(`[reelout] ${text}`);
  }

  function init() {
    const data = $("player-data");
    if (data) {
      const player = ReeloutPlayer.create({
        element: $("player"), select: $("rendition"), mode: $("player-mode"), state, say,
      });
      player.play(JSON.parse(data.textContent));
    }
    document.body.dataset.ready = "true";
  }

  init();
})();
