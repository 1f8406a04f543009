"""What the Prometheus metrics cost an OFREP bulk answer: CPU per request in process, with the
metrics on and off, next to the request itself and to the evaluation alone.

Two apps on the same code and the same 20-flag set as `ofrep_bulk.py` (exposure log off in both,
so no background writer shares the CPU), called directly through ASGI (no sockets, no server
loop) with a new targeting key per request like the bench's 200 path, alternating on/off in
rounds. Also timed alone: the flag counter for one answer's 20 flags, and the HTTP middleware
around an app that does nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TOKEN
from ofrep_bulk import ENVIRONMENT, FIXED_CONTEXT, PATH, flag_set
from reelout.app import create_app
from reelout.config import Settings
from reelout.flags.engine.evaluator import parse_flag_set, resolve
from reelout.telemetry.http_metrics import HttpMetrics
from reelout.telemetry.metrics_routes import metrics_of

Request = Callable[[int], Awaitable[None]]


def settings(folder: Path, metrics: bool) -> Settings:
    return Settings(
        data_dir=folder,
        admin_token=TOKEN,
        embedded_worker=False,
        exposure_log=False,
        metrics_enabled=metrics,
    )


async def client_key(app: FastAPI) -> str:
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://x", headers=auth) as api:
        put = await api.put(f"/api/v1/environments/{ENVIRONMENT}/flagset", json=flag_set())
        assert put.status_code in (200, 201), put.text
        spec = {"scope": "client", "environment": ENVIRONMENT, "name": "bench"}
        key: str = (await api.post("/api/v1/keys", json=spec)).json()["key"]
        return key


def bulk_request(app: FastAPI, key: str) -> Request:
    """One bulk evaluation straight through ASGI, for user `n`; checks the answer is a 200."""
    headers = [
        (b"host", b"x"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
    ]

    async def request(n: int) -> None:
        body = json.dumps({"context": {**FIXED_CONTEXT, "targetingKey": f"user-{n}"}}).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("x", 80),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"the bulk evaluation answered {message['status']}")

        await app(scope, receive, send)

    return request


async def cpu_per_request(request: Request, start: int, count: int) -> float:
    """Microseconds of this process's CPU per request, over `count` requests."""
    began = time.process_time()
    for n in range(start, start + count):
        await request(n)
    return 1e6 * (time.process_time() - began) / count


def counter_cost(count: int) -> float:
    """Microseconds to count one bulk answer's 20 evaluations."""
    flags = parse_flag_set(flag_set())
    resolved = [(key, resolve(flags, key, FIXED_CONTEXT, 0.0)) for key in flags.flags]
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(settings(Path(folder), metrics=True))
        evaluations = metrics_of(app.state).flag_evaluations
        began = time.process_time()
        for _ in range(count):
            evaluations.evaluated(ENVIRONMENT, resolved)
        return 1e6 * (time.process_time() - began) / count


def evaluation_cost(count: int) -> float:
    """Microseconds to evaluate the 20 flags for one context (the engine alone)."""
    flags = parse_flag_set(flag_set())
    began = time.process_time()
    for n in range(count):
        context = {**FIXED_CONTEXT, "targetingKey": f"user-{n}"}
        for key in flags.flags:
            resolve(flags, key, context, 0.0)
    return 1e6 * (time.process_time() - began) / count


async def middleware_cost(count: int) -> tuple[float, float]:
    """Microseconds per request of an app that answers 204 at once, bare and wrapped."""

    async def nothing(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ignore(message: Any) -> None:
        return None

    async def never() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with tempfile.TemporaryDirectory() as folder:
        metrics = metrics_of(create_app(settings(Path(folder), metrics=True)).state)
    wrapped = HttpMetrics(nothing, metrics)
    scope = {"type": "http", "method": "POST", "path": PATH, "root_path": ""}
    figures = []
    for app in (nothing, wrapped):
        began = time.process_time()
        for _ in range(count):
            await app(dict(scope), never, ignore)
        figures.append(1e6 * (time.process_time() - began) / count)
    return figures[0], figures[1]


async def main(rounds: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as on_dir, tempfile.TemporaryDirectory() as off_dir:
        on = create_app(settings(Path(on_dir), metrics=True))
        off = create_app(settings(Path(off_dir), metrics=False))
        async with on.router.lifespan_context(on), off.router.lifespan_context(off):
            requests = {
                "on": bulk_request(on, await client_key(on)),
                "off": bulk_request(off, await client_key(off)),
            }
            for request in requests.values():  # warm-up: caches, first-seen series
                await cpu_per_request(request, 0, count // 4)
            figures: dict[str, list[float]] = {"on": [], "off": []}
            for round_no in range(rounds):
                order = ("on", "off") if round_no % 2 == 0 else ("off", "on")
                for name in order:
                    start = (round_no + 1) * count
                    figures[name].append(await cpu_per_request(requests[name], start, count))
    on_us, off_us = statistics.median(figures["on"]), statistics.median(figures["off"])
    bare, wrapped = await middleware_cost(count * 10)
    print(f"OFREP bulk (20 flags) in process, CPU per request, median of {rounds} rounds")
    print(f"  metrics on     {on_us:8.1f} µs   rounds: {_list(figures['on'])}")
    print(f"  metrics off    {off_us:8.1f} µs   rounds: {_list(figures['off'])}")
    print(f"  on - off       {on_us - off_us:8.1f} µs   ({(on_us / off_us - 1) * 100:+.1f} %)")
    print("the parts, alone")
    print(f"  flag counter, 20 evaluations   {counter_cost(count * 10):6.2f} µs")
    print(f"  HTTP middleware                {wrapped - bare:6.2f} µs (bare app {bare:.2f} µs)")
    print(f"  the engine, 20 evaluations     {evaluation_cost(count):6.2f} µs (reference)")


def _list(values: list[float]) -> str:
    return " ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="on/off rounds (default 6)")
    parser.add_argument("--requests", type=int, default=2000, help="per round and app")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
