// Reelout console: the page reports its own uploads and playback with the browser telemetry SDK
// (/sdk/telemetry.js) as the signed-in admin. The session cookie and the page's CSRF token stand
// for a client key (POST /console/api/telemetry; on page hide the SDK then sends a keepalive
// fetch, which can carry the header, instead of a beacon). console.js and player.js find the
// client at window.reeloutTelemetry; without it (REELOUT_CONSOLE_TELEMETRY=false, or the SDK did
// not load) they report nothing and work as before. A module: it runs before the page's
// deferred scripts that follow it.
import { createTelemetry } from "/sdk/telemetry.js";

const config = JSON.parse(document.getElementById("telemetry-config").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

window.reeloutTelemetry = createTelemetry({
  ...config,
  headers: { "X-CSRF-Token": csrf },
  credentials: "same-origin",
});
