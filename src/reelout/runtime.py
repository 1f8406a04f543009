"""The runtime: settings, database, clock and stores wired once and shared by app, CLI and worker.

This is the composition root: it may import any domain (to build its stores), and no domain
imports it. Domains ask for the protocols they use (`reelout.context.Core`, `Signing`,
`MediaContext`, `UploadsContext`), which a `Runtime` satisfies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from reelout import datafolder
from reelout.alerts.signals import NoSignals, SignalSource
from reelout.auth.secret import check_admin_token, check_metrics_token, secret_key
from reelout.clock import Clock, SystemClock, clock_for
from reelout.config import Settings
from reelout.db.engine import Database
from reelout.media.storage import FileMediaStore, MediaStore
from reelout.telemetry.kpis import KpiSignals
from reelout.uploads.locks import FileLocker, LocalLocker, Locker
from reelout.uploads.pglocks import PgLocker
from reelout.uploads.store import FileUploadStore, UploadStore

if TYPE_CHECKING:
    from reelout.objectstore import Bucket


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    # where alert rules read metrics: the KPI rollups (`from_settings`); none until then
    alert_signals: SignalSource = field(default_factory=NoSignals)
    upload_store: UploadStore = field(init=False)
    media_store: MediaStore = field(init=False)
    locker: Locker = field(init=False)

    def __post_init__(self) -> None:
        self.upload_store = self._upload_store()
        self.media_store = self._media_store()
        self.locker = self._locker()

    def _locker(self) -> Locker:
        """On PostgreSQL the database's advisory locks (many hosts may share it); on SQLite
        lock files when `serve` runs several processes, else in-process locks."""
        settings = self.settings
        url = settings.resolved_database_url
        if url.startswith("postgresql"):
            return PgLocker(url, settings.upload_lock_connections)
        if settings.workers > 1:
            return FileLocker(settings.data_dir / "locks")
        return LocalLocker()

    def _upload_store(self) -> UploadStore:
        if self.settings.storage_url:
            from reelout.uploads.s3store import S3UploadStore  # boto3: loaded by a fleet only

            return S3UploadStore(self.bucket, self.settings.s3_part_size)
        return FileUploadStore(self.settings.data_dir / "uploads")

    def _media_store(self) -> MediaStore:
        data = self.settings.data_dir
        if self.settings.storage_url:
            from reelout.media.s3storage import S3MediaStore  # boto3: loaded by a fleet only

            return S3MediaStore(self.bucket, data / "scratch", self.settings.s3_part_size)
        return FileMediaStore(data / "media")

    @property
    def storage_description(self) -> str:
        """Where uploads and media live, for the start-up log."""
        if not self.settings.storage_url:
            return f"the data folder {self.settings.data_dir.resolve()}"
        endpoint = self.bucket.client.meta.endpoint_url
        return f"{self.settings.storage_url} at {endpoint}"

    @cached_property
    def bucket(self) -> Bucket:
        """The object storage of REELOUT_STORAGE_URL (one client for every store)."""
        assert self.settings.storage_url, "no REELOUT_STORAGE_URL"
        from reelout.objectstore import Bucket, Location  # boto3: loaded by a fleet only

        return Bucket(Location.parse(self.settings.storage_url))

    @cached_property
    def secret(self) -> str:
        """The server's secret (REELOUT_SECRET_KEY or data/secret.key), read once."""
        return secret_key(self.settings)

    @cached_property
    def playback_key(self) -> bytes:
        """The key signed playback URLs are made with, derived from the server's secret."""
        return hashlib.sha256(b"reelout.playback\0" + self.secret.encode()).digest()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        check_admin_token(settings)
        check_metrics_token(settings)
        datafolder.secure(settings)
        runtime = cls(
            settings,
            Database(settings.resolved_database_url),
            clock or clock_for(settings.clock_speed),
        )
        runtime.alert_signals = KpiSignals(runtime)  # alert rules read the KPI rollups
        return runtime
