"""The request-size limit, enforced while a body arrives and before anything parses it.

A body declared larger than the limit (Content-Length) is answered 413 without reading a byte
of it; a body sent without a length (chunked) is counted as it streams in and answered 413 as
soon as it passes the limit. So the largest body the server ever holds is `max_bytes`, however
much a client sends. The connection is closed after a 413, since the rest of the body is
never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .problems import Problem, error_body

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def _declared_length(scope: MutableMapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before the app sees it
    return None


class BodyLimit:
    """ASGI middleware: bodies of at most `max_bytes`, or 413 in the `problems` shape."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # after the body, only a disconnect is left to wait for
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f" ({declared:,} bytes)" if declared is not None else ""
        message = (
            f"the request body{size} is larger than this server takes "
            f"({self.max_bytes:,} bytes, set by --max-body-mb): send fewer rows per request"
        )
        await send_problem(send, 413, "too_large", message, (b"connection", b"close"))


async def send_problem(
    send: Send, status: int, code: str, message: str, header: tuple[bytes, bytes]
) -> None:
    """Answer with one problem in the JSON error shape, before the app has seen the request."""
    body = error_body([Problem(None, None, code, message)])
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        header,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
