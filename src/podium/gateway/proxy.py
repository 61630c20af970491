"""Forward one admitted request to a replica and stream the answer back, whatever its fate.

The slot (Lease) is taken before and released in `finally`: on success, replica error, timeout,
client disconnect (the transport cancels our task) or cancellation. A connection that did not
end cleanly is closed, never pooled; closing it is also how the replica learns the client left.
Only a connect failure (the request never reached a replica) is retried, on another replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
from bisect import bisect_left
from collections.abc import Callable

from podium.gateway.admission import Admitted
from podium.gateway.balancer import EndpointPool, Lease
from podium.gateway.errors import GatewayError, bad_gateway
from podium.gateway.genai_metrics import GenAIMetrics
from podium.gateway.metering import (
    ANONYMOUS,
    ENDPOINT_TOKEN,
    OPERATIONS,
    STREAM_INJECTED,
    USAGE_MARK,
    UsageStrip,
    caller_of,
    usage_of,
)
from podium.gateway.metrics import EndpointMetrics
from podium.gateway.routing import Routed
from podium.gateway.upstream import ConnectFailed, UpstreamConnection, UpstreamError, UpstreamPool
from podium.http.message import (
    FORWARDING,
    HANDLED_UP,
    NOT_FORWARDED_DOWN,
    PLAIN_CONNECTION,
    Headers,
    Request,
    Responder,
    connection_options,
    without_hop_by_hop,
)

NO_BODY_STATUSES = frozenset({204, 304})


class Proxy:
    def __init__(self, upstream: UpstreamPool, clock: Callable[[], float]) -> None:
        self.upstream = upstream
        self.clock = clock

    async def forward(
        self,
        pool: EndpointPool,
        routed: Routed,
        request: Request,
        out: Responder,
        started_at: float,
        metrics: EndpointMetrics,
        admitted: Admitted | None = None,
    ) -> int:
        """Send `request` to a replica of `pool`; returns the status the client got. `admitted`: its
        verdict, for token metering (a stream's usage asked for and stripped, the caller)."""
        lease = await pool.acquire(routed.prefix_key)
        holder = [lease]
        status = 0  # counted per revision on release (canary judging); 0: the client left, not counted
        try:
            async with asyncio.timeout(routed.route.request_timeout_s):
                status = await self._exchange(pool, holder, routed, request, out, started_at, metrics, admitted)
                return status
        except GatewayError as exc:
            status = exc.status
            raise
        except TimeoutError:
            status = 504
            metrics.error("timeout")
            if out.started:
                out.abort()
                return 504
            raise GatewayError(
                504,
                f"the replica did not finish within the endpoint's request timeout "
                f"({routed.route.request_timeout_s:g}s)",
                type="server_error",
                code="timeout",
            ) from None
        finally:
            holder[0].release(status or None)

    async def _exchange(
        self,
        pool: EndpointPool,
        holder: list[Lease],
        routed: Routed,
        request: Request,
        out: Responder,
        started_at: float,
        metrics: EndpointMetrics,
        admitted: Admitted | None,
    ) -> int:
        try:
            conn = await self._send(pool, holder, routed, request)
        except UpstreamError as exc:  # reached the replica, which failed before its answer's head
            metrics.error("replica_failed")
            raise bad_gateway(str(exc)) from None
        reusable = False
        try:
            metrics.ttfb.observe(self.clock() - started_at)
            status = conn.status
            headers: Headers = without_hop_by_hop(conn.headers, NOT_FORWARDED_DOWN)
            if status in NO_BODY_STATUSES:
                await out.send_full(status, headers, b"")
                return status
            if request.method == "HEAD":
                await out.start(status, headers, content_length(conn.headers))
                await out.end()
                return status  # not pooled: the parser cannot tell a HEAD answer has no body
            meter = Meter(admitted if status == 200 else None, self.clock)
            try:
                first = meter.piece(await conn.read())
                if conn.complete and not conn.chunks:
                    reusable = True
                    await out.send_full(status, headers, first + meter.end())
                    meter.record(metrics, request, status, started_at)
                    return status
                await out.start(status, headers, None if meter.strip else content_length(conn.headers))
                if first:
                    await out.write(first)
                while chunk := await conn.read():
                    if chunk := meter.piece(chunk):
                        await out.write(chunk)
                if rest := meter.end():
                    await out.write(rest)
            except UpstreamError as exc:
                metrics.error("replica_failed")
                if out.started:
                    out.abort()  # the client sees a cut stream, not a clean end
                    return 502
                raise bad_gateway(str(exc)) from None
            reusable = True
            await out.end()
            meter.record(metrics, request, status, started_at)
            return status
        finally:
            conn.finish(reusable)

    async def _send(
        self, pool: EndpointPool, holder: list[Lease], routed: Routed, request: Request
    ) -> UpstreamConnection:
        """Write the request to a replica and wait for its response head; retry on connect failure."""
        tried: set[str] = set()
        fresh_retry = True
        waits = 0
        while True:
            replica = holder[0].replica
            try:
                conn = await self.upstream.connection(replica.address)
            except ConnectFailed as exc:
                error: UpstreamError = exc
            else:
                try:
                    await conn.send(request_head(request, routed, replica.address) + routed.body)
                    return conn
                except ConnectFailed as exc:
                    conn.finish(False)
                    if conn.reused and fresh_retry:
                        fresh_retry = False  # a pooled connection the replica had just closed
                        continue
                    error = exc
                except BaseException:
                    conn.finish(False)
                    raise
            tried.add(replica.replica_id)
            pool.suspect(replica.replica_id)
            holder[0].release()
            lease = pool.try_reserve(exclude=tried, key=routed.prefix_key)
            if lease is None:
                holder[0] = _NO_LEASE
                if waits >= MAX_UNREACHABLE_WAITS:
                    raise bad_gateway(f"no replica reachable: {error}")
                # Every replica tried refused: wait for a slot on another (queued), or, with none left,
                # for the controller to replace them (held, like a cold start).
                waits += 1
                lease = await pool.acquire(routed.prefix_key)
                tried.clear()
            holder[0] = lease


class Meter:
    """One response's metering (metering.py) on the general path: its first body byte, its usage, and
    the strip of a usage chunk the client did not ask for."""

    __slots__ = ("admitted", "clock", "first_at", "strip", "usage")

    def __init__(self, admitted: Admitted | None, clock: Callable[[], float]) -> None:
        self.admitted = admitted
        self.clock = clock
        self.first_at: float | None = None
        self.usage: tuple[int, int] | None = None
        self.strip = UsageStrip() if admitted is not None and admitted.stream == STREAM_INJECTED else None

    def piece(self, data: bytes) -> bytes:
        if data and self.first_at is None:
            self.first_at = self.clock()
        if self.strip is not None:
            return self.strip.feed(data)
        if USAGE_MARK in data:
            self.usage = usage_of(data) or self.usage
        return data

    def end(self) -> bytes:
        if self.strip is None:
            return b""
        self.usage = self.strip.usage
        return self.strip.flush()

    def record(self, metrics: EndpointMetrics, request: Request, status: int, started_at: float) -> None:
        now = self.clock()
        first = None if self.first_at is None else self.first_at - started_at
        record_response(metrics, self.admitted, request, status, now - started_at, first, self.usage)


def record_response(
    metrics: EndpointMetrics,
    admitted: Admitted | None,
    request: Request,
    status: int,
    duration_s: float,
    first_byte_s: float | None,
    usage: tuple[int, int] | None,
) -> None:
    """After a relayed response (both paths): its tokens, to the endpoint and its caller, and for a
    successful OpenAI generation its GenAI histograms. `first_byte_s` counts as TTFT for streams only.

    Every request passes here, so it is written flat: counting the tokens of a non-stream answer
    (EndpointMetrics.add_usage) and its GenAI counts (GenAIMetrics.record) inline cost 4 Python calls
    fewer per request than calling them (cachegrind, docs/benchmarks.md)."""
    if usage is not None:
        prompt, completion = usage
        metrics.prompt_tokens += prompt
        metrics.completion_tokens += completion
        if admitted is None:
            caller = ANONYMOUS
        elif (digest := admitted.digest) is not None and digest == admitted.routed.route.auth_token_sha256:
            caller = ENDPOINT_TOKEN
        else:
            caller = caller_of(admitted.book, digest, admitted.routed.route.auth_token_sha256, request)
        mine = metrics.by_caller.get(caller)
        if mine is None:
            metrics.by_caller[caller] = [prompt, completion]
        else:
            mine[0] += prompt
            mine[1] += completion
    if status != 200 or admitted is None:
        return
    path = request.path
    genai = metrics.genai.get(path)
    if genai is None:
        if path not in OPERATIONS:
            return  # not an OpenAI generation (/e/ paths)
        route = admitted.routed.route
        genai = metrics.genai[path] = GenAIMetrics(OPERATIONS[path], route.served_model_name or route.routing_key)
    if admitted.stream:
        genai.record(duration_s, first_byte_s, usage)
        return
    d = genai.duration
    d.counts[bisect_left(d.bounds, duration_s)] += 1
    d.sum += duration_s
    if usage is not None:
        tokens_in, tokens_out = genai.input_tokens, genai.output_tokens
        tokens_in.counts[bisect_left(tokens_in.bounds, prompt)] += 1
        tokens_in.sum += prompt
        tokens_out.counts[bisect_left(tokens_out.bounds, completion)] += 1
        tokens_out.sum += completion


MAX_UNREACHABLE_WAITS = 3  # then 502: a replica that keeps refusing is not a cold start


class _NoLease:
    """Stands in after the last lease was given back, so `finally: release()` stays a no-op."""

    def release(self, status: int | None = None) -> None:
        return None


_NO_LEASE: Lease = _NoLease()  # type: ignore[assignment]


def content_length(headers: Headers) -> int | None:
    chunked = False
    length = None
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
        elif name == b"transfer-encoding":
            chunked = True
    return None if chunked else length


def request_head(request: Request, routed: Routed, address: str) -> bytes:
    """The head sent to the replica: hop-by-hop headers (the standard set and any the client's
    `Connection` names) dropped, the client's address appended to `X-Forwarded-For` (RFC 7239
    section 5.2: a proxy adds, never replaces), `X-Forwarded-Proto`/`-Host` added if absent.

    This is the common case in one pass (no X-Forwarded-* from the client, a plain `Connection`);
    anything else is built by `_rewritten_head`."""
    parts = [request.method.encode(), b" ", routed.upstream_target, b" HTTP/1.1\r\nhost: ", address.encode(), b"\r\n"]
    host = b""
    for name, value in request.headers:
        if name not in HANDLED_UP:
            parts += (name, b": ", value, b"\r\n")
        elif name == b"host":
            host = value
        elif name in REWRITTEN_UP and (name != b"connection" or value not in PLAIN_CONNECTION):
            return _rewritten_head(request, routed, address)
    client = request.client
    if not (client and host):
        return _rewritten_head(request, routed, address)
    length = str(len(routed.body)).encode()
    parts += (b"x-forwarded-for: ", client, FORWARDED_HTTP, host, b"\r\ncontent-length: ", length, b"\r\n\r\n")
    return b"".join(parts)


FORWARDED_HTTP = b"\r\nx-forwarded-proto: http\r\nx-forwarded-host: "
REWRITTEN_UP = FORWARDING | {b"connection"}  # what sends a request to `_rewritten_head`


def _rewritten_head(request: Request, routed: Routed, address: str) -> bytes:
    """`request_head` for a client that sent X-Forwarded-* or a `Connection` naming headers."""
    parts = [request.method.encode(), b" ", routed.upstream_target, b" HTTP/1.1\r\nhost: ", address.encode(), b"\r\n"]
    forwarded_for = host = options = None
    proto_sent = host_sent = False
    for name, value in request.headers:
        if name not in HANDLED_UP:
            parts += (name, b": ", value, b"\r\n")
        elif name == b"host":
            host = value
        elif name == b"x-forwarded-for":
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
        elif name == b"connection":
            options = value if options is None else options + b"," + value
        elif name in FORWARDING:  # the client's own X-Forwarded-Proto/-Host (it may be a TLS proxy): kept
            parts += (name, b": ", value, b"\r\n")
            proto_sent = proto_sent or name == b"x-forwarded-proto"
            host_sent = host_sent or name == b"x-forwarded-host"
    if options is not None and (named := connection_options(options)):
        named |= {b"connection"}
        kept = [(n, v) for n, v in request.headers if n not in named]
        return _rewritten_head(dataclasses.replace(request, headers=kept), routed, address)
    client = request.client
    if forwarded_for is not None:
        parts += (b"x-forwarded-for: ", forwarded_for, b", " if client else b"", client, b"\r\n")
    elif client:
        parts += (b"x-forwarded-for: ", client, b"\r\n")
    if not proto_sent:
        parts.append(b"x-forwarded-proto: http\r\n")
    if host is not None and not host_sent:
        parts += (b"x-forwarded-host: ", host, b"\r\n")
    parts += (b"content-length: ", str(len(routed.body)).encode(), b"\r\n\r\n")
    return b"".join(parts)
