"""The gateway side of split roles: follow the controller's routes (long-poll), forward wake-ups,
and remember which replicas it has routed to so it can report their in-flight counts for drains.

Each poll names the route book's epoch it last saw: a restarted controller has a new one, and answers
a poll from an older epoch at once with its full snapshot, so routes are never stale for a poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp

from podium.core.stats import EndpointStats
from podium.gateway.routes import EndpointRoute, PlatformToken
from podium.roles.codec import route_from_json, token_from_json
from podium.roles.internal import stats_payload

log = logging.getLogger("podium.roles")


class LocalGateway(Protocol):
    def set_route(self, route: EndpointRoute) -> None: ...
    def remove_route(self, endpoint_id: str) -> None: ...
    def set_platform_tokens(self, tokens: list[PlatformToken]) -> None: ...
    def stats(self) -> dict[str, EndpointStats]: ...
    def replica_in_flight(self, replica_id: str) -> int: ...
    def token_demand(self) -> dict[str, float]: ...
    def set_rate_shares(self, shares: Mapping[str, float]) -> None: ...
    def token_usage(self) -> dict[str, Any]: ...
    def all_revision_outcomes(self) -> dict[str, dict[int, tuple[int, int, float]]]: ...


class Locator(Protocol):
    """podium.roles.leader.LeaderLocator, as the follower uses it."""

    async def url(self) -> str | None: ...
    def invalidate(self) -> None: ...


class RouteFollower:
    def __init__(
        self,
        controller_url: str,
        token: str,
        advertise_url: str,
        *,
        poll_timeout_s: float = 25.0,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        locator: Locator | None = None,
        region: str | None = None,
    ) -> None:
        """`locator`: where the leading controller is now (several controllers, one database); then
        `controller_url` is only the first guess, and a failed poll looks the leader up again."""
        self.controller_url = controller_url.rstrip("/")
        self.locator = locator
        self.region = region  # serve only this region's endpoints (`--role gateway --region R`); None: all
        self.advertise_url = advertise_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.poll_timeout_s, self.retry_s, self.clock = poll_timeout_s, retry_s, clock
        self.gateway: LocalGateway | None = None
        self.version = -1
        self.epoch = ""  # the controller's route-book epoch of `version` ("": none seen yet)
        self.synced = asyncio.Event()  # the first snapshot is applied: the gateway may serve
        self._known: set[str] = set()
        self._replicas: dict[str, float] = {}  # replica id -> last seen in a route (drain reports)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, gateway: LocalGateway) -> None:
        self.gateway = gateway

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers)
        return self._session

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        failures = 0
        while not stop.is_set():
            try:
                await self._locate()
                poll = asyncio.create_task(self.poll_once())
                await asyncio.wait([poll, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():  # shutting down: don't sit out a long-poll
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                poll.result()
                if failures:
                    log.info("following routes from %s again after %d failed polls", self.controller_url, failures)
                failures = 0
            except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as exc:
                failures += 1  # one warning per outage (it serves the last routes meanwhile), not one a second
                if self.locator is not None:
                    self.locator.invalidate()  # a failover, perhaps: read the lease again
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "following routes from %s failed: %s; retrying", self.controller_url, exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)
        stopping.cancel()
        await self.close()

    async def _locate(self) -> None:
        if self.locator is not None and (found := await self.locator.url()):
            self.controller_url = found.rstrip("/")

    async def poll_once(self) -> None:
        params: dict[str, Any] = {
            "since": self.version,
            "epoch": self.epoch,
            "gateway": self.advertise_url,
            "timeout": self.poll_timeout_s if self.synced.is_set() else 0,
        }
        timeout = aiohttp.ClientTimeout(total=self.poll_timeout_s + 10)
        async with self._client().get(
            f"{self.controller_url}/internal/v0/routes", params=params, timeout=timeout
        ) as resp:
            resp.raise_for_status()
            self.apply(await resp.json())

    def apply(self, snapshot: dict[str, Any]) -> None:
        assert self.gateway is not None
        routes = [route_from_json(r) for r in snapshot["routes"]]
        if self.region is not None:
            routes = [r for r in routes if r.region == self.region]
        now = self.clock()
        for route in routes:
            self.gateway.set_route(route)
            for rep in route.replicas:
                self._replicas[rep.replica_id] = now
        for gone in self._known - {r.endpoint_id for r in routes}:
            self.gateway.remove_route(gone)
        self._known = {r.endpoint_id for r in routes}
        self.gateway.set_platform_tokens([token_from_json(t) for t in snapshot["tokens"]])
        self.gateway.set_rate_shares({str(k): float(v) for k, v in snapshot.get("rate_shares", {}).items()})
        epoch = str(snapshot.get("epoch", ""))
        if self.epoch and epoch != self.epoch:
            log.info("controller %s restarted (route book epoch %s): full resync", self.controller_url, epoch)
        self.epoch, self.version = epoch, int(snapshot["version"])
        self.synced.set()

    def wake(self, endpoint_id: str) -> None:
        """Called by the gateway (deduplicated there); must not block: post in a task."""
        task = asyncio.get_running_loop().create_task(self._wake(endpoint_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self, endpoint_id: str) -> None:
        try:
            async with self._client().post(
                f"{self.controller_url}/internal/v0/wake/{endpoint_id}", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                resp.raise_for_status()
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("wake of %s via %s failed: %s", endpoint_id, self.controller_url, exc)

    def stats(self) -> dict[str, Any]:
        assert self.gateway is not None
        cutoff = self.clock() - 3600  # a drain never outlasts an hour; forget older replicas
        self._replicas = {rid: t for rid, t in self._replicas.items() if t > cutoff}
        in_flight = {rid: self.gateway.replica_in_flight(rid) for rid in self._replicas}
        payload = stats_payload(self.gateway.stats(), in_flight, self.gateway.token_demand())
        payload["token_usage"] = self.gateway.token_usage()  # running totals; the controller books growth
        payload["revisions"] = self.gateway.all_revision_outcomes()  # a canary is judged by them (issue 13)
        return payload

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
