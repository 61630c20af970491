"""`/internal/v0/…`: the HTTP API between split roles. Every call needs an admin token.

On the controller (roles `controller` and `all`):
  GET  /internal/v0/routes?since=N&epoch=E&gateway=URL  long-poll: routes + tokens (+ this gateway's
                                                token-rate shares) once newer than version N of epoch E
  GET  /internal/v0/gateways                    attached gateways: in-flight per replica, token-rate shares
  POST /internal/v0/wake/{endpoint_id}          a gateway holds a request at zero replicas
  POST /internal/v0/hint?wait=true              the api role recorded a change (wait: until reconciled)
  GET  /internal/v0/engine                      the replicas' engine samples (the api role's status.engine)
On a gateway (role `gateway`):
  GET  /internal/v0/stats                       per-endpoint traffic stats and per-replica in-flight

The api role's side of the controller's calls is here too: `RemoteController` (hints, found through
the leader lease) and `RemoteEngine` (the engine samples behind `status.engine`, cached briefly).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from podium.controller.engine_metrics import EngineWatch
from podium.core.stats import EngineLoad
from podium.roles.codec import stats_to_json
from podium.roles.leader import LeaderLocator
from podium.roles.routebook import RouteBook

log = logging.getLogger("podium")


def token_guard(admin_sha256: Callable[[], Awaitable[set[str]]]) -> Callable[[Request], Awaitable[None]]:
    async def guard(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        allowed = await admin_sha256()
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(digest, a) for a in allowed):
            raise _Denied()

    return guard


class _Denied(Exception):
    pass


def _install_denied(app: FastAPI) -> None:
    @app.exception_handler(_Denied)
    async def denied(_: Request, __: _Denied) -> JSONResponse:
        body = {"error": {"code": "unauthorized", "message": "internal API: admin token required", "details": None}}
        return JSONResponse(body, status_code=401)


def controller_router(
    book: RouteBook,
    wake: Callable[[str], None],
    hint: Callable[[], None],
    sync: Callable[[], Awaitable[None]],
    guard: Callable[[Request], Awaitable[None]],
    engine: Callable[[], dict[str, Any]] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/internal/v0", include_in_schema=False, dependencies=[Depends(guard)])

    @router.get("/routes")
    async def routes(
        since: int = Query(-1),
        epoch: str | None = Query(None),
        gateway: str | None = Query(None),
        timeout: float = Query(25.0, ge=0, le=60),
    ) -> Any:
        url = gateway.rstrip("/") if gateway else None
        if url:
            book.register(url)
        if not await book.wait_newer(since, timeout, epoch):  # a gateway keeps its routes and asks again
            message = "the controller has not published its routes yet"
            return JSONResponse({"error": {"code": "starting", "message": message, "details": None}}, status_code=503)
        if url:
            book.touch(url)
        return book.snapshot(url)

    @router.get("/gateways")
    async def gateways() -> list[dict[str, Any]]:
        return book.describe()

    @router.post("/wake/{endpoint_id}", status_code=202)
    async def wake_endpoint(endpoint_id: str) -> Response:
        wake(endpoint_id)
        return Response(status_code=202)

    @router.post("/hint", status_code=204)
    async def hint_controller(wait: bool = Query(False)) -> Response:
        hint()
        if wait:
            await sync()
        return Response(status_code=204)

    if engine is not None:

        @router.get("/engine")
        async def engine_status() -> dict[str, Any]:
            return engine()

    return router


def gateway_app(stats: Callable[[], dict[str, Any]], guard: Callable[[Request], Awaitable[None]]) -> FastAPI:
    """The non-data-plane side of a gateway-role process: its stats and a health check."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _install_denied(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "role": "gateway"}

    @app.get("/internal/v0/stats", dependencies=[Depends(guard)])
    async def gateway_stats() -> dict[str, Any]:
        return stats()

    return app


def install(app: FastAPI, router: APIRouter) -> None:
    _install_denied(app)
    app.include_router(router)


