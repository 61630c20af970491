"""The built-in HTTP/1.1 server: an asyncio Protocol + httptools, one task per request.

Chosen by measurement (docs/gateway.md): under uvicorn, the ASGI plumbing (message dicts, a
task per request plus a disconnect watcher, per-send checks) cost more CPU than the whole proxy.
Here a gateway request is parsed in C, handed to `Gateway.handle` in one task, and answered with
one `write` for a whole response. Other paths are served to the fallback ASGI app (FastAPI) by
a small, complete ASGI host (`fallback.py`): request bodies, streaming responses, disconnects.

HTTP/1.1 keep-alive and pipelining (answered in order), HTTP/1.0, `Expect: 100-continue`,
write backpressure (pause_writing -> the handler awaits drain), and an idle sweep that closes
keep-alive connections idle longer than `keepalive_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from podium.gateway.http import Headers, Request

log = logging.getLogger("podium.gateway")

STATUS_PHRASES = {
    100: b"Continue",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    413: b"Content Too Large",
    422: b"Unprocessable Content",
    429: b"Too Many Requests",
    499: b"Client Closed Request",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
NO_BODY = frozenset({204, 304})


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, STATUS_PHRASES.get(status, b"Unknown"))


RequestHandler = Callable[["Connection", Request], Awaitable[None]]
FastHandler = Callable[["Connection", Request], bool]


class Exchange(Protocol):
    """A request relayed by callbacks (fastpath.py) instead of a task."""

    def cancel(self) -> None: ...

    def client_writable(self) -> None: ...


class ListenerState:
    """What every connection of one listener shares (no globals): handlers, limits, live set."""

    def __init__(
        self,
        handler: RequestHandler,
        *,
        max_body_bytes: int,
        keepalive_timeout_s: float,
        clock: Callable[[], float],
        fast: FastHandler | None = None,
    ) -> None:
        self.handler = handler
        self.fast = fast
        self.max_body_bytes = max_body_bytes
        self.keepalive_timeout_s = keepalive_timeout_s
        self.clock = clock
        self.connections: set[Connection] = set()


class Connection(asyncio.Protocol):
    """One client connection: parses requests, runs one at a time, keeps the order."""

    def __init__(self, state: ListenerState) -> None:
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.task: asyncio.Task[None] | None = None
        self.exchange: Exchange | None = None
        self.pending: deque[tuple[Request, bool, bool]] = deque()
        self.last_active = state.clock()
        self.keep_alive = True
        self.http10 = False
        self.head_only = False
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._disconnect_hooks: list[Callable[[], None]] = []
        self._url = b""
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._body_size = 0

    # -- transport events -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")
        self.server = transport.get_extra_info("sockname")
        self.state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.state.clock()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"protocol upgrades are not supported")
        except httptools.HttpParserError:
            self._reject(400, b"malformed HTTP request")
        except _TooLarge:
            self._reject(413, b"request body too large")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self.pending.clear()
        exchange = self.exchange
        if exchange is not None:
            exchange.cancel()
        task = self.task
        if task is not None and not task.done():
            for hook in self._disconnect_hooks:
                hook()
            if not self._disconnect_hooks:
                task.cancel()  # the gateway path: the client left; free the slot at once
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("client disconnected"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.exchange is not None:
            self.exchange.client_writable()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if name == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.state.max_body_bytes:
            raise _TooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        url = httptools.parse_url(self._url)
        raw_path = url.path or b"/"
        method = parser.get_method().decode("ascii")
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        request = Request(
            method=method,
            path=unquote(raw_path.decode("latin-1")) if b"%" in raw_path else raw_path.decode("latin-1"),
            raw_path=raw_path,
            query=url.query or b"",
            headers=self._headers,
            body=body,
        )
        item = (request, parser.should_keep_alive(), parser.get_http_version() == "1.0")
        if self.task is None and self.exchange is None:
            self._start(item)
        else:
            self.pending.append(item)
            if len(self.pending) > 16 and self.transport is not None:
                self.transport.pause_reading()  # a client pipelining too far ahead waits

    # -- running requests -----------------------------------------------------------------
    def _start(self, item: tuple[Request, bool, bool]) -> None:
        request, self.keep_alive, self.http10 = item
        self.head_only = request.method == "HEAD"
        fast = self.state.fast
        if fast is not None and fast(self, request):
            return
        self.spawn(request)

    def spawn(self, request: Request) -> None:
        """Answer `request` in a task (the general path)."""
        self._disconnect_hooks = []
        self.task = self.loop.create_task(self._run(request))

    def exchange_done(self, exchange: Exchange) -> None:
        if self.exchange is exchange:
            self.exchange = None
            self._next()

    async def _run(self, request: Request) -> None:
        try:
            await self.state.handler(self, request)
        except asyncio.CancelledError:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            raise
        except ConnectionError:
            self.close()  # the client left while we were answering
        except Exception:
            log.exception("unhandled error answering %s %s", request.method, request.path)
            self.close()
        finally:
            self.task = None
            self._next()

    def _next(self) -> None:
        """The current request is answered: close, or start the next pipelined one."""
        self.last_active = self.state.clock()
        if self.closed:
            return
        if not self.keep_alive:
            self.close()
        elif self.pending:
            self._start(self.pending.popleft())
            if len(self.pending) <= 16 and self.transport is not None:
                self.transport.resume_reading()

    def on_disconnect(self, hook: Callable[[], None]) -> None:
        """Call `hook` instead of cancelling the request's task when the client goes away."""
        self._disconnect_hooks.append(hook)

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("client disconnected")
        if self.write_paused:
            self._drain = self.loop.create_future()
            try:
                await self._drain
            finally:
                self._drain = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def idle_for(self, now: float) -> float:
        return 0.0 if self.busy else now - self.last_active

    @property
    def busy(self) -> bool:
        return self.task is not None or self.exchange is not None

    def _reject(self, status: int, message: bytes) -> None:
        body = b'{"error":{"message":"' + message + b'","type":"invalid_request_error","code":null}}'
        self.write(
            status_line(status)
            + b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body
        )
        self.close()


class _TooLarge(Exception):
    pass


async def sweep_idle(state: ListenerState, stop: asyncio.Event, every_s: float = 5.0) -> None:
    """Close keep-alive connections idle longer than the timeout (one timer for all of them)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
        now = state.clock()
        for conn in list(state.connections):
            if conn.idle_for(now) > state.keepalive_timeout_s:
                conn.close()


def response_head(status: int, headers: Headers, framing: bytes) -> bytes:
    parts = [status_line(status)]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(framing)
    return b"".join(parts)


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
