"""Binding the service's socket before anything is announced, then running uvicorn on it.

Binding first means a port that is taken, out of range or on an unknown host is a one-line error
before the "serving on" line, never a traceback after it.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from fastapi import FastAPI

from hearai.errors import ConfigError


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


def run(app: FastAPI, listening: socket.socket, *, ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None) -> None:
    """Serve ``app`` on the bound socket until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    uvicorn.Server(config).run(sockets=[listening])
