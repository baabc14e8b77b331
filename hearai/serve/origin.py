"""Who may talk to the service: the ``Host`` a request names and the ``Origin`` a browser sends.

A page on any web site can make the user's browser call ``http://127.0.0.1:8000`` (or a DNS name
rebound to it) and open its WebSocket; browsers always send ``Origin`` with such requests and
the rebound name in ``Host``. So, for HTTP and WebSocket alike: a ``Host`` outside
``allowed_hosts`` is refused (400), and an ``Origin`` that is neither this server nor a listed
CORS origin is refused (403; a WebSocket is closed before it is accepted). Clients that send no
``Origin`` (curl, scripts) are not browsers on foreign pages and pass. An empty
``allowed_hosts`` accepts any host (a server bound to every interface, reached by any name).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from hearai.serve.guard import Message, refuse


class OriginGuard:
    def __init__(self, app: Callable[..., Awaitable[None]], *, allowed_hosts: tuple[str, ...],
                 cors_origins: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in allowed_hosts}
        self.origins = {o.rstrip("/").lower() for o in cors_origins}

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        pairs = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        headers = dict(pairs)
        host, origin = headers.get("host", "").lower(), headers.get("origin")
        repeated = [name for name in ("host", "origin") if sum(k == name for k, _ in pairs) > 1]
        reason = None
        if repeated:  # which one a browser meant cannot be told: neither is trusted
            reason = (400, f"the {' and '.join(repeated)} header is given more than once")
        elif self.hosts and host not in self.hosts:
            reason = (400, f"host {host!r} is not this server (allowed: {', '.join(sorted(self.hosts))})")
        elif origin is not None and not self._allowed_origin(origin.rstrip("/").lower(), host):
            reason = (403, f"origin {origin!r} may not use this server (see --cors)")
        if reason is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()  # the connect message
            await send({"type": "websocket.close", "code": 1008, "reason": reason[1][:120]})
        else:
            await refuse(send, *reason)

    def _allowed_origin(self, origin: str, host: str) -> bool:
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host  # the page this server served


def loopback_hosts(port: int) -> tuple[str, ...]:
    """The names a loopback-bound server is reached by: the only hosts it accepts by default."""
    return tuple(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))
