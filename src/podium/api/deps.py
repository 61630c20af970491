"""Request-scoped dependencies: the services container and scope checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from podium.autoscaler.context import Decision
from podium.catalog import Catalog
from podium.core.errors import PodiumError
from podium.core.stats import EngineLoad
from podium.runtime.base import RuntimeBackend
from podium.services.control_plane import ControlPlane
from podium.services.endpoints import EndpointService
from podium.services.tokens import Principal, TokenService
from podium.settings import Settings


class Decisions(Protocol):
    """The autoscaler's latest reasons, when it runs in this process."""

    def last_decision(self, endpoint_id: str) -> Decision | None: ...
    def replica_engine(self, replica_id: str) -> dict[str, Any] | None: ...
    def endpoint_engine(self, endpoint_id: str) -> EngineLoad | None: ...


@runtime_checkable
class Refreshing(Protocol):
    """Decisions kept by another process (the api role reads the controller's engine samples): brought
    up to date, behind a short cache, before a request reads them."""

    async def refresh(self) -> None: ...


async def fresh_decisions(svc: Services) -> None:
    if isinstance(svc.decisions, Refreshing):
        await svc.decisions.refresh()


@dataclass
class Services:
    """Everything the routers call, built once by `podium up` and hung on app.state. Optional parts are
    None where this process has none (no autoscaler in `--role api`; tests leave out what they skip)."""

    settings: Settings
    tokens: TokenService
    endpoints: EndpointService
    control_plane: ControlPlane | None = None  # None: create_app builds one (tests, embedders)
    catalog: Catalog | None = None
    runtime: RuntimeBackend | None = None  # reads replica logs
    decisions: Decisions | None = None


_BEARER = HTTPBearer(auto_error=False, description="a platform token: Authorization: Bearer <token>")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """`Depends(require("read"))`: 401 without a valid token, 403 when it lacks the scope."""

    async def dep(
        request: Request,
        svc: Services = Depends(services),
        _: HTTPAuthorizationCredentials | None = Security(_BEARER),  # documents the scheme in OpenAPI
    ) -> Principal:
        principal = await svc.tokens.authenticate(_bearer(request))
        principal.require(scope)
        return principal

    return dep


def control_plane(request: Request) -> ControlPlane:
    """Secrets, volumes and the catalog view, built by `create_app` when `podium up` did not."""
    plane: ControlPlane | None = request.app.state.services.control_plane
    assert plane is not None  # create_app attaches one
    return plane


def data_plane_urls(svc: Services) -> Callable[[str], str]:
    """region -> the base URL clients call (the region's `data_plane_url`, else this listener)."""
    plane = svc.control_plane

    def url(region: str) -> str:
        custom = None
        if plane is not None:
            try:
                custom = getattr(plane.catalog.region(region), "data_plane_url", None)
            except PodiumError:
                custom = None
        if isinstance(custom, str) and custom:
            return custom.rstrip("/").removesuffix("/v1")
        return svc.settings.base_url

    return url
