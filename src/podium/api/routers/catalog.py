"""`/v0/regions`, `/v0/platforms` (with presets) and `/v0/templates`: the catalog, read-only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from podium.api.deps import control_plane, require
from podium.core.errors import NotFound
from podium.services.control_plane import ControlPlane

router = APIRouter(prefix="/v0", tags=["catalog"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionsOut(Strict):
    regions: list[dict[str, Any]]


class PlatformsOut(Strict):
    platforms: list[dict[str, Any]]


class TemplatesOut(Strict):
    templates: list[dict[str, Any]]


@router.get("/regions", response_model=RegionsOut)
async def list_regions(
    plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> RegionsOut:
    """Regions with their inventory: GPU type -> devices, and `cpu` -> replica slots."""
    return RegionsOut(regions=plane.catalog.regions())


@router.get("/regions/{name}", response_model=dict[str, Any])
async def get_region(
    name: str, plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> dict[str, Any]:
    for region in plane.catalog.regions():
        if region.get("name") == name:
            return region
    raise NotFound(f"region {name!r} not found")


@router.get("/platforms", response_model=PlatformsOut)
async def list_platforms(
    plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> PlatformsOut:
    """Machine shapes: a platform is a GPU type (or CPU); its presets fix GPUs, vCPUs and memory."""
    return PlatformsOut(platforms=plane.catalog.platforms())


@router.get("/templates", response_model=TemplatesOut)
async def list_templates(
    plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> TemplatesOut:
    """Same as /v0/dedicated_endpoints/templates."""
    return TemplatesOut(templates=plane.catalog.templates())


@router.get("/templates/{model_name:path}", response_model=dict[str, Any])
async def get_template(
    model_name: str, plane: ControlPlane = Depends(control_plane), _: object = Depends(require("read"))
) -> dict[str, Any]:
    """One model (names contain '/'): every flavor, its purpose, GPU options and regions."""
    return plane.catalog.describe(model_name)
