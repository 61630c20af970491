"""`/v0/dedicated_endpoints`: the dedicated-endpoints documents' view of template endpoints.

Same rows as `/v0/endpoints` (kind "template"); this router only maps fields both ways.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from podium.api.dedicated_schemas import (
    DedicatedCreate,
    DedicatedList,
    DedicatedOut,
    DedicatedPatch,
    TemplatesOut,
    dedicated_out,
    patch_document,
    renamed,
    spec_document,
)
from podium.api.deps import Services, control_plane, data_plane_urls, require, services
from podium.api.routers.endpoints import validated
from podium.core.errors import Invalid, NotFound
from podium.services.control_plane import ControlPlane
from podium.services.endpoints import EndpointRecord

router = APIRouter(prefix="/v0/dedicated_endpoints", tags=["dedicated endpoints"])


@router.get("/templates", response_model=TemplatesOut)
async def list_templates(
    plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> TemplatesOut:
    """One item per valid (model_name, flavor_name, gpu_type), with its gpu_counts and regions."""
    return TemplatesOut(templates=plane.catalog.templates())


def _default_gpu(plane: ControlPlane, body: DedicatedCreate) -> tuple[str, int]:
    """Absent gpu_type/gpu_count: the template's first offering for this flavor that the region has
    GPUs for (else its first offering, which the capacity check then refuses with the numbers)."""
    offers = [
        t
        for t in plane.catalog.templates()
        if t.get("model_name") == body.model_name
        and t.get("flavor_name") == body.flavor_name
        and (body.gpu_type is None or t.get("gpu_type") == body.gpu_type)
    ]
    if not offers:
        return body.gpu_type or "cpu", body.gpu_count if body.gpu_count is not None else 0
    try:
        inventory = plane.catalog.inventory(body.region) or {}
    except Invalid:
        inventory = {}  # an unknown region: validation says so next
    have = [t for t in offers if t.get("gpu_type") == "cpu" or inventory.get(str(t.get("gpu_type")), 0) > 0]
    t = (have or offers)[0]
    counts = [int(c) for c in t.get("gpu_counts") or [0]]
    return str(t.get("gpu_type", "cpu")), body.gpu_count if body.gpu_count is not None else min(counts)


async def _dedicated(svc: Services, key: str) -> EndpointRecord:
    rec = await svc.endpoints.get(key)
    if rec.spec.template is None:
        raise NotFound(f"{key} is a container endpoint, not a dedicated one; see /v0/endpoints/{rec.row.id}")
    return rec


@router.post("", status_code=201, response_model=DedicatedOut)
async def create_dedicated(
    body: DedicatedCreate,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> DedicatedOut:
    """Create from a template; the answer carries `endpoint_id` and `routing_key` (the `model` to call).
    `gpu_type` may be the documents' platform name (`gpu-h100-sxm`)."""
    if body.gpu_type is not None:
        body = body.model_copy(update={"gpu_type": plane.catalog.gpu_type(body.gpu_type)})
    gpu_type, gpu_count = _default_gpu(plane, body)
    try:
        spec = validated(spec_document(body, gpu_type, gpu_count))
        created = await svc.endpoints.create(spec, "template")
    except Invalid as exc:
        raise renamed(exc) from exc
    return dedicated_out(created.record, data_plane_urls(svc))


@router.get("", response_model=DedicatedList)
async def list_dedicated(svc: Services = Depends(services), _: object = Depends(require("read"))) -> DedicatedList:
    records = [r for r in await svc.endpoints.list_all() if r.spec.template is not None]
    return DedicatedList(endpoints=[dedicated_out(r, data_plane_urls(svc)) for r in records])


@router.get("/{endpoint_id}", response_model=DedicatedOut)
async def get_dedicated(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("read"))
) -> DedicatedOut:
    return dedicated_out(await _dedicated(svc, endpoint_id), data_plane_urls(svc))


@router.patch("/{endpoint_id}", response_model=DedicatedOut)
async def update_dedicated(
    endpoint_id: str,
    patch: DedicatedPatch,
    svc: Services = Depends(services),
    _: object = Depends(require("admin")),
) -> DedicatedOut:
    """Partial: only the fields given change (name, description, enabled, gpu_type, gpu_count, scaling)."""
    current = await _dedicated(svc, endpoint_id)
    try:
        spec = validated(patch_document(current.spec, patch))
        record = await svc.endpoints.update(current.row.id, spec)
    except Invalid as exc:
        raise renamed(exc) from exc
    return dedicated_out(record, data_plane_urls(svc))


@router.delete("/{endpoint_id}", response_model=DedicatedOut)
async def delete_dedicated(
    endpoint_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> DedicatedOut:
    current = await _dedicated(svc, endpoint_id)
    return dedicated_out(await svc.endpoints.delete(current.row.id), data_plane_urls(svc))
