"""Settings: every REELOUT_* environment variable, with the embedded defaults."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_PARTS = 10_000  # parts of one S3 multipart upload


MediaContainer = Literal["mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"]
DEFAULT_MEDIA_CONTAINERS: tuple[MediaContainer, ...] = ("mov", "matroska", "avi", "mpegts", "mpeg")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Runtime configuration; read from REELOUT_* variables (and a .env file if present)."""

    model_config = SettingsConfigDict(env_prefix="REELOUT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description=(
            "Local data folder: SQLite database, uploads in progress, media, `admin.key`. Every "
            "start makes it readable by its owner only: the folder and `uploads/` mode 0700, the "
            "SQLite files (with `-wal`, `-shm`), `admin.key` and `secret.key` 0600 (with "
            "`REELOUT_MEDIA_ACCEL_REDIRECT` the folder is 0711, so nginx can pass through to "
            "`media/` without listing anything)."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "Unset: SQLite in the data folder (`reelout.db`). Set e.g. "
            "`postgresql://user@host:5432/reelout` (psycopg 3) to run on PostgreSQL."
        ),
    )
    storage_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]*)?$",
        description=(
            "Where uploads, originals and published media live. Unset: the data folder. "
            "`s3://bucket/prefix`: an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, GCS in "
            "S3 mode), with credentials, region and endpoint from the standard variables "
            "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` "
            "and `AWS_ENDPOINT_URL`. Every host of one site names the same bucket."
        ),
    )
    s3_part_size: int = Field(
        default=16 * MiB,
        ge=5 * MiB,
        le=5 * GiB,
        description=(
            "Bytes per part of a tus upload (and of multipart media uploads) on object storage "
            "(S3's minimum is 5 MiB). A PATCH in progress holds up to twice this in memory (one "
            "part filling while the one before goes up); larger parts mean fewer requests per "
            "upload (bench/s3_upload.py). 10,000 parts make the largest upload, so "
            "`REELOUT_TUS_MAX_SIZE` may be at most 10,000 times this."
        ),
    )
    host: str = Field(default="127.0.0.1", description="The address `serve` listens on.")
    port: int = Field(default=8000, description="The port `serve` listens on.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "API processes `serve` runs on one host (uvicorn workers). With more than one on "
            "SQLite, per-upload locks go through lock files in the data folder (on PostgreSQL "
            "they are advisory locks, shared by every host)."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="`debug`, `info`, `warning` or `error` for `serve` and `worker`.",
    )
    log_format: Literal["auto", "rich", "plain"] = Field(
        default="auto",
        description=(
            "`rich` (coloured, for a person at a terminal), `plain` (one `time LEVEL logger: "
            "message` line per record, for files and journald) or `auto`: `rich` when stderr is a"
            " terminal, else `plain`."
        ),
    )
    access_log: bool = Field(
        default=True,
        description=(
            "One log line per HTTP request (logger `uvicorn.access`); the values of query "
            "parameters that carry secrets (`token`, `key`, `sig`, `signature`, `secret`, "
            "`password`, `auth`, `credential`, `session`, `code`, and names ending in one of them"
            " such as `access_token` or `X-Amz-Signature`) are logged as `REDACTED`. Turn off "
            "when a proxy in front already logs requests."
        ),
    )
    admin_token: str | None = Field(
        default=None,
        description=(
            "Becomes the admin key on first start when no admin key exists. It must be strong "
            "(see `REELOUT_MIN_SECRET_CHARS`), else every command refuses to start with "
            '`WEAK_ADMIN_TOKEN`; make one with `python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"`.'
        ),
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "Base URL clients use (e.g. `https://media.example.com`); overrides the request's "
            "host in `Location` headers and upload links."
        ),
    )
    behind_proxy: bool = Field(
        default=False,
        description=(
            "Trust `Forwarded` / `X-Forwarded-Proto`, `-Host`, `-Prefix` when building URLs. Only"
            " turn on behind a proxy that sets them."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Comma-separated origins allowed to call the API from a browser.",
    )
    environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["development", "preview", "production"],
        description="Environments client keys can belong to.",
    )
    seed_flags: bool = Field(
        default=True,
        description=(
            "On start, give every environment whose flag set has no revision yet the "
            "`video-rollout` template (every new upload path off, `beta_mode` as the "
            "prerequisite), recorded in the audit log as `system`. An environment with any "
            "revision (even an emptied set) is never touched."
        ),
    )

    # tus
    tus_max_size: int = Field(
        default=10 * GiB, ge=0, description="Largest tus upload (`Tus-Max-Size`; larger → 413)."
    )
    tus_expiration_seconds: int = Field(
        default=24 * 3600,
        ge=1,
        description=(
            "An unfinished upload expires this long after its last activity; the reaper then "
            "deletes it."
        ),
    )
    tus_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A PATCH body that stalls this long is ended; bytes received are kept.",
    )
    tus_lock_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        description=(
            "How long a request waits for an older request on the same upload to let go (then 423)."
        ),
    )
    upload_lock_connections: int = Field(
        default=32,
        ge=1,
        description=(
            "On PostgreSQL: the most database connections one API process holds for upload "
            "locks (one per request holding or waiting for an upload's lock; idle ones are "
            "kept). A request finding them all busy waits within "
            "`REELOUT_TUS_LOCK_TIMEOUT_SECONDS`, then gets 423. Leave room under PostgreSQL's "
            "`max_connections` for every process on every host."
        ),
    )
    tus_metadata_max_bytes: int = Field(
        default=4096, ge=0, description="Largest `Upload-Metadata` header."
    )
    tus_fsync: Literal["patch", "background"] = Field(
        default="background",
        description=(
            "When upload bytes are forced to disk. `background`: the processing job syncs each "
            "new original and checks its size and SHA-256 against the upload before anything else"
            " (a crash in between fails the video with `ERR_MALFORMED` instead of processing "
            "damaged bytes). `patch`: every PATCH is synced before its reply, so even the offsets"
            " survive power loss (a few ms per PATCH)."
        ),
    )
    # partial uploads one creator upload link may make, and parts one final upload may name
    tus_max_partials: int = Field(
        default=16,
        ge=1,
        description=(
            "Partial uploads (concatenation) one creator upload link may make (more → 409 "
            "`PARTIAL_LIMIT_REACHED`), and parts one final upload may name (more → 400 "
            "`INVALID_CONCAT`)."
        ),
    )

    # creator uploads, direct and legacy uploads
    upload_token_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        description="How long a creator upload link can be used to start its upload.",
    )
    direct_max_bytes: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Largest direct binary / multipart upload. Unset: the same as `REELOUT_TUS_MAX_SIZE`."
        ),
    )
    legacy_max_bytes: int = Field(
        default=100 * MiB, ge=0, description="Largest decoded video on the legacy base64 path."
    )
    # free space every upload must leave on the data folder's disk (and /readyz's threshold)
    disk_reserve_bytes: int = Field(
        default=GiB,
        ge=0,
        description=(
            "Free space uploads must leave on the data folder's disk: a tus upload whose "
            "`Upload-Length` (or a direct/legacy upload whose `Content-Length`) would eat into it"
            " is refused with 507 `INSUFFICIENT_STORAGE`, and `/readyz` answers 503 while free "
            "space is below it. `0` checks nothing ahead (a full disk still answers 507 and loses"
            " nothing)."
        ),
    )
    readyz_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "How long `/readyz` waits for the database's `SELECT 1` (and a PostgreSQL connection"
            " to open), and for the object store's check, before it answers 503 naming the part"
            " that did not answer."
        ),
    )
    # an upload with no bytes for this long (or a creator link never used) is ended
    upload_abandon_seconds: int = Field(
        default=3600,
        ge=300,
        description=(
            "A direct or legacy upload that received no bytes for this long (its server died, or "
            "its client went silent), or a creator upload link that can no longer start an upload"
            " and none was started, is ended by the reaper: the video goes to `error` with "
            "`ERR_UPLOAD_ABANDONED` (and a `video.error` webhook) and its partial files are "
            "deleted. At least 300."
        ),
    )

    # media processing
    # path; default: ffmpeg on PATH, else the imageio-ffmpeg build
    ffmpeg: str | None = Field(
        default=None,
        description=(
            "Path of the encoder. Unset: `ffmpeg` on `PATH` (Debian's), else the build the "
            "`imageio-ffmpeg` wheel ships. `serve` and `worker` log which one they use."
        ),
    )
    # path; default: ffprobe on PATH, else PyAV
    ffprobe: str | None = Field(
        default=None,
        description=(
            "Path of the prober. Unset: `ffprobe` on `PATH` (Debian's), else probing uses PyAV "
            "(the `imageio-ffmpeg` wheel ships no ffprobe). `serve` and `worker` log which one "
            "they use."
        ),
    )
    # encodes one worker process runs at once; default one per two cores (the recipe's rule)
    media_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        description=(
            "Default: half the CPU cores (at least 1). Encodes one worker process runs at once "
            "(an encode uses two cores; two 1080p encodes at once would need ~1.2 GiB). The "
            "worker's other threads keep running other jobs, such as webhook deliveries, "
            "meanwhile."
        ),
    )
    media_max_duration_seconds: float = Field(
        default=4 * 3600, gt=0, description="Longer sources fail with `ERR_DURATION_LIMIT`."
    )
    media_max_pixels: int = Field(
        default=8192 * 4320,
        gt=0,
        description=(
            "Sources with more stored pixels per frame fail with `ERR_RESOLUTION_LIMIT`. The "
            "default is 8192x4320."
        ),
    )
    media_ffmpeg_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness added to ffmpeg, so encoding never starves the API.",
    )
    media_timeout_min_seconds: float = Field(
        default=600,
        gt=0,
        description=(
            "An encode is killed (`ERR_TIMEOUT`) after max(this minimum, "
            "`REELOUT_MEDIA_TIMEOUT_FACTOR` x duration) seconds."
        ),
    )
    media_timeout_factor: float = Field(
        default=5.0,
        gt=0,
        description=(
            "An encode is killed (`ERR_TIMEOUT`) after max(`REELOUT_MEDIA_TIMEOUT_MIN_SECONDS`, "
            "this factor x duration) seconds."
        ),
    )
    media_version_grace_seconds: float = Field(
        default=3600,
        ge=0,
        description=(
            "After a re-encode, the replaced version keeps playing this long before its files are"
            " removed."
        ),
    )
    # demuxers an upload may use (media/containers.py); nothing outside this list can be named
    media_containers: Annotated[list[MediaContainer], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_CONTAINERS),
        min_length=1,
        description=(
            "Containers an upload may be in (ffmpeg demuxer names: MP4/MOV/3GP, Matroska/WebM, "
            "AVI, MPEG-TS, MPEG-PS). `flv`, `asf` (WMV) and `ogg` may be added; nothing else can "
            "be: playlists (HLS, DASH), concat lists and image sequences, which would make ffmpeg"
            " read other files, are always refused (`ERR_NON_VIDEO`)."
        ),
    )
    # confine ffmpeg with Landlock where the kernel has it
    media_sandbox: bool = Field(
        default=True,
        description=(
            "Confine ffmpeg and ffprobe with Landlock (Linux 5.13+): they may read their source "
            "and the system libraries and write only the job's scratch folder. Without Landlock "
            "they run unconfined (logged once)."
        ),
    )
    # largest file ffmpeg may write (RLIMIT_FSIZE); past it counts as a full disk (tests use it)
    media_ffmpeg_max_file_bytes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Largest file ffmpeg may write (`RLIMIT_FSIZE`); going past it is treated like a full"
            " disk (the job is retried). The tests use it to simulate a full disk."
        ),
    )
    playback_token_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        description="Default life of a signed playback token (rounded up to 5 minutes).",
    )
    playback_token_max_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description=(
            "Longest `expires_in` a token request may ask for (longer → 400 `TOKEN_TTL_TOO_LONG`)."
        ),
    )
    # e.g. "/_reelout_media": published files are handed to nginx (X-Accel-Redirect) to send
    media_accel_redirect: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_./-]*[^/]$",
        description=(
            "e.g. `/_reelout_media`: published files are sent by nginx (`X-Accel-Redirect`) after"
            " Reelout checked the request; see docs/running/nginx.md."
        ),
    )
    media_delivery: Literal["stream", "redirect"] = Field(
        default="stream",
        description=(
            "How published files in object storage (`REELOUT_STORAGE_URL`) reach players. "
            "`stream`: Reelout reads each object and sends it on (Range, ETag, 304). `redirect`: "
            "segments, MP4 and poster answer 302 to the object itself — a presigned URL, or "
            "`REELOUT_MEDIA_PUBLIC_BASE_URL`; playlists are always sent by Reelout. No effect on "
            "the data folder."
        ),
    )
    media_presign_seconds: int = Field(
        default=600,
        ge=1,
        le=7 * 24 * 3600,
        description=(
            "Life of a presigned URL that `REELOUT_MEDIA_DELIVERY=redirect` sends a player to "
            "(never longer than the video's playback token has left)."
        ),
    )
    media_public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+[^/\s?#]$",
        description=(
            "e.g. `https://media.example.com`: with `REELOUT_MEDIA_DELIVERY=redirect`, files of "
            "videos that need no signed URL are redirected to `<this>/<object key>` (a CDN or a "
            "public bucket in front of `REELOUT_STORAGE_URL`) instead of a presigned URL."
        ),
    )

    # console (the web pages under /console)
    # console sessions, signed URLs; default: data_dir/secret.key
    secret_key: str | None = Field(
        default=None,
        description=(
            "The server's secret: signs console sessions and playback tokens. Unset: a random one"
            " is made on first start in `data/secret.key` (mode 0600). Set it (as strong as "
            "`REELOUT_MIN_SECRET_CHARS` asks, else `serve` refuses with `INVALID_SECRET_KEY`; the"
            " same on every host) when several hosts serve one site; changing it ends every "
            "console session."
        ),
    )
    # characters a chosen secret (admin token, secret key) has beyond its rlo_ prefix, at least
    min_secret_chars: int = Field(
        default=32,
        ge=28,
        description=(
            "Characters a chosen secret (`REELOUT_ADMIN_TOKEN`, `REELOUT_SECRET_KEY`, "
            "`REELOUT_METRICS_TOKEN`) must have "
            "beyond an `rlo_admin_` prefix; it must also take at least 10^24 guesses by the "
            "zxcvbn estimator (no repeats, words, sequences or keyboard runs). Generated keys "
            "always pass."
        ),
    )
    console_session_seconds: int = Field(
        default=12 * 3600, ge=60, description="How long a console login lasts."
    )
    # the environment whose flags pick the console's upload path (evaluated per admin key)
    console_flags_environment: str = Field(
        default="development",
        description=(
            "The environment whose `use_tus_upload` / `use_direct_file_upload` / `beta_mode` "
            "flags pick the console's upload path, evaluated per admin key. Unset and "
            "`development` not in `REELOUT_ENVIRONMENTS`: the first environment; set to an "
            "unknown one: the server refuses to start."
        ),
    )

    # the console reports its own uploads and playbacks (browser SDK) into the flags' environment
    console_telemetry: bool = Field(
        default=True,
        description=(
            "The console reports its own uploads and playbacks with the browser telemetry SDK "
            "into `REELOUT_CONSOLE_FLAGS_ENVIRONMENT` (the environment whose flags it is served, "
            "so its events count in their arms), as the signed-in admin's session through "
            "`POST /console/api/telemetry`; no key is made or shown. `false`: its pages report "
            "nothing and that path answers 404 `CONSOLE_TELEMETRY_OFF`."
        ),
    )

    # console login attempts per client address (0: no limit)
    console_login_attempts_per_minute: int = Field(
        default=10,
        ge=0,
        description=(
            "Console login attempts one client address may make a minute (a burst of as many); "
            "past that the login page answers 429 with `Retry-After`. `0`: no limit."
        ),
    )

    # request bodies: JSON (every route but uploads; flag admin and exposures have their own)
    json_max_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description=(
            "Largest request body of any route but uploads, flag admin "
            "(`REELOUT_FLAG_SET_MAX_BYTES`) and exposure batches: OFREP, keys, webhooks, videos, "
            "console forms. Larger → 413 `BODY_TOO_LARGE`, refused from `Content-Length` or as "
            "soon as a streamed (chunked) body passes it, without reading the rest."
        ),
    )
    json_max_depth: int = Field(
        default=64,
        ge=2,
        le=500,
        description=(
            "Deepest nesting of arrays and objects in a JSON body (every route that parses JSON);"
            " deeper → 400 `JSON_TOO_DEEP`. In a telemetry batch it holds for each event, and a"
            " deeper event is rejected alone."
        ),
    )
    # public endpoints (OFREP, exposures, telemetry): requests per second per caller (key +
    # address) and per key over all addresses, each with its burst (0: no limit, the default)
    rate_limit_caller_per_second: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Requests a second one caller (a client key from one client address; the forwarded "
            "address only with `REELOUT_BEHIND_PROXY`) may make to the public endpoints (OFREP "
            "evaluations, `POST /api/v1/exposures`, `POST /api/v1/telemetry/events`; telemetry "
            "counts in a budget of its own at the same rate, so it never costs flag evaluations; "
            "the burst it may save up is "
            "`REELOUT_RATE_LIMIT_CALLER_BURST`); past that, 429 `RATE_LIMITED` with a jittered "
            "`Retry-After`. A 304 revalidation is free. Off by default: a key ships in every "
            "install of an app, and its users may share one address. `0`: no limit."
        ),
    )
    rate_limit_caller_burst: int = Field(
        default=100,
        ge=1,
        description=(
            "Requests one caller may save up under `REELOUT_RATE_LIMIT_CALLER_PER_SECOND` (its "
            "burst)."
        ),
    )
    rate_limit_key_per_second: float = Field(
        default=0.0,
        ge=0,
        description=(
            "A ceiling, in requests a second, for one key over all addresses (a safety net "
            "against a leaked key), per process; past it, 429 `RATE_LIMITED`. `0`: no limit."
        ),
    )
    rate_limit_key_burst: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Requests one key may save up under `REELOUT_RATE_LIMIT_KEY_PER_SECOND` (its burst)."
        ),
    )
    rate_limit_max_buckets: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Callers (and, separately, console login addresses) a process remembers for these "
            "limits; idle ones are forgotten first, and past the bound the least recently seen."
        ),
    )
    # change notifications: OFREP event streams (SSE) and the revision watch behind them
    ofrep_streams: bool = Field(
        default=True,
        description=(
            "Offer OFREP change events (SSE): bulk answers name the stream in `eventStreams`. "
            "`false`: clients poll."
        ),
    )
    # open event streams per process
    ofrep_max_streams: int = Field(
        default=10_000,
        ge=0,
        description=(
            "Open event streams per process; past it, 503 `STREAMS_FULL` with `Retry-After` (5 s,"
            " jittered up to 7)."
        ),
    )
    # 0: no per-key limit
    ofrep_max_streams_per_key: int = Field(
        default=0,
        ge=0,
        description=(
            "Open event streams of one client key per process; past it, 503 `KEY_STREAMS_FULL`. "
            "Off (`0`) by default: a client key ships inside every install of its app, so a "
            "per-key limit caps how many of the app's users get live updates. Set it when "
            "several apps share one server, so that one app (or a leaked key) cannot take "
            "every place of `REELOUT_OFREP_MAX_STREAMS`."
        ),
    )
    # key + address; 0: none
    ofrep_max_streams_per_caller: int = Field(
        default=0,
        ge=0,
        description=(
            "Open event streams of one key from one client address (see `REELOUT_BEHIND_PROXY`); "
            "past it, 503 `CALLER_STREAMS_FULL`. Off by default: behind a proxy that is not "
            "trusted, or a carrier NAT, every user of an app is one address."
        ),
    )
    ofrep_stream_token_seconds: int = Field(
        default=3600,
        ge=60,
        description=(
            "Life of the `token` in an event-stream URL; an older one gets 401 "
            "`STREAM_TOKEN_EXPIRED` (the app fetches the bulk evaluation again, whose answer "
            "names a fresh URL). Renewed every half life: the bulk `ETag` changes then, so a "
            "revalidating app gets the new URL."
        ),
    )
    # 0: no spreading
    ofrep_refetch_per_second: float = Field(
        default=5000.0,
        ge=0,
        description=(
            "The re-fetch budget after a change, per process: each stream's `refetchEvaluation` "
            "is sent after a random delay of up to open streams ÷ this (500 streams: ≤ 0.1 s; 10 "
            "000: ≤ 2 s), so a fleet does not come back in the same second. `0`: every stream at "
            "once."
        ),
    )
    ofrep_stream_ping_seconds: float = Field(
        default=15.0,
        gt=0,
        description=(
            "A comment line on idle streams this often, so proxies and clients know the stream is"
            " alive."
        ),
    )
    ofrep_stream_inactivity_seconds: int = Field(
        default=120,
        ge=1,
        description=(
            "`inactivityDelaySec` told to clients: a hidden tab or backgrounded app closes its "
            "stream after this long and re-fetches when it is back."
        ),
    )
    flag_change_notify: bool = Field(
        default=True,
        description=(
            "On PostgreSQL, each process also LISTENs for the NOTIFY that every flag-set write"
            " and key revocation sends when it commits, and reads the change at once instead of"
            " at its next poll; `false`: polling alone. Nothing changes on SQLite."
        ),
    )
    flag_change_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        description=(
            "How often each process reads the environments' head revisions and key revocations: a"
            " change made anywhere (another replica, `reelout flags`) reaches every stream and "
            "every process's OFREP answers within this, and so does a key's revocation."
        ),
    )

    # Prometheus metrics: GET /metrics
    metrics_enabled: bool = Field(
        default=True,
        description=(
            "Serve `GET /metrics` (Prometheus) and count HTTP requests, uploads, processing and "
            "flag evaluations for it. `false`: no route, no counting."
        ),
    )
    metrics_token: str | None = Field(
        default=None,
        description=(
            "Unset: `GET /metrics` is open (keep it off the public network). Set: it asks for "
            "`Authorization: Bearer <token>` (else 401 `METRICS_TOKEN_REQUIRED` or "
            "`INVALID_METRICS_TOKEN`); the token must be as strong as `REELOUT_MIN_SECRET_CHARS` "
            "asks, else every command refuses to start with `WEAK_METRICS_TOKEN`."
        ),
    )
    metrics_max_flag_series: int = Field(
        default=200,
        ge=0,
        description=(
            "Distinct (flag, variant) pairs per environment that `reelout_flag_evaluations` "
            'names; evaluations of later pairs count as `flag="other"`, `variant="other"`.'
        ),
    )

    # jobs
    embedded_worker: bool = Field(
        default=True,
        description=(
            "Run a job worker inside `serve`. Turn off when running `reelout worker` processes."
        ),
    )
    worker_concurrency: int = Field(default=2, ge=1, description="Jobs a worker runs at once.")
    job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "A running job's lease; a worker that stops heartbeating loses its jobs to others "
            "after this."
        ),
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for work."
    )
    reaper_interval_seconds: int = Field(
        default=300,
        ge=1,
        description=(
            "How often expired tus uploads are removed and abandoned uploads ended (see "
            "`REELOUT_UPLOAD_ABANDON_SECONDS`)."
        ),
    )
    job_retention_days: float = Field(
        default=7.0,
        gt=0,
        description=(
            "Finished (done or dead) jobs are deleted after this many days (checked hourly)."
        ),
    )

    # webhooks
    webhook_max_endpoints: int = Field(
        default=20,
        ge=0,
        description="Most webhook endpoints at once (more → 409 `WEBHOOK_LIMIT_REACHED`).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "How long one delivery attempt waits to connect, send and hear an answer (each; at "
            "most 300)."
        ),
    )
    # 168: webhooks MAX_RETRY_HOURS
    webhook_retry_hours: float = Field(
        default=24.0,
        gt=0,
        le=168,
        description=(
            "A failing delivery is retried (with backoff) until this long after its event, then "
            "marked `failed` (at most 168)."
        ),
    )
    webhook_retention_days: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Finished deliveries, their attempts and events are deleted after this many days "
            "(checked hourly)."
        ),
    )
    # networks webhooks may reach though not public (CIDRs, e.g. "10.0.0.0/8"); default: none
    webhook_allow_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated CIDRs (e.g. `10.20.0.0/16,fd00:1::/64`; none by default) webhooks "
            "may reach although they are not public. By default only public unicast addresses "
            "are: loopback, private, link-local, shared, multicast, unspecified and reserved ones"
            " are refused (`WEBHOOK_ADDRESS_NOT_ALLOWED`)."
        ),
    )
    # bytes of a receiver's answer kept in the delivery log (0: none; 4096: MAX_EXCERPT_BYTES)
    webhook_response_excerpt_bytes: int = Field(
        default=0,
        ge=0,
        le=4096,
        description=(
            "Bytes of a receiver's answer kept in the delivery log, for debugging receivers you "
            "trust (at most 4096). At `0` only its status, media type and length are kept."
        ),
    )

    # feature flags
    flag_set_max_bytes: int = Field(
        default=MiB,
        ge=1024,
        description=(
            "Largest flag set (or flag) body a `PUT`/`PATCH` (or `reelout flags set`/`import`) "
            "takes (larger → 413 `FLAG_SET_TOO_LARGE`)."
        ),
    )
    # per environment
    flag_max_pending_schedules: int = Field(
        default=1000,
        ge=0,
        description=(
            "Most pending scheduled flag changes per environment (more → 409 "
            "`SCHEDULE_LIMIT_REACHED`). `0` allows none."
        ),
    )
    # the stale report's default `days`
    flag_stale_days: int = Field(
        default=30,
        ge=1,
        description=(
            "How long a flag must have served one outcome, unchanged, before the stale-flag "
            "report lists it (when the request gives no `days`)."
        ),
    )

    # the exposure log: which targeting key saw which variant of a flag, per UTC day
    exposure_log: bool = Field(
        default=True,
        description=(
            'Record which targeting key saw which variant of each flag, once a day (see "Exposure'
            ' log"). `false` records nothing.'
        ),
    )
    exposure_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often each process writes the exposures it queued (also on shutdown).",
    )
    exposure_max_pending: int = Field(
        default=100_000,
        ge=0,
        description=(
            "Exposures a process queues between writes; past that, new ones are dropped, counted "
            "and logged as a warning once per write."
        ),
    )
    exposure_dedup_max: int = Field(
        default=200_000,
        ge=0,
        description=(
            "Today's exposures a process remembers so repeats never reach the database (the "
            "oldest are forgotten first; the database dedups the rest). `0` remembers none."
        ),
    )
    exposure_retention_days: int = Field(
        default=90,
        ge=1,
        description="Exposures of days older than this are deleted (checked once a day).",
    )
    exposure_max_batch: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most exposures one `POST /api/v1/exposures` takes, and its body at most 1 KiB each "
            "(more → 413 `EXPOSURE_BATCH_TOO_LARGE`)."
        ),
    )
    # telemetry: POST /api/v1/telemetry/events
    telemetry_max_batch_events: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most events one telemetry batch holds (more → 413 `BATCH_TOO_LARGE`, nothing stored)."
        ),
    )
    telemetry_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description=(
            "Largest telemetry batch body as sent, gzip or not (larger → 413 `BODY_TOO_LARGE`)."
        ),
    )
    telemetry_max_decoded_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest telemetry batch once a gzip body is inflated (larger → 413 "
            "`BODY_TOO_LARGE`): a small compressed body cannot grow past it."
        ),
    )
    telemetry_max_event_bytes: int = Field(
        default=16 * 1024,
        ge=256,
        description=(
            "Largest single event (its JSON); a larger one is rejected alone "
            "(`EVENT_TOO_LARGE` at its index) and the rest of its batch is stored."
        ),
    )
    telemetry_server_environment: str = Field(
        default="production",
        min_length=1,
        description=(
            "The environment whose telemetry holds the server's own facts (uploads finished or "
            "failed at its endpoints, processing ready or failed); OFREP exposures keep theirs."
        ),
    )
    telemetry_rollup_retention_days: float = Field(
        default=400,
        gt=0,
        description=(
            "Minute rollups older than this are deleted, and hour and day rollups once all their "
            "minutes are (KPIs and alerts read them; raw events "
            "go sooner, after `REELOUT_TELEMETRY_RAW_RETENTION_DAYS`)."
        ),
    )
    telemetry_rollup_seconds: int = Field(
        default=10,
        ge=1,
        description="How often the minute rollups fold in newly arrived telemetry events.",
    )
    telemetry_rollup_delay_seconds: float = Field(
        default=2.0,
        ge=0,
        description=(
            "How far behind the clock the rollups read: an event is folded in once it arrived "
            "this long ago, so a batch still committing on PostgreSQL is never skipped."
        ),
    )
    telemetry_raw_retention_days: float = Field(
        default=14,
        gt=0,
        description=(
            "Raw telemetry events received longer ago than this are deleted; the minute "
            "rollups that KPIs read are kept for `REELOUT_TELEMETRY_ROLLUP_RETENTION_DAYS`."
        ),
    )

    # rollouts
    clock_speed: float = Field(
        default=1.0,
        ge=1,
        le=100_000,
        description=(
            "Simulation only: the server's clock runs this many times faster than real time "
            "from the process start (timers, job schedules, telemetry windows, rollout stages). "
            "`reelout simulate` sets it on the server it starts; never set it on a server "
            "real users depend on."
        ),
    )
    rollout_tick_seconds: int = Field(
        default=60,
        ge=1,
        description=(
            "How often the rollout controller decides every running rollout (one tick per slot "
            "across all workers)."
        ),
    )

    # alerts
    alerts_eval_seconds: int = Field(
        default=60,
        ge=1,
        description=(
            "How often the alert rules are evaluated (one evaluation per slot across all "
            "workers); also how often digests are checked for being due."
        ),
    )
    seed_alerts: bool = Field(
        default=True,
        description=(
            "On start, install the three default alert rules (`error-rate-critical`, "
            "`upload-failure-sustained`, `upload-success-daily`) when no alert rule exists yet. "
            "Rules deleted later are never put back."
        ),
    )
    alerts_max_rules: int = Field(
        default=200, ge=1, description="Most alert and digest rules (more → 409 `TOO_MANY_RULES`)."
    )
    alerts_max_receivers: int = Field(
        default=20, ge=1, description="Most receivers (more → 409 `TOO_MANY_RECEIVERS`)."
    )
    alerts_max_silences: int = Field(
        default=500,
        ge=1,
        description="Most silences not yet ended (more → 409 `TOO_MANY_SILENCES`).",
    )
    alerts_max_silence_days: float = Field(
        default=30,
        gt=0,
        description="The longest a silence may last (longer → 422 `SILENCE_TOO_LONG`).",
    )
    alerts_delivery_attempts: int = Field(
        default=10,
        ge=1,
        le=50,
        description=(
            "Attempts per alert notification (the jobs backoff: 5 s doubling, so 10 attempts "
            "span about 40 minutes) before it is logged failed."
        ),
    )
    alerts_history_days: float = Field(
        default=30,
        gt=0,
        description="Alert history and the delivery log keep this many days (pruned hourly).",
    )

    @field_validator(
        "cors_origins", "environments", "webhook_allow_networks", "media_containers", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _console_flags_environment_is_known(self) -> Settings:
        """Unset and no `development`: the first environment; set to an unknown one: refused."""
        if self.console_flags_environment not in self.environments:
            if "console_flags_environment" not in self.model_fields_set and self.environments:
                self.console_flags_environment = self.environments[0]
                return self
            known = ", ".join(self.environments)
            raise ValueError(
                f"REELOUT_CONSOLE_FLAGS_ENVIRONMENT={self.console_flags_environment!r} is not "
                f"one of REELOUT_ENVIRONMENTS ({known}): name one of those"
            )
        return self

    @model_validator(mode="after")
    def _uploads_fit_in_parts(self) -> Settings:
        """On object storage an upload is at most 10,000 parts (S3's limit)."""
        if self.storage_url and self.tus_max_size > MAX_PARTS * self.s3_part_size:
            raise ValueError(
                f"REELOUT_TUS_MAX_SIZE={self.tus_max_size} needs more than {MAX_PARTS} parts of "
                f"REELOUT_S3_PART_SIZE={self.s3_part_size} bytes: raise the part size or lower "
                "the upload limit"
            )
        return self

    @model_validator(mode="after")
    def _accel_needs_the_data_folder(self) -> Settings:
        """nginx sends files from the data folder; objects in a bucket it cannot reach."""
        if self.storage_url and self.media_accel_redirect:
            raise ValueError(
                "REELOUT_MEDIA_ACCEL_REDIRECT hands files of the data folder to nginx, but with "
                "REELOUT_STORAGE_URL media lives in the bucket: unset it, and choose how media is "
                "sent with REELOUT_MEDIA_DELIVERY (stream or redirect)"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reelout.db').resolve()}"

    @property
    def direct_limit(self) -> int:
        return self.direct_max_bytes if self.direct_max_bytes is not None else self.tus_max_size

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"
