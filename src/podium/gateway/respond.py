"""Writing answers on a built-in listener connection: the gateway's Responder and an ASGI host.

`ConnResponder` frames the gateway's responses (one write for a whole response; chunked or
length-delimited streams; HTTP/1.0 gets close-delimited bodies). `run_asgi` serves one request
to the fallback ASGI app (the control plane): body in one `http.request` message, then
`http.disconnect` when the client leaves; streaming responses with backpressure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from podium.gateway.http import NO_BODY, Headers, Request, response_head
from podium.gateway.listener import Connection

log = logging.getLogger("podium.gateway")

CLOSE = b"connection: close\r\n"


class ConnResponder:
    """The gateway's Responder on a built-in connection."""

    __slots__ = ("chunked", "conn", "started")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.started = False
        self.chunked = False

    async def send_full(self, status: int, headers: Headers, body: bytes) -> None:
        self.started = True
        conn = self.conn
        framing = b"content-length: %d\r\n" % len(body) if status not in NO_BODY else b""
        if not conn.keep_alive:
            framing += CLOSE
        head = response_head(status, headers, framing + b"\r\n")
        conn.write(head if conn.head_only or status in NO_BODY else head + body)
        await conn.drain()

    async def start(self, status: int, headers: Headers, content_length: int | None) -> None:
        self.started = True
        conn = self.conn
        if content_length is not None:
            framing = b"content-length: %d\r\n" % content_length
        elif conn.http10:
            framing, conn.keep_alive = b"", False  # HTTP/1.0: the close ends the body
        else:
            framing, self.chunked = b"transfer-encoding: chunked\r\n", True
        if not conn.keep_alive:
            framing += CLOSE
        conn.write(response_head(status, headers, framing + b"\r\n"))
        await conn.drain()

    async def write(self, chunk: bytes) -> None:
        if self.conn.head_only:
            return
        if self.chunked:
            chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        self.conn.write(chunk)
        await self.conn.drain()

    async def end(self) -> None:
        if self.chunked and not self.conn.head_only:
            self.conn.write(b"0\r\n\r\n")

    def abort(self) -> None:
        self.conn.keep_alive = False
        self.conn.close()  # a cut body: the client must not mistake it for a complete one


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
        has_length = any(n == b"content-length" for n, _ in headers)
        headers = [(n, v) for n, v in headers if n not in (b"connection", b"transfer-encoding")]
        framing = b""
        if not has_length and not self.no_body:
            if conn.http10:
                conn.keep_alive = False
            else:
                self.chunked = True
                framing = b"transfer-encoding: chunked\r\n"
        if not conn.keep_alive:
            framing += b"connection: close\r\n"
        self.head = response_head(status, headers, framing + b"\r\n")
        self.started = True

    async def _body(self, body: bytes, more: bool) -> None:
        out = self.head
        self.head = b""
        if body and not self.no_body:
            out += b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body
        if not more:
            self.finished = True
            if self.chunked and not self.no_body:
                out += b"0\r\n\r\n"
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
