"""`/v0/usage`: what endpoints cost, in replica-seconds and GPU-seconds, and the tokens they served,
per endpoint and per API token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from podium.api.deps import Services, require, services
from podium.services.usage import UsageService

router = APIRouter(prefix="/v0/usage", tags=["usage"])


class EndpointUsageOut(BaseModel):
    endpoint_id: str
    name: str
    replica_seconds: float
    gpu_seconds: float
    running_replicas: int
    prompt_tokens: int
    completion_tokens: int


class TokenUsageOut(BaseModel):
    endpoint_id: str
    token_id: str  # a platform token's id, "endpoint" (the endpoint's own token) or "anonymous"
    token_name: str
    prompt_tokens: int
    completion_tokens: int


class UsageOut(BaseModel):
    since: float
    until: float
    replica_seconds: float
    gpu_seconds: float
    prompt_tokens: int
    completion_tokens: int
    endpoints: list[EndpointUsageOut]
    tokens: list[TokenUsageOut]  # per endpoint and API token


@router.get("", response_model=UsageOut)
async def usage(
    since: float | None = Query(None, allow_inf_nan=False, description="unix time; default: the beginning"),
    until: float | None = Query(None, allow_inf_nan=False, description="unix time; default: now"),
    endpoint_id: str | None = Query(None),
    svc: Services = Depends(services),
    _: object = Depends(require("read")),
) -> UsageOut:
    if endpoint_id is not None:
        endpoint_id = (await svc.endpoints.get(endpoint_id)).row.id
    rep = await UsageService(svc.endpoints.store).report(since, until, endpoint_id)
    return UsageOut(
        since=rep.since,
        until=rep.until,
        replica_seconds=rep.replica_seconds,
        gpu_seconds=rep.gpu_seconds,
        prompt_tokens=rep.prompt_tokens,
        completion_tokens=rep.completion_tokens,
        endpoints=[EndpointUsageOut(**e.__dict__) for e in rep.endpoints],
        tokens=[TokenUsageOut(**t.__dict__) for t in rep.tokens],
    )
