"""Submitting a job: the gateway's hook for `Prefer: respond-async` (RFC 7240).

The gateway admits the request first (route, auth, the token's rate: a job is charged like a request),
then hands it here instead of to a replica. `StoreIntake` writes the job row where the store is (roles
`all`, and the controller's /internal/v0/jobs for gateways without one); the 202 is sent only once
the row is committed, so an accepted job survives a `kill -9` from then on."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from podium.gateway.admission import Admitted
from podium.gateway.auth import bearer_token
from podium.gateway.errors import JSON_HEADERS, GatewayError
from podium.http.message import Headers, Request
from podium.jobs.policy import JobPolicies, policy_of
from podium.jobs.repo import JobRepo, QueueFull
from podium.jobs.tables import QUEUED, JobRow

WEBHOOK_HEADER = b"x-podium-webhook"


def new_job_id() -> str:
    return "job-" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Submission:
    """A job as the gateway hands it over: enough to replay the request through a gateway later."""

    endpoint_id: str
    routing_key: str
    token_sha256: str | None
    method: str
    path: str
    content_type: str
    body: bytes
    webhook_url: str | None


def submission(admitted: Admitted, request: Request) -> Submission:
    """What to keep of an admitted request (raises GatewayError 422 on a bad webhook URL)."""
    token = bearer_token(request.header(b"authorization"))
    webhook = request.header(WEBHOOK_HEADER)
    url = webhook.decode("latin-1").strip() if webhook else None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GatewayError(422, "X-Podium-Webhook must be an http(s) URL", code="invalid_webhook")
    path = request.raw_path.decode("latin-1") + ("?" + request.query.decode("latin-1") if request.query else "")
    route = admitted.routed.route
    return Submission(
        endpoint_id=route.endpoint_id,
        routing_key=route.routing_key,
        token_sha256=hashlib.sha256(token).hexdigest() if token else None,
        method=request.method,
        path=path,
        content_type=(request.header(b"content-type") or b"").decode("latin-1"),
        body=request.body,
        webhook_url=url,
    )


def accepted(job_id: str) -> tuple[int, Headers, bytes]:
    headers = [*JSON_HEADERS, (b"location", f"/jobs/{job_id}".encode()), (b"preference-applied", b"respond-async")]
    return 202, headers, orjson.dumps({"id": job_id, "status": QUEUED})


def queue_full(routing_key: str, queued: int) -> GatewayError:
    return GatewayError(
        429,
        f"endpoint {routing_key!r} already has {queued} queued jobs, its bound (spec jobs.max_queued): "
        "retry later or raise the bound",
        type="rate_limit_error",
        code="jobs_queue_full",
        retry_after=5,
    )


class StoreIntake:
    """Writes submitted jobs to the store and wakes the runner."""

    def __init__(
        self,
        repo: JobRepo,
        policies: JobPolicies,
        wake_runner: Callable[[], None],
        wall_clock: Callable[[], float] = time.time,
        spec_of: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        """`spec_of(endpoint_id)`: the stored spec JSON, for an endpoint the policies do not know yet."""
        self.repo, self.policies, self._wake, self._wall = repo, policies, wake_runner, wall_clock
        self._spec_of = spec_of

    async def submit(self, admitted: Admitted, request: Request) -> tuple[int, Headers, bytes]:
        return await self.submit_job(submission(admitted, request))

    async def submit_job(self, sub: Submission) -> tuple[int, Headers, bytes]:
        row = JobRow(
            id=new_job_id(),
            endpoint_id=sub.endpoint_id,
            token_sha256=sub.token_sha256,
            method=sub.method,
            path=sub.path,
            content_type=sub.content_type,
            body=sub.body,
            status=QUEUED,
            attempts=0,
            created_at=self._wall(),
            webhook_url=sub.webhook_url,
            webhook_attempts="[]",
        )
        if self._spec_of is not None and not self.policies.known(sub.endpoint_id):
            spec = await self._spec_of(sub.endpoint_id)
            if spec is not None:
                self.policies.put(sub.endpoint_id, policy_of(spec))
        try:
            await self.repo.submit(row, self.policies.bound(sub.endpoint_id))
        except QueueFull as full:
            raise queue_full(sub.routing_key, full.queued) from None
        self._wake()
        return accepted(row.id)
