"""`POST /internal/v0/jobs` on the process that holds the store (roles `all` and `controller`): a
gateway without a store (role `gateway`) submits its admitted `Prefer: respond-async` requests here
(remote.RemoteIntake). Admin token, like every /internal/v0 call."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.gateway.errors import GatewayError
from podium.jobs.intake import StoreIntake, Submission


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str = Field(max_length=32)
    routing_key: str = Field(max_length=128)
    token_sha256: str | None = Field(default=None, max_length=64)
    method: str = Field(max_length=16)
    path: str
    content_type: str = ""
    body: str  # base64
    webhook_url: str | None = None


def jobs_internal_router(intake: StoreIntake, guard: Callable[[Request], Awaitable[None]]) -> APIRouter:
    router = APIRouter(prefix="/internal/v0", include_in_schema=False, dependencies=[Depends(guard)])

    @router.post("/jobs")
    async def submit(item: SubmissionIn) -> Response:
        sub = Submission(**{**item.model_dump(), "body": base64.b64decode(item.body)})
        try:
            status, headers, body = await intake.submit_job(sub)
        except GatewayError as exc:
            status, headers, body = exc.status, exc.headers(), exc.body()
        return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})

    return router
