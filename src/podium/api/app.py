"""The control-plane ASGI app (also the fallback for every non-gateway path of the listener)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from podium import __version__
from podium.api.deps import Services
from podium.api.errors import install_error_handlers
from podium.api.routers import catalog, dedicated, endpoints, logs, secrets, tokens, usage, volumes
from podium.services.control_plane import build_control_plane


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Podium",
        version=__version__,
        docs_url="/v0/docs",
        openapi_url="/v0/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    _attach_control_plane(services)
    install_error_handlers(app)
    app.include_router(dedicated.router)  # before /v0/endpoints: `/templates` is not an id
    app.include_router(endpoints.router)
    app.include_router(secrets.router)
    app.include_router(volumes.router)
    app.include_router(catalog.router)
    app.include_router(tokens.router)
    app.include_router(logs.router)
    app.include_router(usage.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def _attach_control_plane(services: Services) -> None:
    """Secrets, volumes, platforms and capacity: built here unless `podium up` passed one in
    one."""
    plane = services.control_plane
    if plane is None:
        plane = build_control_plane(services.settings, services.endpoints.store, services.catalog)
        services.control_plane = plane
    if services.endpoints.plane is None:
        services.endpoints.plane = plane
