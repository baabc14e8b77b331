"""Telling another device: each alert POSTed as JSON to a URL (a smart-home hub that flashes a light).

Detection never waits for the network: ``Webhook.notify`` only puts the event on a bounded queue
(when the receiver falls far behind, the oldest waiting alerts are dropped and counted), and one
background thread posts them. Each attempt has ``timeout`` seconds in all, connecting, sending and
reading the answer together (a receiver that trickles its answer is cut off, not waited for);
an alert is tried ``1 + retries`` times with backoff (a 4xx answer other than 429 is not retried:
the receiver refused it), so one alert holds the sender at most
``(1 + retries) * timeout + backoff * (2**retries - 1)`` seconds. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
from typing import Any

from hearai import __version__
from hearai.detect.notify import QUEUE_SIZE, Delivery, alert_payload, split_url
from hearai.detect.tracks import Event
from hearai.errors import ConfigError


class Webhook(Delivery):
    """POST each alert's ``notify.alert_payload`` to ``url``."""

    name = "webhook"

    def __init__(self, url: str, *, source: str = "hearai", timeout: float = 3.0, retries: int = 2,
                 backoff: float = 0.5) -> None:
        super().__init__()
        self.scheme, self.host, self.port, self.path = _parse(url)
        if not (0 < timeout <= 60 and 0 <= retries <= 10 and 0 <= backoff <= 10):
            raise ConfigError("webhook timeout must be in (0, 60] s, retries 0-10, backoff 0-10 s")
        self.url, self.source = url, source
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="hearai-webhook", daemon=True)
        self._thread.start()

    def notify(self, event: Event) -> None:
        """Queue ``event`` for posting; returns at once."""
        payload = alert_payload(event, self.source)
        self.count(given=1)
        while True:
            try:
                self._queue.put_nowait(payload)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the oldest waiting alert makes room
                    self.count(dropped=1)
                except queue.Empty:
                    pass

    def close(self, wait_seconds: float = 5.0) -> None:
        """Post what is queued, for at most ``wait_seconds``, then stop; what is left is counted undelivered."""
        deadline = time.monotonic() + wait_seconds
        try:
            self._queue.put(None, timeout=wait_seconds)
        except queue.Full:
            return
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            self._deliver(payload)

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        for attempt in range(self.retries + 1):
            try:
                status = self._post(body)
            except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, timed out, TLS, cut off
                self.note_error(str(getattr(exc, "reason", None) or exc) or type(exc).__name__)
            else:
                if 200 <= status < 300:
                    self.count(sent=1)
                    return
                self.note_error(f"HTTP {status}")
                if 400 <= status < 500 and status != 429:
                    break
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        self.count(failed=1)

    def _post(self, body: bytes) -> int:
        """One POST within ``timeout`` seconds in all: a watchdog shuts the socket when the time is up."""
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=self.timeout)
        expired = threading.Event()

        def cut_off() -> None:
            expired.set()
            sock = connection.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(self.timeout, cut_off)
        watchdog.start()
        try:
            connection.request("POST", self.path, body=body, headers={
                "Content-Type": "application/json", "User-Agent": f"hearai/{__version__}"})
            reply = connection.getresponse()
            reply.read(1024)  # the status line was read whole: cut off or not, the receiver answered
            return reply.status
        except (OSError, http.client.HTTPException):  # cut off mid-answer reads as a broken status line
            if expired.is_set():
                raise TimeoutError(f"no whole answer within {self.timeout:g} s") from None
            raise
        finally:
            watchdog.cancel()
            connection.close()


def _parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL, or a ``ConfigError`` naming what is wrong."""
    parts, port = split_url(url, option="--webhook")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--webhook {url!r}: give an http:// or https:// URL with a host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path
