"""The dedicated-endpoints view: the documents' flat fields over the one endpoint model.

A dedicated endpoint is an endpoint with a template source; this module only maps between the
documented request/response fields (`model_name`, `gpu_type`, `scaling.min_replicas`, …) and
`EndpointSpec`, and renames spec fields in error messages to the names this view uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from podium.api.schemas import StatusOut, endpoint_out
from podium.core.errors import Invalid
from podium.core.specs import EndpointSpec
from podium.services.endpoints import EndpointRecord


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a number must be finite


class DedicatedScaling(Strict):
    min_replicas: int = Field(default=1, ge=0, le=1000, description="replicas always kept (reserved)")
    max_replicas: int | None = Field(default=None, ge=0, le=1000, description="default: max(1, min_replicas)")


class DedicatedCreate(Strict):
    name: str = Field(min_length=1, max_length=128, description="display name")
    description: str = Field(default="", max_length=10_000)
    model_name: str = Field(min_length=1, max_length=256, description="template model, see /templates")
    flavor_name: str = Field(default="base", min_length=1, max_length=64)
    gpu_type: str | None = Field(default=None, max_length=64, description="default: the template's first")
    gpu_count: int | None = Field(default=None, ge=0, le=64, description="GPUs per replica")
    region: str = Field(default="local", min_length=1, max_length=63)
    scaling: DedicatedScaling = Field(default_factory=DedicatedScaling)
    enabled: bool = True


class DedicatedScalingPatch(Strict):
    min_replicas: int | None = Field(default=None, ge=0, le=1000)
    max_replicas: int | None = Field(default=None, ge=0, le=1000)


class DedicatedPatch(Strict):
    """Only these fields can change; `region` may be given only with its current value."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=10_000)
    enabled: bool | None = None
    gpu_type: str | None = Field(default=None, min_length=1, max_length=64)
    gpu_count: int | None = Field(default=None, ge=0, le=64)
    scaling: DedicatedScalingPatch | None = None
    region: str | None = Field(default=None, max_length=63, description="immutable")


class DedicatedOut(Strict):
    id: str
    endpoint_id: str
    routing_key: str
    name: str
    description: str
    model_name: str
    flavor_name: str
    gpu_type: str
    gpu_count: int
    region: str
    scaling: DedicatedScaling
    enabled: bool
    state: str
    status: StatusOut
    created_at: float
    updated_at: float


class DedicatedList(Strict):
    endpoints: list[DedicatedOut]


class TemplatesOut(Strict):
    templates: list[dict[str, Any]]


def dedicated_out(rec: EndpointRecord, base_url: str | Callable[[str], str]) -> DedicatedOut:
    spec, row = rec.spec, rec.row
    assert spec.template is not None
    full = endpoint_out(rec, base_url)
    return DedicatedOut(
        id=row.id,
        endpoint_id=row.id,
        routing_key=row.routing_key,
        name=row.name,
        description=spec.description,
        model_name=spec.template.model_name,
        flavor_name=spec.template.flavor_name,
        gpu_type=spec.compute.gpu_type,
        gpu_count=spec.compute.gpu_count,
        region=spec.compute.region,
        scaling=DedicatedScaling(min_replicas=spec.scaling.min_replicas, max_replicas=spec.scaling.max_replicas),
        enabled=spec.enabled,
        state=rec.state,
        status=full.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def spec_document(body: DedicatedCreate, gpu_type: str, gpu_count: int) -> dict[str, Any]:
    """The EndpointSpec document a dedicated create stands for."""
    s = body.scaling
    return {
        "name": body.name,
        "description": body.description,
        "template": {"model_name": body.model_name, "flavor_name": body.flavor_name},
        "compute": {"region": body.region, "gpu_type": gpu_type, "gpu_count": gpu_count},
        "scaling": {
            "min_replicas": s.min_replicas,
            "max_replicas": s.max_replicas if s.max_replicas is not None else max(1, s.min_replicas),
        },
        "enabled": body.enabled,
    }


def patch_document(current: EndpointSpec, patch: DedicatedPatch) -> dict[str, Any]:
    """Merge only the given fields into the current spec document."""
    if patch.region is not None and patch.region != current.compute.region:
        raise Invalid("region", "region is immutable; create a new endpoint in the other region")
    doc = current.model_dump(mode="json")
    given = patch.model_fields_set
    for key in ("name", "description", "enabled"):
        if key in given and getattr(patch, key) is not None:
            doc[key] = getattr(patch, key)
    for key in ("gpu_type", "gpu_count"):
        if key in given and getattr(patch, key) is not None:
            doc["compute"][key] = getattr(patch, key)
    if patch.scaling is not None:
        for key in patch.scaling.model_fields_set:
            value = getattr(patch.scaling, key)
            if value is not None:
                doc["scaling"][key] = value
    return doc


_RENAMES = {
    "template.model_name": "model_name",
    "template.flavor_name": "flavor_name",
    "template": "model_name",
    "compute.gpu_type": "gpu_type",
    "compute.gpu_count": "gpu_count",
    "compute.region": "region",
    "compute.platform": "gpu_type",
    "compute": "gpu_type",
}


def renamed(exc: Invalid) -> Invalid:
    """A spec-level error, named as this view names the field."""
    field = _RENAMES.get(exc.field, exc.field)
    message = exc.message.split(": ", 1)[1] if exc.message.startswith(exc.field + ": ") else exc.message
    return Invalid(field, message)
