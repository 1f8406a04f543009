"""How the synthetic apps get the flag: over OFREP with a client key (the server logs each
exposure as it serves it), or in process with Reelout's Python SDK (simulate.in_process, loaded
only then: the SDK needs the OpenFeature SDK, which a server install may lack)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import httpx


class FlagSource(Protocol):
    def variant(self, viewer: str) -> str:
        """The variant `viewer` is served."""
        ...

    def report(self, seen: Sequence[tuple[str, str]]) -> None:
        """The exposures (viewer, variant) the apps report themselves."""
        ...

    def close(self) -> None: ...


@dataclass
class Ofrep:
    """Each user asks OFREP; the server's exposure log records what it served."""

    api: httpx.Client  # with a client key
    flag: str

    def variant(self, viewer: str) -> str:
        reply = self.api.post(
            f"/ofrep/v1/evaluate/flags/{self.flag}", json={"context": {"targetingKey": viewer}}
        )
        reply.raise_for_status()
        return str(reply.json()["variant"])

    def report(self, seen: Sequence[tuple[str, str]]) -> None:
        return None  # OFREP logged them as it served them

    def close(self) -> None:
        return None


class SdkMissing(RuntimeError):
    """The in-process SDK cannot load: the OpenFeature SDK is not installed."""


def _in_process() -> ModuleType:
    try:
        return importlib.import_module("reelout.simulate.in_process")
    except ImportError as exc:
        raise SdkMissing(
            "apps that evaluate flags in process use Reelout's Python SDK, which needs the "
            f"OpenFeature SDK: pip install openfeature-sdk ({exc})"
        ) from exc


def check_in_process() -> None:
    """SdkMissing, saying what to install, when the in-process apps cannot load."""
    _in_process()


def in_process(url: str, server_key: str, flag: str) -> FlagSource:
    """Apps that evaluate `flag` in process with the SDK (a server key) and report exposures."""
    made: FlagSource = _in_process().InProcess(url, server_key, flag)
    return made
