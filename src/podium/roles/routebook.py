"""The controller's side of split roles: every route and token, versioned, for gateways that run in
other processes, and what those gateways report back (traffic stats, per-replica in-flight, per-token
demand).

It implements the controller's `RoutePublisher`, so the controller publishes to it exactly as it does
to an in-process gateway; `FanOut` publishes to both when `podium up` runs a gateway itself.

The book has an `epoch`, random per controller start: its version restarts at 0 with the process, so a
gateway long-polling with an older epoch gets the full snapshot at once instead of waiting for the new
version to pass its old one. The book answers only once the controller has published (`mark_primed`,
after its first tick), so a restarted controller never hands out an empty table. A gateway whose stats
cannot be fetched is forgotten within seconds (at once when nothing listens on its port): its reported
in-flight requests no longer hold drains, and it is registered again when it next polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from podium.core.stats import EndpointStats
from podium.gateway.routes import EndpointRoute, PlatformToken
from podium.roles.codec import route_to_json, stats_from_json, token_to_json
from podium.roles.shares import Shares, split_rates, worth_republishing

log = logging.getLogger("podium.roles")

LOCAL = "local"  # the in-process gateway of `--role all`, when it shares token rates with remote ones
PRIME_WAIT_S = 10.0  # longest a long-poll waits for the controller's first tick
REBALANCE_EVERY_S = 1.0  # token-rate shares are recomputed from demand at most this often


@dataclass
class RemoteGateway:
    url: str
    last_seen: float
    replica_in_flight: dict[str, int] = field(default_factory=dict)
    token_demand: dict[str, float] = field(default_factory=dict)  # sha256 -> requests/min seen
    failing_since: float | None = None  # first failed stats fetch of the current streak
    token_usage: dict[str, Any] | None = None  # its running token totals (Gateway.token_usage), last fetched
    revisions: dict[str, Any] = field(default_factory=dict)  # endpoint -> {revision: [requests, 5xx, latency]}


class LocalRates(Protocol):
    """What the book needs of an in-process gateway to include it in the token-rate split."""

    def token_demand(self) -> dict[str, float]: ...
    def set_rate_shares(self, shares: Mapping[str, float]) -> None: ...


class RouteBook:
    def __init__(
        self,
        token: str,
        *,
        gateway_ttl_s: float = 60.0,
        dead_after_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        stats_timeout_s: float = 1.0,
        primed: bool = False,
    ) -> None:
        self.epoch = secrets.token_hex(8)
        self.version = 0
        self._routes: dict[str, EndpointRoute] = {}
        self._tokens: list[PlatformToken] = []
        self._changed = asyncio.Event()
        self._primed = asyncio.Event()
        if primed:
            self._primed.set()
        self._gateways: dict[str, RemoteGateway] = {}
        self._local: LocalRates | None = None
        self._shares: Shares = {}
        self._rebalanced_at = float("-inf")
        self._ttl, self._dead_after, self._clock = gateway_ttl_s, dead_after_s, clock
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
            self._rebalance()

    def replica_in_flight(self, replica_id: str) -> int:
        return sum(g.replica_in_flight.get(replica_id, 0) for g in self._live_gateways())

    def revision_outcomes(self, endpoint_id: str) -> dict[int, tuple[int, int, float]]:
        """The remote gateways' per-revision counts for one endpoint, summed (a canary is judged by them)."""
        return merged_outcomes(
            {int(rev): (int(c[0]), int(c[1]), float(c[2])) for rev, c in g.revisions.get(endpoint_id, {}).items()}
            for g in self._live_gateways()
        )

    # -- for remote gateways ---------------------------------------------------------------
    def mark_primed(self) -> None:
        """The controller has run its first tick: the routes are complete, long-polls may answer."""
        self._primed.set()

    def attach_local(self, local: LocalRates) -> None:
        """Count an in-process gateway in the token-rate split (`--role all` with gateways attached)."""
        self._local = local
        self._rebalance()

    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_newer(self, since: int, timeout_s: float, epoch: str | None = None) -> bool:
        """Long-poll: return as soon as the version passes `since`, or after `timeout_s`; at once when
        `epoch` is another controller's (its `since` means nothing here). False: the controller has not
        finished its first tick within PRIME_WAIT_S, so there is no complete table to hand out yet."""
        if not self._primed.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._primed.wait(), PRIME_WAIT_S)
            if not self._primed.is_set():
                return False
        if self.version > since or epoch != self.epoch:
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        return True

    def snapshot(self, gateway: str | None = None) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "version": self.version,
            "routes": [route_to_json(r) for r in self._routes.values()],
            "tokens": [token_to_json(t) for t in self._tokens],
            "rate_shares": dict(self._shares.get(gateway, {})) if gateway else {},
        }

    def register(self, url: str) -> None:
        """A gateway long-polling us says where its stats are; forgotten after `gateway_ttl_s` of silence."""
        gw = self._gateways.get(url)
        if gw is None:
            log.info("gateway %s attached", url)
            self._gateways[url] = RemoteGateway(url, self._clock())
            self._rebalance()
        else:
            gw.last_seen = self._clock()

    def touch(self, url: str) -> None:
        """A long-poll from `url` ended: it was alive then (a gateway forgotten meanwhile stays forgotten)."""
        gw = self._gateways.get(url)
        if gw is not None:
            gw.last_seen = self._clock()

    def _live_gateways(self) -> list[RemoteGateway]:
        now = self._clock()
        silent = [u for u, g in self._gateways.items() if now - g.last_seen > self._ttl]
        for url in silent:
            log.info("gateway %s detached (silent for %.0fs)", url, self._ttl)
            del self._gateways[url]
        if silent:
            self._rebalance()
        return list(self._gateways.values())

    def _forget(self, gw: RemoteGateway, why: str) -> None:
        if self._gateways.get(gw.url) is gw:
            log.warning("gateway %s forgotten: %s (no drain waits on it; it attaches again when it polls)", gw.url, why)
            del self._gateways[gw.url]
            self._rebalance()

    async def stats(self) -> Mapping[str, EndpointStats]:
        """The autoscaler's stats source for remote gateways: fetch each one's numbers and merge them."""
        gateways = self._live_gateways()
        results = await asyncio.gather(*(self._fetch(g) for g in gateways))
        merged: dict[str, EndpointStats] = {}
        for per_endpoint in results:
            for eid, st in per_endpoint.items():
                merged[eid] = merged[eid].merge(st) if eid in merged else st
        if self._clock() - self._rebalanced_at >= REBALANCE_EVERY_S:
            self._rebalance()
        return merged

    async def _fetch(self, gw: RemoteGateway) -> dict[str, EndpointStats]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        try:
            async with self._session.get(f"{gw.url}/internal/v0/stats") as resp:
                resp.raise_for_status()
                data = await resp.json()
        except aiohttp.ClientConnectorError as exc:  # nothing listens there: it serves no request either
            self._forget(gw, f"unreachable ({exc})")
            return {}
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            now = self._clock()
            if gw.failing_since is None:
                gw.failing_since = now
                log.warning("stats from gateway %s failed: %s", gw.url, exc)
            elif now - gw.failing_since > self._dead_after:
                self._forget(gw, f"no stats for {now - gw.failing_since:.0f}s ({exc})")
            return {}
        gw.failing_since, gw.last_seen = None, self._clock()
        gw.replica_in_flight = {str(k): int(v) for k, v in data.get("replicas", {}).items()}
        gw.token_demand = {str(k): float(v) for k, v in data.get("token_demand", {}).items()}
        gw.token_usage = data.get("token_usage") or gw.token_usage
        gw.revisions = data.get("revisions") or {}
        return {eid: stats_from_json(s) for eid, s in data.get("endpoints", {}).items()}

    async def token_usage(self) -> list[dict[str, Any]]:
        """The remote gateways' token totals as last fetched with their stats (services/token_meter.py)."""
        return [gw.token_usage for gw in self._gateways.values() if gw.token_usage]

    def describe(self) -> list[dict[str, Any]]:
        """The attached gateways as the controller sees them (`GET /internal/v0/gateways`): what holds a
        drain and how each token's rate is split, for operators and tests."""
        now = self._clock()
        return [
            {
                "url": gw.url,
                "last_seen_s": round(now - gw.last_seen, 3),
                "failing_s": None if gw.failing_since is None else round(now - gw.failing_since, 3),
                "replica_in_flight": dict(gw.replica_in_flight),
                "token_demand": dict(gw.token_demand),
                "rate_shares": dict(self._shares.get(gw.url, {})),
            }
            for gw in self._live_gateways()
        ]

    # -- token-rate shares -----------------------------------------------------------------
    def _rebalance(self) -> None:
        """Split each limited token's rate over the gateways by their demand (roles/shares.py); republish
        (a version bump, so long-polls return) only when a share moved enough to matter."""
        self._rebalanced_at = self._clock()
        names = [*self._gateways, *([LOCAL] if self._local is not None else [])]
        demand = {url: gw.token_demand for url, gw in self._gateways.items()}
        if self._local is not None:
            demand[LOCAL] = self._local.token_demand()
        limits = {t.sha256: t.rate_limit_rpm for t in self._tokens if t.rate_limit_rpm}
        new = split_rates(limits, names, demand)
        if not worth_republishing(self._shares, new):
            return
        self._shares = new
        if self._local is not None:
            self._local.set_rate_shares(new[LOCAL])
        self._bump()

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


def merged_outcomes(parts: Iterable[dict[int, tuple[int, int, float]]]) -> dict[int, tuple[int, int, float]]:
    """Per-revision (requests, 5xx, mean latency) of several gateways as one: counts add, means weigh."""
    out: dict[int, tuple[int, int, float]] = {}
    for part in parts:
        for rev, (n, errors, mean) in part.items():
            n0, e0, m0 = out.get(rev, (0, 0, 0.0))
            total = n0 + n
            out[rev] = (total, e0 + errors, (m0 * n0 + mean * n) / total if total else 0.0)
    return out
