"""The built-in HTTP/1.1 server: an asyncio Protocol + httptools, one task per request.

Chosen by measurement (docs/gateway.md): under uvicorn, the ASGI plumbing (message dicts, a
task per request plus a disconnect watcher, per-send checks) cost more CPU than the whole proxy.
Here a request is parsed in C and offered first to the `fast` handler, which may answer it by
callbacks alone (the gateway's relay); otherwise the `handler` answers it in one task, with one
`write` for a whole response (respond.py). ASGI apps (the control plane's FastAPI) are served on
the same connections by a small, complete ASGI host (asgi_host.py): request bodies, streaming
responses, disconnects. Nothing here knows what a gateway is.

HTTP/1.1 keep-alive and pipelining (answered in order), HTTP/1.0, `Expect: 100-continue`,
write backpressure (pause_writing -> the handler awaits drain), and an idle sweep that closes
keep-alive connections idle longer than `keepalive_timeout_s`.

Limits (limits.HttpLimits, docs/gateway.md): 431 head bytes/count, 414 URL, 413 body (by its
Content-Length before reading it), 408 head deadline; header bytes are counted per received
chunk, so a client cannot park more than about one limit plus two socket reads in the parser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import unquote

import httptools

from podium.http.framing import frame
from podium.http.limits import HttpLimits, Rejected, head_size
from podium.http.message import Headers, Request

log = logging.getLogger("podium.http")

RequestHandler = Callable[["Connection", Request], Awaitable[None]]
FastHandler = Callable[["Connection", Request], bool]


class RequestParser(Protocol):
    """What a connection uses of httptools' parser (so a closed one can hold a `_Drain`)."""

    def feed_data(self, data: bytes) -> None: ...

    def get_method(self) -> bytes: ...

    def get_http_version(self) -> str: ...

    def should_keep_alive(self) -> bool: ...


class _Drain:
    """The parser of a rejected or closed connection: what still arrives is read and dropped."""

    def feed_data(self, data: bytes) -> None:
        return None

    def get_method(self) -> bytes:
        return b"GET"

    def get_http_version(self) -> str:
        return "1.1"

    def should_keep_alive(self) -> bool:
        return False


class Exchange(Protocol):
    """A request relayed by callbacks instead of a task (the gateway's fastpath.py)."""

    def cancel(self) -> None: ...

    def client_writable(self) -> None: ...


class ListenerState:
    """What every connection of one listener shares (no globals): handlers, limits, live set."""

    def __init__(
        self,
        handler: RequestHandler,
        *,
        keepalive_timeout_s: float,
        clock: Callable[[], float],
        fast: FastHandler | None = None,
        limits: HttpLimits | None = None,
        max_body_bytes: int | None = None,  # overrides limits.max_body_bytes
    ) -> None:
        limits = limits or HttpLimits()
        if max_body_bytes is not None:
            limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
        self.handler = handler
        self.fast = fast
        self.limits = limits
        self.max_body_bytes = limits.max_body_bytes  # the per-request checks read plain attributes
        self.max_body_digits = len(str(limits.max_body_bytes))
        self.max_head_bytes = limits.max_head_bytes
        self.max_headers = limits.max_headers
        self.max_url_bytes = limits.max_url_bytes
        self.keepalive_timeout_s = keepalive_timeout_s
        self.clock = clock
        self.connections: set[Connection] = set()
        self.spent_parser = _Drain()  # what a closed connection keeps instead of its parser


