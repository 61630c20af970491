"""`ConnResponder`: a handler's `Responder` on a built-in listener connection.

One write for a whole response; streams chunked or length-delimited (framing.py decides, as for
every other writer); HTTP/1.0 gets close-delimited bodies.
"""

from __future__ import annotations

from podium.http.framing import LAST_CHUNK, chunk, frame
from podium.http.listener import Connection
from podium.http.message import NO_BODY, Headers


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
        no_body = status in NO_BODY
        head, _ = frame(conn, status, headers, None if no_body else len(body), body=False)
        conn.write(head if conn.head_only or no_body else head + body)
        await conn.drain()

    async def start(self, status: int, headers: Headers, content_length: int | None) -> None:
        self.started = True
        head, self.chunked = frame(self.conn, status, headers, content_length)
        self.conn.write(head)
        await self.conn.drain()

    async def write(self, data: bytes) -> None:
        if self.conn.head_only:
            return
        if self.chunked:
            data = chunk(data)
        self.conn.write(data)
        await self.conn.drain()

    async def end(self) -> None:
        if self.chunked and not self.conn.head_only:
            self.conn.write(LAST_CHUNK)

    def abort(self) -> None:
        self.conn.keep_alive = False
        self.conn.close()  # a cut body: the client must not mistake it for a complete one
