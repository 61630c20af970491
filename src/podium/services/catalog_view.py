"""The control plane's window on the catalog: templates, platforms/presets, regions and inventories.

The catalog (`podium.catalog.Catalog`, owned by its own package) is data loaded from YAML; this
adapter turns its objects into the JSON the API answers and the numbers capacity checks need, and
tolerates dataclasses, pydantic models or plain dicts so either side can evolve.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Protocol

from podium.core.errors import Invalid, NotFound


class CatalogLike(Protocol):
    def templates(self) -> Any: ...
    def platforms(self) -> Any: ...
    def regions(self) -> Any: ...
    def region(self, name: str) -> Any: ...
    def resolve(self, model_name: str, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> Any: ...


def dump(obj: Any) -> Any:
    """Any catalog object -> JSON-able data (pydantic, dataclass, dict, list, or attributes)."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): dump(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [dump(v) for v in obj]
    if hasattr(obj, "model_dump"):
        return dump(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "__dict__"):
        return {k: dump(v) for k, v in vars(obj).items() if not k.startswith("_")}
    return str(obj)


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    return list(value or [])


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            value = getattr(obj, name)
            return value() if callable(value) else value
    return default


class CatalogView:
    def __init__(self, catalog: CatalogLike | None) -> None:
        self.catalog = catalog

    # --- listings the API answers ------------------------------------------------------------

    def templates(self) -> list[dict[str, Any]]:
        """One item per valid (model, flavor, GPU type), as the dedicated-endpoints documents show."""
        if self.catalog is None:
            return []
        out: list[dict[str, Any]] = []
        for item in _items(self.catalog.templates()):
            data = dump(item)
            if isinstance(data, dict) and "gpu_counts" in data and "model_name" in data:
                out.append(data)
            elif isinstance(data, dict):
                out.extend(_flatten_template(data))
        names = self.platform_names()
        for t in out:  # the documents' names for the GPU type, accepted as gpu_type too
            t.setdefault("platforms", names.get(str(t.get("gpu_type")), []))
        return out

    # --- the documents' GPU names --------------------------------------------------------------

    def gpu_type_names(self) -> dict[str, str]:
        """Platform names and aliases (`gpu-h100-sxm`, `gpu-l40s-a`) -> the GPU type they hold (`h100`).

        The documents name GPUs by platform; Podium's GPU types are short (`h100`). Every place that
        takes a GPU type maps these names first, so a payload copied from the documents works."""
        out: dict[str, str] = {}
        for p in self.platforms():
            gpu_type = p.get("gpu_type")
            if not gpu_type or gpu_type == "cpu":
                continue
            for name in [p.get("name"), *(p.get("aliases") or [])]:
                if name:
                    out[str(name)] = str(gpu_type)
        return out

    def platform_names(self) -> dict[str, list[str]]:
        """GPU type -> the platform names (and aliases) that hold it."""
        out: dict[str, list[str]] = {}
        for name, gpu_type in self.gpu_type_names().items():
            out.setdefault(gpu_type, []).append(name)
        return out

    def gpu_type(self, name: str) -> str:
        """A GPU type as the catalog names it: a platform name or alias maps to its GPU type."""
        return self.gpu_type_names().get(name, name)

    def describe(self, model_name: str) -> dict[str, Any]:
        """One model with every flavor and GPU option (and, where the catalog renders them, recipes)."""
        if self.catalog is not None and hasattr(self.catalog, "describe"):
            try:
                return dict(dump(self.catalog.describe(model_name)))
            except Exception as exc:
                raise NotFound(f"no template {model_name!r} (see `podium template list`)") from exc
        items = [t for t in self.templates() if t.get("model_name") == model_name]
        if not items:
            raise NotFound(f"no template {model_name!r} (see `podium template list`)")
        flavors: dict[str, dict[str, Any]] = {}
        for t in items:
            fl = flavors.setdefault(
                t["flavor_name"], {"flavor_name": t["flavor_name"], "description": t.get("description", ""), "gpus": []}
            )
            fl["gpus"].append({k: t.get(k) for k in ("gpu_type", "gpu_counts", "regions")})
        return {"model_name": model_name, "flavors": list(flavors.values())}

    def platforms(self) -> list[dict[str, Any]]:
        if self.catalog is None or not hasattr(self.catalog, "platforms"):
            return []
        return [dump(p) for p in _items(self.catalog.platforms())]

    def regions(self) -> list[dict[str, Any]]:
        if self.catalog is None:
            return []
        out = []
        for region in _items(self.catalog.regions()):
            data = dump(region)
            data = data if isinstance(data, dict) else {"name": str(region)}
            data["inventory"] = self.inventory_of(region)
            out.append(data)
        return out

    # --- lookups used by validation and capacity ---------------------------------------------

    def region(self, name: str) -> Any:
        if self.catalog is None:
            return None
        try:
            return self.catalog.region(name)
        except Exception as exc:  # the catalog's own NotFound/KeyError: a user error here
            raise Invalid("compute.region", self.unknown_region(name)) from exc

    def unknown_region(self, name: str) -> str:
        """The 422 message for a region nobody declared: it lists the valid ones."""
        names = sorted(str(_get(r, "name")) for r in _items(self.catalog.regions())) if self.catalog else []
        return f"unknown region {name!r}; regions: {', '.join(names) or 'none'}"

    def inventory(self, region_name: str) -> dict[str, int] | None:
        """Units per resource (GPU type -> count, "cpu" -> slots); None when not counted."""
        region = self.region(region_name)
        return None if region is None else self.inventory_of(region)

    def cuda_version(self, region_name: str) -> str | None:
        """The newest CUDA the region's driver runs (nvidia-smi's banner, or declared); None: unknown."""
        version = _get(self.region(region_name), "cuda_version")
        return str(version) if version else None

    @staticmethod
    def inventory_of(region: Any) -> dict[str, int] | None:
        explicit = _get(region, "inventory")
        if callable(getattr(explicit, "counts", None)):  # podium.catalog.inventory.Inventory
            return {str(k): int(v) for k, v in explicit.counts().items()}
        if isinstance(explicit, Mapping):
            return {str(k): int(v if isinstance(v, int) else len(v)) for k, v in explicit.items()}
        if explicit is not None and not isinstance(explicit, Mapping):
            as_dict = dump(explicit)
            if isinstance(as_dict, dict) and all(isinstance(v, int) for v in as_dict.values()):
                return {str(k): int(v) for k, v in as_dict.items()}
        devices = _get(region, "gpu_devices", "gpus")
        if devices is None:
            return None
        inv = {str(t): len(ix) if not isinstance(ix, int) else ix for t, ix in dict(devices).items()}
        slots = _get(region, "cpu_slots")
        inv["cpu"] = int(slots) if isinstance(slots, int) else (os.cpu_count() or 1)
        return inv

    def platform(self, name: str) -> dict[str, Any]:
        for p in self.platforms():
            if p.get("name") == name or name in (p.get("aliases") or []):
                return p
        known = ", ".join(sorted(str(p.get("name")) for p in self.platforms())) or "none"
        raise Invalid("compute.platform", f"unknown platform {name!r} (known: {known})")

    def preset(self, platform: dict[str, Any], name: str) -> dict[str, Any]:
        presets = [dump(p) for p in _items(platform.get("presets"))]
        for p in presets:
            if p.get("name") == name:
                return p
        known = ", ".join(str(p.get("name")) for p in presets) or "none"
        raise Invalid("compute.preset", f"platform {platform.get('name')!r} has no preset {name!r} (known: {known})")


def _flatten_template(t: dict[str, Any]) -> list[dict[str, Any]]:
    """A nested template (model with flavors, each with GPU options) -> the flat documented items."""
    model = t.get("model_name") or t.get("name")
    out = []
    for flavor in _items(t.get("flavors")) or [t]:
        f = flavor if isinstance(flavor, dict) else {"name": flavor}
        options = _items(f.get("gpus") or f.get("gpu_options")) or [f]
        for opt in options:
            out.append(
                {
                    "model_name": model,
                    "flavor_name": f.get("flavor_name") or f.get("name") or "base",
                    "description": f.get("description") or t.get("description") or "",
                    "gpu_type": opt.get("gpu_type", "cpu"),
                    "gpu_counts": list(opt.get("gpu_counts") or [opt.get("gpu_count", 0)]),
                    "regions": list(opt.get("regions") or f.get("regions") or t.get("regions") or []),
                }
            )
    return out
