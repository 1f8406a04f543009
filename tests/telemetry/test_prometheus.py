"""`GET /metrics` on a live server: uploads, processing, OFREP evaluations and HTTP requests made
for real, then the exposition read back with prometheus-client's own parsers."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from tusclient.client import TusClient

from reelout.app import create_app
from reelout.auth.secret import MetricsTokenError
from reelout.media import facts
from reelout.telemetry.metrics_routes import metrics_of
from tests.media.clips import Clips
from tests.media.conftest import clips
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.support.settings import ADMIN_TOKEN, make_settings

__all__ = ["clips"]  # the media tests' generated clips, as a fixture here
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TUS = {"Tus-Resumable": "1.0.0"}
ORDER_URL = "/api/v1/orders/O-1/inbound/videos"
Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(text: str) -> Samples:
    """Every sample of the exposition by sample name (`…_total`, `…_bucket`), with its labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def scrape(server: LiveServer, **headers: str) -> Samples:
    reply = httpx.get(server.url + "/metrics", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(reply.text)


def value(found: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(v for have, v in found.get(name, []) if labels.items() <= have.items())


@pytest.fixture
def server(live_servers: StartLive) -> LiveServer:
    return live_servers()


# -- uploads and processing ---------------------------------------------------------------------


def test_a_tus_upload_and_its_processing_are_counted(server: LiveServer, clips: Clips) -> None:
    clip = clips("tiny")
    TusClient(server.files_url, headers=dict(AUTH)).uploader(
        str(clip), chunk_size=64 * 1024, metadata={"filename": clip.name}
    ).upload()
    before = scrape(server)
    assert value(before, "reelout_uploads_finished_total", method="tus") == 1
    assert value(before, "reelout_processing_ready_total") == 0
    run_jobs(server.runtime)
    after = scrape(server)
    assert value(after, "reelout_processing_ready_total") == 1
    assert value(after, "reelout_processing_failed_total") == 0
    assert value(after, "reelout_uploads_failed_total") == 0
    patches = value(
        after,
        "reelout_http_requests_total",
        method="PATCH",
        route="/files/{upload_id}",
        status_class="2xx",
    )
    assert patches == -(-clip.stat().st_size // (64 * 1024)), "one per chunk, by route template"


def test_a_file_that_is_no_video_counts_as_failed_processing(
    server: LiveServer, clips: Clips
) -> None:
    with server.client() as api:
        sent = api.post(
            ORDER_URL, content=clips("text").read_bytes(), headers={"Content-Type": "video/mp4"}
        )
        assert sent.status_code == 201, sent.text
    run_jobs(server.runtime)
    found = scrape(server)
    assert value(found, "reelout_uploads_finished_total", method="direct") == 1
    assert value(found, "reelout_processing_failed_total", code="ERR_NON_VIDEO") == 1
    assert value(found, "reelout_processing_ready_total") == 0


def test_legacy_uploads_count_as_base64_finished_and_failed(server: LiveServer) -> None:
    with server.client() as api:
        good = api.post(ORDER_URL, json={"file_base64": base64.b64encode(b"x" * 300).decode()})
        assert good.status_code == 201, good.text
        cut = api.post(
            ORDER_URL,
            content=b'{"file_base64": "QUJ"}',
            headers={"Content-Type": "application/json"},
        )
        assert (cut.status_code, cut.json()["code"]) == (400, "INVALID_BASE64")
    found = scrape(server)
    assert value(found, "reelout_uploads_finished_total", method="base64") == 1
    assert value(found, "reelout_uploads_failed_total", method="base64", code="INVALID_BASE64") == 1
    assert value(found, "reelout_uploads_finished_total", method="direct") == 0


def test_a_terminated_tus_upload_counts_as_failed(server: LiveServer) -> None:
    with server.client() as api:
        created = api.post("/files/", headers={**TUS, "Upload-Length": "100"})
        assert created.status_code == 201
        assert api.delete(created.headers["Location"], headers=TUS).status_code == 204
    found = scrape(server)
    failed = value(
        found, "reelout_uploads_failed_total", method="tus", code="ERR_UPLOAD_TERMINATED"
    )
    assert failed == 1
    assert value(found, "reelout_uploads_finished_total") == 0


def test_a_fact_of_a_rolled_back_unit_of_work_is_not_counted(server: LiveServer) -> None:
    class Undone(Exception):
        pass

    def note_then_fail() -> None:
        with server.runtime.db.session() as session:
            facts.note(session, facts.UploadEnded("tus"))
            raise Undone

    with pytest.raises(Undone):
        note_then_fail()
    with server.runtime.db.session() as session:
        facts.note(session, facts.UploadEnded("direct"))
    found = scrape(server)
    assert value(found, "reelout_uploads_finished_total", method="tus") == 0
    assert value(found, "reelout_uploads_finished_total", method="direct") == 1


# -- OFREP evaluations ------------------------------------------------------------------------


def flag(*variants: str) -> dict[str, object]:
    return {
        "state": "ENABLED",
        "variants": {name: name for name in variants},
        "defaultVariant": variants[0],
    }


def with_flags(server: LiveServer, flags: dict[str, object]) -> httpx.Client:
    """The server's `production` environment with these flags; an app's client for it."""
    with server.client() as admin:
        put = admin.put("/api/v1/environments/production/flagset", json={"flags": flags})
        assert put.status_code in (200, 201), put.text
        body = {"scope": "client", "environment": "production", "name": "app"}
        key = admin.post("/api/v1/keys", json=body).json()["key"]
    return server.client(token=key)


def evaluate_all(app: httpx.Client, targeting_key: str = "u1") -> None:
    reply = app.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": targeting_key}})
    assert reply.status_code == 200, reply.text


def test_ofrep_evaluations_are_counted_by_flag_variant_and_reason(server: LiveServer) -> None:
    rollout = {
        **flag("on", "off"),
        "targeting": {"if": [{"in": [{"var": "cohort"}, ["beta"]]}, "on", "off"]},
    }
    with with_flags(server, {"player": flag("media_kit"), "rollout": rollout}) as app:
        evaluate_all(app)
        evaluate_all(app, "u2")
        one = app.post(
            "/ofrep/v1/evaluate/flags/rollout",
            json={"context": {"targetingKey": "u3", "cohort": "beta"}},
        )
        assert one.json()["variant"] == "on"
        missing = app.post("/ofrep/v1/evaluate/flags/no_such_flag", json={"context": {}})
        assert missing.status_code == 404
    found = scrape(server)
    name = "reelout_flag_evaluations_total"
    production = {"environment": "production"}
    assert (
        value(found, name, **production, flag="player", variant="media_kit", reason="STATIC") == 2
    )
    assert value(found, name, flag="rollout", variant="off", reason="TARGETING_MATCH") == 2
    assert value(found, name, flag="rollout", variant="on", reason="TARGETING_MATCH") == 1
    assert value(found, name, flag="other", variant="", reason="ERROR") == 1, "an unknown key"
    assert not [labels for labels, _ in found[name] if labels["flag"] == "no_such_flag"]
    bulk = value(
        found,
        "reelout_http_requests_total",
        method="POST",
        route="/ofrep/v1/evaluate/flags",
        status_class="2xx",
    )
    assert bulk == 2


@pytest.mark.parametrize("limit", [2, 3])
def test_flag_series_past_the_limit_collapse_to_other(live_servers: StartLive, limit: int) -> None:
    """Three (flag, variant) pairs: with a limit of 3 all keep their names; with 2 the third
    evaluated pair counts as flag="other", variant="other"."""
    server = live_servers(metrics_max_flag_series=limit)
    flags = {"a": flag("x"), "b": flag("y"), "c": flag("z")}
    with with_flags(server, flags) as app:
        for key in ("a", "b", "c", "c"):  # one at a time: the order they are first seen
            reply = app.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": {}})
            assert reply.status_code == 200, reply.text
    found = scrape(server)
    counted = {
        (labels["flag"], labels["variant"]): count
        for labels, count in found["reelout_flag_evaluations_total"]
    }
    if limit == 3:
        assert counted == {("a", "x"): 1, ("b", "y"): 1, ("c", "z"): 2}
    else:
        assert counted == {("a", "x"): 1, ("b", "y"): 1, ("other", "other"): 2}


# -- HTTP ---------------------------------------------------------------------------------------


def test_http_requests_are_labelled_by_route_template_never_by_path(server: LiveServer) -> None:
    uid = secrets.token_hex(8)
    with server.client() as api:
        assert api.get(f"/api/v1/videos/{uid}").status_code == 404
        assert api.get(f"/no/such/{uid}").status_code == 404
        assert api.request("PROPFIND", "/healthz").status_code == 405
        assert api.get("/healthz").status_code == 200
    found = scrape(server)
    name = "reelout_http_requests_total"
    assert value(found, name, method="GET", route="/api/v1/videos/{uid}", status_class="4xx") == 1
    assert value(found, name, method="GET", route="unmatched", status_class="4xx") == 1
    assert value(found, name, method="other", route="/healthz", status_class="4xx") == 1
    assert value(found, name, method="GET", route="/healthz", status_class="2xx") == 1
    assert not [labels for labels, _ in found[name] if uid in labels["route"]]
    timed = value(
        found, "reelout_http_request_duration_seconds_count", method="GET", route="/healthz"
    )
    assert timed == 1
    buckets = [
        labels["le"]
        for labels, _ in found["reelout_http_request_duration_seconds_bucket"]
        if labels["route"] == "/healthz"
    ]
    assert buckets[0] == "0.001" and buckets[-1] == "+Inf"


def test_openmetrics_when_the_accept_header_asks(server: LiveServer) -> None:
    reply = httpx.get(
        server.url + "/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=30
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.text.endswith("# EOF\n")
    names = {family.name for family in openmetrics_families(reply.text)}
    assert {"reelout_http_requests", "reelout_uploads_finished", "reelout_build"} <= names


# -- what other domains record: the telemetry ingest and the alerts ------------------------------


def test_ingest_and_alert_counts_show_on_the_scrape(server: LiveServer) -> None:
    """The ingest's counts; the alerts' (read from the database: tests/alerts/test_metrics.py)
    show every severity before any alert fires."""
    metrics = metrics_of(server.app.state)
    metrics.events_ingested("accepted", {"playing": 3, "rating": 1})
    metrics.events_ingested("duplicate", {"playing": 2})
    metrics.events_ingested("rejected", {"other": 1})
    found = scrape(server)
    events = "reelout_telemetry_events_total"
    assert value(found, events, type="playing", outcome="accepted") == 3
    assert value(found, events, type="rating", outcome="accepted") == 1
    assert value(found, events, type="playing", outcome="duplicate") == 2
    assert value(found, events, type="other", outcome="rejected") == 1
    firing = {labels["severity"]: v for labels, v in found["reelout_alerts_firing"]}
    assert firing == {"page": 0, "warning": 0, "info": 0}
    assert "reelout_alert_transitions_total" not in found  # no alert has changed state yet


def test_each_app_counts_on_its_own(live_servers: StartLive) -> None:
    one, two = live_servers("one"), live_servers("two")
    for _ in range(3):
        assert httpx.get(one.url + "/healthz").status_code == 200
    name = "reelout_http_requests_total"
    assert value(scrape(one), name, route="/healthz") == 3
    assert value(scrape(two), name, route="/healthz") == 0


# -- the two settings -------------------------------------------------------------------------


@pytest.fixture
def guarded(live_servers: StartLive) -> tuple[LiveServer, str]:
    token = secrets.token_urlsafe(32)
    return live_servers(metrics_token=token), token


def test_a_metrics_token_is_asked_for_when_set(guarded: tuple[LiveServer, str]) -> None:
    server, token = guarded
    bare = httpx.get(server.url + "/metrics")
    assert (bare.status_code, bare.json()["code"]) == (401, "METRICS_TOKEN_REQUIRED")
    assert bare.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}x"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "INVALID_METRICS_TOKEN")
    admin = httpx.get(server.url + "/metrics", headers=AUTH)
    assert admin.status_code == 401, "the admin key is not the metrics token"
    found = scrape(server, Authorization=f"Bearer {token}")
    assert value(found, "reelout_http_requests_total", route="/metrics", status_class="4xx") == 3


def test_without_a_token_the_metrics_are_open(server: LiveServer) -> None:
    assert httpx.get(server.url + "/metrics").status_code == 200


def test_a_weak_metrics_token_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(MetricsTokenError, match="REELOUT_METRICS_TOKEN is too weak"):
        create_app(make_settings(tmp_path, metrics_token="password-password-password-1234"))


def test_metrics_turned_off_serve_no_route_and_count_nothing(live_servers: StartLive) -> None:
    server = live_servers(metrics_enabled=False)
    with with_flags(server, {"player": flag("media_kit")}) as app:
        evaluate_all(app)
    reply = httpx.get(server.url + "/metrics")
    assert (reply.status_code, reply.json()["code"]) == (404, "NOT_FOUND")
    (evaluations,) = metrics_of(server.app.state).flag_evaluations.collect()
    assert evaluations.samples == [], "OFREP counted nothing"
