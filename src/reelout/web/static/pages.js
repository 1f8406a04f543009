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

  // <div data-chart> with a <script type="application/json"> inside: {series: [{label,
  // color?, width?, dash?, points?}], x: [unix seconds], ys: [[...], ...], points?: true,
  // bands?: [[upper, lower], ...]} drawn by uPlot (loaded by the pages that chart). `points`
  // (for the chart or one series) marks every value, for series with gaps (null) between
  // them; a band fills between two series (indexes into `series`), e.g. an interval.
  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    for (const box of root.querySelectorAll("[data-chart]:not([data-drawn])")) {
      const data = JSON.parse(box.querySelector("script[type='application/json']").textContent);
      const width = Math.max(280, Math.min(box.clientWidth || 640, 900));
      const series = [{}].concat(data.series.map((s, i) => {
        const line = { label: s.label, stroke: s.color || PALETTE[i % PALETTE.length], width: s.width || 2 };
        if (s.dash) line.dash = s.dash;
        if (data.points || s.points) line.points = { show: true, size: 6 }; // mark each value
        return line;
      }));
      const bands = (data.bands || []).map(([upper, lower]) => ({ series: [upper + 1, lower + 1], fill: BAND }));
      const options = { width, height: 220, series, bands, scales: { x: { time: true } } };
      plots.push({ plot: new uPlot(options, [data.x, ...data.ys], box), width });
      box.dataset.drawn = "yes";
    }
  }
  const plots = [];
  const PRINTED_WIDTH = 640; // fits an A4 or Letter page's text width

  // Printing: the charts are drawn already (on load); they shrink to the page's width while
  // printing and come back after. <button data-print> prints the page.
  window.addEventListener("beforeprint", () => {
    for (const { plot, width } of plots) plot.setSize({ width: Math.min(width, PRINTED_WIDTH), height: 220 });
  });
  window.addEventListener("afterprint", () => {
    for (const { plot, width } of plots) plot.setSize({ width, height: 220 });
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) window.print();
  });
  const PALETTE = ["#2454d6", "#d6248f", "#12a150", "#c77700", "#6b3fd6", "#0b8ea5"];
  const BAND = "rgba(36, 84, 214, 0.15)";

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
