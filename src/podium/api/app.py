"""The control-plane ASGI app (also the fallback for every non-gateway path of the listener)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from podium import __version__
from podium.api.deps import Services
from podium.api.errors import install_error_handlers
from podium.api.routers import endpoints, logs, tokens, usage


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Podium",
        version=__version__,
        docs_url="/v0/docs",
        openapi_url="/v0/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(endpoints.router)
    app.include_router(tokens.router)
    app.include_router(logs.router)
    app.include_router(usage.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
