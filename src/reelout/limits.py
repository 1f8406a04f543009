"""The public endpoints' limits in HTTP terms: per caller and per key rates (429), console login
attempts, event-stream slots (503), each refusal with a code and a jittered Retry-After."""

from __future__ import annotations

import random
from typing import Any, Literal

from starlette.requests import Request

from reelout.clock import Clock
from reelout.config import Settings
from reelout.errors import ServiceUnavailable, TooManyRequests
from reelout.ratelimit import CallerLimits, Slot, Slots, TokenBuckets, retry_after
from reelout.urls import client_address

EVALUATION_ADVICE = "evaluate in bulk and revalidate by ETag (a 304 costs nothing)"
STREAMS_RETRY_SECONDS = 5  # a refused stream's Retry-After, before jitter


class PublicLimits:
    """Made once per app (`app.state.limits`) from the settings; every public route asks it."""

    def __init__(self, settings: Settings, clock: Clock, rng: random.Random | None = None) -> None:
        self.settings, self.clock = settings, clock
        self.rng = rng or random.Random()
        # the same rates, two budgets: a burst of telemetry (an app sending what it saved up
        # offline) must never cost that app its flag evaluations, nor the other way round
        self.requests = self._caller_limits()
        self.telemetry = self._caller_limits()
        per_minute = settings.console_login_attempts_per_minute
        self.logins = (
            TokenBuckets(per_minute / 60, per_minute, settings.rate_limit_max_buckets)
            if per_minute
            else None
        )
        self.streams = Slots(
            settings.ofrep_max_streams,
            settings.ofrep_max_streams_per_key,
            settings.ofrep_max_streams_per_caller,
        )

    def _caller_limits(self) -> CallerLimits:
        settings = self.settings
        return CallerLimits(
            (settings.rate_limit_caller_per_second, settings.rate_limit_caller_burst),
            (settings.rate_limit_key_per_second, settings.rate_limit_key_burst),
            settings.rate_limit_max_buckets,
            self.rng,
        )

    def check(
        self,
        request: Request,
        key_id: str,
        advice: str = EVALUATION_ADVICE,
        budget: Literal["flags", "telemetry"] = "flags",
    ) -> None:
        """Take this request from its caller's and its key's budgets (flag evaluations and
        exposures share one, telemetry has its own), or 429 RATE_LIMITED."""
        limits = self.telemetry if budget == "telemetry" else self.requests
        if not limits.on:
            return
        address = client_address(request, self.settings)
        wait = limits.check(key_id, address, self.clock.monotonic())
        if wait is not None:
            raise TooManyRequests(
                "this app key made too many requests from this address "
                "(REELOUT_RATE_LIMIT_CALLER_PER_SECOND) or from everywhere "
                f"(REELOUT_RATE_LIMIT_KEY_PER_SECOND); retry in {wait} s, and {advice}",
                code="RATE_LIMITED",
                headers={"Retry-After": str(wait)},
            )

    def login_wait(self, request: Request) -> int | None:
        """None when this address may try a console login now; else Retry-After seconds."""
        if self.logins is None:
            return None
        address, now = client_address(request, self.settings), self.clock.monotonic()
        wait = self.logins.wait(address, now)
        if wait > 0:
            return retry_after(wait, self.rng)
        self.logins.take(address, now)
        return None

    def stream_slot(self, request: Request, key_id: str) -> Slot:
        """A place for one event stream of this key from this address, or 503 with a code."""
        taken = self.streams.acquire(key_id, client_address(request, self.settings))
        if isinstance(taken, Slot):
            return taken
        reason, code = _STREAM_LIMITS[taken]
        wait = retry_after(STREAMS_RETRY_SECONDS, self.rng)
        raise ServiceUnavailable(
            f"{reason}; retry in {wait} s, and poll the bulk evaluation by ETag meanwhile",
            code=code,
            headers={"Retry-After": str(wait)},
        )


_STREAM_LIMITS = {
    "total": (
        "this server holds its most event streams (REELOUT_OFREP_MAX_STREAMS)",
        "STREAMS_FULL",
    ),
    "key": (
        "this app key holds its most event streams here (REELOUT_OFREP_MAX_STREAMS_PER_KEY)",
        "KEY_STREAMS_FULL",
    ),
    "caller": (
        "this app key holds its most event streams from this address "
        "(REELOUT_OFREP_MAX_STREAMS_PER_CALLER)",
        "CALLER_STREAMS_FULL",
    ),
}


def public_limits(state: Any) -> PublicLimits:
    """The app's limits (`app.state.limits`, made by create_app)."""
    limits: PublicLimits = state.limits
    return limits
