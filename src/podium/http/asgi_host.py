"""Serving one request of a built-in listener connection to an ASGI app (the control plane).

The body arrives in one `http.request` message, then `http.disconnect` when the client leaves;
streaming responses with backpressure; framing as for every other writer (framing.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from podium.http.framing import LAST_CHUNK, chunk, frame
from podium.http.listener import Connection
from podium.http.message import NO_BODY, Headers, Request

log = logging.getLogger("podium.http")


async def run_asgi(app: Any, conn: Connection, request: Request) -> None:
    """Serve one request to an ASGI app; a failure before the response starts becomes a 500."""
    cycle = _AsgiCycle(conn, request)
    conn.on_disconnect(cycle.client_gone)
    try:
        await app(asgi_scope(conn, request), cycle.receive, cycle.send)
    except Exception:
        log.exception("error in %s %s", request.method, request.path)
        if not cycle.started:
            await cycle.send({"type": "http.response.start", "status": 500, "headers": []})
            await cycle.send({"type": "http.response.body", "body": b"Internal Server Error"})
            return
    if not cycle.finished:
        conn.keep_alive = False
        conn.close()


class _AsgiCycle:
    def __init__(self, conn: Connection, request: Request) -> None:
        self.conn = conn
        self.request = request
        self.body_sent = False
        self.started = False
        self.finished = False
        self.chunked = False
        self.no_body = False
        self.head: bytes = b""
        self.gone = asyncio.get_running_loop().create_future()

    def client_gone(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    async def receive(self) -> dict[str, Any]:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        await asyncio.shield(self.gone)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.conn.closed or self.finished:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.body" and self.started:
            await self._body(message.get("body", b""), message.get("more_body", False))

    def _start(self, message: dict[str, Any]) -> None:
        conn = self.conn
        status = int(message["status"])
        headers: Headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
        self.no_body = conn.head_only or status in NO_BODY or status < 200
        has_length = any(n == b"content-length" for n, _ in headers)  # the app's own: kept as it is
        headers = [(n, v) for n, v in headers if n not in (b"connection", b"transfer-encoding")]
        self.head, self.chunked = frame(conn, status, headers, None, body=not (self.no_body or has_length))
        self.started = True

    async def _body(self, body: bytes, more: bool) -> None:
        out = self.head
        self.head = b""
        if body and not self.no_body:
            out += chunk(body) if self.chunked else body
        if not more:
            self.finished = True
            if self.chunked and not self.no_body:
                out += LAST_CHUNK
        if out:
            self.conn.write(out)
        try:
            await self.conn.drain()
        except ConnectionResetError:
            pass  # as in other ASGI servers, sending to a gone client is a no-op; receive() says so


def asgi_scope(conn: Connection, request: Request) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.0" if conn.http10 else "1.1",
        "server": conn.server,
        "client": conn.client,
        "scheme": "http",
        "method": request.method,
        "root_path": "",
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query,
        "headers": request.headers,
        "state": {},
    }
