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

from podium.http.limits import HttpLimits
from podium.http.message import Headers, Request, Responder

Handler = Callable[[Request, Responder], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
DEFAULT_MAX_BODY = HttpLimits().max_body_bytes


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


class _TooLarge(Exception):
    pass


TOO_LARGE_BODY = (
    b'{"error":{"message":"request body too large","type":"invalid_request_error","param":null,'
    b'"code":"body_too_large"}}'
)  # the shape of every gateway error (podium.gateway.errors), written here so http/ needs no gateway


async def _answer_too_large(send: Send) -> None:
    await AsgiResponder(send).send_full(413, [(b"content-type", b"application/json")], TOO_LARGE_BODY)


def _declared_too_large(scope: dict[str, Any], max_body_bytes: int) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return value.strip().isdigit() and int(value) > max_body_bytes
    return False


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]], max_body_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body = message.get("body", b"")
        size += len(body)
        if size > max_body_bytes:
            raise _TooLarge
        parts.append(body)
        if not message.get("more_body", False):
            return b"".join(parts)


def limit_body(app: ASGIApp, max_body_bytes: int) -> ASGIApp:
    """`app` behind a body cap: 413 for a body over `max_body_bytes`, by Content-Length or as read.

    For hosts other than the built-in listener (which checks as it parses). The body is read whole
    first and handed on in one message, as the control plane's handlers read it whole anyway.
    """

    async def limited(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = await _capped_body(scope, receive, send, max_body_bytes)
        if body is None:
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return limited


async def _capped_body(scope: dict[str, Any], receive: Receive, send: Send, max_body_bytes: int) -> bytes | None:
    """The whole request body, or None when it was answered 413 (too large) or the client left."""
    try:
        if _declared_too_large(scope, max_body_bytes):
            raise _TooLarge
        return await _read_body(receive, max_body_bytes)
    except _ClientGone:
        return None
    except _TooLarge:
        await _answer_too_large(send)
        return None


async def _wait_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def serve_asgi(
    handler: Handler, scope: dict[str, Any], receive: Any, send: Any, max_body_bytes: int = DEFAULT_MAX_BODY
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    body = await _capped_body(scope, receive, send, max_body_bytes)
    if body is None:
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
        client=str(scope["client"][0]).encode() if scope.get("client") else b"",
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
