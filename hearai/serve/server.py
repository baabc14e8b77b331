"""Binding the service's socket before anything is announced, then running uvicorn on it.

Binding first means a port that is taken, out of range or on an unknown host is a one-line error
before the "serving on" line, never a traceback after it.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from hearai.errors import ConfigError
from hearai.serve.origin import loopback_hosts

if TYPE_CHECKING:
    from hearai.serve.certificate import Certificate

WS_SLACK_BYTES = 64 * 1024  # a settings text frame is at most this long
SHUTDOWN_SECONDS = 5  # on Ctrl-C or SIGTERM, open streams get this long to end before they are cut


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a ``ConfigError`` saying why not."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: a TCP port is between 0 and 65535")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc.strerror})") from exc
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: {host}:{port} is already in use (another server runs there)") from exc
        if exc.errno == errno.EACCES:
            raise ConfigError(f"--port {port}: not allowed to listen on {host}:{port} (ports below 1024 need "
                              "privileges)") from exc
        raise ConfigError(f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}") from exc


def lan_address() -> str | None:
    """This machine's address on its local network (the one a phone on the same Wi-Fi reaches), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # UDP: nothing is sent, the route picks the interface
            found = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(found).is_loopback else found


def public_address(host: str) -> str:
    """The address to open: the bound one, or for every interface (0.0.0.0, ::) this machine's LAN address."""
    if host in ("0.0.0.0", "::", ""):
        return lan_address() or "127.0.0.1"
    return host


def own_certificate(folder: Path, host: str, address: str) -> Certificate:
    """hearai's own certificate for every name this server may be opened by (``hearai.serve.certificate``)."""
    from hearai.serve.certificate import server_certificate

    names = [address, host, "localhost", "127.0.0.1", "::1", socket.gethostname(), f"{socket.gethostname()}.local"]
    hosts = [name for i, name in enumerate(names) if name and name not in ("0.0.0.0", "::") and name not in names[:i]]
    return server_certificate(folder, hosts)


def explain_certificate(certificate: Certificate, url: str, out: TextIO) -> None:
    """How a phone comes to trust the server, and a QR code of its address for the phone's camera."""
    import segno

    print(f"HTTPS with hearai's own certificate authority {certificate.authority}\n"
          f"  (SHA-256 {certificate.fingerprint}).\n"
          f"  On a phone on the same network: open {url}hearai-ca.crt, install and trust it once (the browser warns\n"
          f"  the first time: compare the fingerprint), then open {url} or scan:", file=out)
    segno.make(url, error="m").terminal(out=out, compact=True)
    out.flush()


def allowed_hosts(host: str, port: int, *, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The Host names to accept: loopback names for a loopback server, else the bound name (any for 0.0.0.0/::)."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback if host != "::1" else True
    except (OSError, ValueError):
        loopback = False
    if loopback:
        return loopback_hosts(port) + extra
    if host in ("0.0.0.0", "::", "") and not extra:
        return ()  # reached by any name: the Origin check still stands
    shown = f"[{host}]" if ":" in host else host
    return (f"{shown}:{port}",) + extra


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for every request's headers.

    uvicorn waits for a request's headers for ever, so a client could hold connections open by
    sending nothing (or one byte a minute). Here a connection whose request line and headers are
    not complete ``header_timeout`` seconds after it opened, or after its last response on a
    kept-alive connection, is closed; the body has its own deadline (``BodyGuard``), and a
    WebSocket upgrade ends the header phase.
    """

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._await_headers()

    def _await_headers(self) -> None:
        """Start the clock for the next request's headers (its cycle is the one after ``self.cycle``)."""
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._waiting_after = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_after and self._header_deadline is not None:
            self._header_deadline.cancel()  # a new request's headers are complete

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._await_headers()  # before the base class reads a pipelined request
        super().on_response_complete()

    def handle_websocket_upgrade(self, event: Any) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()


def run(app: FastAPI, listening: socket.socket, *, ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None, header_timeout: float = 10.0, max_frame_bytes: int = 256 * 1024) -> None:
    """Serve ``app`` on the bound socket until interrupted; headers must arrive within ``header_timeout`` s.

    A WebSocket message may be at most ``max_frame_bytes`` (plus room for a settings frame), and a
    stream's socket is not read while a message of it waits to be handled (websockets' sans-I/O
    protocol pauses reading): what one stream can make this server hold is bounded.
    """
    import uvicorn

    protocol = type("HeaderDeadlineProtocol", (HeaderDeadline,), {"header_timeout": header_timeout})
    config = uvicorn.Config(app, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                            http=protocol, ws="websockets-sansio", ws_max_size=max_frame_bytes + WS_SLACK_BYTES,
                            timeout_graceful_shutdown=SHUTDOWN_SECONDS)
    uvicorn.Server(config).run(sockets=[listening])


def spawn(model: Path | None, *options: str, timeout: float = 120.0, env: dict[str, str] | None = None,
          log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``hearai serve [MODEL] --port 0 [options]`` in a child process: the process and its URL, once it listens.

    ``model=None`` serves the default model (``hearai.default_model``); ``env``: the child's environment;
    ``log``: a file for what it says (stderr), else a temporary one.

    For tests, benchmarks and embedding: the port is chosen by the system, and the URL is read from
    the line the server prints after binding. The caller stops the process.
    """
    said_to = open(log, "w+") if log is not None else tempfile.TemporaryFile(mode="w+")  # no pipe: nobody reads it
    named = [] if model is None else [str(model)]
    process = subprocess.Popen([sys.executable, "-m", "hearai.cli", "serve", *named, "--port", "0", *options],
                               stderr=said_to, text=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said_to.seek(0)
        said = said_to.read()
        found = re.search(r"serving \S+ on (https?://\S+?)/ ", said)
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            raise ConfigError(f"hearai serve exited: {said.strip()}")
        time.sleep(0.1)
    process.kill()
    raise ConfigError(f"hearai serve did not start listening within {timeout:g} s")
