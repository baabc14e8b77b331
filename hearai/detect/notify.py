"""Telling other devices about alerts: what every teller sends, and several tellers as one.

A teller (``Webhook``, ``MqttAlerts``) takes an event with ``notify`` and returns at once: detection
never waits for the network. Each counts what it ``sent``, what ``failed`` and what it ``dropped``
when its receiver fell too far behind.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from hearai.detect.tracks import Event

QUEUE_SIZE = 100  # alerts a teller holds while its receiver is slow or away; beyond this the oldest go


def alert_payload(event: Event, source: str) -> dict[str, Any]:
    """``{"type": "alert"|"ended", "label", "onset", "offset", "confidence", "source", "time"}``: one alert as JSON."""
    return {"type": "alert" if event.offset is None else "ended", **event.to_dict(), "source": source,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}


class Teller(Protocol):
    name: str
    sent: int
    failed: int
    dropped: int
    last_error: str

    def notify(self, event: Event) -> None: ...

    def close(self, wait_seconds: float = 5.0) -> None: ...


class Tellers:
    """Every configured teller, told each event in turn."""

    def __init__(self, tellers: list[Teller]) -> None:
        self.tellers = tellers

    def notify(self, event: Event) -> None:
        for teller in self.tellers:
            teller.notify(event)

    def close(self) -> list[str]:
        """Deliver what is queued (a few seconds at most each); a line for each teller that lost alerts."""
        lines = []
        for teller in self.tellers:
            teller.close()
            if teller.failed or teller.dropped:
                lines.append(f"{teller.name}: {teller.sent} sent, {teller.failed} failed ({teller.last_error}), "
                             f"{teller.dropped} dropped")
        return lines
