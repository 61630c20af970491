"""From an endpoint spec to what a runtime backend starts (LaunchSpec), and to the gateway route.

Secrets are resolved here, at replica start, so a rotated secret reaches every new replica.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from podium.core.errors import Invalid
from podium.core.specs import EndpointSpec, VolumeMode, parse_size
from podium.gateway.routes import EndpointRoute, ReplicaRoute
from podium.runtime.base import LaunchSpec, VolumeBind
from podium.store.tables import EndpointRow


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


class RecipeResolver(Protocol):
    def resolve(self, model_name: str, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> RecipeLike: ...


# ENV_KEY -> secret selector  ==>  ENV_KEY -> value (raises NotFound for unknown secrets)
SecretEnvResolver = Callable[[dict[str, str]], Awaitable[dict[str, str]]]


async def no_secrets(selectors: dict[str, str]) -> dict[str, str]:
    if selectors:
        raise Invalid("container.env_secrets", "secrets are not configured on this server")
    return {}


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
        {},
        recipe.health_check_path,
        spec.served_model_name or recipe.served_model_name or t.model_name,
    )


async def launch_spec(
    *,
    replica_id: str,
    row: EndpointRow,
    spec: EndpointSpec,
    work: Workload,
    gpus: tuple[int, ...],
    secrets: SecretEnvResolver,
) -> LaunchSpec:
    env = dict(work.env)
    env.update(await secrets(work.env_secrets))
    env.update(
        {
            "PODIUM_ENDPOINT_ID": row.id,
            "PODIUM_REPLICA_ID": replica_id,
            "PODIUM_ROUTING_KEY": row.routing_key,
            "PODIUM_SERVED_MODEL_NAME": work.served_model_name or row.routing_key,
        }
    )
    volumes = tuple(VolumeBind(v.source, v.container_path, v.mode == VolumeMode.RO) for v in spec.volumes)
    registry = spec.container.registry if spec.container else None
    return LaunchSpec(
        replica_id=replica_id,
        endpoint_id=row.id,
        command=work.command,
        image=work.image,
        env=env,
        container_port=work.port,
        gpus=gpus,
        volumes=volumes,
        shm_size_bytes=parse_size(spec.compute.shm_size),
        registry_username=registry.username if registry else None,
        registry_password=registry.password if registry else None,
    )


def route_of(
    row: EndpointRow, spec: EndpointSpec, work: Workload | None, ready: list[tuple[str, str]]
) -> EndpointRoute:
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
        replicas=tuple(ReplicaRoute(rid, addr) for rid, addr in ready),
    )
