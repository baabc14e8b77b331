"""Telling other devices about alerts: what every teller sends, how it accounts for them, several as one.

A teller (``Webhook``, ``MqttAlerts``) takes an event with ``notify`` and returns at once: detection
never waits for the network. Every alert a teller is given ends one of four ways, each counted:
``sent`` (the receiver took it), ``failed`` (refused, or still undelivered after the retries),
``dropped`` (the receiver fell so far behind that newer alerts took its place), or still waiting
when the teller is closed. ``lost`` is all but the sent ones: nothing goes missing without a count.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

from hearai.detect.tracks import Event
from hearai.errors import ConfigError

QUEUE_SIZE = 100  # alerts a teller holds while its receiver is slow or away; beyond this the oldest go


def alert_payload(event: Event, source: str) -> dict[str, Any]:
    """``{"type": "alert"|"ended", "label", "onset", "offset", "confidence", "source", "time"}``: one alert as JSON."""
    return {"type": "alert" if event.offset is None else "ended", **event.to_dict(), "source": source,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}


def split_url(url: str, *, option: str) -> tuple[SplitResult, int | None]:
    """A receiver's URL and its port, checked when given (not on the first alert): ``ConfigError`` naming
    ``option`` for a port that is not a number or a bracket left open."""
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError as exc:
        raise ConfigError(f"{option} {url!r}: not a URL ({exc})") from None


MAX_ERROR_CHARS = 200


class Delivery:
    """The counts of one teller, kept under a lock (its network thread and detection both count)."""

    name = "teller"

    def __init__(self) -> None:
        self.given = self.sent = self.failed = self.dropped = 0
        self.last_error = ""
        self._counts = threading.Lock()

    def count(self, **steps: int) -> None:
        with self._counts:
            for key, step in steps.items():
                setattr(self, key, getattr(self, key) + step)

    def note_error(self, text: str) -> None:
        """Keep ``text`` as the last error, printable and short: it may hold what a receiver sent (a status line
        of raw bytes, newlines and terminal escapes), and it goes into a log line and onto the page."""
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else "?" for c in text)
        self.last_error = shown[:MAX_ERROR_CHARS] + ("..." if len(shown) > MAX_ERROR_CHARS else "")

    @property
    def lost(self) -> int:
        """Alerts not delivered (failed, dropped or still waiting): all but the sent ones."""
        return self.given - self.sent

    def status(self, *, closed: bool = False) -> dict[str, Any]:
        """The counts as JSON (``/v1/status``); while open, alerts in flight are not yet lost."""
        waiting = self.given - self.sent - self.failed - self.dropped
        return {"name": self.name, "given": self.given, "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped, ("undelivered" if closed else "waiting"): waiting,
                "lost": self.lost if closed else self.failed + self.dropped, "last_error": self.last_error}


class Teller(Protocol):
    name: str

    @property
    def lost(self) -> int: ...

    def notify(self, event: Event) -> None: ...

    def close(self, wait_seconds: float = 5.0) -> None: ...

    def status(self, *, closed: bool = False) -> dict[str, Any]: ...


class Tellers:
    """Every configured teller, told each event in turn."""

    def __init__(self, tellers: list[Teller]) -> None:
        self.tellers = tellers

    def notify(self, event: Event) -> None:
        for teller in self.tellers:
            teller.notify(event)

    def status(self) -> list[dict[str, Any]]:
        return [teller.status() for teller in self.tellers]

    def close(self) -> list[str]:
        """Deliver what is queued (a few seconds at most each); a line for each teller that lost alerts."""
        lines = []
        for teller in self.tellers:
            teller.close()
            s = teller.status(closed=True)
            if s["lost"]:
                lines.append(f"{s['name']}: {s['lost']} of {s['given']} alerts NOT delivered ({s['failed']} failed, "
                             f"{s['dropped']} dropped while it was behind, {s['undelivered']} undelivered at exit; "
                             f"last error: {s['last_error'] or 'none'}); {s['sent']} sent")
        return lines
