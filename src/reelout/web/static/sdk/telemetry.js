/**
 * Reelout browser telemetry: report uploads and playback to Reelout's ingest
 * (`POST /api/v1/telemetry/events`, event model version 1) from any web page, with no build step.
 *
 *     import { createTelemetry } from "https://reelout.example.com/sdk/telemetry.js";
 *     const telemetry = createTelemetry({
 *       endpoint: "https://reelout.example.com", clientKey: "rlo_client_…",
 *       viewerId: user.id, appVersion: "2.3.0", flags: { use_tus_upload: "on" },
 *     });
 *     const upload = telemetry.uploads.tus(file, { endpoint: ".../files/", ... });
 *     new tus.Upload(file, upload.options).start();
 *     telemetry.attachHls(hls, video, { videoId });
 *
 * Events are queued and sent in batches (by count, size and interval); a network error, a 5xx,
 * a 408 or a 429 is retried with exponential backoff and jitter (a `Retry-After` is honoured);
 * the queue is bounded and drops its oldest events first, counting them. When the page is
 * hidden or unloaded, what is still queued goes out with `navigator.sendBeacon` (the client key
 * in `?key=`, the body as text/plain: a beacon sets no headers). Every event carries a fresh
 * `event_id`, so a batch sent twice is stored once. Nothing here throws into the page: a
 * failure is reported to `onError` (default: `console.warn`) and the page goes on.
 *
 * Hand-written, because no library maps tus-js-client callbacks and hls.js / HTMLVideoElement
 * events onto Reelout's event model; batching and the beacon are a few lines of the platform.
 * @module reelout/telemetry
 */

/** The event model version these events follow (`schema_version`). */
export const SCHEMA_VERSION = 1;

/** The path of the ingest under Reelout's base URL. */
export const EVENTS_PATH = "/api/v1/telemetry/events";

/**
 * The defaults of every tunable; each can be passed to `createTelemetry`.
 * @type {Readonly<Required<Tuning>>}
 */
export const DEFAULTS = Object.freeze({
  batchSize: 50, // events per request, at most
  maxBatchBytes: 60_000, // bytes per request, at most (a beacon may carry 64 KiB)
  flushIntervalMs: 5_000, // a partial batch waits at most this long
  maxQueue: 1_000, // events kept while the server cannot be reached; the oldest go first
  retryBaseMs: 1_000, // first retry after about this long, doubling per failure
  retryMaxMs: 60_000, // longest wait between retries (a longer Retry-After is honoured)
  heartbeatMs: 10_000, // a playing view reports its counters this often
  progressIntervalMs: 5_000, // an upload reports its progress at most this often
  maxWarningsPerView: 20, // non-fatal player errors reported per view, at most
});

const RETRY_AFTER_MAX_MS = 3_600_000;
const MEDIA_ERRORS = { 1: "MEDIA_ERR_ABORTED", 2: "MEDIA_ERR_NETWORK", 3: "MEDIA_ERR_DECODE", 4: "MEDIA_ERR_SRC_NOT_SUPPORTED" };
const HLS_EVENTS = {
  manifestParsed: "hlsManifestParsed",
  levelSwitched: "hlsLevelSwitched",
  error: "hlsError",
  destroying: "hlsDestroying",
  fragLoaded: "hlsFragLoaded",
};

/**
 * @typedef {object} Tuning
 * @property {number} [batchSize] events per request, at most
 * @property {number} [maxBatchBytes] bytes per request body, at most
 * @property {number} [flushIntervalMs] how long a partial batch waits
 * @property {number} [maxQueue] queued events kept at most (the oldest are dropped)
 * @property {number} [retryBaseMs] the first retry's delay (doubles per failure, jittered)
 * @property {number} [retryMaxMs] the longest backoff
 * @property {number} [heartbeatMs] a view's heartbeat interval
 * @property {number} [progressIntervalMs] an upload's progress interval
 * @property {number} [maxWarningsPerView] non-fatal player errors reported per view
 */

