"""How the parts of `podium up` are built: once, in order, each from the parts before it.

    store -> catalog -> control plane -> runtimes (one per region)   `foundation`
    -> route book -> gateway -> controller -> autoscaler              `control_loop` (+ `Gateway` in run_all)
    -> api app                                                        `api_app`
    -> listener                                                       processes.py

Every role (processes.py) calls these in this order and takes only what it runs. There are no
late-bound parts: the one loop in the graph (the gateway wakes the autoscaler, the autoscaler reads
the gateway's stats and hints the controller, the controller publishes to the gateway) is cut by a
channel: the gateway's wake-ups go into a queue built first, drained into the autoscaler once it
exists (`forward_wakes`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from podium.api.app import create_app
from podium.api.deps import Decisions, Services
from podium.autoscaler.loop import Autoscaler, StatsSource
from podium.catalog import Catalog
from podium.console.actions import router as console_actions
from podium.console.pages import router as console_router
from podium.controller.gpu_pool import GpuPool
from podium.controller.loop import Controller
from podium.controller.ports import RoutePublisher
from podium.core.stats import EndpointStats
from podium.runtime.base import RuntimeBackend
from podium.runtime.local import LocalBackend
from podium.services.control_plane import ControlPlane, build_control_plane
from podium.services.endpoints import EndpointService
from podium.services.scaling import StoreScalingAdapter
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.repos import Store

LOCAL_REGION = "local"


@dataclass(frozen=True)
class Foundation:
    """What every role but `gateway` stands on."""

    store: Store
    catalog: Catalog
    plane: ControlPlane  # secrets, volumes, platforms, capacity: one for the API and the controller
    runtimes: Mapping[str, RuntimeBackend]  # region -> where its replicas run

    @property
    def runtime(self) -> RuntimeBackend:
        """The runtime of the region this controller reconciles (today: `local`)."""
        return self.runtimes[LOCAL_REGION]


@dataclass(frozen=True)
class ControlLoop:
    controller: Controller
    autoscaler: Autoscaler


def foundation(settings: Settings) -> Foundation:
    store = Store(settings.db_url)
    catalog = load_catalog(settings)
    plane = build_control_plane(settings, store, catalog)
    return Foundation(store, catalog, plane, runtimes_of(settings, catalog))


def load_catalog(settings: Settings) -> Catalog:
    extra = [Path(p) for p in os.environ.get("PODIUM_CATALOG_DIR", "").split(os.pathsep) if p]
    return Catalog.load([settings.data_dir / "catalog", *extra])


def runtimes_of(settings: Settings, catalog: Catalog) -> dict[str, RuntimeBackend]:
    """region -> its runtime backend, as the catalog declares it. Today only the `local` region runs
    replicas: processes here (`local`) or containers in the Docker/Podman engine at DOCKER_HOST
    (`docker`). Another region's runtime (e.g. Ray) is one more entry here."""
    return {LOCAL_REGION: _runtime(settings, LOCAL_REGION, catalog.region(LOCAL_REGION).runtime)}


def _runtime(settings: Settings, region: str, kind: str) -> RuntimeBackend:
    if kind == "docker":
        from podium.runtime.docker import DockerBackend

        return DockerBackend(settings.data_dir)
    if kind != "local":
        raise SystemExit(f"error: region {region}: runtime {kind!r} is not available (use local or docker)")
    return LocalBackend(settings.data_dir)


def control_loop(
    settings: Settings, base: Foundation, publisher: RoutePublisher, sources: Sequence[StatsSource]
) -> ControlLoop:
    """The controller (publishing to `publisher`), then the autoscaler reading `sources` and hinting it."""
    controller = Controller(
        base.store,
        base.runtime,
        publisher,
        tuning=settings.controller,
        catalog=base.catalog,
        refs=base.plane,  # secrets, registry credentials, named volumes
        gpus=GpuPool(base.catalog.region(LOCAL_REGION).gpu_devices()),
    )
    autoscaler = Autoscaler(StoreScalingAdapter(base.store), sources, on_change=controller.hint)
    return ControlLoop(controller, autoscaler)


async def forward_wakes(wakes: asyncio.Queue[str], autoscaler: Autoscaler) -> None:
    """The in-process gateway's wake-ups (a request held at zero replicas) to the autoscaler."""
    while True:
        autoscaler.wake(await wakes.get())


async def api_app(
    settings: Settings,
    base: Foundation,
    admin_token: str,
    hint: Callable[[str], None],
    tokens_changed: Callable[[], None],
    decisions: Decisions | None,
) -> FastAPI:
    """The control plane and console. `hint`: wakes the controller after a write (in this process or
    over HTTP); `tokens_changed`: republishes the gateways' token books."""
    tokens = TokenService(base.store, on_change=tokens_changed)
    await tokens.ensure_bootstrap(admin_token)
    validate = SourceValidator(base.catalog, base.runtime.name)
    endpoints = EndpointService(base.store, hint, validate, plane=base.plane)
    services = Services(
        settings,
        tokens,
        endpoints,
        control_plane=base.plane,
        catalog=base.catalog,
        runtime=base.runtime,
        decisions=decisions,
    )
    app = create_app(services)
    app.include_router(console_router)
    app.include_router(console_actions)
    return app


def local_stats(stats: Callable[[], Mapping[str, EndpointStats]]) -> StatsSource:
    """An in-process gateway's stats as the autoscaler reads sources (awaitable)."""

    async def source() -> Mapping[str, EndpointStats]:
        return stats()

    return source
