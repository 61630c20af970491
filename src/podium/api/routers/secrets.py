"""`/v0/secrets`: named, versioned, encrypted payloads. Answers carry key names, never values."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.api.deps import Services, control_plane, require, services
from podium.services.control_plane import ControlPlane
from podium.services.endpoints import readable
from podium.services.rollouts import RolloutService
from podium.services.secrets import SecretInfo

router = APIRouter(prefix="/v0/secrets", tags=["secrets"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a number must be finite


class SecretCreate(Strict):
    name: str = Field(min_length=1, max_length=128, description="e.g. hf-token; selectors: name, name@2, id")
    description: str = Field(default="", max_length=10_000)
    payload: dict[str, str] = Field(
        max_length=256, description="KEY -> value, e.g. {'AUTH_TOKEN': '…'}; never shown again"
    )


class SecretVersionCreate(Strict):
    payload: dict[str, str] = Field(max_length=256, description="the whole payload of the new version")


class SecretVersionOut(Strict):
    version: int
    keys: list[str]
    created_at: float


class SecretOut(Strict):
    id: str
    name: str
    description: str
    latest_version: int
    keys: list[str]
    versions: list[SecretVersionOut]
    used_by: list[str]
    created_at: float
    updated_at: float


class SecretsOut(Strict):
    secrets: list[SecretOut]


async def _users(svc: Services, info: SecretInfo) -> list[str]:
    rows = await svc.endpoints.store.list_endpoints()
    return ControlPlane.users_of_secret(readable(rows), info.id, info.name)


async def _out(svc: Services, info: SecretInfo) -> SecretOut:
    return SecretOut(
        id=info.id,
        name=info.name,
        description=info.description,
        latest_version=info.latest_version,
        keys=info.keys,
        versions=[SecretVersionOut(version=v.version, keys=v.keys, created_at=v.created_at) for v in info.versions],
        used_by=await _users(svc, info),
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


@router.post("", status_code=201, response_model=SecretOut)
async def create_secret(
    body: SecretCreate,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> SecretOut:
    return await _out(svc, await plane.secrets.create(body.name, body.payload, body.description))


@router.get("", response_model=SecretsOut)
async def list_secrets(
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("read")),
) -> SecretsOut:
    return SecretsOut(secrets=[await _out(svc, i) for i in await plane.secrets.list_all()])


@router.get("/{selector}", response_model=SecretOut)
async def get_secret(
    selector: str,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("read")),
) -> SecretOut:
    return await _out(svc, await plane.secrets.info(selector))


@router.post("/{selector}/versions", status_code=201, response_model=SecretOut)
async def add_secret_version(
    selector: str,
    body: SecretVersionCreate,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> SecretOut:
    """Endpoints reading the secret unpinned get a new revision (their replicas roll to the new version);
    endpoint tokens that follow the secret rotate at once."""
    info = await plane.secrets.add_version(selector, body.payload)
    await svc.endpoints.refresh_secret_tokens(info.id, info.name)
    await RolloutService(svc.endpoints).roll_secret(info.id, info.name, info.latest_version)  # a new revision
    return await _out(svc, info)


@router.delete("/{selector}", status_code=204)
async def delete_secret(
    selector: str,
    svc: Services = Depends(services),
    plane: ControlPlane = Depends(control_plane),
    _: object = Depends(require("admin")),
) -> Response:
    """409 while an endpoint refers to it (env, registry or token)."""
    info = await plane.secrets.info(selector)
    await plane.secrets.delete(info.id, await _users(svc, info))
    return Response(status_code=204)
