"""The gateway: admission (route -> auth -> rate) -> fast relay, or hold/queue -> balancer -> proxy.

The control side pushes routes and tokens in (`set_route`, `remove_route`,
`set_platform_tokens`); the autoscaler reads `stats()`; the controller drains replicas with
`replica_in_flight()`. Requests come in through `handle_fast()` then `handle()` (the built-in
listener of podium.http) or as plain ASGI (`__call__`). Each is admitted once (admission.py);
the fast relay (fastpath.py) and the proxy are handed what they use, never this object.
No threads, no globals: all state hangs off this instance.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from podium.core.stats import EndpointStats
from podium.gateway.admission import UNROUTED, Admission, Admitted, Refused
from podium.gateway.auth import TokenBook, bearer_token
from podium.gateway.balancer import EndpointPool
from podium.gateway.deadlines import Deadlines
from podium.gateway.errors import JSON_HEADERS, GatewayError, unauthorized
from podium.gateway.fastpath import FastRelay
from podium.gateway.metrics import EndpointMetrics, render_prometheus
from podium.gateway.proxy import Proxy
from podium.gateway.routes import EndpointRoute, PlatformToken
from podium.gateway.routing import MODEL_PATHS, RouteTable
from podium.gateway.upstream import UpstreamPool
from podium.http.asgi import serve_asgi
from podium.http.listener import Connection, RequestHandler
from podium.http.message import Headers, Request, Responder
from podium.http.respond import ConnResponder

log = logging.getLogger("podium.gateway")

GATEWAY_PREFIXES = ("/v1/", "/e/")
METRICS_PATH = "/metrics"
PROMETHEUS_HEADERS = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]


JOBS_API_PREFIXES = ("/v1/files", "/v1/batches")  # served by the jobs app (podium.jobs.http), not relayed


def is_gateway_path(path: str) -> bool:
    return (path.startswith(GATEWAY_PREFIXES) and not path.startswith(JOBS_API_PREFIXES)) or path == METRICS_PATH


class JobIntake(Protocol):
    """Where a `Prefer: respond-async` request goes once admitted (podium.jobs.intake): it answers
    202 with the job's id, or raises GatewayError (429 when the endpoint's job queue is full)."""

    async def submit(self, admitted: Admitted, request: Request) -> tuple[int, Headers, bytes]: ...


def respond_async(request: Request) -> bool:
    """RFC 7240 `Prefer: respond-async`: the client asks for a job, not an answer. On every relayed
    request, so one inlined scan of the (lower-cased) names: ~0.25 µs for 8 headers, 4x `header()`."""
    for name, value in request.headers:
        if name == b"prefer":
            return b"respond-async" in value.lower()
    return False


class Gateway:
    def __init__(
        self,
        *,
        wake: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        connect_timeout_s: float = 5.0,
        max_idle_per_replica: int = 512,
        rng: random.Random | None = None,
        fast_path: bool = True,
        jobs: JobIntake | None = None,
    ) -> None:
        self._jobs = jobs  # None: `Prefer: respond-async` is ignored (no store to queue jobs in)
        self.fast_path = fast_path  # relay by callbacks when nothing waits (fastpath.py)
        self.fast_hits = 0
        self.instance = secrets.token_hex(8)  # names this process's token counters (token_usage)
        # more Prometheus text for /metrics: the controller's engine gauges when it runs in this process
        self.metrics_extra: Callable[[], str] | None = None
        self._wake = wake
        self._clock = clock
        self._wall = wall_clock
        self._rng = rng or random.Random()
        self._routes = RouteTable()
        self._pools: dict[str, EndpointPool] = {}
        self._metrics: dict[str, EndpointMetrics] = {UNROUTED: EndpointMetrics()}
        self._replica_counts: dict[str, int] = {}
        self._tokens = TokenBook(clock=clock)
        self._upstream = UpstreamPool(max_idle_per_address=max_idle_per_replica, connect_timeout_s=connect_timeout_s)
        self._proxy = Proxy(self._upstream, clock)
        self._deadlines = Deadlines(clock)
        self._admission = Admission(
            self._routes, self._tokens, self._pools, self._metrics, clock=clock, wall_clock=wall_clock
        )
        self._relay = FastRelay(self._upstream, self._deadlines, clock, self._general_path)

    # -- control side ----------------------------------------------------------------------
    def set_route(self, route: EndpointRoute) -> None:
        old = self._routes.by_id.get(route.endpoint_id)
        self._routes.put(route)
        pool = self._pools.get(route.endpoint_id)
        if pool is None:
            self._pools[route.endpoint_id] = EndpointPool(
                route,
                replica_counts=self._replica_counts,
                wake=self._wake,
                clock=self._clock,
                rng=self._rng,
                wall_clock=self._wall,
            )
            self._metrics.setdefault(route.endpoint_id, EndpointMetrics())
        else:
            pool.update(route)
        if old is not None:
            self._drop_idle_connections({r.address for r in old.replicas} - {r.address for r in route.replicas})

    def remove_route(self, endpoint_id: str) -> None:
        old = self._routes.remove(endpoint_id)
        pool = self._pools.pop(endpoint_id, None)
        if pool is not None:
            pool.deleted()
        self._metrics.pop(endpoint_id, None)
        if old is not None:
            self._drop_idle_connections({r.address for r in old.replicas})

    def _drop_idle_connections(self, addresses: set[str]) -> None:
        in_use = {r.address for route in self._routes.by_id.values() for r in route.replicas}
        for address in addresses - in_use:
            self._upstream.close_address(address)

    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None:
        self._tokens.replace(tokens)

    def set_rate_shares(self, shares: Mapping[str, float]) -> None:
        """This gateway's share of each limited token's rate, from the controller (roles/shares.py)."""
        self._tokens.set_shares(shares)

    def token_demand(self) -> dict[str, float]:
        """Requests per minute seen per limited token: what the controller splits the rates by."""
        return self._tokens.demand(self._clock())

    def stats(self) -> dict[str, EndpointStats]:
        now = self._clock()
        out: dict[str, EndpointStats] = {}
        for eid, pool in self._pools.items():
            metrics = self._metrics.get(eid) or EndpointMetrics()
            out[eid] = EndpointStats(
                in_flight=pool.in_flight,
                queued=pool.queued,
                oldest_wait_s=pool.oldest_wait_s(now),
                rps=metrics.rate.rate(now),
                last_request_at=metrics.last_request_at,
            )
        return out

    def capacity(self, endpoint_id: str) -> int:
        """Slots on the endpoint's ready replicas (0 at zero or unknown): how many jobs may run at once."""
        route = self._routes.by_id.get(endpoint_id)
        return 0 if route is None else len(route.replicas) * route.max_concurrency

    def replica_in_flight(self, replica_id: str) -> int:
        return self._replica_counts.get(replica_id, 0)

    def revision_outcomes(self, endpoint_id: str) -> dict[int, tuple[int, int, float]]:
        """revision -> (requests, 5xx, mean latency s) on this gateway: a canary is judged by it (issue 13)."""
        pool = self._pools.get(endpoint_id)
        return {} if pool is None else pool.outcomes.snapshot()

    def all_revision_outcomes(self) -> dict[str, dict[int, tuple[int, int, float]]]:
        """Every endpoint's per-revision counts, for a remote gateway's stats to the controller."""
        out = {eid: pool.outcomes.snapshot() for eid, pool in self._pools.items()}
        return {eid: counts for eid, counts in out.items() if counts}

    def token_usage(self) -> dict[str, Any]:
        """Tokens per endpoint and caller since this gateway started, under its random `instance` id:
        the controller books what grew since it last looked (services/token_meter.py)."""
        usage = [
            {"endpoint_id": eid, "caller": caller, "prompt_tokens": p, "completion_tokens": c}
            for eid, m in sorted(self._metrics.items())
            for caller, (p, c) in sorted(m.by_caller.items())
        ]
        return {"instance": self.instance, "usage": usage}

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close(GatewayError(503, "the gateway is shutting down", type="server_error", code="shutdown"))
        self._upstream.close()
        self._deadlines.close()

    # -- data side -------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await serve_asgi(self.handle, scope, receive, send)

    async def handle(self, request: Request, out: Responder) -> None:
        """Answer one request; never raises except CancelledError (client gone)."""
        started_at = self._clock()
        if request.path == METRICS_PATH or request.path == "/v1/models":
            await self._answer(None, request, out, started_at)
            return
        try:
            verdict: Admitted | Refused = self._admission.admit(request)
        except Refused as refused:
            verdict = refused
        if self._jobs is not None and isinstance(verdict, Admitted) and respond_async(request):
            await self._submit_job(self._jobs, verdict, request, out)
            return
        await self._answer(verdict, request, out, started_at)

    def handle_fast(self, conn: Connection, request: Request) -> bool:
        """Admit a relayed request and relay it by callbacks if nothing has to wait, else hand the
        admitted request to the general path in a task; False: not a relayed path, use `handle`."""
        path = request.path
        if not (path.startswith("/e/") or (path in MODEL_PATHS and request.method == "POST")):
            return False
        started_at = self._clock()
        try:
            admitted = self._admission.admit(request)
        except Refused as refused:
            conn.spawn(request, self._general_path(refused, started_at))
            return True
        jobs = self._jobs
        if jobs is not None and respond_async(request):
            conn.spawn(request, self._job_path(jobs, admitted))
            return True
        if self._relay.try_relay(conn, request, admitted, started_at):
            self.fast_hits += 1
        else:
            conn.spawn(request, self._general_path(admitted, started_at))
        return True

    def _general_path(self, verdict: Admitted | Refused, started_at: float) -> RequestHandler:
        """The rest of an admitted (or refused) request's answer, as a listener handler."""

        async def answer(conn: Connection, request: Request) -> None:
            await self._answer(verdict, request, ConnResponder(conn), started_at)

        return answer

    def _job_path(self, jobs: JobIntake, admitted: Admitted) -> RequestHandler:
        async def submit(conn: Connection, request: Request) -> None:
            await self._submit_job(jobs, admitted, request, ConnResponder(conn))

        return submit

    async def _submit_job(self, jobs: JobIntake, admitted: Admitted, request: Request, out: Responder) -> None:
        """Queue the admitted request as a job: 202 + Location once it is durable, or the error."""
        try:
            status, headers, body = await jobs.submit(admitted, request)
        except GatewayError as exc:
            admitted.metrics.error(exc.code or "job_refused")
            status, headers, body = exc.status, exc.headers(), exc.body()
        except Exception:
            log.exception("job submit failed on %s %s", request.method, request.path)
            err = GatewayError(500, "the job could not be queued", type="server_error", code="internal")
            status, headers, body = 500, err.headers(), err.body()
        await out.send_full(status, headers, body)

    async def _answer(
        self, verdict: Admitted | Refused | None, request: Request, out: Responder, started_at: float
    ) -> None:
        """Answer by the verdict (None: the gateway's own paths, /metrics and /v1/models)."""
        metrics = self._metrics[UNROUTED] if verdict is None else verdict.metrics
        status = 500
        try:
            if verdict is None:
                status = 200
                await self._own_path(request, out)
                return
            if isinstance(verdict, Refused):
                raise verdict.error
            status = await self._proxy.forward(verdict.pool, verdict.routed, request, out, started_at, metrics, verdict)
        except GatewayError as exc:
            status = exc.status
            if exc.code:
                metrics.error(exc.code)
            if out.started:
                out.abort()
            else:
                await out.send_full(exc.status, exc.headers(), exc.body())
        except asyncio.CancelledError:
            status = 499  # nginx's "client closed request"
            metrics.error("client_disconnected")
            raise
        except ConnectionError:
            status = 499  # the client left while we were writing to it
            metrics.error("client_disconnected")
        except Exception:
            log.exception("gateway error on %s %s", request.method, request.path)
            metrics.error("internal")
            if out.started:
                out.abort()
            else:
                err = GatewayError(500, "internal gateway error", type="server_error", code="internal")
                await out.send_full(500, err.headers(), err.body())
        finally:
            metrics.finished(status, self._clock() - started_at, self._clock())

    async def _own_path(self, request: Request, out: Responder) -> None:
        if request.path == METRICS_PATH:
            await out.send_full(200, list(PROMETHEUS_HEADERS), self._render_metrics())
        else:
            await self._list_models(request, out)

    async def _list_models(self, request: Request, out: Responder) -> None:
        token = bearer_token(request.header(b"authorization"))
        digest = self._tokens.digest(token) if token is not None else None
        allowed = [r for r in self._routes.by_id.values() if r.enabled and self._tokens.allows(r, digest)]
        if token is not None and not allowed and not self._tokens.is_platform(digest):
            err = unauthorized()
            await out.send_full(401, err.headers(), err.body())
            return
        await out.send_full(200, list(JSON_HEADERS), self._routes.models_for(allowed))

    def _render_metrics(self) -> bytes:
        def gauges(eid: str) -> tuple[int, int, float, int]:
            pool = self._pools.get(eid)
            if pool is None:
                return 0, 0, 0.0, 0
            return pool.in_flight, pool.queued, pool.oldest_wait_s(self._clock()), len(pool.route.replicas)

        def names(eid: str) -> str:
            route = self._routes.by_id.get(eid)
            return route.routing_key if route else ""

        text = render_prometheus(self._metrics, gauges, names)
        extra = self.metrics_extra
        return text if extra is None else text + extra().encode()
