"""Reelout's Prometheus metrics (prometheus-client): one registry per app, its metric objects, and
the small typed functions the facts are recorded with.

Each app owns its `CollectorRegistry` (never the library's global one), so every app in a process
(the tests make many) counts on its own. Labels fed from outside are bounded (`metric_labels`).
What is counted on every request (HTTP requests, OFREP evaluations) goes through the custom
collectors of `hot_counters`; the alerts through `alert_metrics`, which reads the database at
scrape time; the rest through the library's metric types. Under `serve --workers N` the counts
go to prometheus-client's shared files instead and a scrape adds up every worker's
(`multiprocess`); what is read from the database at scrape time is read once, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.orm import Session

from reelout import __version__
from reelout.config import Settings
from reelout.media import facts
from reelout.telemetry import multiprocess
from reelout.telemetry.hot_counters import FlagEvaluations, HttpRequests
from reelout.telemetry.metric_labels import OTHER, FirstSeen, upload_method
from reelout.telemetry.multiprocess import SharedFlagEvaluations, SharedHttpRequests

MAX_CODES = 64  # distinct error codes per metric (the source names a few dozen)
MAX_EVENT_TYPES = 64  # distinct telemetry event types (the event model has about 25)
EventOutcome = Literal["accepted", "rejected", "duplicate"]


class Metrics:
    """One app's metrics: the registry `/metrics` shows and what records into it."""

    def __init__(self, settings: Settings) -> None:
        self.registry = registry = CollectorRegistry()
        self.token = settings.metrics_token  # what `GET /metrics` asks for, when set
        Info("reelout_build", "The running Reelout.", registry=registry).info(
            {"version": __version__}
        )
        self.flag_evaluations: FlagEvaluations | SharedFlagEvaluations
        self.http: HttpRequests | SharedHttpRequests
        if multiprocess.in_use():  # `serve --workers N`: every worker's values
            self._init_shared(settings, registry)
        else:
            self._init_own(settings, registry)

    def _init_own(self, settings: Settings, registry: CollectorRegistry) -> None:
        """One process: every value in this registry."""
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        self.flag_evaluations = FlagEvaluations(settings.metrics_max_flag_series)
        registry.register(self.flag_evaluations)
        self.http = HttpRequests()
        registry.register(self.http)
        self._init_domain_metrics(registry)

    def _init_shared(self, settings: Settings, registry: CollectorRegistry) -> None:
        """Several workers: the counters write to the shared files, which the scrape reads (so
        they join no registry: each would count again); one process's CPU, memory and garbage
        collections would jump between scrapes, so they are left out."""
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        PlatformCollector(registry=registry)  # the same Python in every worker
        self.flag_evaluations = SharedFlagEvaluations(settings.metrics_max_flag_series)
        self.http = SharedHttpRequests()
        self._init_domain_metrics(None)

    def _init_domain_metrics(self, registry: CollectorRegistry | None) -> None:
        self._uploads_finished = Counter(
            "reelout_uploads_finished",
            "Uploads whose whole original arrived, by method (tus, direct, base64).",
            ("method",),
            registry=registry,
        )
        self._uploads_failed = Counter(
            "reelout_uploads_failed",
            "Uploads that ended without their original, by method and error code.",
            ("method", "code"),
            registry=registry,
        )
        self._processing_ready = Counter(
            "reelout_processing_ready",
            "Processing runs that published a version.",
            registry=registry,
        )
        self._processing_failed = Counter(
            "reelout_processing_failed",
            "Processing runs that failed, by the video's error code.",
            ("code",),
            registry=registry,
        )
        self._events = Counter(
            "reelout_telemetry_events",
            "Telemetry events the ingest took, by type and outcome (accepted, rejected, duplicate).",
            ("type", "outcome"),
            registry=registry,
        )
        self._codes: FirstSeen[str] = FirstSeen(MAX_CODES, OTHER)
        self._types: FirstSeen[str] = FirstSeen(MAX_EVENT_TYPES, OTHER)

    # -- uploads and processing ----------------------------------------------------------------
    def upload_finished(self, source: str) -> None:
        """A video's original arrived whole; `source` is the video's (tus, direct, legacy)."""
        self._uploads_finished.labels(upload_method(source)).inc()

    def upload_failed(self, source: str, code: str) -> None:
        """A video's upload ended without its original, for the reason `code`."""
        self._uploads_failed.labels(upload_method(source), self._codes.label(code, "upload")).inc()

    def processing_ready(self) -> None:
        self._processing_ready.inc()

    def processing_failed(self, code: str) -> None:
        self._processing_failed.labels(self._codes.label(code, "processing")).inc()

    def committed(self, session: Session) -> None:
        """A unit of work committed: count the media facts it established (`Database.on_commit`)."""
        for fact in facts.told(session):
            if isinstance(fact, facts.UploadEnded):
                if fact.error_code is None:
                    self.upload_finished(fact.source)
                else:
                    self.upload_failed(fact.source, fact.error_code)
            elif fact.error_code is None:
                self.processing_ready()
            else:
                self.processing_failed(fact.error_code)

    # -- telemetry ingest --------------------------------------------------------------------
    def events_ingested(self, outcome: EventOutcome, by_type: Mapping[str, int]) -> None:
        """One batch's events of one outcome, counted per type. Give the type as validated (an
        event whose type is not in the event model as `other`): the first MAX_EVENT_TYPES
        types keep their names, later ones count as `other`."""
        for event_type, count in by_type.items():
            if count:
                self._events.labels(self._types.label(event_type), outcome).inc(count)
