"""What the alerts domain asks of the process it runs in: the core, the server's secret (receiver
secrets are sealed with it) and the SignalSource its rules read metrics from."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from reelout.alerts.signals import SignalSource
from reelout.context import Signing
from reelout.deps import app_context


class AlertsHost(Signing, Protocol):
    @property
    def alert_signals(self) -> SignalSource: ...


AlertsDep = Annotated[AlertsHost, Depends(app_context)]