/**
 * @typedef {Tuning & object} TelemetryOptions
 * @property {string} [endpoint] Reelout's base URL (default: this page's origin)
 * @property {string} [eventsPath] the ingest's path under `endpoint` (default `EVENTS_PATH`)
 * @property {string} [clientKey] a client key of the environment to report to (public: it
 *   ships in the page); sent as `Authorization: Bearer`, and as `?key=` by beacons
 * @property {Record<string, string>} [headers] more request headers (then the page-hide
 *   flush uses `fetch(…, {keepalive: true})`, which can carry them, instead of a beacon)
 * @property {RequestCredentials} [credentials] fetch credentials (default "omit")
 * @property {string} viewerId the randomization unit: the targeting key the flags hash
 * @property {string} [sessionId] the app session (default: one per browser tab)
 * @property {string} [platform] default "web"
 * @property {string} [appVersion] the app's version
 * @property {Record<string, string>} [flags] flag key -> variant served to this viewer
 * @property {(error: Error) => void} [onError] told of what could not be sent or was refused
 */

/** A random UUID (v4), also where `crypto.randomUUID` is missing (plain http pages). */
function uuid() {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const now = () => performance.now();
const whole = (value) => Math.max(0, Math.round(value)); // a non-negative integer

/** Seconds or an HTTP date from `Retry-After`, in ms; null when absent or unreadable. */
function retryAfterMs(reply) {
  const value = reply.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  const wait = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(wait) ? Math.min(Math.max(wait, 0), RETRY_AFTER_MAX_MS) : null;
}

/** A status worth sending again later: the server is busy, down or asks to wait. */
const retryableStatus = (status) => status >= 500 || status === 408 || status === 429;

/**
 * The queue and the transport: batches, backoff, the page-hide flush.
 * @private
 */
class Sender {
  #url; #beaconUrl; #headers; #credentials; #tuning; #report;
  #queue = []; // JSON of each event, oldest first
  #inFlight = null; // the batch being sent
  #current = null; // the promise of that send
  #timer = null;
  #due = Infinity;
  #retryAt = 0;
  #failures = 0;
  #cap;

  stats = { sent: 0, accepted: 0, duplicates: 0, rejected: 0, dropped: 0, retries: 0, beacons: 0 };

  constructor(url, { clientKey, headers, credentials }, tuning, report) {
    this.#url = url;
    this.#tuning = tuning;
    this.#report = report;
    this.#cap = tuning.batchSize;
    this.#credentials = credentials || "omit";
    this.#headers = { ...(headers || {}) };
    if (clientKey) {
      this.#headers.Authorization = `Bearer ${clientKey}`;
      const beacon = new URL(url);
      beacon.searchParams.set("key", clientKey);
      this.#beaconUrl = beacon.href;
    }
  }

  get queued() {
    return this.#queue.length + (this.#inFlight ? this.#inFlight.length : 0);
  }

  add(json) {
    this.#queue.push(json);
    const excess = this.#queue.length - this.#tuning.maxQueue;
    if (excess > 0) {
      this.#queue.splice(0, excess);
      this.stats.dropped += excess;
    }
    this.#schedule(this.#queue.length >= this.#cap ? 0 : this.#tuning.flushIntervalMs);
  }

  /** Send everything queued now (not before a server-asked wait); resolves, never rejects. */
  async flush() {
    while (this.#queue.length || this.#current) {
      if (!this.#current && Date.now() < this.#retryAt) return;
      const progressed = await (this.#current || this.#send());
      if (!progressed) return;
    }
  }

  /** The page is going away: whatever is unconfirmed goes out in beacons (or keepalive fetches). */
  hide() {
    const pending = [...(this.#inFlight || []), ...this.#queue];
    let delivered = 0;
    for (const batch of this.#batches(pending)) {
      if (!this.#deliverOnHide(batch)) break;
      delivered += batch.length;
    }
    // the in-flight part stays with its own request; a copy stored twice is stored once
    const fromQueue = Math.max(0, delivered - (this.#inFlight ? this.#inFlight.length : 0));
    this.#queue.splice(0, fromQueue);
  }

  #deliverOnHide(batch) {
    const body = `[${batch.join(",")}]`;
    if (this.#beaconUrl && typeof navigator.sendBeacon === "function") {
      const queued = navigator.sendBeacon(this.#beaconUrl, body); // text/plain;charset=UTF-8
      if (queued) this.stats.beacons += 1;
      return queued;
    }
    const headers = { ...this.#headers, "Content-Type": "application/json" };
    const init = { method: "POST", headers, credentials: this.#credentials, body, keepalive: true };
    fetch(this.#url, init)
      .then((reply) => { if (!reply.ok) throw new Error(`HTTP ${reply.status}`); })
      .catch(() => this.#putBack(batch));
    return true;
  }

  #batches(pending) {
    const batches = [];
    let batch = [];
    let size = 2;
    for (const json of pending) {
      const more = json.length + 1;
      if (batch.length && (batch.length >= this.#cap || size + more > this.#tuning.maxBatchBytes)) {
        batches.push(batch);
        batch = [];
        size = 2;
      }
      batch.push(json);
      size += more;
    }
    if (batch.length) batches.push(batch);
    return batches;
  }

  #schedule(delay) {
    if (this.#current || !this.#queue.length) return; // the send in flight schedules the next
    const at = Math.max(Date.now() + delay, this.#retryAt);
    if (this.#timer !== null && this.#due <= at) return;
    clearTimeout(this.#timer);
    this.#due = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#due = Infinity;
      this.#send();
    }, at - Date.now());
  }

  #send() {
    if (this.#current) return this.#current;
    if (!this.#queue.length) return Promise.resolve(true);
    const [batch] = this.#batches(this.#queue);
    this.#queue.splice(0, batch.length);
    this.#inFlight = batch;
    this.#current = this.#post(batch).then((progressed) => {
      this.#inFlight = null;
      this.#current = null;
      // a failed batch goes again once its backoff is over; a full one at once
      const soon = !progressed || this.#queue.length >= this.#cap;
      this.#schedule(soon ? 0 : this.#tuning.flushIntervalMs);
      return progressed;
    });
    return this.#current;
  }

  /** One request; true when the batch is settled (stored or refused for good). */
  async #post(batch) {
    let reply;
    try {
      reply = await fetch(this.#url, {
        method: "POST",
        headers: { ...this.#headers, "Content-Type": "application/json" },
        credentials: this.#credentials,
        body: `[${batch.join(",")}]`,
      });
    } catch (error) {
      return this.#retryLater(batch, null, error);
    }
    if (reply.ok) return this.#stored(batch, await reply.json().catch(() => null));
    if (reply.status === 413 && batch.length > 1) {
      this.#cap = Math.max(1, Math.floor(batch.length / 2)); // the server takes smaller batches
      this.#putBack(batch);
      return true;
    }
    if (retryableStatus(reply.status)) return this.#retryLater(batch, reply);
    this.stats.rejected += batch.length;
    const body = await reply.json().catch(() => null);
    this.#report(new Error(`${batch.length} events refused: HTTP ${reply.status} ${body ? body.code : ""}`.trim()));
    return true;
  }

  #stored(batch, answer) {
    this.#failures = 0;
    this.#retryAt = 0;
    this.stats.sent += batch.length;
    if (answer) {
      this.stats.accepted += answer.accepted || 0;
      this.stats.duplicates += answer.duplicates || 0;
      const rejected = answer.rejected || [];
      this.stats.rejected += rejected.length;
      if (rejected.length) {
        const first = rejected[0];
        this.#report(new Error(`${rejected.length} events rejected, e.g. #${first.index}: ${first.code} ${first.message}`));
      }
    }
    return true;
  }

  #retryLater(batch, reply, error) {
    this.#failures += 1;
    this.stats.retries += 1;
    const { retryBaseMs, retryMaxMs } = this.#tuning;
    const backoff = Math.min(retryMaxMs, retryBaseMs * 2 ** (this.#failures - 1));
    const asked = reply ? retryAfterMs(reply) : null;
    const wait = asked !== null ? asked : backoff * (0.5 + Math.random() / 2);
    this.#retryAt = Date.now() + wait;
    this.#putBack(batch);
    if (this.#failures === 1) {
      this.#report(error || new Error(`the ingest answered HTTP ${reply.status}; retrying`));
    }
    return false;
  }

  #putBack(batch) {
    this.#queue.unshift(...batch);
    const excess = this.#queue.length - this.#tuning.maxQueue;
    if (excess > 0) {
      this.#queue.splice(0, excess);
      this.stats.dropped += excess;
    }
  }
}

/**
 * One upload attempt's events: `upload_started`, `upload_progress` (throttled),
 * `upload_completed`, `upload_failed`, `upload_abandoned`, all with one `upload_id` and a
 * `seq` of their own. Use it by hand for any upload (fetch, XHR), or through `uploads.tus`.
 */
export class UploadTracker {
  #telemetry; #seq = 0; #state = "created"; #t0 = 0; #lastProgress = -Infinity; #sent = 0; #unhook;

  /**
   * @param {Telemetry} telemetry
   * @param {{method?: "tus"|"direct"|"base64", bytes?: number, videoId?: string, uploadId?: string}} [context]
   */
  constructor(telemetry, { method = "tus", bytes, videoId, uploadId } = {}) {
    this.#telemetry = telemetry;
    /** The upload_id of every event of this upload. */
    this.id = uploadId || uuid();
    this.method = method;
    this.bytes = bytes;
    /** The Reelout video uid, once known (set it when the server answers). */
    this.videoId = videoId;
    /** Tries so far: 1, plus one per retry and per restart after a failure. */
    this.attempts = 1;
    this.#unhook = telemetry.onPageHide((why) => { if (why !== "hidden") this.abandon(); });
  }

  /** Where the upload stands: created, running, failed, completed or abandoned. */
  get state() {
    return this.#state;
  }

  #emit(type, fields) {
    return this.#telemetry.track(type, { upload_id: this.id, seq: this.#seq++, video_id: this.videoId, ...fields });
  }

  #finish(state) {
    this.#state = state;
    this.#unhook();
  }

  /** The first byte is about to go: `upload_started`; after a failure, a new attempt. */
  start() {
    if (this.#state === "created") {
      this.#state = "running";
      this.#t0 = now();
      this.#emit("upload_started", { method: this.method, bytes: this.bytes });
    } else if (this.#state === "failed") {
      this.#state = "running";
      this.attempts += 1;
    }
  }

  /** Bytes sent so far: the first report and then one per `progressIntervalMs`. */
  progress(sent, total) {
    this.#sent = sent;
    if (this.#state !== "running") return;
    const t = now();
    if (t - this.#lastProgress < this.#telemetry.tuning.progressIntervalMs) return;
    this.#lastProgress = t;
    this.#emit("upload_progress", { bytes_sent: whole(sent), bytes_total: total > 0 ? whole(total) : undefined });
  }

  /** The client retries by itself (counts an attempt). */
  retry() {
    this.attempts += 1;
  }

  /** The server has every byte: `upload_completed {bytes, duration_ms, method, attempts}`. */
  complete(bytes) {
    if (this.#state === "completed" || this.#state === "abandoned") return;
    if (this.#state === "created") this.start();
    const size = bytes ?? this.bytes ?? this.#sent;
    this.#emit("upload_completed", { bytes: whole(size), duration_ms: whole(now() - this.#t0), method: this.method, attempts: this.attempts });
    this.#finish("completed");
  }

  /**
   * The upload stopped on an error: `upload_failed {error_class, retryable}`. A later
   * `start()` (a resume) makes it running again, one attempt more.
   * @param {{errorClass: string, retryable: boolean}} failure
   */
  fail({ errorClass, retryable }) {
    if (this.#state !== "running" && this.#state !== "created") return;
    this.#state = "failed";
    this.#emit("upload_failed", {
      error_class: String(errorClass || "unknown").slice(0, 64), retryable: Boolean(retryable),
      method: this.method, bytes: this.bytes, attempts: this.attempts,
    });
  }

  /** The user gave up, or the page went away mid-upload: `upload_abandoned`. */
  abandon() {
    if (this.#state !== "running") return;
    this.#emit("upload_abandoned", {});
    this.#finish("abandoned");
  }
}

/** tus-js-client's own retry rule (its default `onShouldRetry`). */
function tusWouldRetry(err) {
  const status = err && err.originalResponse ? err.originalResponse.getStatus() : 0;
  return (status < 400 || status >= 500 || status === 409 || status === 423) && navigator.onLine !== false;
}

/** A tus-js-client error as `{errorClass, retryable}`. */
function tusFailure(err) {
  const response = err && err.originalResponse;
  const status = response && typeof response.getStatus === "function" ? response.getStatus() : 0;
  if (status) return { errorClass: `http_${status}`, retryable: retryableStatus(status) || status === 409 || status === 423 };
  if (err && err.originalRequest) return { errorClass: navigator.onLine === false ? "offline" : "network", retryable: true };
  return { errorClass: "client", retryable: false };
}

/**
 * One playback view on a `<video>` (with or without hls.js): the playback events with their
 * semantics (startup from play intent to first frame; rebuffers only after the first frame and
 * not during a seek; cumulative counters in each heartbeat and in `view_end`).
 */
export class View {
  #telemetry; #video; #hls; #player; #autoplay; #abort = new AbortController();
  #unhook; #beat = null; #hlsHandlers = [];
  #attachedAt = now();
  #ready = false; // player_ready was sent
  #s; // the current view's state

  constructor(telemetry, video, { videoId, player = "other", autoplay, hls } = {}) {
    this.#telemetry = telemetry;
    this.#video = video;
    this.#hls = hls || null;
    this.#player = player;
    this.#autoplay = autoplay;
    /** The Reelout video uid this view plays. */
    this.videoId = videoId;
    this.#s = this.#fresh();
    this.#listen();
    this.#unhook = telemetry.onPageHide((why) => (why === "hidden" ? this.#heartbeat() : this.end()));
    if (autoplay === true) this.#request(true); // the page means to play it at once: intent now
  }

  /** The current view's view_id. */
  get id() {
    return this.#s.id;
  }

  #fresh() {
    return {
      id: uuid(), seq: 0, requested: false, requestAt: 0, firstFrame: false, startup: null,
      watch: 0, playingSince: null, rebuffer: 0, stallSince: null, stalls: 0,
      seeking: false, settling: false, fatal: false, ended: false, warnings: 0, lastBeat: "",
      bytes: 0, // media bytes hls.js loaded over the network (segments, parts, init segments)
    };
  }

  #emit(type, fields = {}) {
    const position = this.#video.currentTime;
    return this.#telemetry.track(type, {
      view_id: this.#s.id, seq: this.#s.seq++, video_id: this.videoId, player: this.#player,
      playhead_ms: Number.isFinite(position) ? whole(position * 1000) : undefined, ...fields,
    });
  }

  #guard(handler) {
    return (...args) => this.#telemetry.guard(() => handler(...args));
  }

  #listen() {
    const on = (type, handler) => this.#video.addEventListener(type, this.#guard(handler), { signal: this.#abort.signal });
    on("play", () => this.#onPlay());
    on("playing", () => this.#onPlaying());
    on("pause", () => this.#onPause());
    on("waiting", () => this.#onWaiting());
    on("seeking", () => this.#onSeeking());
    on("seeked", () => this.#onSeeked());
    on("ended", () => this.#onEnded());
    on("error", () => this.#onMediaError());
    if (this.#hls) this.#listenHls();
    else if (this.#video.readyState >= 1) this.#playerReady();
    else on("loadedmetadata", () => this.#playerReady());
  }

  #listenHls() {
    const hls = this.#hls;
    const on = (event, handler) => {
      const wrapped = this.#guard(handler);
      hls.on(event, wrapped);
      this.#hlsHandlers.push([event, wrapped]);
    };
    on(HLS_EVENTS.manifestParsed, () => this.#playerReady());
    on(HLS_EVENTS.levelSwitched, (_, data) => this.#onLevel(data));
    on(HLS_EVENTS.error, (_, data) => this.#onHlsError(data));
    on(HLS_EVENTS.fragLoaded, (_, data) => this.#onFragLoaded(data));
    on(HLS_EVENTS.destroying, () => this.destroy());
    if (hls.levels && hls.levels.length) this.#playerReady();
  }

  #playerReady() {
    if (this.#ready) return;
    this.#ready = true;
    this.#emit("player_ready", { player_startup_ms: whole(now() - this.#attachedAt) });
  }

  /** Play intent: the view's start and its startup clock's start (once per view). */
  #request(autoplay) {
    if (this.#s.ended) this.#s = this.#fresh(); // played again after its end: a new view
    if (this.#s.requested) return;
    this.#s.requested = true;
    this.#s.requestAt = now();
    this.#emit("play_request", { autoplay });
    clearInterval(this.#beat);
    this.#beat = setInterval(this.#guard(() => this.#heartbeat()), this.#telemetry.tuning.heartbeatMs);
  }

  #onPlay() {
    // no user gesture in progress: the page started it, which is autoplay
    const activation = navigator.userActivation;
    const autoplay = this.#autoplay ?? (activation ? !activation.isActive : this.#video.autoplay);
    this.#request(Boolean(autoplay));
  }

  #onPlaying() {
    this.#request(Boolean(this.#autoplay));
    const s = this.#s;
    this.#endStall();
    if (!s.firstFrame) {
      s.firstFrame = true;
      s.startup = whole(now() - s.requestAt);
    }
    s.seeking = false;
    s.settling = false;
    s.playingSince = now();
    this.#emit("playing");
  }

  #onPause() {
    if (this.#video.ended || this.#s.ended || !this.#s.requested) return;
    this.#stopWatch();
    this.#endStall();
    this.#emit("pause");
  }

  #onWaiting() {
    const s = this.#s;
    this.#stopWatch();
    if (!s.firstFrame || s.ended || s.seeking || s.settling || this.#video.seeking || s.stallSince !== null) return;
    s.stallSince = now();
    s.stalls += 1;
    this.#emit("rebuffer_start");
  }

  #onSeeking() {
    if (this.#s.ended) return;
    this.#stopWatch();
    this.#endStall();
    this.#s.seeking = true;
    this.#emit("seeking");
  }

  #onSeeked() {
    if (this.#s.ended) return;
    this.#s.seeking = false;
    this.#s.settling = true; // a wait right after a seek is the seek's, not a rebuffer
    this.#emit("seeked");
  }

  #onEnded() {
    this.#stopWatch();
    this.#endStall();
    this.end("completed");
  }

  #onMediaError() {
    const error = this.#video.error;
    if (!error) return;
    this.#s.fatal = true;
    this.#emit("error", {
      code: MEDIA_ERRORS[error.code] || `MEDIA_ERR_${error.code}`, message: (error.message || "").slice(0, 1000) || undefined,
      fatal: true, category: "playback", before_first_frame: !this.#s.firstFrame,
    });
  }

  #onLevel(data) {
    const level = this.#hls.levels && this.#hls.levels[data.level];
    if (!level || !(level.bitrate > 0)) return;
    this.#emit("rendition_change", {
      bitrate: whole(level.bitrate), width: level.width || undefined, height: level.height || undefined,
      codec: level.videoCodec ? String(level.videoCodec).slice(0, 64) : undefined,
    });
  }

  #onHlsError(data) {
    const s = this.#s;
    if (!data.fatal && s.warnings++ >= this.#telemetry.tuning.maxWarningsPerView) return;
    if (data.fatal) s.fatal = true;
    const message = (data.error && data.error.message) || data.reason || "";
    this.#emit("error", {
      code: String(data.details || data.type || "hls_error").slice(0, 64), message: String(message).slice(0, 1000) || undefined,
      fatal: Boolean(data.fatal), category: data.fatal ? "playback" : "warning", before_first_frame: !s.firstFrame,
    });
  }

  #onFragLoaded(data) {
    const stats = (data.part || data.frag || {}).stats;
    if (stats && stats.loaded > 0) this.#s.bytes += stats.loaded;
  }

  #stopWatch() {
    const s = this.#s;
    if (s.playingSince === null) return;
    s.watch += now() - s.playingSince;
    s.playingSince = null;
  }

  #endStall() {
    const s = this.#s;
    if (s.stallSince === null) return;
    const stalled = now() - s.stallSince;
    s.rebuffer += stalled;
    s.stallSince = null;
    this.#emit("rebuffer_end", { duration_ms: whole(stalled) });
  }

  /** The view's cumulative counters now. */
  counters() {
    const s = this.#s;
    const t = now();
    return {
      watch_ms: whole(s.watch + (s.playingSince === null ? 0 : t - s.playingSince)),
      rebuffer_ms: whole(s.rebuffer + (s.stallSince === null ? 0 : t - s.stallSince)),
      rebuffer_count: s.stalls,
      startup_ms: s.startup === null ? undefined : s.startup,
      network_bytes: this.#hls ? whole(s.bytes) : undefined, // a plain <video> cannot tell
    };
  }

  /** A heartbeat, when the counters moved since the last one (a paused view stays quiet). */
  #heartbeat() {
    const s = this.#s;
    if (!s.requested || s.ended) return;
    const counters = this.counters();
    const key = JSON.stringify({ ...counters, network_bytes: undefined }); // buffering ahead while paused is not news
    if (key === s.lastBeat) return;
    s.lastBeat = key;
    this.#emit("heartbeat", counters);
  }

  /**
   * End the view: `view_end {reason}` with its counters (nothing when play was never asked
   * for). Without a reason: "error" after a fatal error, else "user_exit". The view stays
   * attached: playing again starts a new view.
   * @param {"completed"|"user_exit"|"error"|"background"} [reason]
   */
  end(reason) {
    this.#telemetry.guard(() => {
      const s = this.#s;
      clearInterval(this.#beat);
      this.#beat = null;
      if (!s.requested || s.ended) return;
      this.#stopWatch();
      this.#endStall();
      s.ended = true;
      this.#emit("view_end", { reason: reason || (s.fatal ? "error" : "user_exit"), ...this.counters() });
    });
  }

  /** End the view (as `end`) and stop listening to the video and the player. */
  destroy(reason) {
    this.end(reason);
    this.#telemetry.guard(() => {
      this.#abort.abort();
      this.#unhook();
      for (const [event, handler] of this.#hlsHandlers) this.#hls.off(event, handler);
      this.#hlsHandlers = [];
    });
  }
}

/** The object `createTelemetry` returns. */
export class Telemetry {
  #sender = null; #common; #flags; #onError; #hooks = new Set(); #listeners = null; #closed = false;

  /** @param {TelemetryOptions} options */
  constructor(options = {}) {
    /** The tunables in effect. */
    this.tuning = { ...DEFAULTS };
    for (const name of Object.keys(DEFAULTS)) {
      const value = Number(options[name]);
      if (options[name] !== undefined && Number.isFinite(value) && value > 0) this.tuning[name] = value;
    }
    this.#onError = typeof options.onError === "function" ? options.onError : (error) => console.warn(`[reelout telemetry] ${error.message}`);
    this.#flags = {};
    this.setFlags(options.flags);
    this.#common = {
      viewer_id: options.viewerId ? String(options.viewerId) : "",
      session_id: options.sessionId ? String(options.sessionId) : tabSession(),
      platform: options.platform ? String(options.platform) : "web",
      app_version: options.appVersion ? String(options.appVersion) : undefined,
    };
    /** Upload helpers: `tus(file, options, context)` and `start(context)`. */
    this.uploads = {
      /**
       * tus-js-client options with the upload events wired in; the returned tracker's `options`
       * go to `new tus.Upload(file, tracker.options)`. Your own callbacks still run.
       * @param {Blob|{size?: number}} file
       * @param {object} options tus-js-client options
       * @param {{videoId?: string, uploadId?: string}} [context]
       * @returns {UploadTracker & {options: object}}
       */
      tus: (file, options = {}, context = {}) => this.#tusUpload(file, options, context),
      /**
       * A tracker for an upload made some other way (fetch, XHR): call its methods yourself.
       * @param {{method?: "tus"|"direct"|"base64", bytes?: number, videoId?: string}} [context]
       */
      start: (context = {}) => new UploadTracker(this, context),
    };
    if (!this.#common.viewer_id) {
      this.#report(new Error("no viewerId: telemetry is off (events need the viewer the flags hash)"));
      return;
    }
    this.guard(() => {
      const base = String(options.endpoint || "").replace(/\/+$/, ""); // may carry a path prefix
      const page = globalThis.location ? location.href : undefined;
      const url = new URL(base + (options.eventsPath || EVENTS_PATH), page).href;
      this.#sender = new Sender(url, options, this.tuning, (error) => this.#report(error));
      this.#listen();
    });
  }

  /**
   * Queue one event. `fields` are the type's own fields and any common field to set
   * (video_id, view_id, seq, player, playhead_ms, flags). Returns its event_id, or null when
   * it was not queued.
   * @param {string} type
   * @param {object} [fields]
   * @returns {string|null}
   */
  track(type, fields = {}) {
    return this.guard(() => {
      if (!this.#sender || this.#closed) return null;
      const event = {
        ...this.#common, flags: { ...this.#flags }, ...fields,
        type: String(type), event_id: uuid(), schema_version: SCHEMA_VERSION, client_time: new Date().toISOString(),
      };
      this.#sender.add(JSON.stringify(event));
      return event.event_id;
    }, null);
  }

  /**
   * The variants this viewer is served (flag key -> variant), carried by every later event so
   * that it counts in its arm. Replaces the previous set.
   * @param {Record<string, string>} flags
   */
  setFlags(flags) {
    this.guard(() => {
      const next = {};
      for (const [key, variant] of Object.entries(flags || {})) {
        if (variant !== null && variant !== undefined && variant !== "") next[key] = String(variant);
      }
      this.#flags = next;
    });
  }

  /** Send what is queued now. Resolves when it is sent or a retry is pending; never rejects. */
  flush() {
    return this.#sender ? this.#sender.flush().catch((error) => this.#report(error)) : Promise.resolve();
  }

  /**
   * Report playback of an hls.js player on its `<video>`. `autoplay: true` when the page plays
   * the video as soon as it can (the intent, and the startup clock, start now).
   * @param {object} hls an `Hls` instance (hls.js 1.x)
   * @param {HTMLVideoElement} video
   * @param {{videoId?: string, autoplay?: boolean}} [options]
   * @returns {View}
   */
  attachHls(hls, video, options = {}) {
    return new View(this, video, { ...options, hls, player: "hls.js" });
  }

  /**
   * Report playback of a `<video>` that plays by itself (native HLS, an MP4).
   * @param {HTMLVideoElement} video
   * @param {{videoId?: string, autoplay?: boolean, player?: string}} [options]
   * @returns {View}
   */
  attachVideo(video, options = {}) {
    return new View(this, video, { player: "other", ...options, hls: null });
  }

  /** What happened so far: queued, sent, accepted, duplicates, rejected, dropped, retries, beacons. */
  stats() {
    return this.#sender ? { queued: this.#sender.queued, ...this.#sender.stats } : { queued: 0, off: true };
  }

  /** End every view and upload, send what is queued with the page-hide transport, stop. */
  shutdown() {
    this.guard(() => {
      this.#hide("shutdown");
      this.#closed = true;
      if (this.#listeners) this.#listeners.abort();
    });
  }

  /**
   * Run `fn` on page hide: with "hidden" when the page is hidden (it may come back), with
   * "pagehide" when it is unloaded (or "shutdown"). Returns the function that unregisters it.
   * @param {(why: string) => void} fn
   */
  onPageHide(fn) {
    this.#hooks.add(fn);
    return () => this.#hooks.delete(fn);
  }

  /** Run `fn`, reporting what it throws instead of throwing it; `fallback` then. */
  guard(fn, fallback) {
    try {
      return fn();
    } catch (error) {
      this.#report(error);
      return fallback;
    }
  }

  #report(error) {
    try {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    } catch (_) { /* the page's handler failed: nothing more to do */ }
  }

  #listen() {
    if (typeof document === "undefined" || typeof window === "undefined") return;
    this.#listeners = new AbortController();
    const { signal } = this.#listeners;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.#hide("hidden");
    }, { signal });
    window.addEventListener("pagehide", () => this.#hide("pagehide"), { signal });
  }

  #hide(why) {
    for (const hook of [...this.#hooks]) this.guard(() => hook(why));
    this.guard(() => this.#sender && this.#sender.hide());
  }

  #tusUpload(file, options, context) {
    const tracker = new UploadTracker(this, { bytes: file && file.size, ...context, method: "tus" });
    const own = (fn) => this.guard(fn);
    // the uploader's viewer id in the upload's metadata: the server's own record of the upload
    // then counts in the arms this viewer was served
    const metadata = { viewer_id: this.#common.viewer_id, ...(options.metadata || {}) };
    tracker.options = {
      ...options,
      metadata,
      onBeforeRequest: (req) => {
        own(() => tracker.start());
        return options.onBeforeRequest ? options.onBeforeRequest(req) : undefined;
      },
      onProgress: (sent, total) => {
        own(() => tracker.progress(sent, total));
        if (options.onProgress) options.onProgress(sent, total);
      },
      onShouldRetry: (err, attempt, tusOptions) => {
        const retry = options.onShouldRetry ? options.onShouldRetry(err, attempt, tusOptions) : tusWouldRetry(err);
        if (retry) own(() => tracker.retry());
        return retry;
      },
      onSuccess: (payload) => {
        own(() => tracker.complete());
        if (options.onSuccess) options.onSuccess(payload);
      },
      onError: (err) => {
        own(() => tracker.fail(tusFailure(err)));
        if (options.onError) options.onError(err);
        else throw err; // what tus-js-client does without an onError
      },
    };
    return tracker;
  }
}

/** This tab's session id (kept across reloads in sessionStorage when the page may use it). */
function tabSession() {
  const name = "reelout.telemetry.session";
  try {
    const found = sessionStorage.getItem(name);
    if (found) return found;
    const made = uuid();
    sessionStorage.setItem(name, made);
    return made;
  } catch (_) {
    return uuid();
  }
}

/**
 * Make a telemetry client. It never throws: with unusable options it reports why to
 * `onError` and does nothing.
 * @param {TelemetryOptions} options
 * @returns {Telemetry}
 */
export function createTelemetry(options) {
  return new Telemetry(options || {});
}
