"""Plain ASGI in front of the gateway's handler (tests, or any ASGI server).

The request body is read whole (the gateway needs `model` from it, and a connect-failure
retry needs it again). While the handler runs, a watcher waits for `http.disconnect` and
cancels the handler at once, so the replica's slot is freed when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from podium.gateway.http import Headers, Request, Responder

Handler = Callable[[Request, Responder], Awaitable[None]]


class _ClientGone(Exception):
    pass


class AsgiResponder:
    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send
        self.started = False
        self.aborted = False

    async def send_full(self, status: int, headers: Headers, body: bytes) -> None:
        self.started = True
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def start(self, status: int, headers: Headers, content_length: int | None) -> None:
        self.started = True
        if content_length is not None:
            headers = [*headers, (b"content-length", str(content_length).encode())]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, chunk: bytes) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    def abort(self) -> None:
        self.aborted = True


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _wait_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def serve_asgi(handler: Handler, scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    try:
        body = await _read_body(receive)
    except _ClientGone:
        return
    raw_path = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw_path.split(b"?", 1)[0]
    request = Request(
        method=scope["method"],
        path=scope["path"],
        raw_path=raw_path,
        query=scope.get("query_string", b""),
        headers=[(n.lower(), v) for n, v in scope["headers"]],
        body=body,
    )
    responder = AsgiResponder(send)
    handling = asyncio.ensure_future(handler(request, responder))
    watching = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((handling, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (handling, watching):
            if not task.done():
                task.cancel()
        for task in (handling, watching):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if responder.aborted:
        raise ConnectionAbortedError("response cut: the replica failed mid-stream")
