"""The catalog adapter: nested templates flatten to the documented items; inventories become counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from podium.core.errors import Invalid
from podium.services.catalog_view import CatalogView

NESTED = {
    "model_name": "openai/gpt-oss-20b",
    "description": "",
    "flavors": [
        {
            "name": "base",
            "description": "balanced",
            "regions": ["local"],
            "gpus": [
                {"gpu_type": "h100", "gpu_counts": [1, 2], "regions": None},
                {"gpu_type": "l40s", "gpu_counts": [2], "regions": ["eu"]},
            ],
        },
        {
            "name": "fast",
            "description": "low latency",
            "regions": ["local"],
            "gpus": [{"gpu_type": "h200", "gpu_counts": [1]}],
        },
    ],
}


@dataclass
class Inventory:
    gpus: dict[str, tuple[int, ...]]
    cpu_slots: int

    def counts(self) -> dict[str, int]:
        return {**{t: len(ix) for t, ix in self.gpus.items()}, "cpu": self.cpu_slots}


@dataclass
class Region:
    name: str
    inventory: Inventory
    extra: dict[str, Any] = field(default_factory=dict)


class Catalog:
    def templates(self) -> list[dict[str, Any]]:
        return [NESTED]

    def platforms(self) -> list[dict[str, Any]]:
        return [
            {"name": "gpu-h100-sxm", "gpu_type": "h100", "presets": [{"name": "1gpu-16vcpu-200gb", "gpu_count": 1}]}
        ]

    def regions(self) -> list[Region]:
        return [Region("local", Inventory({"h100": (0, 1, 2)}, 8))]

    def region(self, name: str) -> Region:
        if name != "local":
            raise KeyError(name)
        return self.regions()[0]

    def resolve(self, *args: object) -> None:
        return None


def test_nested_templates_flatten_one_item_per_model_flavor_gpu() -> None:
    items = CatalogView(Catalog()).templates()
    keys = [(t["flavor_name"], t["gpu_type"], t["gpu_counts"], t["regions"]) for t in items]
    assert keys == [
        ("base", "h100", [1, 2], ["local"]),
        ("base", "l40s", [2], ["eu"]),
        ("fast", "h200", [1], ["local"]),
    ]
    assert all(t["model_name"] == "openai/gpt-oss-20b" for t in items) and items[2]["description"] == "low latency"


def test_inventory_counts_and_unknown_region() -> None:
    view = CatalogView(Catalog())
    assert view.inventory("local") == {"h100": 3, "cpu": 8}
    assert view.regions()[0]["inventory"] == {"h100": 3, "cpu": 8}
    with pytest.raises(Invalid):
        view.inventory("mars")
    assert CatalogView(None).inventory("anything") is None and CatalogView(None).templates() == []


def test_platform_and_preset_lookups() -> None:
    view = CatalogView(Catalog())
    assert view.preset(view.platform("gpu-h100-sxm"), "1gpu-16vcpu-200gb")["gpu_count"] == 1
    with pytest.raises(Invalid, match="known: gpu-h100-sxm"):
        view.platform("nope")
    with pytest.raises(Invalid, match=r"compute\.preset"):
        view.preset(view.platform("gpu-h100-sxm"), "8gpu")
