"""Binding the service's socket before anything is announced, then running uvicorn on it.

Binding first means a port that is taken, out of range or on an unknown host is a one-line error
before the "serving on" line, never a traceback after it.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI

from hearai.errors import ConfigError
from hearai.serve.origin import loopback_hosts


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


def run(app: FastAPI, listening: socket.socket, *, ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None) -> None:
    """Serve ``app`` on the bound socket until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    uvicorn.Server(config).run(sockets=[listening])


def spawn(model: Path, *options: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``hearai serve MODEL --port 0 [options]`` in a child process: the process and its URL, once it listens.

    For tests, benchmarks and embedding: the port is chosen by the system, and the URL is read from
    the line the server prints after binding. The caller stops the process.
    """
    log = tempfile.TemporaryFile(mode="w+")  # not a pipe: nobody reads it while the server runs
    process = subprocess.Popen([sys.executable, "-m", "hearai.cli", "serve", str(model), "--port", "0", *options],
                               stderr=log, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        said = log.read()
        found = re.search(r"serving \S+ on (https?://\S+?)/ ", said)
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            raise ConfigError(f"hearai serve exited: {said.strip()}")
        time.sleep(0.1)
    process.kill()
    raise ConfigError(f"hearai serve did not start listening within {timeout:g} s")
