"""Telling another device: each alert POSTed as JSON to a URL (a smart-home hub that flashes a light).

Detection never waits for the network: ``Webhook.notify`` only puts the event on a bounded queue
(when the receiver falls far behind, the oldest waiting alerts are dropped and counted), and one
background thread posts them, each with a timeout and a bounded number of retries with backoff
(a 4xx answer other than 429 is not retried: the receiver refused it). Standard library only.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from hearai import __version__
from hearai.detect.notify import QUEUE_SIZE, alert_payload
from hearai.detect.tracks import Event
from hearai.errors import ConfigError


class Webhook:
    """POST each alert's ``notify.alert_payload`` to ``url``."""

    name = "webhook"

    def __init__(self, url: str, *, source: str = "hearai", timeout: float = 3.0, retries: int = 2,
                 backoff: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--webhook {url!r}: give an http:// or https:// URL with a host")
        if not (0 < timeout <= 60 and 0 <= retries <= 10 and 0 <= backoff <= 10):
            raise ConfigError("webhook timeout must be in (0, 60] s, retries 0-10, backoff 0-10 s")
        self.url, self.source = url, source
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.sent = self.failed = self.dropped = 0
        self.last_error = ""
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="hearai-webhook", daemon=True)
        self._thread.start()

    def notify(self, event: Event) -> None:
        """Queue ``event`` for posting; returns at once."""
        payload = alert_payload(event, self.source)
        while True:
            try:
                self._queue.put_nowait(payload)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the oldest waiting alert makes room
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self, wait_seconds: float = 5.0) -> None:
        """Post what is queued, for at most ``wait_seconds``, then stop the thread."""
        try:
            self._queue.put(None, timeout=wait_seconds)
        except queue.Full:
            return
        self._thread.join(wait_seconds)

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            self._post(payload)

    def _post(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"hearai/{__version__}"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    reply.read(1024)
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                self.last_error = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code != 429:
                    break
            except (OSError, ValueError) as exc:  # refused, unreachable, timed out, TLS
                self.last_error = str(getattr(exc, "reason", exc))
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        self.failed += 1
