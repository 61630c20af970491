"""From an endpoint spec to what a runtime backend starts (LaunchSpec), and to the gateway route.

Secrets are resolved here, at replica start, so a rotated secret reaches every new replica.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from podium.core.errors import Invalid
from podium.core.specs import SEALED_PREFIX, EndpointSpec, VolumeMode, parse_size
from podium.gateway.routes import EndpointRoute, ReplicaRoute, adapter_routing_key
from podium.runtime.base import LaunchSpec, VolumeBind
from podium.store.tables import EndpointRow

CONTAINER_MODEL_CACHE = "/root/.cache/huggingface"  # HF_HOME inside template containers (the region's cache)


class RecipeLike(Protocol):
    """What the controller reads of a catalog recipe (read-only: recipes are frozen)."""

    @property
    def command(self) -> list[str] | None: ...
    @property
    def image(self) -> str | None: ...
    @property
    def args(self) -> list[str]: ...
    @property
    def port(self) -> int: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def health_check_path(self) -> str: ...
    @property
    def served_model_name(self) -> str | None: ...
    @property
    def ready_by_generating(self) -> bool: ...


class RecipeResolver(Protocol):
    def resolve(self, model_name: str, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> RecipeLike: ...


class References(Protocol):
    """What a spec names and the controller resolves at replica start (the control plane implements it):
    secrets are read then, so a rotated secret reaches every new replica."""

    async def resolve_env(self, selectors: dict[str, str]) -> dict[str, str]: ...
    async def registry_credentials(self, selector: str) -> tuple[str, str]: ...
    async def registry_password(self, endpoint_id: str, stored: str) -> str: ...
    async def volume_source(self, source: str) -> str: ...


class NoReferences:
    """For a controller without a control plane (tests): nothing to resolve, names pass through."""

    async def resolve_env(self, selectors: dict[str, str]) -> dict[str, str]:
        if selectors:
            raise Invalid("container.env_secrets", "secrets are not configured on this server")
        return {}

    async def registry_credentials(self, selector: str) -> tuple[str, str]:
        raise Invalid("container.registry.secret", "secrets are not configured on this server")

    async def registry_password(self, endpoint_id: str, stored: str) -> str:
        if stored.startswith(SEALED_PREFIX):
            raise Invalid("container.registry.password", "secrets are not configured on this server")
        return stored

    async def volume_source(self, source: str) -> str:
        return source


@dataclass(frozen=True)
class Workload:
    """The runnable form of a spec: command or image, port and health path, whatever the source."""

    command: list[str] | None
    image: str | None
    port: int
    env: dict[str, str]
    env_secrets: dict[str, str]
    health_check_path: str
    served_model_name: str | None
    image_args: list[str] = field(default_factory=list)  # for the image's own entrypoint (container runtimes)
    command_is_local: bool = False  # a template's host command: container runtimes run the image instead
    ready_by_generating: bool = False  # an engine template: ready once it completes one token, not once it lists
    model_cache_dir: str | None = None  # a template's weights cache on the host: bound into containers
    start_timeout_s: float | None = None  # a template's own start timeout (big weights load slowly)
    weights: str | None = None  # a template's hub id or path: its replicas' events say if the cache has it
    adapters: tuple[str, ...] = ()  # LoRA adapters (registered models) its replicas serve beside the model


def workload_of(spec: EndpointSpec, routing_key: str, catalog: RecipeResolver | None) -> Workload:
    if spec.container is not None:
        c = spec.container
        command = [*shlex.split(c.command), *c.args] if c.command else None
        return Workload(
            command,
            c.image,
            c.port,
            dict(c.env),
            dict(c.env_secrets),
            spec.health_check_path,
            spec.served_model_name or routing_key,
            image_args=[] if c.command else list(c.args),
        )
    assert spec.template is not None
    if catalog is None:
        raise Invalid("template", "no template catalog is loaded")
    t, comp = spec.template, spec.compute
    recipe = catalog.resolve(t.model_name, t.flavor_name, comp.gpu_type, comp.gpu_count, comp.region)
    command = [*recipe.command, *recipe.args] if recipe.command else None
    return Workload(
        command,
        recipe.image,
        recipe.port,
        dict(recipe.env),
        {**getattr(recipe, "env_secrets", {}), **t.env_secrets},  # the endpoint's own over the region's
        recipe.health_check_path,
        spec.served_model_name or recipe.served_model_name or t.model_name,
        image_args=list(getattr(recipe, "container_args", [])),
        command_is_local=True,
        ready_by_generating=recipe.ready_by_generating,
        model_cache_dir=getattr(recipe, "model_cache_dir", None),
        start_timeout_s=getattr(recipe, "start_timeout_s", None),
        weights=getattr(recipe, "weights", None) or None,
        adapters=tuple(getattr(recipe, "adapters", ())),
    )


async def launch_spec(
    *,
    replica_id: str,
    row: EndpointRow,
    spec: EndpointSpec,
    work: Workload,
    gpus: tuple[int, ...],
    refs: References,
    container_runtime: bool = False,
    runtime_places: bool = False,
) -> LaunchSpec:
    """`container_runtime`: the backend runs images (docker); `runtime_places`: the backend chooses the
    node and the GPUs itself (ray), so it gets the GPU type and count to ask its scheduler for."""
    env = dict(work.env)
    env.update(await refs.resolve_env(work.env_secrets))
    env.update(
        {
            "PODIUM_ENDPOINT_ID": row.id,
            "PODIUM_REPLICA_ID": replica_id,
            "PODIUM_ROUTING_KEY": row.routing_key,
            "PODIUM_SERVED_MODEL_NAME": work.served_model_name or row.routing_key,
        }
    )
    binds = [
        VolumeBind(await refs.volume_source(v.source), v.container_path, v.mode == VolumeMode.RO) for v in spec.volumes
    ]
    if container_runtime and work.model_cache_dir:  # weights downloaded once per region, not per replica
        binds.append(VolumeBind(work.model_cache_dir, CONTAINER_MODEL_CACHE, False))
        env["HF_HOME"] = CONTAINER_MODEL_CACHE
    volumes = tuple(binds)
    registry = spec.container.registry if spec.container else None
    user, password = (registry.username, registry.password) if registry else (None, None)
    if registry and registry.secret:
        user, password = await refs.registry_credentials(registry.secret)
    elif password:  # stored sealed with the master key
        password = await refs.registry_password(row.id, password)
    return LaunchSpec(
        replica_id=replica_id,
        endpoint_id=row.id,
        command=None if container_runtime and work.command_is_local else work.command,
        image=work.image if container_runtime else None,
        args=tuple(work.image_args) if container_runtime else (),
        env=env,
        container_port=work.port,
        gpus=gpus,
        volumes=volumes,
        shm_size_bytes=parse_size(spec.compute.shm_size),
        registry_username=user,
        registry_password=password,
        region=spec.compute.region,
        gpu_type=_scheduled_gpu_type(spec) if runtime_places else None,
        gpu_count=spec.compute.gpu_count if runtime_places else None,
    )


def _scheduled_gpu_type(spec: EndpointSpec) -> str | None:
    """The catalog GPU type a placing runtime must match (None: a CPU replica, any node)."""
    c = spec.compute
    return c.gpu_type if c.gpu_count > 0 and c.gpu_type != "cpu" else None


def route_of(
    row: EndpointRow,
    spec: EndpointSpec,
    work: Workload | None,
    ready: list[tuple[str, str]],
    revisions: Mapping[str, int] | None = None,
    canary: tuple[int, float] | None = None,
    previous: EndpointRoute | None = None,
) -> EndpointRoute:
    """`revisions`: replica id -> the revision it runs; `canary`: (revision, percent of requests) while a
    canary holds (gateway/balancer.py splits requests by it); `previous`: the route published last."""
    revs = revisions or {}
    served = work.served_model_name if work else None
    s = spec.scaling
    return EndpointRoute(
        endpoint_id=row.id,
        routing_key=row.routing_key,
        app_name=row.app_name,
        served_model_name=served if served and served != row.routing_key else None,
        enabled=spec.enabled and not row.deleting,
        auth_token_sha256=row.auth_token_sha256,
        max_concurrency=s.max_concurrency,
        queue_size=s.queue_size,
        queue_timeout_s=s.queue_timeout_s,
        cold_start_timeout_s=s.cold_start_timeout_s,
        request_timeout_s=s.request_timeout_s,
        replicas=tuple(ReplicaRoute(rid, addr, revs.get(rid, 0)) for rid, addr in ready),
        region=spec.compute.region,
        routing_policy=spec.routing.resolved(spec.template is not None, _scheduled_gpu_type(spec) is not None).value,
        canary_revision=canary[0] if canary else None,
        canary_percent=canary[1] if canary else 0.0,
        adapters=_adapters(row, work, ready, revs, previous),
    )


def _adapters(
    row: EndpointRow,
    work: Workload | None,
    ready: list[tuple[str, str]],
    revs: Mapping[str, int],
    previous: EndpointRoute | None,
) -> tuple[tuple[str, str], ...]:
    """The adapters' (routing key, served name). While replicas of an older revision still serve, an
    adapter the previous route lacked stays out: those replicas started before it was registered and
    would answer its requests with the base model (docs/models.md). One that went leaves at once."""
    keys = tuple((adapter_routing_key(row.routing_key, a), a) for a in work.adapters) if work else ()
    if previous is not None and any(revs.get(rid, row.generation) != row.generation for rid, _ in ready):
        keys = tuple(k for k in keys if k in previous.adapters)
    return keys
