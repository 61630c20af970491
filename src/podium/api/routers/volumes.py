"""`/v0/volumes`: named filesystems replicas mount with `--volume NAME:/path[:ro|rw]`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.api.deps import Services, control_plane, require, services
from podium.core.errors import Invalid
from podium.services.control_plane import ControlPlane
from podium.services.endpoints import readable
from podium.store.tables import VolumeRow

router = APIRouter(prefix="/v0/volumes", tags=["volumes"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a number must be finite


class VolumeCreate(Strict):
    name: str = Field(min_length=1, max_length=63, description="lowercase letters, digits, hyphens")
    description: str = Field(default="", max_length=10_000)
    size: str | None = Field(default=None, max_length=32, description="e.g. 100Gi (informational locally)")
    region: str = Field(default="local", min_length=1, max_length=63)


class VolumeOut(Strict):
    id: str
    name: str
    kind: str
    description: str
    region: str
    size: str | None
    path: str
    used_by: list[str]
    created_at: float


class VolumesOut(Strict):
    volumes: list[VolumeOut]


async def _users(svc: Services, row: VolumeRow) -> list[str]:
    rows = await svc.endpoints.store.list_endpoints()
    return ControlPlane.users_of_volume(readable(rows), row.id, row.name)


async def _out(svc: Services, row: VolumeRow) -> VolumeOut:
    return VolumeOut(
        id=row.id,
        name=row.name,
        kind="filesystem",
        description=row.description,
        region=row.region,
        size=row.size,
        path=row.path,
        used_by=await _users(svc, row),
        created_at=row.created_at,
    )


@router.post("", status_code=201, response_model=VolumeOut)
async def create_volume(
    body: VolumeCreate,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> VolumeOut:
    try:
        plane.catalog.region(body.region)  # 422 for an unknown region (when a catalog is loaded)
    except Invalid as exc:
        raise Invalid("region", f"unknown region {body.region!r}") from exc
    row = await plane.volumes.create(body.name, body.description, body.size, body.region)
    return await _out(svc, row)


@router.get("", response_model=VolumesOut)
async def list_volumes(
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("read")),
) -> VolumesOut:
    return VolumesOut(volumes=[await _out(svc, r) for r in await plane.volumes.list_all()])


@router.get("/{volume}", response_model=VolumeOut)
async def get_volume(
    volume: str,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("read")),
) -> VolumeOut:
    return await _out(svc, await plane.volumes.get(volume))


@router.delete("/{volume}", status_code=204)
async def delete_volume(
    volume: str,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> Response:
    """Removes the volume and its data; 409 while an endpoint mounts it."""
    row = await plane.volumes.get(volume)
    await plane.volumes.delete(row.id, await _users(svc, row))
    return Response(status_code=204)
