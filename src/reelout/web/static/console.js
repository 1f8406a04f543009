// Reelout console: upload a video to an order stage (tus, direct binary or legacy base64),
// follow its state until it is ready, then play it (static/player.js: hls.js with a rendition
// selector and the poster, natively, or as the MP4 fallback). The user's feature flags pick the
// upload path unless the page's select overrides them. Plain script, no build step; tus-js-client and hls.js are
// the UMD builds that `make web` copies into static/vendor (the globals `tus` and `Hls`).
// Every upload is reported through the page's telemetry client (static/reporting.js), when there
// is one, with the variants of the user's flags.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const POLL_MS = 1000;
  const RETRY_DELAYS = [0, 1000, 2000, 3000, 5000, 8000, 13000, 21000, 30000];
  const PATH_MESSAGES = {
    tus: "Using TUS Protocol",
    direct: "Using direct binary upload",
    legacy: "Using legacy base64 upload (deprecated)",
  };

  // What the page is doing, for a person in DevTools and for the end-to-end tests.
  const state = {
    path: null, uid: null, video: null, upload: null, hls: null, playerMode: null, hlsErrors: [],
    flags: null, flagsProblem: null, tracker: null, view: null,
  };
  window.reelout = state;

  // ---- status, progress, buttons -------------------------------------------------------

  function say(text, isError = false) {
    const line = $("status");
    line.textContent = text;
    line.classList.toggle("error", isError);
    (isError ? console.error : console.log)(`[reelout] ${text}`);
  }

  function bytes(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  const meter = { since: 0, from: 0, sent: 0 };

  function startMeter() {
    meter.since = performance.now();
    meter.from = meter.sent;
  }

  function showProgress(sent, total) {
    meter.sent = sent;
    const pct = total ? (100 * sent) / total : 0;
    const seconds = (performance.now() - meter.since) / 1000;
    const speed = seconds > 0.05 ? (sent - meter.from) / seconds : 0;
    $("progress").value = pct;
    $("progress").dataset.sent = String(sent);
    $("progress-text").textContent =
      `${bytes(sent)} of ${bytes(total)} · ${pct.toFixed(1)} % · ${bytes(speed)}/s`;
  }

  function setButtons({ busy = false, pause = false, resume = false, cancel = false }) {
    $("start").disabled = busy;
    $("pause").disabled = !pause;
    $("resume").disabled = !resume;
    $("cancel").disabled = !cancel;
  }

  // ---- the JSON API, with the console session --------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.message ? `${body.message} (${body.code})` : `HTTP ${status}`);
      this.status = status;
      this.code = body ? body.code : null;
    }
  }

  async function api(method, url, json) {
    const headers = { Accept: "application/json", "X-CSRF-Token": CSRF };
    const init = { method, headers, credentials: "same-origin" };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    const reply = await fetch(url, init);
    const body = await reply.json().catch(() => null);
    if (!reply.ok) throw new ApiError(reply.status, body);
    return body;
  }

  function where() {
    return { order: $("order").value.trim(), stage: $("stage").value };
  }

  function stageUrl({ order, stage }) {
    return `/api/v1/orders/${encodeURIComponent(order)}/${encodeURIComponent(stage)}/videos`;
  }

  // ---- choosing the upload path ------------------------------------------------------------

  // The flags' code defaults, used when the flags cannot be read at all: all off, so the
  // page does what it did before the rollout (the legacy path). The server applies the same
  // defaults to a flag that is missing, killed or broken (src/reelout/web/flags.py).
  const CODE_DEFAULTS = { use_tus_upload: false, use_direct_file_upload: false, beta_mode: false };

  function flagValue(flags, key) {
    const flag = flags && flags.flags && flags.flags[key];
    return flag ? flag.value === true : CODE_DEFAULTS[key];
  }

  // The one place that decides how a file is uploaded: the user's flags (`choice` "flags", the
  // default), or the path the page's select names (an override, for testing).
  function choosePath(choice, flags = null) {
    if (choice === "flags") {
      if (flagValue(flags, "use_tus_upload") && window.tus) return "tus";
      if (flagValue(flags, "use_tus_upload")) return "direct";  // tus-js-client is missing
      return flagValue(flags, "use_direct_file_upload") ? "direct" : "legacy";
    }
    if (choice === "tus" && !window.tus) return "direct";
    return PATH_MESSAGES[choice] ? choice : "tus";
  }

  // Why the flags chose `path`, e.g. "use_tus_upload: on (TARGETING_MATCH, beta)".
  function explain(path, flags) {
    if (!flags) return `flags unavailable (${state.flagsProblem || "not read yet"}): code defaults`;
    const shown = (key) => {
      const flag = flags.flags[key];
      const why = flag.error_code ? `${flag.reason} ${flag.error_code}` : flag.reason;
      const source = flag.code_default ? ", code default" : "";
      return `${key}: ${flag.value ? "on" : "off"} (${why}${source}, ${flags.cohort})`;
    };
    if (flagValue(flags, "use_tus_upload")) {
      return shown("use_tus_upload") + (path === "tus" ? "" : " · tus-js-client is not installed");
    }
    return `${shown("use_tus_upload")} · ${shown("use_direct_file_upload")}`;
  }

  function showFlags() {
    const path = choosePath("flags", state.flags);
    const where = state.flags ? ` in ${state.flags.environment}` : "";
    const line = $("flags");
    line.textContent = `${path}${where} — ${explain(path, state.flags)}`;
    line.dataset.path = path;
    line.title = state.flags ? `your targetingKey: ${state.flags.context.targetingKey}` : "";
  }

  // ---- telemetry (static/reporting.js) -----------------------------------------------------

  const telemetry = () => window.reeloutTelemetry || null;

  // The variants the user is served, which every event carries (flag key -> variant).
  function reportFlags(flags) {
    const tel = telemetry();
    if (!tel) return;
    const variants = {};
    for (const [key, flag] of Object.entries((flags && flags.flags) || {})) {
      if (flag.variant) variants[key] = flag.variant;
    }
    tel.setFlags(variants);
  }

  // A tracker of one upload made by XHR (direct, legacy), or null without telemetry.
  function uploadTracker(method, file) {
    const tel = telemetry();
    return tel ? tel.uploads.start({ method, bytes: file.size }) : null;
  }

  // Reads the user's flags; on any error the code defaults apply (state.flags = null).
  async function readFlags() {
    try {
      state.flags = await api("GET", "/console/api/flags");
      state.flagsProblem = null;
      reportFlags(state.flags);
    } catch (err) {
      state.flags = null;
      state.flagsProblem = err.message;
      console.warn(`[reelout] cannot read the flags, using the code defaults: ${err.message}`);
    }
    showFlags();
    return state.flags;
  }

  // ---- tus ----------------------------------------------------------------------------------

  function tusProblem(err) {
    const res = err.originalResponse;
    if (res) {
      try {
        const body = JSON.parse(res.getBody());
        if (body && body.message) return `${body.message} (${body.code})`;
      } catch (_) { /* not JSON */ }
      return `HTTP ${res.getStatus()}`;
    }
    return err.message;
  }

  async function uploadTus(file, target) {
    const link = await api("POST", stageUrl(target), { upload: "tus", meta: { filename: file.name } });
    showUid(link.uid);
    return new Promise((resolve, reject) => {
      let paused = false;
      let onOnline = null;
      const resume = () => {
        paused = false;
        startMeter();
        setButtons({ busy: true, pause: true, cancel: true });
        upload.start();
      };
      const waitForNetwork = () => {
        say("The network is gone: the upload resumes by itself when it is back");
        onOnline = () => {
          onOnline = null;
          if (!paused) { say("Back online: resuming with TUS Protocol"); resume(); }
        };
        window.addEventListener("online", onOnline, { once: true });
        setButtons({ busy: true, pause: true, cancel: true });
      };
      const options = {
        endpoint: link.upload.url,
        headers: { Authorization: `Bearer ${link.upload.token}` },
        metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
        retryDelays: RETRY_DELAYS,
        storeFingerprintForResuming: false,
        onProgress: showProgress,
        onSuccess: () => resolve(link.uid),
        onError: (err) => {
          if (!navigator.onLine) { waitForNetwork(); return; }
          say(`Upload stopped: ${tusProblem(err)}. Resume continues from the server's offset.`, true);
          setButtons({ busy: true, resume: true, cancel: true });
        },
      };
      const tel = telemetry();
      const tracked = tel ? tel.uploads.tus(file, options, { videoId: link.uid }) : null;
      state.tracker = tracked;
      const upload = new tus.Upload(file, tracked ? tracked.options : options);
      state.upload = {
        pause() {
          paused = true;
          if (onOnline) window.removeEventListener("online", onOnline);
          upload.abort();
          say(`Paused at ${bytes(meter.sent)} (the server keeps every byte it received)`);
          setButtons({ busy: true, resume: true, cancel: true });
        },
        resume() {
          say("Resuming with TUS Protocol");
          resume();
        },
        cancel() {
          paused = true;
          if (tracked) tracked.abandon();
          upload.abort(true).catch(() => {}).finally(() => reject(new Error("cancelled")));
        },
      };
      resume();
    });
  }

  // ---- direct binary and legacy base64 ----------------------------------------------------

  // POSTs one upload body; `tracker` (or null) reports it.
  function post(url, body, contentType, tracker) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Content-Type", contentType);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", CSRF);
      xhr.upload.onprogress = (event) => {
        showProgress(event.loaded, event.total);
        if (tracker) tracker.progress(event.loaded, event.total);
      };
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 201) {
          if (tracker) { tracker.videoId = data && data.uid; tracker.complete(); }
          resolve(data);
        } else {
          const retryable = xhr.status >= 500 || xhr.status === 408 || xhr.status === 429;
          if (tracker) tracker.fail({ errorClass: `http_${xhr.status}`, retryable });
          reject(new ApiError(xhr.status, data));
        }
      };
      xhr.onerror = () => {
        if (tracker) tracker.fail({ errorClass: navigator.onLine ? "network" : "offline", retryable: true });
        reject(new Error("the network failed (this path cannot resume: upload again)"));
      };
      xhr.onabort = () => {
        if (tracker) tracker.abandon();
        reject(new Error("cancelled"));
      };
      state.upload = { cancel: () => xhr.abort() };
      state.tracker = tracker;
      setButtons({ busy: true, cancel: true });
      startMeter();
      if (tracker) tracker.start();
      xhr.send(body);
    });
  }

  async function uploadDirect(file, target) {
    const type = file.type.startsWith("video/") ? file.type : "application/octet-stream";
    const url = `${stageUrl(target)}?filename=${encodeURIComponent(file.name)}`;
    const video = await post(url, file, type, uploadTracker("direct", file));
    return video.uid;
  }

  function readAsDataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function uploadLegacy(file, target) {
    const encoded = await readAsDataUrl(file);  // "data:video/mp4;base64,…" is accepted as is
    const body = JSON.stringify({ filename: file.name, file_base64: encoded });
    const video = await post(stageUrl(target), body, "application/json", uploadTracker("base64", file));
    return video.uid;
  }

  const UPLOADERS = { tus: uploadTus, direct: uploadDirect, legacy: uploadLegacy };

  async function onUpload(event) {
    event.preventDefault();
    const file = $("file").files[0];
    const target = where();
    if (!file || !target.order) { say("Choose an order and a video first.", true); return; }
    const choice = $("path").value;
    setButtons({ busy: true });
    if (choice === "flags") say("Reading your flags…");
    const flags = choice === "flags" ? await readFlags() : null;
    const path = choosePath(choice, flags);
    state.path = path;
    meter.sent = 0;
    showProgress(0, file.size);
    resetVideo();
    say(PATH_MESSAGES[path]);
    setButtons({ busy: true });
    try {
      const uid = await UPLOADERS[path](file, target);
      say(`Uploaded ${file.name} (${PATH_MESSAGES[path]}); waiting for processing`);
      watch(uid);
    } catch (err) {
      say(err.message === "cancelled" ? "Upload cancelled" : `Upload failed: ${err.message}`, err.message !== "cancelled");
    } finally {
      state.upload = null;
      setButtons({});
      loadRecent();
    }
  }

  // ---- following the video's state -----------------------------------------------------------

  let pollTimer = null;

  function showUid(uid) {
    state.uid = uid;
    $("video-uid").textContent = uid || "";
  }

  function resetVideo() {
    clearTimeout(pollTimer);
    player.stop();
    showUid(null);
    $("video-state").textContent = "–";
    $("video-state").dataset.state = "";
    $("video-pct").textContent = "";
    $("video-error").hidden = true;
  }

  function showVideo(video) {
    const { status } = video;
    $("video-state").textContent = status.state;
    $("video-state").dataset.state = status.state;
    $("video-pct").textContent = status.pct_complete == null ? "" : `${Math.round(status.pct_complete)} %`;
    const failed = status.state === "error";
    $("video-error").hidden = !failed;
    $("video-error").textContent = failed ? `${status.error_code}: ${status.error_text}` : "";
  }

  function watch(uid) {
    resetVideo();
    showUid(uid);
    const tick = async () => {
      let video;
      try {
        video = await api("GET", `/api/v1/videos/${encodeURIComponent(uid)}`);
      } catch (err) {
        say(`Cannot read video ${uid}: ${err.message}`, true);
        if (err.status !== 401 && err.status !== 403 && err.status !== 404) pollTimer = setTimeout(tick, POLL_MS);
        return;
      }
      if (state.uid !== uid) return;  // another video was chosen meanwhile
      showVideo(video);
      const { state: now } = video.status;
      if (now === "ready" || now === "error") loadRecent();
      if (now === "ready") player.play(video);
      else if (now === "error") say(`Processing failed: ${video.status.error_code}`, true);
      else pollTimer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  // ---- playback (static/player.js) ----------------------------------------------------------

  const player = ReeloutPlayer.create({
    element: $("player"), select: $("rendition"), mode: $("player-mode"), state, say,
  });

  // ---- recent videos of the order stage -----------------------------------------------------

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  async function loadRecent() {
    const target = where();
    const body = $("recent").tBodies[0];
    if (!target.order) return;
    let page;
    try {
      page = await api("GET", `${stageUrl(target)}?limit=20`);
    } catch (err) {
      body.replaceChildren(row([cell(`Cannot list videos: ${err.message}`)]));
      return;
    }
    if (!page.videos.length) {
      body.replaceChildren(row([cell("No videos yet.")]));
      return;
    }
    body.replaceChildren(...page.videos.map((video) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Watch";
      button.onclick = () => watch(video.uid);
      const action = document.createElement("td");
      action.append(button);
      return row([
        cell(video.uid.slice(0, 8)), cell(video.meta.filename || ""), cell(video.source),
        cell(video.status.state), cell(new Date(video.created).toLocaleString()), action,
      ]);
    }));
  }

  function row(cells) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }

  // ---- wiring ---------------------------------------------------------------------------------

  function init() {
    if (!window.tus) {
      const option = $("path").querySelector('option[value="tus"]');
      option.disabled = true;
      option.textContent += " — tus-js-client is not installed";
      console.warn("[reelout] tus-js-client is not installed: run `make web`");
    }
    $("path").value = "flags";
    if (!window.Hls) console.warn("[reelout] hls.js is not installed: run `make web`");
    $("upload-form").addEventListener("submit", onUpload);
    $("pause").addEventListener("click", () => state.upload && state.upload.pause());
    $("resume").addEventListener("click", () => state.upload && state.upload.resume());
    $("cancel").addEventListener("click", () => state.upload && state.upload.cancel());
    let typing = null;
    $("order").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(loadRecent, 300); });
    $("stage").addEventListener("change", loadRecent);
    const match = /^#watch=([\w-]+)$/.exec(location.hash);
    if (match) watch(match[1]);
    readFlags().finally(() => { document.body.dataset.ready = "true"; });
  }

  init();
})();
