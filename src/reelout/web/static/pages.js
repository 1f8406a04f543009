// Reelout console: what every page shares. Small on purpose: the pages are server-rendered and
// their actions are htmx requests; this file adds only what HTML cannot say.
"use strict";

(() => {
  // <button data-copy="text"> copies its text and says so.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.dataset.copied = "yes";
      button.setAttribute("aria-label", "Copied");
    } catch {
      button.dataset.copied = "no";
    }
  });

  // <div data-chart> with a <script type="application/json"> inside: {series: [{label}],
  // x: [unix seconds], ys: [[...], ...], points?: true} drawn by uPlot (loaded by the pages
  // that chart); `points` marks every value, for series with gaps (null) between them.
  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    for (const box of root.querySelectorAll("[data-chart]:not([data-drawn])")) {
      const data = JSON.parse(box.querySelector("script[type='application/json']").textContent);
      const width = Math.max(280, Math.min(box.clientWidth || 640, 900));
      const series = [{}].concat(data.series.map((s, i) => {
        const line = { label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2 };
        if (data.points) line.points = { show: true, size: 6 }; // sparse buckets: mark each value
        return line;
      }));
      new uPlot({ width, height: 220, series, scales: { x: { time: true } } }, [data.x, ...data.ys], box);
      box.dataset.drawn = "yes";
    }
  }
  const PALETTE = ["#2454d6", "#d6248f", "#12a150", "#c77700", "#6b3fd6", "#0b8ea5"];

  document.addEventListener("DOMContentLoaded", () => drawCharts(document));
  document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));

  // An action that worked clears the error line it may have left.
  document.addEventListener("htmx:afterRequest", (event) => {
    const source = event.detail.elt;
    if (!event.detail.successful || !source.id) return;
    const slot = document.getElementById(source.id + "-error");
    if (slot) slot.textContent = "";
  });
})();
