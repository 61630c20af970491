"""Jobs in split roles. A `--role gateway` process holds no store, so it hands what it cannot do to the
controller, which does (docs/jobs.md, "Roles"):

- `RemoteIntake`: the gateway's intake; the admitted submission is POSTed to the controller's
  `/internal/v0/jobs` (internal.py) and the controller's answer (202 once the row is committed, or
  429) is the client's.
- `forward_router`: `/jobs…`, `/v1/files…`, `/v1/batches…` on the gateway's port, relayed as they came
  (the client's own token decides what it may see, on the controller).

And for the controller's runner, what an in-process gateway would have told it directly:
`CachedStats` (the gateways' merged stats, pulled at most every `every_s`) and `StoreCapacity`
(ready replicas x max_concurrency, from the store)."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from fastapi import APIRouter, Request, Response

from podium.core.specs import stored_spec
from podium.core.stats import EndpointStats
from podium.gateway.admission import Admitted
from podium.gateway.errors import GatewayError
from podium.http.message import Headers
from podium.http.message import Request as DataRequest
from podium.jobs.intake import submission
from podium.store.repos import Store

PASSED_BACK = ("content-type", "location", "retry-after", "preference-applied")
FORWARDED = ("authorization", "content-type", "accept")
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=60)


def unreachable(url: str, exc: BaseException) -> GatewayError:
    return GatewayError(
        503,
        f"the controller that keeps jobs ({url}) is unreachable: {exc}",
        type="server_error",
        code="jobs_unavailable",
    )


class RemoteIntake:
    def __init__(self, controller_url: Callable[[], str], admin_token: str) -> None:
        self._url = controller_url
        self._headers = {"Authorization": f"Bearer {admin_token}"}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def submit(self, admitted: Admitted, request: DataRequest) -> tuple[int, Headers, bytes]:
        sub = submission(admitted, request)
        payload = {
            "endpoint_id": sub.endpoint_id,
            "routing_key": sub.routing_key,
            "token_sha256": sub.token_sha256,
            "method": sub.method,
            "path": sub.path,
            "content_type": sub.content_type,
            "body": base64.b64encode(sub.body).decode(),
            "webhook_url": sub.webhook_url,
        }
        url = self._url()
        try:
            async with self._client().post(f"{url}/internal/v0/jobs", json=payload) as resp:
                body = await resp.read()
                headers = [(k.encode(), resp.headers[k].encode()) for k in PASSED_BACK if k in resp.headers]
                return resp.status, headers, body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unreachable(url, exc) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def forward_router(controller_url: Callable[[], str]) -> APIRouter:
    """The jobs and Batch API paths of a gateway's port, relayed to the controller."""
    router = APIRouter(include_in_schema=False)
    sessions: list[aiohttp.ClientSession] = []

    async def forward(request: Request) -> Response:
        if not sessions or sessions[0].closed:
            sessions[:] = [aiohttp.ClientSession(timeout=FORWARD_TIMEOUT)]
        url = controller_url() + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        try:
            async with sessions[0].request(request.method, url, data=await request.body(), headers=headers) as resp:
                body = await resp.read()
                out = {k: resp.headers[k] for k in PASSED_BACK if k in resp.headers}
                return Response(body, status_code=resp.status, headers=out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            err = unreachable(controller_url(), exc)
            return Response(err.body(), status_code=503, media_type="application/json")

    for prefix in ("/jobs", "/v1/files", "/v1/batches"):
        router.add_api_route(prefix, forward, methods=["GET", "POST", "DELETE"])
        router.add_api_route(prefix + "/{rest:path}", forward, methods=["GET", "POST", "DELETE"])
    return router


class CachedStats:
    """An async stats source (the route book's pull from the gateways) read synchronously by the runner,
    refreshed at most every `every_s` (`refresh` runs before each of the runner's passes)."""

    def __init__(
        self,
        source: Callable[[], Awaitable[Mapping[str, EndpointStats]]],
        every_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source, self._every, self._clock = source, every_s, clock
        self._stats: Mapping[str, EndpointStats] = {}
        self._at = float("-inf")

    async def refresh(self) -> None:
        if self._clock() - self._at >= self._every:
            self._at = self._clock()
            self._stats = await self._source()

    def __call__(self) -> Mapping[str, EndpointStats]:
        return self._stats


class StoreCapacity:
    """Slots per endpoint as the store knows them: ready replicas x the spec's max_concurrency."""

    def __init__(self, store: Store, every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self._every, self._clock = store, every_s, clock
        self._slots: dict[str, int] = {}
        self._at = float("-inf")

    async def refresh(self) -> None:
        if self._clock() - self._at < self._every:
            return
        self._at = self._clock()
        ready: dict[str, int] = {}
        for replica in await self.store.live_replicas():
            if replica.state == "ready":
                ready[replica.endpoint_id] = ready.get(replica.endpoint_id, 0) + 1
        slots: dict[str, int] = {}
        for row in await self.store.list_endpoints():
            try:
                slots[row.id] = ready.get(row.id, 0) * stored_spec(row.spec_json).scaling.max_concurrency
            except Exception:  # an unreadable spec shows on the endpoint; its jobs wait
                continue
        self._slots = slots

    def __call__(self, endpoint_id: str) -> int:
        return self._slots.get(endpoint_id, 0)
