"""The control-plane ASGI app (also the fallback for every non-gateway path of the listener)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from podium import __version__
from podium.api.deps import Services
from podium.api.errors import install_error_handlers
from podium.api.routers import catalog, dedicated, endpoints, logs, models, secrets, tokens, usage, volumes
from podium.api.routers import revisions as revisions_router
from podium.services.control_plane import build_control_plane


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Podium",
        version=__version__,
        docs_url=None,  # served by `_install_docs`, from local assets: a GPU box may have no internet
        openapi_url="/v0/openapi.json",
        redoc_url=None,
    )
    app.state.services = services
    _attach_control_plane(services)
    install_error_handlers(app)
    _install_docs(app)
    app.include_router(dedicated.router)  # before /v0/endpoints: `/templates` is not an id
    app.include_router(endpoints.router)
    app.include_router(revisions_router.router)  # /v0/endpoints/{id}/revisions|rollback|promote (issue 13)
    app.include_router(secrets.router)
    app.include_router(volumes.router)
    app.include_router(catalog.router)
    app.include_router(tokens.router)
    app.include_router(logs.router)
    app.include_router(usage.router)
    app.include_router(models.router)  # /v0/models: your own weights (issue 20)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app


DOCS_ASSETS = "/v0/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """`/v0/docs` with Swagger UI's files served by Podium itself (the `swagger-ui-bundle` package),
    not from a CDN: the console's API link must work on a machine that reaches no network."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/v0/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/v0/docs/openapi.json",
            title="Podium API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    @app.get("/v0/docs/openapi.json", include_in_schema=False)
    async def docs_schema() -> JSONResponse:
        """The schema as Swagger UI 4 (the newest the package bundles) reads it: FastAPI labels it
        3.1.0, which that UI refuses ("Unable to render this definition"); labelled 3.0.3 it renders.
        `/v0/openapi.json` itself is unchanged."""
        return JSONResponse({**app.openapi(), "openapi": "3.0.3"})


def _attach_control_plane(services: Services) -> None:
    """Secrets, volumes, platforms and capacity: built here unless `podium up` passed one in (then the
    controller's secret resolver and the API share it)."""
    plane = services.control_plane
    if plane is None:
        plane = build_control_plane(services.settings, services.endpoints.store, services.catalog)
        services.control_plane = plane
    if services.endpoints.plane is None:
        services.endpoints.plane = plane
