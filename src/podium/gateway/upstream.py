"""Pooled keep-alive HTTP/1.1 connections to replicas: an asyncio Protocol + httptools parser.

Why not aiohttp/httpx: on this hot path their per-request bookkeeping costs several times the
whole budget (see docs/gateway.md). A replica speaks plain HTTP/1.1 on loopback or a private
network; all we need is: write one request, parse the head, hand body chunks over as they arrive
(unbuffered, with backpressure), and return the connection to the pool when the response ended
cleanly. Anything unexpected closes the connection rather than risk reusing a confused one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

import httptools

MAX_BUFFERED = 256 * 1024  # body bytes read ahead of the client before we stop reading the replica


class UpstreamError(Exception):
    """The replica failed the request (closed, bad response)."""


class ConnectFailed(UpstreamError):
    """The request never reached the replica: safe to retry elsewhere."""


class Sink(Protocol):
    """Callback consumer of a response (the fast path), instead of awaiting `send`/`read`."""

    def upstream_progress(self) -> None: ...

    def upstream_failed(self, exc: UpstreamError) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One connection to one replica, one request at a time.

    Two ways to consume a response: a coroutine awaits `send()` then `read()`; or a `Sink` is
    attached (`start()`) and told after each batch of bytes parsed (`upstream_progress`), so a
    response can be relayed without a task or a future (the gateway's fast path).
    """

    def __init__(self, pool: UpstreamPool, address: str) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.keep_alive = True
        self.has_length = False
        self.sink: Sink | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # -- protocol callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.head is None and self.sink is None:  # nothing asked: a replica talking out of turn
            self._close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response from replica: {exc}"))
            self._close()
            return
        sink = self.sink
        if sink is not None:
            sink.upstream_progress()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.sink is not None:
            return
        head = self.head
        if head is not None and not head.done():
            head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > MAX_BUFFERED and self.sink is None and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wakeup()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wakeup()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if (self.head is not None or self.sink is not None) and not self.complete:
            head_done = self.status != 0
            framed = any(n in (b"content-length", b"transfer-encoding") for n, _ in self.headers)
            if head_done and not framed:
                self.complete = True  # a body delimited by the close itself
                self._wakeup()
                if self.sink is not None:
                    self.sink.upstream_progress()
            elif not self.got_bytes and not head_done:
                self._fail(ConnectFailed(f"replica {self.address} closed the connection before answering"))
            else:
                self._fail(UpstreamError(f"replica {self.address} closed the connection mid-response"))

    # -- used by the proxy ------------------------------------------------------------------
    def start(self, data: bytes, sink: Sink) -> None:
        """Write one request; `sink` hears of the response as it is parsed."""
        self.sink = sink
        assert self.transport is not None
        self.transport.write(data)

    def take_body(self) -> bytes:
        """All body bytes parsed so far (the sink's way to read)."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        chunks.clear()
        self.buffered = 0
        return data

    async def send(self, data: bytes) -> None:
        """Write one request and wait for the response head (status + headers)."""
        loop = asyncio.get_running_loop()
        self.head = loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        await self.head

    async def read(self) -> bytes:
        """The next body bytes as they arrive (all that is buffered at once); b"" at the end."""
        while True:
            if self.chunks:
                data = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
                self.chunks.clear()
                self.buffered = 0
                if self._paused and self.transport is not None and not self.closed:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def finish(self, reusable: bool) -> None:
        """Done with this exchange: back to the pool if it ended cleanly, else close."""
        self.sink = None
        if reusable and self.complete and self.keep_alive and not self.closed and not self.chunks:
            self._reset()
            self.reused = True
            self.pool._put(self)
        else:
            self._close()

    def _wakeup(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: UpstreamError) -> None:
        if self.error is None:
            self.error = exc
        sink = self.sink
        if sink is not None:
            self.sink = None
            sink.upstream_failed(exc)
            return
        head = self.head
        if head is not None and not head.done():
            head.set_exception(exc)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Idle keep-alive connections per replica address (most recently used first)."""

    def __init__(self, *, max_idle_per_address: int = 512, connect_timeout_s: float = 5.0) -> None:
        self._idle: dict[str, list[UpstreamConnection]] = {}
        self.max_idle = max_idle_per_address
        self.connect_timeout_s = connect_timeout_s

    def idle(self, address: str) -> UpstreamConnection | None:
        """A pooled connection to `address` ready now, or None (then use `connection`)."""
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connection(self, address: str) -> UpstreamConnection:
        """An idle pooled connection to `address`, or a new one (ConnectFailed if that fails)."""
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self, address), host.strip("[]"), int(port)
                )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectFailed(f"cannot connect to replica {address}: {exc}") from exc
        return conn

    def _put(self, conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(conn.address, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn._close()

    def _forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.address)
        if idle and conn in idle:
            idle.remove(conn)

    def close_address(self, address: str) -> None:
        for conn in self._idle.pop(address, []):
            conn._close()

    def close(self) -> None:
        for address in list(self._idle):
            self.close_address(address)
