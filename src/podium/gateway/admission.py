"""Admission: the one step every gateway request passes before it may use a replica.

Route lookup (which endpoint), then auth (may this caller use it), then the caller's rate (a
rate-limited token over its rate is refused). The fast path (fastpath.py) and the general path
(app.py, proxy.py) both start from its verdict and never check again, so auth is checked once
and a token's bucket is charged once per request, whichever path answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from podium.gateway.auth import TokenBook, bearer_token
from podium.gateway.balancer import EndpointPool
from podium.gateway.errors import GatewayError, rate_limited, unauthorized
from podium.gateway.metering import NOT_STREAM, STREAM_MARK, stream_mode
from podium.gateway.metrics import EndpointMetrics
from podium.gateway.routing import Routed, RouteTable
from podium.http.message import Request

UNROUTED = "-"  # metrics label for requests that matched no endpoint


class Admitted:
    """A request that may go to a replica of `pool`, and where its outcome is counted."""

    __slots__ = ("book", "digest", "metrics", "pool", "routed", "stream")

    def __init__(
        self,
        routed: Routed,
        pool: EndpointPool,
        metrics: EndpointMetrics,
        stream: int = NOT_STREAM,
        book: TokenBook | None = None,
        digest: str | None = None,
    ) -> None:
        self.routed = routed
        self.pool = pool
        self.metrics = metrics
        self.stream = stream  # metering.stream_mode: NOT_STREAM, STREAM or STREAM_INJECTED (strip its usage)
        self.book = book  # to name the caller its tokens are metered to (metering.caller_of)
        self.digest = digest  # the caller's token digest, when auth or a rate limit needed it


class Refused(Exception):
    """A request answered `error` without reaching a replica; counted in `metrics`."""

    def __init__(self, error: GatewayError, metrics: EndpointMetrics) -> None:
        super().__init__(error.status, error.message)
        self.error = error
        self.metrics = metrics


class Admission:
    """Route + auth + rate over the gateway's tables, which the gateway owns and updates in place."""

    def __init__(
        self,
        routes: RouteTable,
        tokens: TokenBook,
        pools: Mapping[str, EndpointPool],
        metrics: Mapping[str, EndpointMetrics],
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._routes = routes
        self._tokens = tokens
        self._pools = pools
        self._metrics = metrics
        self._clock = clock
        self._wall = wall_clock

    def admit(self, request: Request) -> Admitted:
        """The request's verdict: Admitted, or raises Refused (404/400/409 route, 401, 429)."""
        try:
            routed = self._routes.resolve(request)
        except GatewayError as exc:
            raise Refused(exc, self._metrics[UNROUTED]) from None
        route = routed.route
        metrics = self._metrics[route.endpoint_id]
        metrics.last_request_at = self._wall()
        tokens = self._tokens
        digest = None
        if route.auth_token_sha256 is not None or tokens.has_limits:
            token = bearer_token(request.header(b"authorization"))
            digest = tokens.digest(token) if token is not None else None
            if not tokens.allows(route, digest):
                raise Refused(unauthorized(), metrics)
            # a limit follows the token, not the endpoint: checked whatever the endpoint's auth mode
            if tokens.is_limited(digest):
                wait = tokens.over_limit(digest, self._clock())
                if wait is not None:
                    raise Refused(rate_limited(wait), metrics)
        # a stream is asked for its usage (token metering); any other body is not parsed again
        stream = stream_mode(routed, request.path) if STREAM_MARK in routed.body else NOT_STREAM
        return Admitted(routed, self._pools[route.endpoint_id], metrics, stream, tokens, digest)
