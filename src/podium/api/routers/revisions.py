"""`/v0/endpoints/{id}/revisions|rollback|promote` (issue 13): thin over `services/rollouts.py`."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from podium.api.deps import Services, data_plane_urls, require, services
from podium.api.schemas import EndpointOut, Out, endpoint_out
from podium.services.rollouts import RevisionView, RolloutService

router = APIRouter(prefix="/v0/endpoints", tags=["revisions"])


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: int | None = Field(default=None, ge=1, le=2**31 - 1, description="default: the previous revision")


class RevisionOut(Out):
    number: int
    current: bool  # what new replicas run
    state: str  # rolling | canary | active | failed | retired
    strategy: str
    changes: list[str]  # fields changed from the revision before
    reason: str  # why it failed, was retired or rolled back to
    created_at: float
    finished_at: float | None
    replicas: int  # live replicas running it
    ready_replicas: int
    # its traffic as the gateway counted it while a canary was judged (0 otherwise): side by side
    requests: int
    errors: int  # 5xx answers
    error_rate: float
    latency_ms: float  # mean, whole request (streams included)


class RevisionsOut(Out):
    endpoint_id: str
    revision: int
    revisions: list[RevisionOut]


def _out(v: RevisionView) -> RevisionOut:
    r = v.row
    return RevisionOut(
        number=r.number,
        current=v.current,
        state=r.state,
        strategy=r.strategy,
        changes=[c for c in r.changes.split(",") if c],
        reason=r.reason,
        created_at=r.created_at,
        finished_at=r.finished_at,
        replicas=v.replicas,
        ready_replicas=v.ready,
        requests=r.requests,
        errors=r.errors,
        error_rate=r.errors / r.requests if r.requests else 0.0,
        latency_ms=r.latency_s * 1000,
    )


@router.get("/{endpoint_id}/revisions", response_model=RevisionsOut)
async def list_revisions(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("read"))
) -> RevisionsOut:
    rec, views = await RolloutService(svc.endpoints).revisions(endpoint_id)
    return RevisionsOut(endpoint_id=rec.row.id, revision=rec.row.generation, revisions=[_out(v) for v in views])


@router.post("/{endpoint_id}/rollback", response_model=EndpointOut)
async def rollback(
    endpoint_id: str,
    body: RollbackIn | None = Body(default=None),
    svc: Services = Depends(services),
    _: object = Depends(require("admin")),
) -> EndpointOut:
    rec = await RolloutService(svc.endpoints).rollback(endpoint_id, body.revision if body else None)
    return endpoint_out(rec, data_plane_urls(svc), reveal_env=True)


@router.post("/{endpoint_id}/promote", response_model=EndpointOut)
async def promote(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> EndpointOut:
    rec = await RolloutService(svc.endpoints).promote(endpoint_id)
    return endpoint_out(rec, data_plane_urls(svc), reveal_env=True)
