"""Refuse request bodies over a size limit before any route sees them.

A declared ``Content-Length`` over the limit is refused at once.  A body without one
(chunked) is read up to the limit and refused as soon as it passes it, so a client
can make the server hold at most ``limit`` bytes per request.  A body within the limit
is replayed to the application unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """Raised inside the middleware when a streamed body passes the limit."""


class BodyLimitMiddleware:
    """ASGI middleware answering 413 with a JSON error for bodies over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_LIMIT_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send, declared)
            return

        try:
            messages = await self._read_body(receive)
        except BodyTooLarge:
            await self._refuse(send, None)
            return

        await self.app(scope, _replay(messages, receive), send)

    async def _read_body(self, receive: Receive) -> list[Message]:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.limit:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "over the limit"
        body = json.dumps({
            "error": "too_large",
            "message": f"the request body is {size}; at most {self.limit} bytes "
                       f"({self.limit // 1024} KiB) are accepted, send a smaller body",
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands back the buffered messages, then waits on the real one."""
    pending = list(messages)

    async def replayed() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
