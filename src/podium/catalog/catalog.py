"""The catalog API the control plane calls: templates, recipes, platforms, regions.

`Catalog.load()` reads the shipped data files plus the operator's directories (see loader), builds
each region's inventory once (nvidia-smi runs at load, not per request), and answers lookups.
`resolve()` is the one place that decides whether a (model, flavor, GPU type, GPU count, region)
combination is valid and, if so, how to run it: a `Recipe` with both the container form (image +
container_args) and the local-process form (command + args).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import podium.catalog.custom as custom
from podium.catalog.custom import CustomModel
from podium.catalog.inventory import Inventory, build_inventory, run_nvidia_smi
from podium.catalog.loader import Merged, builtin_files, directory_files, merge, render
from podium.catalog.models import Engine, Flavor, GpuOption, GpuType, Platform, RegionSpec, Template
from podium.core.errors import Invalid, NotFound


@dataclass(frozen=True)
class Recipe:
    """How to run one (template, flavor, GPU type, GPU count) in one region.

    Local runtime: argv = command + args (`$PORT` expanded by the runtime). Container runtimes:
    image, with container_args to its entrypoint, listening on `port` inside the container."""

    command: list[str] | None
    image: str | None
    args: list[str]
    port: int
    env: dict[str, str]
    health_check_path: str
    served_model_name: str | None
    container_args: list[str] = field(default_factory=list)
    engine: str = ""
    ready_by_generating: bool = False  # readiness needs a real 1-token completion, not only the health path
    env_secrets: dict[str, str] = field(default_factory=dict)  # ENV -> secret selector: catalog's, then region's
    model_cache_dir: str | None = None  # the region's weights cache (HF_HOME): container runtimes bind it
    start_timeout_s: float | None = None  # the template's own; None: the server's default
    weights: str = ""  # hub id or path the engine loads (what the model cache is checked for)
    adapters: tuple[str, ...] = ()  # LoRA adapters (registered models) the replica serves beside its model


@dataclass(frozen=True)
class TemplateView:
    """One valid (model, flavor, GPU type): an item of `GET /v0/dedicated_endpoints/templates`."""

    model_name: str
    flavor_name: str
    gpu_type: str
    gpu_counts: list[int]
    regions: list[str]
    description: str  # what this flavor is for
    engine: str
    served_model_name: str
    model_description: str


@dataclass(frozen=True)
class Region:
    """A region as the control plane sees it: its runtime and what it can hold right now."""

    name: str
    runtime: str
    description: str
    data_plane_url: str | None
    model_cache_dir: str | None
    gpus: dict[str, list[int]]  # gpu_type -> device indices
    cpu_slots: int
    inventory_source: str  # nvidia-smi, config, none (...)
    cuda_version: str | None = None  # newest CUDA the region's driver runs (nvidia-smi); None: no GPU driver
    docker_host: str | None = None  # runtime docker: its engine (None: DOCKER_HOST)
    ray_address: str | None = None  # runtime ray: the head's GCS HOST:PORT
    ray_node_dir: str | None = None  # runtime ray: where replicas' logs live on each node (None: /tmp/podium-ray)
    nodes: tuple[dict[str, Any], ...] = ()  # runtime ray: the cluster's nodes, their GPUs and what is in use
    template_env_secrets: dict[str, str] = field(default_factory=dict)  # ENV -> selector for template replicas

    @property
    def inventory(self) -> dict[str, int]:
        """Units per resource: GPU type -> count, and "cpu" -> slots (what reservations count)."""
        return {**{t: len(ix) for t, ix in self.gpus.items()}, "cpu": self.cpu_slots}

    def gpu_devices(self) -> dict[str, list[int]]:
        return {t: list(ix) for t, ix in self.gpus.items()}


def _region(spec: RegionSpec, inv: Inventory) -> Region:
    return Region(
        name=spec.name,
        runtime=spec.runtime,
        description=spec.description,
        data_plane_url=spec.data_plane_url,
        model_cache_dir=spec.model_cache_dir,
        gpus={t: list(ix) for t, ix in inv.gpus.items()},
        cpu_slots=inv.cpu_slots,
        inventory_source=inv.source,
        cuda_version=inv.cuda_version,
        docker_host=spec.docker_host,
        ray_address=spec.ray_address,
        ray_node_dir=spec.ray_node_dir,
        template_env_secrets=dict(spec.template_env_secrets),
    )


class Catalog:
    def __init__(
        self,
        merged: Merged,
        *,
        python: str = sys.executable,
        detect_gpus: Callable[[], str | None] = run_nvidia_smi,
        cpu_count: Callable[[], int | None] = os.cpu_count,
    ) -> None:
        self._m = merged
        self.python = python
        self.files = list(merged.files)  # what was read, in order (for `podium up` logs and errors)
        gpu_types = list(merged.gpu_types.values())
        self._regions = {
            name: _region(spec, build_inventory(spec.inventory, gpu_types, detect_gpus, cpu_count))
            for name, spec in merged.regions.items()
        }
        self._custom: dict[str, CustomModel] = {}  # registered models (/v0/models), by name
        self._custom_loader: Callable[[], Sequence[CustomModel]] | None = None  # re-reads them on a miss

    @classmethod
    def load(
        cls,
        extra_dirs: Sequence[Path] = (),
        *,
        python: str = sys.executable,
        detect_gpus: Callable[[], str | None] = run_nvidia_smi,
        cpu_count: Callable[[], int | None] = os.cpu_count,
    ) -> Catalog:
        """Shipped files, then each directory's *.yaml in order; raises CatalogError naming the file."""
        files = [*builtin_files(), *directory_files(extra_dirs)]
        return cls(merge(files), python=python, detect_gpus=detect_gpus, cpu_count=cpu_count)

    # --- templates ---------------------------------------------------------------------------

    def templates(self) -> list[TemplateView]:
        out = []
        for t in self._m.templates.values():
            for fl in t.flavors:
                for opt in fl.gpus:
                    out.append(
                        TemplateView(
                            model_name=t.model_name,
                            flavor_name=fl.name,
                            gpu_type=opt.gpu_type,
                            gpu_counts=list(opt.gpu_counts),
                            regions=self._offered(fl, opt),
                            description=fl.description,
                            engine=self._engine_of(t, fl).name,
                            served_model_name=t.served_model_name or t.model_name,
                            model_description=t.description,
                        )
                    )
        return out + self._custom_views()

    # --- registered models (/v0/models) --------------------------------------------------------

    def set_custom_models(self, models: Sequence[CustomModel]) -> None:
        """The registry's ready models, offered as templates beside the shipped ones (the registry
        calls this after every change and at start; a shipped template's name is never shadowed)."""
        self._custom = {m.name: m for m in models if m.name not in self._m.templates}

    def set_custom_loader(self, loader: Callable[[], Sequence[CustomModel]]) -> None:
        """How to re-read the registry when an endpoint names a model this catalog does not know (a
        controller in its own process learns of models registered after it started)."""
        self._custom_loader = loader

    def is_template(self, name: str) -> bool:
        """A shipped or operator template (not a registered model): the registry refuses these names."""
        return name in self._m.templates

    def _custom_views(self) -> list[TemplateView]:
        return [
            TemplateView(
                model_name=m.name,
                flavor_name=o.flavor_name,
                gpu_type=o.gpu_type,
                gpu_counts=list(o.gpu_counts),
                regions=list(self._regions),
                description=o.description,
                engine=m.engine,
                served_model_name=m.name,
                model_description=f"registered model ({m.format}, {m.architecture})",
            )
            for m in self._custom.values()
            for o in custom.offers(m, self.gpu_types())
        ]

    def _resolve_custom(self, m: CustomModel, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> Recipe:
        offers = custom.offers(m, self.gpu_types())
        mine = [o for o in offers if o.flavor_name == flavor_name]
        if not mine:
            names = ", ".join(sorted({o.flavor_name for o in offers}))
            raise Invalid("flavor_name", f"{m.name} has no flavor {flavor_name!r}; flavors: {names}")
        if region not in self._regions:
            raise Invalid("region", f"unknown region {region!r}; regions: {', '.join(sorted(self._regions))}")
        offer = next((o for o in mine if o.gpu_type == gpu_type), None)
        if offer is None:
            types = ", ".join(o.gpu_type for o in mine)
            raise Invalid("gpu_type", f"{m.name} flavor {flavor_name} runs on {types}, not {gpu_type!r}")
        if gpu_count not in offer.gpu_counts:
            counts = ", ".join(str(c) for c in offer.gpu_counts)
            raise Invalid("gpu_count", f"{m.name} flavor {flavor_name} on {gpu_type} takes gpu_count {counts}")
        command, args = custom.process_argv(m, offer, gpu_count, self.python)
        engine = self._m.engines.get(m.engine)
        return Recipe(
            command=command,
            image=None,  # the file is on this machine's disk (or a shared volume): process runtimes only
            args=args,
            port=engine.port if engine else 8000,
            env=dict(engine.env) if engine else {},
            health_check_path=engine.health_check_path if engine else "/health",
            served_model_name=m.name,
            engine=m.engine,
            ready_by_generating=True,
            weights=m.path,
            adapters=tuple(a.name for a in m.adapters),
        )

    def template(self, model_name: str) -> Template:
        t = self._m.templates.get(model_name)
        if t is None:
            raise NotFound(f"no template {model_name!r} (known: {', '.join(sorted(self._m.templates))})")
        return t

    def gpu_types(self) -> list[GpuType]:
        return list(self._m.gpu_types.values())

    def resolve(self, model_name: str, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> Recipe:
        """Validate the combination (Invalid names the first bad field) and render its recipe."""
        if model_name not in self._custom and model_name not in self._m.templates and self._custom_loader:
            self.set_custom_models(self._custom_loader())
        if model_name in self._custom:
            return self._resolve_custom(self._custom[model_name], flavor_name, gpu_type, gpu_count, region)
        t = self._m.templates.get(model_name)
        if t is None:
            raise Invalid(
                "model_name",
                f"unknown template {model_name!r}; known: {', '.join(sorted([*self._m.templates, *self._custom]))}",
            )
        fl = next((f for f in t.flavors if f.name == flavor_name), None)
        if fl is None:
            names = ", ".join(f.name for f in t.flavors)
            raise Invalid("flavor_name", f"{model_name} has no flavor {flavor_name!r}; flavors: {names}")
        if region not in self._regions:
            raise Invalid("region", f"unknown region {region!r}; regions: {', '.join(sorted(self._regions))}")
        opt = next((o for o in fl.gpus if o.gpu_type == gpu_type), None)
        if opt is None:
            types = ", ".join(o.gpu_type for o in fl.gpus)
            raise Invalid("gpu_type", f"{model_name} flavor {flavor_name} runs on {types}, not {gpu_type!r}")
        if gpu_count not in opt.gpu_counts:
            counts = ", ".join(str(c) for c in opt.gpu_counts)
            raise Invalid(
                "gpu_count",
                f"{model_name} flavor {flavor_name} on {gpu_type} takes gpu_count {counts}, not {gpu_count}",
            )
        regions = self._offered(fl, opt)
        if region not in regions:
            raise Invalid(
                "region", f"{model_name} flavor {flavor_name} on {gpu_type} is offered in {', '.join(regions)}"
            )
        return self._recipe(t, fl, opt, gpu_count, self._regions[region])

    def _offered(self, fl: Flavor, opt: GpuOption) -> list[str]:
        """Where a flavor on a GPU type is offered: the regions its option or flavor lists, or, when
        neither lists any, every region (an operator who declares `eu-north1` gets the templates
        there; whether it has the GPUs is the inventory's question, answered with a 409)."""
        if opt.regions:
            return list(opt.regions)
        if "regions" in fl.model_fields_set:
            return list(fl.regions)
        return list(self._regions)

    def _engine_of(self, t: Template, fl: Flavor) -> Engine:
        return self._m.engines[fl.engine or t.engine or ""]  # checked at load

    def _recipe(self, t: Template, fl: Flavor, opt: GpuOption, gpu_count: int, region: Region) -> Recipe:
        engine = self._engine_of(t, fl)
        served = t.served_model_name or t.model_name
        values = {
            "model_name": t.model_name,
            "served_model_name": served,
            "weights": fl.weights or t.model_name,
            "gpu_count": str(gpu_count),
            "python": self.python,
        }

        def r(items: Sequence[str]) -> list[str]:
            return [render(s, values) for s in items]

        extra = [*fl.args, *opt.args]
        env = {**engine.env, **fl.env, **opt.env}
        if region.model_cache_dir:
            env["HF_HOME"] = region.model_cache_dir
        return Recipe(
            command=r(engine.command) if engine.command else None,
            image=engine.image,
            args=r([*engine.process_args, *extra]),
            port=engine.port,
            env={k: render(v, values) for k, v in env.items()},
            health_check_path=engine.health_check_path,
            served_model_name=served,
            container_args=r([*engine.container_args, *extra]),
            engine=engine.name,
            ready_by_generating=engine.readiness == "generate",
            env_secrets={**self._m.template_env_secrets, **region.template_env_secrets},
            model_cache_dir=region.model_cache_dir,
            start_timeout_s=t.start_timeout_s,
            weights=values["weights"],
        )

    def describe(self, model_name: str, region: str = "local") -> dict[str, Any]:
        """A template with every flavor's purpose and, per GPU type, the rendered recipe for its
        smallest GPU count: what `podium template get MODEL` shows (JSON-able)."""
        if model_name in self._custom:
            return custom.describe(self._custom[model_name], self.gpu_types())
        t = self.template(model_name)
        flavors = []
        for fl in t.flavors:
            options = []
            for opt in fl.gpus:
                offered = self._offered(fl, opt)
                where = region if region in offered else offered[0]
                recipe = self.resolve(t.model_name, fl.name, opt.gpu_type, opt.gpu_counts[0], where)
                options.append(
                    {
                        "gpu_type": opt.gpu_type,
                        "gpu_counts": list(opt.gpu_counts),
                        "regions": offered,
                        "recipe_for_gpu_count": opt.gpu_counts[0],
                        "recipe": recipe,
                    }
                )
            flavors.append({"flavor_name": fl.name, "description": fl.description, "gpus": options})
        return {
            "model_name": t.model_name,
            "description": t.description,
            "served_model_name": t.served_model_name or t.model_name,
            "flavors": flavors,
        }

    # --- platforms and regions -----------------------------------------------------------------

    def platforms(self) -> list[Platform]:
        return list(self._m.platforms.values())

    def platform(self, name: str) -> Platform:
        """By name or by one of its aliases (the documents' names, e.g. gpu-l40s-a)."""
        p = self._m.platforms.get(name) or next((q for q in self._m.platforms.values() if name in q.aliases), None)
        if p is None:
            raise NotFound(f"no platform {name!r} (known: {', '.join(sorted(self._m.platforms))})")
        return p

    def regions(self) -> list[Region]:
        return list(self._regions.values())

    def set_nodes(self, name: str, nodes: Sequence[dict[str, Any]]) -> None:
        """A region whose runtime knows its own machines (Ray): its inventory is what its alive nodes
        hold, as they join and leave — GPUs per catalog type, CPU slots — and `nodes` lists them (with
        what is in use) for GET /v0/regions. Admission (409, reserved min replicas) reads it from here."""
        alive = [n for n in nodes if n.get("alive")]
        gpus: dict[str, int] = {}
        for n in alive:
            if n.get("gpu_type") and n.get("gpus_total"):
                gpus[n["gpu_type"]] = gpus.get(n["gpu_type"], 0) + int(n["gpus_total"])
        self._regions[name] = replace(
            self.region(name),
            gpus={t: list(range(count)) for t, count in gpus.items()},
            cpu_slots=int(sum(float(n.get("cpus_total") or 0) for n in alive)),
            inventory_source=f"ray ({len(alive)} alive nodes)",
            nodes=tuple(dict(n) for n in nodes),
        )

    def region(self, name: str) -> Region:
        r = self._regions.get(name)
        if r is None:
            raise NotFound(f"no region {name!r} (known: {', '.join(sorted(self._regions))})")
        return r
