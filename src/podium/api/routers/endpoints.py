"""`/v0/endpoints`: the full endpoint model (container endpoints and template endpoints alike)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import ValidationError

from podium.api.deps import Services, data_plane_urls, fresh_decisions, require, services
from podium.api.schemas import (
    EndpointOut,
    EndpointsOut,
    EngineLoadOut,
    EngineOut,
    EventOut,
    EventsOut,
    deep_merge,
    endpoint_out,
)
from podium.core.errors import Invalid, plain
from podium.core.specs import EndpointSpec
from podium.services.tokens import Principal

router = APIRouter(prefix="/v0/endpoints", tags=["endpoints"])


def is_admin(principal: Principal) -> bool:
    """Admins see env values; everyone else sees `********` (env often carries tokens)."""
    return "admin" in principal.scopes


def validated(data: dict[str, Any]) -> EndpointSpec:
    try:
        return EndpointSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise Invalid(field, plain(err["msg"])) from exc


def live_decision(out: EndpointOut, svc: Services) -> EndpointOut:
    """The autoscaler's current reason (e.g. "holding 2: …") when it runs in this process; the stored
    reason is only that of the last change of the desired count."""
    decision = svc.decisions.last_decision(out.id) if svc.decisions is not None else None
    if decision is not None:
        out.status.autoscaler_reason = decision.reason
    if svc.decisions is not None:  # engine metrics scraped by the controller in this process
        load = svc.decisions.endpoint_engine(out.id)
        out.status.engine = EngineLoadOut(**dataclasses.asdict(load)) if load is not None else None
        for inst in out.status.instances:
            engine = svc.decisions.replica_engine(inst.id)
            inst.engine = EngineOut(**engine) if engine is not None else None
    return out


@router.post("", status_code=201, response_model=EndpointOut, response_model_exclude_none=False)
async def create_endpoint(
    spec: EndpointSpec, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> EndpointOut:
    created = await svc.endpoints.create(spec, "template" if spec.template else "container")
    out = endpoint_out(created.record, data_plane_urls(svc), created.token, reveal_env=True)
    out.warnings = created.warnings
    return out


@router.get("", response_model=EndpointsOut)
async def list_endpoints(
    svc: Services = Depends(services), principal: Principal = Depends(require("read"))
) -> EndpointsOut:
    urls, reveal = data_plane_urls(svc), is_admin(principal)
    await fresh_decisions(svc)
    return EndpointsOut(
        endpoints=[live_decision(endpoint_out(r, urls, reveal_env=reveal), svc) for r in await svc.endpoints.list_all()]
    )


@router.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(
    endpoint_id: str, svc: Services = Depends(services), principal: Principal = Depends(require("read"))
) -> EndpointOut:
    rec = await svc.endpoints.get(endpoint_id)
    await fresh_decisions(svc)
    return live_decision(endpoint_out(rec, data_plane_urls(svc), reveal_env=is_admin(principal)), svc)


@router.patch("/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(
    endpoint_id: str,
    patch: dict[str, Any] = Body(...),
    svc: Services = Depends(services),
    _: object = Depends(require("admin")),
) -> EndpointOut:
    current = await svc.endpoints.get(endpoint_id)
    spec = validated(deep_merge(current.spec.model_dump(mode="json"), patch))
    updated = await svc.endpoints.update_with_token(endpoint_id, spec)
    out = endpoint_out(updated.record, data_plane_urls(svc), updated.token, reveal_env=True)
    out.warnings = updated.warnings
    return out


@router.delete("/{endpoint_id}", response_model=EndpointOut, status_code=202)
async def delete_endpoint(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> EndpointOut:
    return endpoint_out(await svc.endpoints.delete(endpoint_id), data_plane_urls(svc), reveal_env=True)


@router.post("/{endpoint_id}/start", response_model=EndpointOut)
async def start_endpoint(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> EndpointOut:
    return endpoint_out(await svc.endpoints.set_enabled(endpoint_id, True), data_plane_urls(svc), reveal_env=True)


@router.post("/{endpoint_id}/stop", response_model=EndpointOut)
async def stop_endpoint(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> EndpointOut:
    return endpoint_out(await svc.endpoints.set_enabled(endpoint_id, False), data_plane_urls(svc), reveal_env=True)


@router.get("/{endpoint_id}/events", response_model=EventsOut)
async def endpoint_events(
    endpoint_id: str,
    limit: int = Query(100, ge=1, le=1000),
    svc: Services = Depends(services),
    _: object = Depends(require("read")),
) -> EventsOut:
    rows = await svc.endpoints.events(endpoint_id, limit)
    return EventsOut(events=[EventOut(at=e.at, kind=e.kind, message=e.message, replica_id=e.replica_id) for e in rows])