def stats_payload(
    endpoint_stats: dict[str, Any], replica_in_flight: dict[str, int], token_demand: dict[str, float]
) -> dict[str, Any]:
    return {
        "endpoints": {eid: stats_to_json(s) for eid, s in endpoint_stats.items()},
        "replicas": {rid: n for rid, n in replica_in_flight.items() if n},
        "token_demand": token_demand,  # sha256 -> requests/min seen: the controller splits rates by it
    }


def engine_payload(watch: EngineWatch) -> dict[str, Any]:
    """What `GET /internal/v0/engine` answers: each replica's fresh engine sample and each endpoint's
    aggregate, as the controller's EngineWatch has them (the api role has no scraper of its own)."""
    samples = watch.samples()
    endpoints = {eid for eid, _ in samples.values()}
    return {
        "replicas": {rid: s.to_json() for rid, (_, s) in samples.items()},
        "endpoints": {eid: dataclasses.asdict(load) for eid in endpoints if (load := watch.endpoint(eid)) is not None},
    }


class RemoteEngine:
    """The api role's view of the controller's engine samples, as the endpoint routers' `Decisions`.
    At most one `fetch` (GET /internal/v0/engine on the leader) per `ttl_s`, however many requests read
    it at once: a console polling endpoints must not fan out to the controller per call. While the
    controller cannot be reached (`fetch` returns None) the status shows null, never stale numbers."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[dict[str, Any] | None]],
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self.ttl_s, self.clock = fetch, ttl_s, clock
        self._data: dict[str, Any] = {}
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def refresh(self) -> None:
        if self.clock() - self._at < self.ttl_s:
            return
        async with self._lock:  # requests arriving during a fetch wait for it instead of fetching again
            if self.clock() - self._at < self.ttl_s:
                return
            got = await self._fetch()
            self.fetches += 1
            self._data = got if isinstance(got, dict) else {}
            self._at = self.clock()

    def last_decision(self, endpoint_id: str) -> None:
        return None  # the autoscaler's live reason stays the controller's; the stored one is shown

    def replica_engine(self, replica_id: str) -> dict[str, Any] | None:
        found = self._data.get("replicas", {}).get(replica_id)
        return found if isinstance(found, dict) else None

    def endpoint_engine(self, endpoint_id: str) -> EngineLoad | None:
        raw = self._data.get("endpoints", {}).get(endpoint_id)
        try:
            return EngineLoad(**raw) if isinstance(raw, dict) else None
        except TypeError:  # a controller of another version: no status rather than a 500
            return None


class RemoteController:
    """The api role's handle on a controller in another process."""

    def __init__(self, url: str, token: str, locator: LeaderLocator | None = None) -> None:
        """`locator`: find the leading controller in the lease (several controllers, one database)."""
        self.url = url.rstrip("/")
        self.locator = locator
        self.headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=5))
        return self._session

    def hint(self) -> None:
        task = asyncio.get_running_loop().create_task(self._post(wait=False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self) -> None:
        await self._post(wait=True)

    async def _resolve(self) -> None:
        if self.locator is not None and (found := await self.locator.url()):
            self.url = found.rstrip("/")

    async def engine(self) -> dict[str, Any] | None:
        """The leader's engine samples (`GET /internal/v0/engine`); None when it cannot be reached."""
        await self._resolve()
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with self._client().get(f"{self.url}/internal/v0/engine", timeout=timeout) as resp:
                resp.raise_for_status()
                found = await resp.json()
                return found if isinstance(found, dict) else None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            if self.locator is not None:
                self.locator.invalidate()
            log.info("engine status from controller %s: %s", self.url, exc)
            return None

    async def _post(self, wait: bool) -> None:
        await self._resolve()
        try:
            hint = f"{self.url}/internal/v0/hint"
            async with self._client().post(hint, params={"wait": str(wait).lower()}) as resp:
                resp.raise_for_status()
        except (TimeoutError, aiohttp.ClientError) as exc:
            if self.locator is not None:
                self.locator.invalidate()  # a failover, perhaps: read the lease again next time
            log.warning("hint to controller %s failed: %s (it resyncs within a second)", self.url, exc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
