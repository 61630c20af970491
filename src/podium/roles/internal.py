"""`/internal/v0/…`: the HTTP API between split roles. Every call needs an admin token.

On the controller (roles `controller` and `all`):
  GET  /internal/v0/routes?since=N&epoch=E&gateway=URL  long-poll: routes + tokens (+ this gateway's
                                                token-rate shares) once newer than version N of epoch E
  GET  /internal/v0/gateways                    attached gateways: in-flight per replica, token-rate shares
  POST /internal/v0/wake/{endpoint_id}          a gateway holds a request at zero replicas
  POST /internal/v0/hint?wait=true              the api role recorded a change (wait: until reconciled)
On a gateway (role `gateway`):
  GET  /internal/v0/stats                       per-endpoint traffic stats and per-replica in-flight
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from podium.roles.codec import stats_to_json
from podium.roles.routebook import RouteBook


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
