"""`/v0/usage`: what endpoints cost, in replica-seconds and GPU-seconds."""

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


class UsageOut(BaseModel):
    since: float
    until: float
    replica_seconds: float
    gpu_seconds: float
    endpoints: list[EndpointUsageOut]


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
        endpoints=[EndpointUsageOut(**e.__dict__) for e in rep.endpoints],
    )
