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
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from podium.api.app import create_app
from podium.api.deps import Decisions, Services
from podium.autoscaler.loop import Autoscaler, StatsSource
from podium.catalog import Catalog
from podium.catalog.catalog import Region
from podium.console.actions import router as console_actions
from podium.console.pages import router as console_router
from podium.controller.engine_metrics import DEFAULT_BUSY_WAITING, EngineWatch
from podium.controller.gpu_pool import GpuPool
from podium.controller.loop import Controller
from podium.controller.ports import RoutePublisher
from podium.core.stats import EndpointStats
from podium.models.wiring import attach_registry
from podium.runtime.base import RuntimeBackend
from podium.runtime.local import LocalBackend
from podium.runtime.regional import RegionalBackend
from podium.services.control_plane import ControlPlane, build_control_plane
from podium.services.endpoints import EndpointService
from podium.services.scaling import StoreScalingAdapter
from podium.services.token_meter import TokenMeter, UsageSource
from podium.services.tokens import TokenService
from podium.services.usage import token_store
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.repos import Store

LOCAL_REGION = "local"
log = logging.getLogger("podium")


@dataclass(frozen=True)
class Foundation:
    """What every role but `gateway` stands on."""

    store: Store
    catalog: Catalog
    plane: ControlPlane  # secrets, volumes, platforms, capacity: one for the API and the controller
    runtime: RegionalBackend  # every region's replicas, each through its own region's backend

    @property
    def runtimes(self) -> Mapping[str, RuntimeBackend]:
        """region -> where its replicas run."""
        return self.runtime.backends


@dataclass(frozen=True)
class ControlLoop:
    controller: Controller
    autoscaler: Autoscaler
    engine: EngineWatch  # scrapes the replicas' engine metrics beside the tick (run it as a task)
    meter: TokenMeter  # books the gateways' token counts per endpoint and API token (run it as a task)


def foundation(settings: Settings) -> Foundation:
    store = Store(settings.db_url)
    catalog = load_catalog(settings)
    attach_registry(catalog, settings)  # registered models (/v0/models) are templates too
    plane = build_control_plane(settings, store, catalog)
    return Foundation(store, catalog, plane, RegionalBackend(runtimes_of(settings, catalog), LOCAL_REGION))


def load_catalog(settings: Settings) -> Catalog:
    extra = [Path(p) for p in os.environ.get("PODIUM_CATALOG_DIR", "").split(os.pathsep) if p]
    return Catalog.load([settings.data_dir / "catalog", *extra])


def runtimes_of(settings: Settings, catalog: Catalog) -> dict[str, RuntimeBackend]:
    """region -> its runtime backend, as the catalog declares it: processes here (`local`), containers
    in the Docker/Podman engine at the region's docker_host or DOCKER_HOST (`docker`), actors on the
    Ray cluster at its ray_address (`ray`). Backends connect lazily: an engine or cluster that cannot
    be reached shows on its endpoints (RuntimeUnavailable), it does not stop `podium up`."""
    local: RuntimeBackend | None = None  # host processes: one backend for every local region (one records dir)
    runtimes: dict[str, RuntimeBackend] = {}
    for region in catalog.regions():
        if region.runtime == "local":
            local = local or LocalBackend(settings.data_dir)
            runtimes[region.name] = local
        else:
            runtimes[region.name] = _runtime(settings, region, catalog)
    return runtimes


def _runtime(settings: Settings, region: Region, catalog: Catalog) -> RuntimeBackend:
    if region.runtime == "docker":
        from podium.runtime.docker import DockerBackend

        return DockerBackend(settings.data_dir, docker_host=region.docker_host)
    if region.runtime == "ray":
        from podium.runtime.docker_engine import installation_id
        from podium.runtime.ray import RayBackend

        if not region.ray_address:
            raise SystemExit(f"error: region {region.name}: runtime ray needs ray_address: HOST:PORT")
        return RayBackend(
            region.ray_address,
            settings.data_dir / "regions" / region.name,  # its own records: two Ray regions never mix
            installation=installation_id(settings.data_dir),  # the one id of this Podium (docker's too)
            gpu_types=catalog.gpu_types(),
            node_dir=region.ray_node_dir or "/tmp/podium-ray",
        )
    raise SystemExit(
        f"error: region {region.name}: runtime {region.runtime!r} is not available (use local, docker or ray)"
    )


def control_loop(
    settings: Settings,
    base: Foundation,
    publisher: RoutePublisher,
    sources: Sequence[StatsSource],
    usage: Sequence[UsageSource] = (),
) -> ControlLoop:
    """The controller (publishing to `publisher` through the engine watch, which adds each replica's
    engine queue to its route), then the autoscaler reading `sources` and the engines, hinting it."""
    engine = EngineWatch(publisher)
    controller = Controller(
        base.store,
        base.runtime,
        engine,
        tuning=settings.controller,
        catalog=base.catalog,
        refs=base.plane,  # secrets, registry credentials, named volumes
        gpus=GpuPool(base.catalog.region(LOCAL_REGION).gpu_devices()),
    )
    autoscaler = Autoscaler(
        StoreScalingAdapter(base.store),
        sources,
        on_change=controller.hint,
        engine=engine.endpoint,
        replica_engine=engine.sample_json,
    )
    engine.busy_waiting = lambda eid: autoscaler.engine_queue_limit(eid) or DEFAULT_BUSY_WAITING
    return ControlLoop(controller, autoscaler, engine, TokenMeter(token_store(base.store), usage))


async def watch_nodes(base: Foundation, stop: asyncio.Event, every_s: float = 2.0) -> None:
    """Regions whose runtime lists its machines (Ray: `nodes()`): their inventory follows nodes that join
    and leave (catalog.set_nodes), for admission and GET /v0/regions. An unreachable cluster keeps the
    last inventory known and logs once per outage."""
    watched = {name: b for name, b in base.runtimes.items() if callable(getattr(b, "nodes", None))}
    failing: set[str] = set()
    while watched and not stop.is_set():
        for name, backend in watched.items():
            try:
                nodes = await backend.nodes()  # type: ignore[attr-defined]
            except Exception as exc:
                if name not in failing:
                    log.warning("region %s: cannot read its nodes: %s", name, exc)
                failing.add(name)
                continue
            failing.discard(name)
            base.catalog.set_nodes(name, [dataclasses.asdict(n) for n in nodes])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


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
    validate = SourceValidator(base.catalog, None)  # each region's own runtime
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
