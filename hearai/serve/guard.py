"""Request bodies within bounds before any parser sees them.

FastAPI parses a multipart form completely before the endpoint runs, spooling it to disk; a cap
checked in the endpoint would come after a 10-GB upload had been read. This ASGI middleware
refuses an over-long ``Content-Length`` at once, stops reading a body (chunked or lying about
its length) as soon as it passes the cap, and gives a slow upload a deadline. Whatever the app
was doing with the cut-off body is discarded and the client gets the 4xx JSON reason.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

Message = dict[str, Any]
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class BodyGuard:
    """Cap every request body at ``max_bytes`` and its upload time at ``timeout_seconds``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app, self.max_bytes, self.timeout_seconds = app, max_bytes, timeout_seconds

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await refuse(send, 413, f"request body of {declared.decode(errors='replace')} bytes: the limit is "
                                     f"{self.max_bytes} bytes")
            return
        refusal: tuple[int, str] | None = None
        received, started = 0, False
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds

        async def guarded_receive() -> Message:
            nonlocal refusal, received
            if refusal is not None:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                refusal = (408, f"the upload took longer than {self.timeout_seconds:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refusal = (413, f"request body over the limit of {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is None:
                started = True
                await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not started:
            await refuse(send, *refusal)


async def refuse(send: Callable[[Message], Awaitable[None]], status: int, reason: str) -> None:
    """Answer an HTTP request from inside ASGI middleware: ``{"error": reason}`` with ``status``, then close."""
    body = json.dumps({"error": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
