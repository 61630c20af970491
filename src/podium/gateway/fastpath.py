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

A request arrives here already admitted (admission.py: route, auth, rate); what the relay uses
is handed to it as a `FastRelay`, and a request it cannot relay goes on to the general path
with its verdict, so nothing is checked twice.
"""

from __future__ import annotations

from collections.abc import Callable

from podium.gateway.admission import Admitted
from podium.gateway.balancer import Lease
from podium.gateway.deadlines import Deadlines
from podium.gateway.errors import GatewayError, bad_gateway
from podium.gateway.metering import EVENT_ENDS, STREAM_INJECTED, USAGE_MARK, UsageStrip, usage_of
from podium.gateway.proxy import content_length, record_response, request_head
from podium.gateway.upstream import ConnectFailed, UpstreamConnection, UpstreamError, UpstreamPool
from podium.http.framing import LAST_CHUNK, chunk, frame
from podium.http.listener import Connection, RequestHandler
from podium.http.message import NO_BODY, NOT_FORWARDED_DOWN, Request, without_hop_by_hop

# the general path for a request already admitted: what the fast path hands over when it cannot relay
GeneralPath = Callable[[Admitted, float], RequestHandler]


class FastRelay:
    """What the fast path is handed by the gateway: the upstream pool, the deadlines, the clocks,
    and the general path to hand a request to when it cannot be relayed by callbacks."""

    __slots__ = ("clock", "deadlines", "general", "upstream")

    def __init__(
        self, upstream: UpstreamPool, deadlines: Deadlines, clock: Callable[[], float], general: GeneralPath
    ) -> None:
        self.upstream = upstream
        self.deadlines = deadlines
        self.clock = clock
        self.general = general

    def try_relay(self, conn: Connection, request: Request, admitted: Admitted, started_at: float) -> bool:
        """Relay `request` by callbacks if a slot and a pooled connection are free right now."""
        pool = admitted.pool
        if pool.queued:
            return False
        lease = pool.try_reserve(key=admitted.routed.prefix_key)
        if lease is None:
            return False
        up = self.upstream.idle(lease.replica.address)
        if up is None:
            lease.release()
            return False
        exchange = FastExchange(self, conn, request, up, lease, admitted, started_at)
        conn.exchange = exchange
        exchange.deadline_key = self.deadlines.add(exchange, admitted.routed.route.request_timeout_s)
        up.start(request_head(request, admitted.routed, lease.replica.address) + admitted.routed.body, exchange)
        return True


class FastExchange:
    """One request relayed by callbacks between a client connection and a replica connection."""

    __slots__ = (
        "admitted",
        "chunked",
        "clock",
        "conn",
        "deadline_key",
        "finished",
        "first_at",
        "lease",
        "metrics",
        "relay",
        "request",
        "started",
        "started_at",
        "status",
        "strip",
        "up",
        "usage",
    )

    def __init__(
        self,
        relay: FastRelay,
        conn: Connection,
        request: Request,
        up: UpstreamConnection,
        lease: Lease,
        admitted: Admitted,
        started_at: float,
    ) -> None:
        self.relay = relay
        self.conn = conn
        self.request = request
        self.up = up
        self.lease = lease
        self.admitted = admitted
        self.metrics = admitted.metrics
        self.started_at = started_at
        self.clock = relay.clock
        self.started = False
        self.chunked = False
        self.finished = False
        self.status = 0
        self.deadline_key = 0
        self.first_at: float | None = None  # first body byte (TTFT of a stream)
        self.usage: tuple[int, int] | None = None  # the response's OpenAI usage (metering.py)
        self.strip = UsageStrip() if admitted.stream == STREAM_INJECTED else None

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
                conn.write(frame(conn, status, headers, length, body=False)[0])
                self._finish(False)
                return
            if status != 200:
                self.strip = None  # an error's body is passed on as it is
            if up.complete:
                body = up.take_body()
                if self.admitted.stream:
                    body = self._piece(body)
                    if self.strip is not None:
                        body += self.strip.flush()
                        self.usage = self.strip.usage
                elif USAGE_MARK in body:  # a whole answer at once: the non-streaming common case
                    self.usage = usage_of(body)
                conn.write(frame(conn, status, headers, len(body))[0] + body)
                self._finish(True)
                return
            length = None if self.strip is not None else content_length(up.headers)
            head, self.chunked = frame(conn, status, headers, length)
            conn.write(head)
        data = up.take_body()
        if data:
            # per stream piece, written out (no call for the usual piece: hot path): the first byte's
            # time, the usage seen, a usage chunk the client did not ask for stripped (metering.py)
            if self.first_at is None and self.admitted.stream:
                self.first_at = self.clock()
            strip = self.strip
            if strip is not None:
                if strip.pending or USAGE_MARK in data or not data.endswith(EVENT_ENDS):
                    data = strip.feed(data)
            elif USAGE_MARK in data:
                self.usage = usage_of(data) or self.usage
        if data:
            conn.write(chunk(data) if self.chunked else data)
        if up.complete:
            if self.strip is not None:
                if rest := self.strip.flush():
                    conn.write(chunk(rest) if self.chunked else rest)
                self.usage = self.strip.usage
            if self.chunked:
                conn.write(LAST_CHUNK)
            self._finish(True)
        elif conn.write_paused and up.transport is not None:
            up.transport.pause_reading()  # resumed by client_writable()

    def _piece(self, data: bytes) -> bytes:
        """Body bytes on their way out: the first one's time, the usage seen, a usage chunk stripped."""
        if not data:
            return data
        if self.first_at is None and self.admitted.stream:  # TTFT is a stream's measure
            self.first_at = self.clock()
        strip = self.strip
        if strip is not None:
            return strip.feed(data)
        if USAGE_MARK in data:
            self.usage = usage_of(data) or self.usage
        return data

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
            self.conn.spawn(self.request, self.relay.general(self.admitted, self.started_at))
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
        self.conn.write(frame(self.conn, err.status, err.headers(), len(body))[0] + body)
        self._finish(False)

    def _finish(self, reusable: bool, count: bool = True, advance: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        self.relay.deadlines.remove(self, self.deadline_key)
        self.lease.release(self.status)  # counted for its revision (canary judging, gateway/canary.py)
        self.up.finish(reusable)
        if count:
            now = self.clock()
            took = now - self.started_at
            self.metrics.finished(self.status, took, now)
            first = None if self.first_at is None else self.first_at - self.started_at
            record_response(self.metrics, self.admitted, self.request, self.status, took, first, self.usage)
        if advance:
            self.conn.exchange_done(self)
