"""The controller's side of split roles: every route and token, versioned, for gateways that run in
other processes, and what those gateways report back (traffic stats, per-replica in-flight).

It implements the controller's `RoutePublisher`, so the controller publishes to it exactly as it does
to an in-process gateway; `FanOut` publishes to both when `podium up` runs a gateway itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from podium.core.stats import EndpointStats
from podium.gateway.routes import EndpointRoute, PlatformToken
from podium.roles.wire import route_to_json, stats_from_json, token_to_json

log = logging.getLogger("podium.roles")


@dataclass
class RemoteGateway:
    url: str
    last_seen: float
    replica_in_flight: dict[str, int] = field(default_factory=dict)


class RouteBook:
    def __init__(
        self,
        token: str,
        *,
        gateway_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        stats_timeout_s: float = 1.0,
    ) -> None:
        self.version = 0
        self._routes: dict[str, EndpointRoute] = {}
        self._tokens: list[PlatformToken] = []
        self._changed = asyncio.Event()
        self._gateways: dict[str, RemoteGateway] = {}
        self._ttl, self._clock = gateway_ttl_s, clock
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=stats_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    # -- RoutePublisher ------------------------------------------------------------------
    def set_route(self, route: EndpointRoute) -> None:
        if self._routes.get(route.endpoint_id) != route:
            self._routes[route.endpoint_id] = route
            self._bump()

    def remove_route(self, endpoint_id: str) -> None:
        if self._routes.pop(endpoint_id, None) is not None:
            self._bump()

    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None:
        new = sorted(tokens, key=lambda t: t.token_id)
        if new != self._tokens:
            self._tokens = new
            self._bump()

    def replica_in_flight(self, replica_id: str) -> int:
        return sum(g.replica_in_flight.get(replica_id, 0) for g in self._live_gateways())

    # -- for remote gateways ---------------------------------------------------------------
    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_newer(self, since: int, timeout_s: float) -> None:
        """Long-poll: return as soon as the version passes `since`, or after `timeout_s`."""
        if self.version > since:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "routes": [route_to_json(r) for r in self._routes.values()],
            "tokens": [token_to_json(t) for t in self._tokens],
        }

    def register(self, url: str) -> None:
        """A gateway long-polling us says where its stats are; forgotten after `gateway_ttl_s` of silence."""
        gw = self._gateways.get(url)
        if gw is None:
            log.info("gateway %s attached", url)
            self._gateways[url] = RemoteGateway(url, self._clock())
        else:
            gw.last_seen = self._clock()

    def _live_gateways(self) -> list[RemoteGateway]:
        now = self._clock()
        for url in [u for u, g in self._gateways.items() if now - g.last_seen > self._ttl]:
            log.info("gateway %s detached (silent for %.0fs)", url, self._ttl)
            del self._gateways[url]
        return list(self._gateways.values())

    async def stats(self) -> Mapping[str, EndpointStats]:
        """The autoscaler's stats source for remote gateways: fetch each one's numbers and merge them."""
        gateways = self._live_gateways()
        results = await asyncio.gather(*(self._fetch(g) for g in gateways))
        merged: dict[str, EndpointStats] = {}
        for per_endpoint in results:
            for eid, st in per_endpoint.items():
                merged[eid] = merged[eid].merge(st) if eid in merged else st
        return merged

    async def _fetch(self, gw: RemoteGateway) -> dict[str, EndpointStats]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        try:
            async with self._session.get(f"{gw.url}/internal/v0/stats") as resp:
                data = await resp.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("stats from gateway %s failed: %s", gw.url, exc)
            return {}
        gw.replica_in_flight = {str(k): int(v) for k, v in data.get("replicas", {}).items()}
        return {eid: stats_from_json(s) for eid, s in data.get("endpoints", {}).items()}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Publisher(Protocol):
    def set_route(self, route: EndpointRoute) -> None: ...
    def remove_route(self, endpoint_id: str) -> None: ...
    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None: ...
    def replica_in_flight(self, replica_id: str) -> int: ...


class FanOut:
    """Publish to several gateways (the in-process one and the route book for remote ones)."""

    def __init__(self, *targets: Publisher) -> None:
        self.targets = targets

    def set_route(self, route: EndpointRoute) -> None:
        for t in self.targets:
            t.set_route(route)

    def remove_route(self, endpoint_id: str) -> None:
        for t in self.targets:
            t.remove_route(endpoint_id)

    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None:
        materialised = list(tokens)
        for t in self.targets:
            t.set_platform_tokens(materialised)

    def replica_in_flight(self, replica_id: str) -> int:
        return sum(t.replica_in_flight(replica_id) for t in self.targets)
