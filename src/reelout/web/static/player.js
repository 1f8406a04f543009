// Reelout console: the video player the upload page and a video's page share. It plays a ready
// video ({playback: {hls, mp4}, thumbnail}) with hls.js and a rendition selector, natively where
// the browser has no Media Source Extensions, and as the MP4 fallback when neither works or
// hls.js fails. Plain script, no build step; hls.js is the UMD build in static/vendor (`Hls`).
// Each playback is reported through the page's telemetry client (static/reporting.js), when
// there is one: hls.js and the <video> as one view, the MP4 fallback as a view of its own.
"use strict";

window.ReeloutPlayer = (() => {
  // bench/qoe_lab.py's ladder arm uses the same. No worker: Reelout's segments are fMP4, which
  // hls.js passes through untouched, so a worker (hls.js evaluated a second time) only delays
  // the first frame.
  const HLS_CONFIG = { startLevel: 0, enableWorker: false };
  // `element` the <video>, `select` the rendition <select>, `mode` where the player's mode is
  // shown; `state` (the page's window.reelout) gets hls, playerMode, hlsErrors and video, for
  // a person in DevTools and for the end-to-end tests; `say` reports what happens.
  function create({ element, select, mode, state, say }) {
    state.hls = null;
    state.playerMode = null;
    state.hlsErrors = state.hlsErrors || [];
    state.view = null;

    // Start reporting a view (the video is played at once: autoplay); ends the one before.
    function report(attach) {
      if (state.view) state.view.destroy();
      const telemetry = window.reeloutTelemetry;
      state.view = telemetry ? attach(telemetry, { videoId: state.video.uid, autoplay: true }) : null;
    }

    function stop() {
      if (state.view) { state.view.destroy(); state.view = null; }
      if (state.hls) { state.hls.destroy(); state.hls = null; }
      element.onerror = null;
      element.removeAttribute("src");
      element.removeAttribute("poster");
      element.load();
      state.playerMode = null;
      mode.textContent = "–";
      select.replaceChildren(new Option("Auto", "-1"));
      select.disabled = true;
    }

    function setMode(name, text) {
      state.playerMode = name;
      mode.textContent = text;
      say(`Playing: ${text}`);
    }

    function play(video) {
      stop();
      state.video = video;
      if (video.thumbnail) element.poster = video.thumbnail;
      if (window.Hls && Hls.isSupported()) playHlsJs(video);
      else if (element.canPlayType("application/vnd.apple.mpegurl")) playSource(video.playback.hls, "native", "HLS (native)");
      else playMp4(video, window.Hls ? "this browser has no Media Source Extensions" : "hls.js is not installed");
    }

    function playSource(url, name, text) {
      // first, so that the view hears the element's error before the fallback below ends it
      report((telemetry, options) => telemetry.attachVideo(element, options));
      element.onerror = name === "native"
        ? () => playMp4(state.video, "the browser's own HLS player failed")
        : null;
      element.src = url;
      setMode(name, text);
      element.play().catch(() => { /* autoplay refused: the controls still work */ });
    }

    function playMp4(video, reason) {
      if (state.hls) { state.hls.destroy(); state.hls = null; }
      playSource(video.playback.mp4, "mp4", `MP4 fallback (${reason})`);
    }

    function playHlsJs(video) {
      // Start on the lowest rung: its first segment is the smallest download, so the first frame
      // comes soonest on every link (bench/qoe_lab.py: 9 Mbit/s, 0.7 s against 0.9 s from the
      // rung listed first); hls.js' ABR climbs from the next segment on.
      const hls = new Hls(HLS_CONFIG);
      state.hls = hls;
      report((telemetry, options) => telemetry.attachHls(hls, element, options));
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        fillRenditions(hls);
        element.play().catch(() => { /* autoplay refused: the controls still work */ });
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
        const level = hls.levels[data.level];
        if (level) mode.textContent = `HLS with hls.js · ${level.height}p now`;
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        state.hlsErrors.push({ type: data.type, details: data.details, fatal: data.fatal });
        console.warn(`[reelout] hls.js ${data.fatal ? "fatal " : ""}error: ${data.details}`);
        if (data.fatal) playMp4(video, `hls.js failed: ${data.details}`);
      });
      hls.loadSource(video.playback.hls);
      hls.attachMedia(element);
      setMode("hls.js", "HLS with hls.js");
    }

    function fillRenditions(hls) {
      const options = hls.levels.map((level, index) =>
        new Option(`${level.height}p · ${Math.round(level.bitrate / 1000)} kbit/s`, String(index)));
      select.replaceChildren(new Option("Auto", "-1"), ...options);
      select.disabled = false;
      select.onchange = () => {
        hls.currentLevel = Number(select.value);
        say(`Rendition: ${select.selectedOptions[0].textContent}`);
      };
    }

    return { play, stop };
  }

  return { create };
})();
