"""The fast path: relay a request with callbacks only, when nothing has to wait.

Most requests find a free slot and an idle pooled connection to the replica. Those are
relayed without a task, a future or an `await`: the listener's parser callback reserves the
slot, writes the request upstream, and the upstream parser's callbacks write the answer to
the client (one write for a whole response, chunks as they come for a stream). Profiles
showed the task/future machinery was about half of the gateway's Python time per request.

Anything else (a queue, a cold start, a new upstream connection, an error answer) takes the
general coroutine path in proxy.py, which has the same semantics. Guarantees are the same
here: the lease is released exactly once in `_finish`, which every fate reaches (response
end, replica failure, timeout, client disconnect); a connection that did not end cleanly is
closed, never pooled; a pooled connection the replica had closed (no byte answered) sends
the request down the general path, which retries on a fresh connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from podium.gateway.balancer import Lease
from podium.gateway.errors import GatewayError, bad_gateway
from podium.gateway.http import NO_BODY, NOT_FORWARDED_DOWN, Request, response_head, without_hop_by_hop
from podium.gateway.listener import Connection
from podium.gateway.metrics import EndpointMetrics
from podium.gateway.proxy import content_length, request_head
from podium.gateway.routing import Routed
from podium.gateway.upstream import ConnectFailed, UpstreamConnection, UpstreamError

if TYPE_CHECKING:
    from podium.gateway.app import Gateway

CHUNKED = b"transfer-encoding: chunked\r\n"
CLOSE = b"connection: close\r\n"


class FastExchange:
    """One request relayed by callbacks between a client connection and a replica connection."""

    __slots__ = (
        "chunked",
        "clock",
        "conn",
        "deadline_key",
        "finished",
        "gateway",
        "lease",
        "metrics",
        "request",
        "started",
        "started_at",
        "status",
        "up",
    )

    def __init__(
        self,
        gateway: Gateway,
        conn: Connection,
        request: Request,
        up: UpstreamConnection,
        lease: Lease,
        metrics: EndpointMetrics,
        started_at: float,
        clock: Callable[[], float],
    ) -> None:
        self.gateway = gateway
        self.conn = conn
        self.request = request
        self.up = up
        self.lease = lease
        self.metrics = metrics
        self.started_at = started_at
        self.clock = clock
        self.started = False
        self.chunked = False
        self.finished = False
        self.status = 0
        self.deadline_key = 0

    # -- replica side ---------------------------------------------------------------------
    def upstream_progress(self) -> None:
        up = self.up
        if up.status == 0:
            return
        conn = self.conn
        if not self.started:
            self.started = True
            self.status = status = up.status
            self.metrics.ttfb.observe(self.clock() - self.started_at)
            headers = without_hop_by_hop(up.headers, NOT_FORWARDED_DOWN)
            if conn.head_only or status in NO_BODY:
                length = content_length(up.headers) if status not in NO_BODY else None
                framing = b"content-length: %d\r\n" % length if length is not None else b""
                conn.write(response_head(status, headers, self._close_flag(framing) + b"\r\n"))
                self._finish(False)
                return
            if up.complete:
                body = up.take_body()
                framing = b"content-length: %d\r\n" % len(body)
                conn.write(response_head(status, headers, self._close_flag(framing) + b"\r\n") + body)
                self._finish(True)
                return
            length = content_length(up.headers)
            if length is not None:
                framing = b"content-length: %d\r\n" % length
            elif conn.http10:
                framing, conn.keep_alive = b"", False
            else:
                framing, self.chunked = CHUNKED, True
            conn.write(response_head(status, headers, self._close_flag(framing) + b"\r\n"))
        data = up.take_body()
        if data:
            conn.write(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
        if up.complete:
            if self.chunked:
                conn.write(b"0\r\n\r\n")
            self._finish(True)
        elif conn.write_paused and up.transport is not None:
            up.transport.pause_reading()  # resumed by client_writable()

    def upstream_failed(self, exc: UpstreamError) -> None:
        if self.started:
            self.metrics.error("replica_failed")
            self.status = 502
            self.conn.keep_alive = False
            self._finish(False)
            self.conn.close()  # a cut stream, never a clean end
            return
        if isinstance(exc, ConnectFailed) and self.up.reused:
            # a pooled connection the replica had just closed: the general path retries afresh
            self._finish(False, count=False, advance=False)
            self.conn.exchange = None
            self.conn.spawn(self.request)
            return
        self.metrics.error("replica_failed")
        self._answer_error(bad_gateway(str(exc)))

    # -- client side and timers -----------------------------------------------------------
    def client_writable(self) -> None:
        transport = self.up.transport
        if transport is not None and not self.up.closed:
            transport.resume_reading()

    def cancel(self) -> None:
        """The client went away: stop the replica's work now (close its connection)."""
        self.metrics.error("client_disconnected")
        self.status = 499
        self._finish(False)

    def timed_out(self) -> None:
        self.metrics.error("timeout")
        if self.started:
            self.status = 504
            self.conn.keep_alive = False
            self._finish(False)
            self.conn.close()
            return
        self._answer_error(
            GatewayError(
                504,
                "the replica did not answer within the endpoint's request timeout",
                type="server_error",
                code="timeout",
            )
        )

    # -- endings ----------------------------------------------------------------------------
    def _answer_error(self, err: GatewayError) -> None:
        self.status = err.status
        body = err.body()
        framing = b"content-length: %d\r\n" % len(body)
        self.conn.write(response_head(err.status, err.headers(), self._close_flag(framing) + b"\r\n") + body)
        self._finish(False)

    def _close_flag(self, framing: bytes) -> bytes:
        return framing if self.conn.keep_alive else framing + CLOSE

    def _finish(self, reusable: bool, count: bool = True, advance: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        self.gateway._deadlines.remove(self, self.deadline_key)
        self.lease.release()
        self.up.finish(reusable)
        if count:
            now = self.clock()
            self.metrics.finished(self.status, now - self.started_at, now)
        if advance:
            self.conn.exchange_done(self)


def try_fast(gateway: Gateway, conn: Connection, request: Request, routed: Routed) -> bool:
    """Relay `request` by callbacks if a slot and a pooled connection are free right now."""
    route = routed.route
    pool = gateway._pools.get(route.endpoint_id)
    if pool is None or pool.queued:
        return False
    lease = pool.try_reserve()
    if lease is None:
        return False
    up = gateway._upstream.idle(lease.replica.address)
    if up is None:
        lease.release()
        return False
    clock = gateway._clock
    metrics = gateway._metrics[route.endpoint_id]
    metrics.last_request_at = gateway._wall()
    exchange = FastExchange(gateway, conn, request, up, lease, metrics, clock(), clock)
    conn.exchange = exchange
    exchange.deadline_key = gateway._deadlines.add(exchange, route.request_timeout_s)
    up.start(request_head(request, routed, lease.replica.address) + routed.body, exchange)
    return True