class Connection(asyncio.Protocol):
    """One client connection: parses requests, runs one at a time, keeps the order."""

    def __init__(self, state: ListenerState) -> None:
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.parser: RequestParser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.client: tuple[str, int] | None = None
        self.client_address = b""  # for X-Forwarded-For
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
        # the head phase: from accept, or a request's first byte, to the end of its headers
        self._in_head = True
        self._chunk_len = 0
        self._spanning: Headers | None = None  # the head that went on past a chunk's end (its headers list)
        self._spanned = 0  # bytes of the chunks after its first, all head
        self._late: Headers | None = None  # the head the idle sweep saw in progress, and when
        self._late_since = 0.0

    # -- transport events -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")
        if isinstance(self.client, tuple):  # TCP (a Unix socket's peer has no address to forward)
            self.client_address = str(self.client[0]).encode()
        self.server = transport.get_extra_info("sockname")
        self.state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.state.clock()
        self._chunk_len = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"protocol upgrades are not supported")
            return
        except httptools.HttpParserCallbackError as exc:  # one of our callbacks raised
            reason = exc.__context__
            if not isinstance(reason, Rejected):
                log.error("error while parsing a request", exc_info=reason)
                reason = Rejected(500, b"internal error")
            self._reject(reason.status, reason.message)
            return
        except httptools.HttpParserError:
            self._reject(400, b"malformed HTTP request")
            return
        if self._in_head:  # this chunk ended inside a request head
            self._head_goes_on(len(data))

    def _head_goes_on(self, size: int) -> None:
        """Count a head's bytes chunk by chunk: the parser keeps a header's bytes until it ends."""
        if self._headers is not self._spanning:  # it began in this chunk: checked exactly at its end
            self._spanning = self._headers
            self._spanned = 0
            return
        self._spanned += size  # the whole chunk was head
        if self._spanned > self.state.max_head_bytes:
            self._reject(431, b"request headers too large")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self.pending.clear()
        self._drop_buffers()
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
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.state.max_url_bytes:
            raise Rejected(414, b"request URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        state = self.state
        headers = self._headers
        if len(headers) > state.max_headers:
            raise Rejected(431, b"too many request headers")
        # a head within one chunk no bigger than the limit is within it (the common case: nothing to add up)
        if (headers is self._spanning or self._chunk_len > state.max_head_bytes) and self._head_too_large():
            raise Rejected(431, b"request headers too large")
        expect = False
        for name, value in headers:  # == on bytes: no hash of each name (cheaper than a set here)
            if name == b"content-length":  # digits only (the parser checked): fewer than the cap's are less
                if len(value) >= state.max_body_digits and int(value) > state.max_body_bytes:
                    raise Rejected(413, b"request body too large")
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        if expect and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _head_too_large(self) -> bool:
        return head_size(self._url, self._headers) > self.state.max_head_bytes

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.state.max_body_bytes:
            raise Rejected(413, b"request body too large")
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
            client=self.client_address,
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

    def spawn(self, request: Request, handler: RequestHandler | None = None) -> None:
        """Answer `request` in a task, by `handler` if given (a fast handler handing on what it began)."""
        self._disconnect_hooks = []
        self.task = self.loop.create_task(self._run(request, handler or self.state.handler))

    def exchange_done(self, exchange: Exchange) -> None:
        if self.exchange is exchange:
            self.exchange = None
            self._next()

    async def _run(self, request: Request, handler: RequestHandler) -> None:
        try:
            await handler(self, request)
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
        self.closed = True
        if self.transport is not None:
            self.transport.close()  # idempotent; also ends a rejected connection's linger early

    def expire(self, now: float) -> None:
        """Called by the idle sweep: close if idle past the keep-alive timeout, or cut a late head (408).

        A head's age is counted from the first sweep that sees it in progress (same headers list),
        so no request pays for a timestamp; a head waiting behind a pipelined answer is not seen."""
        if self.busy or self.closed:
            return
        if not self._in_head:
            if now - self.last_active > self.state.keepalive_timeout_s:
                self.close()
        elif self._headers is not self._late:
            self._late, self._late_since = self._headers, now
        elif now - self._late_since > self.state.limits.head_timeout_s:
            if self._url or self._headers:
                self._reject(408, b"request headers not received in time")
            else:
                self.close()  # nothing of a request arrived: no answer, as for an idle connection

    @property
    def busy(self) -> bool:
        return self.task is not None or self.exchange is not None

    def _reject(self, status: int, message: bytes) -> None:
        """Answer an unacceptable request and end the connection, its buffers dropped at once.

        The client may still be sending (a big body or head): closing with unread bytes would
        make the kernel reset the connection and the client could miss the answer, so the write
        side is shut after it and what arrives is discarded for `linger_s`, then it closes.
        """
        transport = self.transport
        if self.closed or transport is None:
            return
        if self.busy or self.pending:  # earlier answers are still being written: no room for ours
            self.close()
            return
        body = b'{"error":{"message":"' + message + b'","type":"invalid_request_error","code":null}}'
        self.keep_alive = False
        self.write(frame(self, status, [(b"content-type", b"application/json")], len(body))[0] + body)
        self.closed = True
        self._drop_buffers()
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.loop.call_later(self.state.limits.linger_s, transport.close)

    def _drop_buffers(self) -> None:
        """Free what a dead request holds now: the parser (its half-read header) and its parts.

        The parser and this protocol refer to each other; swapping the parser out breaks that
        cycle, so a closed connection is freed by reference counting, not at a later full GC.
        """
        self.parser = self.state.spent_parser
        self._url = b""
        self._headers = []
        self._body = []
        self._spanning = self._late = None
