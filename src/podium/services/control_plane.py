"""The control plane's checks around endpoints: secrets, volumes, platforms/presets and capacity.

`ControlPlane` bundles the services endpoints depend on; `admit` is the one gate every spec passes
at create, PATCH and start: it fills what a platform/preset implies, turns unknown references into
422s naming the field, and reserves min replicas (409 with the numbers). It writes nothing, so a
refused request leaves nothing half-created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.catalog.inventory import cuda_version_key
from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.specs import EndpointSpec
from podium.services.capacity import CPU, demand_of, require_capacity, reservations
from podium.services.catalog_view import CatalogLike, CatalogView
from podium.services.references import secret_refs, selector_ref, volume_refs
from podium.services.secrets import SecretService, load_master_key, registry_aad
from podium.services.volumes import VolumeService
from podium.settings import Settings
from podium.store.repos import Store
from podium.store.tables import EndpointRow


@dataclass
class ControlPlane:
    secrets: SecretService
    volumes: VolumeService
    catalog: CatalogView

    async def resolve_env(self, selectors: dict[str, str]) -> dict[str, str]:
        """For Controller(secrets=...): ENV_KEY -> selector  ==>  ENV_KEY -> value."""
        return await self.secrets.resolve_env(selectors)

    async def registry_credentials(self, selector: str) -> tuple[str, str]:
        """For the controller: `--registry-secret` -> (REGISTRY_USERNAME, REGISTRY_PASSWORD)."""
        _, _, payload = await self.secrets.resolve(selector)
        return payload.get("REGISTRY_USERNAME", ""), payload.get("REGISTRY_PASSWORD", "")

    async def registry_password(self, endpoint_id: str, stored: str) -> str:
        """For the controller: an inline registry password as stored (sealed) -> the clear password."""
        return self.secrets.sealer.open_inline(stored, registry_aad(endpoint_id))

    async def volume_source(self, source: str) -> str:
        """For the controller: a mount's source as the runtime binds it (named volume -> its directory)."""
        return await self.volumes.host_source(source)

    # --- the gate ------------------------------------------------------------------------------

    async def admit(self, spec: EndpointSpec, others: Iterable[EndpointSpec]) -> EndpointSpec:
        """Normalize and check a spec against the catalog, secrets, volumes and the region's inventory."""
        spec = self.apply_platform(spec)
        await self.check_references(spec)
        self.check_capacity(spec, others)
        return spec

    def canonical_gpu(self, spec: EndpointSpec) -> EndpointSpec:
        """The documents' GPU names (`gpu-h100-sxm`) -> the catalog's GPU type (`h100`), before any check."""
        c = spec.compute
        gpu_type = self.catalog.gpu_type(c.gpu_type)
        if gpu_type == c.gpu_type:
            return spec
        return spec.model_copy(update={"compute": c.model_copy(update={"gpu_type": gpu_type})})

    def check_hardware(self, spec: EndpointSpec) -> None:
        """Refuse at once what no replica could ever get, even with min 0 (else the first request would
        wait out the cold-start timeout): a GPU type the region has none of, a CUDA version its driver
        does not run, or a CUDA version without a GPU."""
        c = spec.compute
        wants_gpu = c.gpu_type != CPU and c.gpu_count > 0
        if c.min_cuda_version is not None and not wants_gpu:
            raise Invalid(
                "compute.min_cuda_version",
                f"CUDA {c.min_cuda_version} needs a GPU; this endpoint asks for none (gpu_type {c.gpu_type!r},"
                f" gpu_count {c.gpu_count})",
            )
        if not wants_gpu or self.catalog.catalog is None:
            return
        inventory = self.catalog.inventory(c.region)
        if inventory is None:
            return  # a region that does not count (elastic): nothing to say up front
        if inventory.get(c.gpu_type, 0) == 0:
            raise Conflict(
                f"cannot place {c.gpu_type} GPUs: region {c.region!r} has capacity 0 of them (inventory:"
                f" {inventory_text(inventory)}); choose a GPU type the region has (GET /v0/regions)",
                [{"field": "compute.gpu_type", "message": "not in the region's inventory", "inventory": inventory}],
            )
        if c.min_cuda_version is not None:
            have = self.catalog.cuda_version(c.region)
            if have is None or cuda_version_key(have) < cuda_version_key(c.min_cuda_version):
                found = f"its driver runs CUDA {have}" if have else "it reports no CUDA version (no driver found)"
                raise Conflict(
                    f"region {c.region!r} cannot run CUDA {c.min_cuda_version}: {found}",
                    [{"field": "compute.min_cuda_version", "message": found, "cuda_version": have}],
                )

    def apply_platform(self, spec: EndpointSpec) -> EndpointSpec:
        """`--platform` implies the GPU type, `--preset` the GPU count; a contradiction is a 422."""
        c = spec.compute
        if c.platform is None:
            if c.preset is not None:
                raise Invalid("compute.preset", "a preset needs --platform (see GET /v0/platforms)")
            return spec
        platform = self.catalog.platform(c.platform)
        updates: dict[str, Any] = {}
        gpu_type = platform.get("gpu_type")
        if gpu_type:
            if c.gpu_type not in ("cpu", gpu_type) and c.gpu_type != c.platform:
                raise Invalid("compute.gpu_type", f"platform {c.platform!r} has {gpu_type!r} GPUs, not {c.gpu_type!r}")
            updates["gpu_type"] = gpu_type
        presets = platform.get("presets") or []
        if c.preset is None and gpu_type not in (None, "cpu") and c.gpu_count == 0 and presets:
            smallest = min((p.get("gpu_count", 0) for p in presets if isinstance(p, dict)), default=0)
            updates["gpu_count"] = smallest  # a GPU platform without a preset: its smallest shape
        if c.preset is not None:
            preset = self.catalog.preset(platform, c.preset)
            count = preset.get("gpu_count", preset.get("gpus"))
            if isinstance(count, int):
                if c.gpu_count not in (0, count):
                    raise Invalid("compute.gpu_count", f"preset {c.preset!r} has {count} GPU(s), not {c.gpu_count}")
                updates["gpu_count"] = count
        if not updates:
            return spec
        return spec.model_copy(update={"compute": c.model_copy(update=updates)})

    async def check_references(self, spec: EndpointSpec) -> None:
        for field, selector, key in secret_refs(spec):
            try:
                if field == "container.registry.secret":
                    _, _, payload = await self.secrets.resolve(selector)
                    missing = [k for k in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD") if k not in payload]
                    if missing:
                        raise Invalid(field, f"secret {selector!r} lacks {', '.join(missing)}")
                else:
                    await self.secrets.value(selector, key)
            except (NotFound, Invalid) as exc:
                if isinstance(exc, Invalid) and exc.field == field:
                    raise
                raise Invalid(field, exc.message) from exc
        for field, name in volume_refs(spec):
            if await self.volumes.store.find_volume(name) is None:
                raise Invalid(
                    field,
                    f"unknown volume {name!r}: create it with `podium volume create --name {name}`, "
                    "or give a host path (/…) or a bucket (s3://…)",
                )

    def check_capacity(self, spec: EndpointSpec, others: Iterable[EndpointSpec]) -> None:
        demand = demand_of(spec)
        if demand.total == 0 or self.catalog.catalog is None:
            return
        inventory = self.catalog.inventory(spec.compute.region)
        require_capacity(demand, inventory, reservations(others, spec.compute.region))

    # --- who refers to what (deletes answer 409 while something does) ------------------------

    @staticmethod
    def users_of_secret(endpoints: Iterable[tuple[EndpointRow, EndpointSpec]], secret_id: str, name: str) -> list[str]:
        return [
            row.id
            for row, spec in endpoints
            if not row.deleting and any(selector_ref(sel) in (secret_id, name) for _, sel, _ in secret_refs(spec))
        ]

    @staticmethod
    def users_of_volume(endpoints: Iterable[tuple[EndpointRow, EndpointSpec]], volume_id: str, name: str) -> list[str]:
        return [
            row.id
            for row, spec in endpoints
            if not row.deleting and any(src in (volume_id, name) for _, src in volume_refs(spec))
        ]


def inventory_text(inventory: dict[str, int]) -> str:
    """`h100 x2, cpu slots 16` (GPU types with none left out)."""
    gpus = [f"{t} x{n}" for t, n in sorted(inventory.items()) if t != CPU and n]
    return ", ".join([*(gpus or ["no GPUs"]), f"cpu slots {inventory.get(CPU, 0)}"])


def build_control_plane(settings: Settings, store: Store, catalog: CatalogLike | None) -> ControlPlane:
    """What `podium up` builds once: the master key is read (or created 0600) from the data dir."""
    key = load_master_key(Path(settings.data_dir))
    return ControlPlane(
        secrets=SecretService(store, key),
        volumes=VolumeService(store, Path(settings.data_dir)),
        catalog=CatalogView(catalog),
    )
