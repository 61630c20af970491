"""How the registry plugs into a process: the catalog learns the ready models at start (a synchronous
read, before the loop runs), and the API builds one `ModelService` per app on first use.

Split roles: the API process updates its catalog on every change; a separate controller process reads
the registry at start and again whenever an endpoint names a model its catalog does not know
(`Catalog.set_custom_loader`), so a model registered after it started still deploys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fastapi import Request
from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from podium.catalog.custom import CustomModel
from podium.models.files import ModelFiles
from podium.models.service import ModelService, custom_models
from podium.models.table import ModelRow
from podium.services.endpoints import readable
from podium.services.revisions import roll_same_spec
from podium.settings import Settings
from podium.store.repos import Store


def sync_url(async_url: str) -> str:
    return async_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def read_models(db_url: str) -> list[CustomModel]:
    """The ready models, read with a synchronous driver (start-up, or a catalog miss in the controller)."""
    engine = create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            rows = [ModelRow(**dict(r._mapping)) for r in conn.execute(select(ModelRow.__table__))]
    except SQLAlchemyError:
        return []  # no table yet (a gateway role never migrates): nothing registered
    finally:
        engine.dispose()
    return custom_models(rows)


class CustomModelSink(Protocol):
    """What the registry needs of the catalog (podium.catalog.Catalog has both)."""

    def set_custom_models(self, models: Sequence[CustomModel]) -> None: ...
    def set_custom_loader(self, loader: Callable[[], Sequence[CustomModel]]) -> None: ...


def attach_registry(catalog: CustomModelSink, settings: Settings) -> None:
    """At start: the catalog offers the registered models, and can re-read them on a miss."""
    catalog.set_custom_models(read_models(settings.db_url))
    catalog.set_custom_loader(lambda: read_models(settings.db_url))


async def deployments_of(store: Store, name: str) -> list[tuple[str, str]]:
    """(endpoint id, routing key) of the endpoints that deploy the model `name`."""
    rows = readable(await store.list_endpoints())
    return [
        (row.id, row.routing_key)
        for row, spec in rows
        if spec.template is not None and spec.template.model_name == name
    ]


async def roll_base(store: Store, hint: Callable[[str], None], base: str, change: str) -> list[str]:
    """An adapter of `base` was registered (`change` "+name") or deleted ("-name"): a new revision
    (changes `adapters (+name)`) of each endpoint that deploys `base`, so its replicas roll surge-first to
    ones that load the new set. The endpoints rolled."""
    rolled = []
    for row, spec in readable(await store.list_endpoints()):
        if row.deleting or spec.template is None or spec.template.model_name != base:
            continue
        await roll_same_spec(store, row, spec, [f"adapters ({change})"], f"adapters of {base}: {change}")
        hint(row.id)
        rolled.append(row.id)
    return rolled


async def model_service(request: Request) -> ModelService:
    """FastAPI dependency: the app's registry, built (and recovered) once, kept on the app's state."""
    state = request.app.state
    svc: ModelService | None = getattr(state, "models", None)
    if svc is None:
        services = state.services
        store = services.endpoints.store
        plane = services.control_plane
        catalog = services.catalog

        async def deployments(name: str) -> list[tuple[str, str]]:
            return await deployments_of(store, name)

        async def volume_dir(name: str) -> str:
            return await plane.volumes.host_source(name)

        def is_template(name: str) -> bool:
            return bool(catalog is not None and hasattr(catalog, "is_template") and catalog.is_template(name))

        def on_change(models: list[CustomModel]) -> None:
            if catalog is not None and hasattr(catalog, "set_custom_models"):  # a test's stand-in may lack it
                catalog.set_custom_models(models)

        async def roll(base: str, change: str) -> list[str]:
            return await roll_base(store, services.endpoints.hint, base, change)

        settings: Settings = services.settings
        svc = ModelService(store, ModelFiles(settings.models_dir), deployments, volume_dir, on_change,
                           settings.model_quota_bytes, is_template, roll)  # fmt: skip
        state.models = svc
        await svc.recover()
    return svc
