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


MediaContainer = Literal["mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"]
DEFAULT_MEDIA_CONTAINERS: tuple[MediaContainer, ...] = ("mov", "matroska", "avi", "mpegts", "mpeg")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Runtime configuration; read from REELOUT_* variables (and a .env file if present)."""

    model_config = SettingsConfigDict(env_prefix="REELOUT_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "rich", "plain"] = "auto"
    access_log: bool = True
    admin_token: str | None = None
    public_url: str | None = None
    behind_proxy: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["development", "preview", "production"]
    )

    # tus
    tus_max_size: int = Field(default=10 * GiB, ge=0)
    tus_expiration_seconds: int = Field(default=24 * 3600, ge=1)
    tus_read_timeout_seconds: float = Field(default=30.0, gt=0)
    tus_lock_timeout_seconds: float = Field(default=3.0, gt=0)
    tus_metadata_max_bytes: int = Field(default=4096, ge=0)
    tus_fsync: Literal["patch", "background"] = "background"
    # partial uploads one creator upload link may make, and parts one final upload may name
    tus_max_partials: int = Field(default=16, ge=1)

    # creator uploads, direct and legacy uploads
    upload_token_ttl_seconds: int = Field(default=3600, ge=1)
    direct_max_bytes: int | None = Field(default=None, ge=0)
    legacy_max_bytes: int = Field(default=100 * MiB, ge=0)
    # free space every upload must leave on the data folder's disk (and /readyz's threshold)
    disk_reserve_bytes: int = Field(default=GiB, ge=0)
    # an upload with no bytes for this long (or a creator link never used) is ended
    upload_abandon_seconds: int = Field(default=3600, ge=300)

    # media processing
    ffmpeg: str | None = None  # path; default: ffmpeg on PATH, else the imageio-ffmpeg build
    ffprobe: str | None = None  # path; default: ffprobe on PATH, else PyAV
    # encodes one worker process runs at once; default one per two cores (the recipe's rule)
    media_concurrency: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    media_max_duration_seconds: float = Field(default=4 * 3600, gt=0)
    media_max_pixels: int = Field(default=8192 * 4320, gt=0)
    media_ffmpeg_nice: int = Field(default=10, ge=0, le=19)
    media_timeout_min_seconds: float = Field(default=600, gt=0)
    media_timeout_factor: float = Field(default=5.0, gt=0)
    media_version_grace_seconds: float = Field(default=3600, ge=0)
    # demuxers an upload may use (media/containers.py); nothing outside this list can be named
    media_containers: Annotated[list[MediaContainer], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_CONTAINERS), min_length=1
    )
    media_sandbox: bool = True  # confine ffmpeg with Landlock where the kernel has it
    # largest file ffmpeg may write (RLIMIT_FSIZE); past it counts as a full disk (tests use it)
    media_ffmpeg_max_file_bytes: int | None = Field(default=None, ge=1)
    playback_token_ttl_seconds: int = Field(default=3600, ge=60)
    playback_token_max_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # e.g. "/_reelout_media": published files are handed to nginx (X-Accel-Redirect) to send
    media_accel_redirect: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_./-]*[^/]$")

    # console (the web pages under /console)
    secret_key: str | None = None  # console sessions, signed URLs; default: data_dir/secret.key
    # characters a chosen secret (admin token, secret key) has beyond its rlo_ prefix, at least
    min_secret_chars: int = Field(default=32, ge=28)
    console_session_seconds: int = Field(default=12 * 3600, ge=60)
    # the environment whose flags pick the console's upload path (evaluated per admin key)
    console_flags_environment: str = "development"

    # console login attempts per client address (0: no limit)
    console_login_attempts_per_minute: int = Field(default=10, ge=0)

    # request bodies: JSON (every route but uploads; flag admin and exposures have their own)
    json_max_bytes: int = Field(default=64 * 1024, ge=1024)
    json_max_depth: int = Field(default=64, ge=2, le=500)
    # public endpoints (OFREP, exposures): requests per second per caller (key + address) and
    # per key over all addresses, each with its burst (0: no limit, the default)
    rate_limit_caller_per_second: float = Field(default=0.0, ge=0)
    rate_limit_caller_burst: int = Field(default=100, ge=1)
    rate_limit_key_per_second: float = Field(default=0.0, ge=0)
    rate_limit_key_burst: int = Field(default=10_000, ge=1)
    rate_limit_max_buckets: int = Field(default=100_000, ge=1)
    # change notifications: OFREP event streams (SSE) and the revision watch behind them
    ofrep_streams: bool = True
    ofrep_max_streams: int = Field(default=10_000, ge=0)  # open event streams per process
    ofrep_max_streams_per_key: int = Field(default=5_000, ge=0)  # 0: no per-key limit
    ofrep_max_streams_per_caller: int = Field(default=0, ge=0)  # key + address; 0: none
    ofrep_stream_token_seconds: int = Field(default=3600, ge=60)
    ofrep_refetch_per_second: float = Field(default=5000.0, ge=0)  # 0: no spreading
    ofrep_stream_ping_seconds: float = Field(default=15.0, gt=0)
    ofrep_stream_inactivity_seconds: int = Field(default=120, ge=1)
    flag_change_poll_seconds: float = Field(default=0.25, gt=0)

    # jobs
    embedded_worker: bool = True
    worker_concurrency: int = Field(default=2, ge=1)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    reaper_interval_seconds: int = Field(default=300, ge=1)
    job_retention_days: float = Field(default=7.0, gt=0)

    # webhooks
    webhook_max_endpoints: int = Field(default=20, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_retry_hours: float = Field(default=24.0, gt=0, le=168)  # 168: webhooks MAX_RETRY_HOURS
    webhook_retention_days: float = Field(default=30.0, gt=0)
    # networks webhooks may reach though not public (CIDRs, e.g. "10.0.0.0/8"); default: none
    webhook_allow_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # bytes of a receiver's answer kept in the delivery log (0: none; 4096: MAX_EXCERPT_BYTES)
    webhook_response_excerpt_bytes: int = Field(default=0, ge=0, le=4096)

    # feature flags
    flag_set_max_bytes: int = Field(default=MiB, ge=1024)
    flag_max_pending_schedules: int = Field(default=1000, ge=0)  # per environment
    flag_stale_days: int = Field(default=30, ge=1)  # the stale report's default `days`

    # the exposure log: which targeting key saw which variant of a flag, per UTC day
    exposure_log: bool = True
    exposure_flush_seconds: float = Field(default=1.0, gt=0)
    exposure_max_pending: int = Field(default=100_000, ge=0)
    exposure_dedup_max: int = Field(default=200_000, ge=0)
    exposure_retention_days: int = Field(default=90, ge=1)
    exposure_max_batch: int = Field(default=1000, ge=1)

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
