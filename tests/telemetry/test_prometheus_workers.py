"""`GET /metrics` on a real `reelout serve --workers 2`: whichever worker answers the scrape, it
counts the requests every worker answered (prometheus-client's multiprocess mode)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.live import ServerProcess, StartServer
from tests.support.settings import ADMIN_TOKEN
from tests.telemetry.test_prometheus import Samples, samples, value

BATCH = 20
MAX_REQUESTS = 1000
EVALUATIONS = 20
SCRAPES = 6
STALE = "serve-4194305"  # above Linux's largest pid: a `serve` that can no longer be running


def scrape(server: ServerProcess) -> Samples:
    reply = httpx.get(server.url + "/metrics", timeout=30)  # a new connection: any worker
    assert reply.status_code == 200, reply.text
    return samples(reply.text)


def evaluate_unknown_flags(server: ServerProcess) -> None:
    """EVALUATIONS OFREP answers (FLAG_NOT_FOUND, counted as flag `other`), each on a new
    connection."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"scope": "client", "environment": "production", "name": "app"}
    key = httpx.post(server.url + "/api/v1/keys", json=body, headers=admin).json()["key"]
    for _ in range(EVALUATIONS):
        reply = httpx.post(
            server.url + "/ofrep/v1/evaluate/flags/nope",
            json={"context": {"targetingKey": "u1"}},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status_code == 404, reply.text


def readyz_counts_per_worker(folder: Path) -> list[float]:
    """Each worker's own count of /readyz requests, read from its file in the shared folder."""
    counts = []
    for file in sorted(folder.glob("serve-*/counter_*.db")):
        found = {
            (sample.name, sample.labels.get("route")): sample.value
            for metric in MultiProcessCollector.merge([str(file)])
            for sample in metric.samples
        }
        counts.append(found.get(("reelout_http_requests_total", "/readyz"), 0.0))
    return counts


def readyz_on_both_workers(server: ServerProcess) -> int:
    """GET /readyz, each on a new connection, until both workers have answered some (the
    kernel hands a connection to whichever worker accepts first); returns how many were sent."""
    sent = 0
    while sent < MAX_REQUESTS:
        for _ in range(BATCH):
            assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        sent += BATCH
        answered = [n for n in readyz_counts_per_worker(server.data_dir / "metrics") if n]
        if len(answered) == 2:
            return sent
    raise AssertionError(f"one worker answered all {sent} requests")


def test_every_scrape_counts_the_requests_of_every_worker(
    start_server: StartServer, tmp_path: Path
) -> None:
    stale = tmp_path / "data" / "metrics" / STALE
    stale.mkdir(parents=True)
    (stale / "counter_4194305.db").write_bytes(b"left by a serve that was killed")
    server = start_server("--workers", "2")
    assert not stale.exists()
    requests = readyz_on_both_workers(server)
    evaluate_unknown_flags(server)
    for _ in range(SCRAPES):
        found = scrape(server)
        assert value(found, "reelout_http_requests_total", route="/readyz") == requests
        timed = value(found, "reelout_http_request_duration_seconds_count", route="/readyz")
        assert timed == requests
        flags = value(found, "reelout_flag_evaluations_total", environment="production")
        assert flags == EVALUATIONS
        assert value(found, "reelout_build_info") == 1
        assert "reelout_alerts_firing" in {name.removesuffix("_total") for name in found}
        assert value(found, "reelout_alerts_firing") == 0  # read once from the database
    per_worker = [count for count in readyz_counts_per_worker(server.data_dir / "metrics") if count]
    assert len(per_worker) == 2, per_worker  # both workers answered: the sums really add up
    assert sum(per_worker) == requests
