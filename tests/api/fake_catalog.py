"""A small in-memory catalog with the names the real one has (templates, platforms, regions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podium.core.errors import Invalid, NotFound


@dataclass
class FakeRegion:
    name: str
    devices: dict[str, list[int]]
    cpu_slots: int = 4
    data_plane_url: str | None = None  # None: the listener's own URL

    def gpu_devices(self) -> dict[str, list[int]]:
        return self.devices


@dataclass
class FakeRecipe:
    command: list[str] | None = field(default_factory=lambda: ["python3", "-m", "worker", "--port", "$PORT"])
    image: str | None = None
    args: list[str] = field(default_factory=list)
    port: int = 8000
    env: dict[str, str] = field(default_factory=dict)
    health_check_path: str = "/health"
    served_model_name: str | None = None
    ready_by_generating: bool = False


TEMPLATES: list[dict[str, Any]] = [
    {"model_name": "tiny/chat", "flavor_name": "base", "gpu_type": "cpu", "gpu_counts": [0], "regions": ["local"]},
    {"model_name": "big/llm", "flavor_name": "base", "gpu_type": "h100", "gpu_counts": [1, 2], "regions": ["local"]},
    {"model_name": "big/llm", "flavor_name": "fast", "gpu_type": "h100", "gpu_counts": [2], "regions": ["local"]},
]

PLATFORMS: list[dict[str, Any]] = [
    {
        "name": "gpu-h100-sxm",
        "gpu_type": "h100",
        "presets": [
            {"name": "1gpu-16vcpu-200gb", "gpu_count": 1, "vcpus": 16, "memory_gb": 200},
            {"name": "2gpu-32vcpu-400gb", "gpu_count": 2, "vcpus": 32, "memory_gb": 400},
        ],
    },
    {"name": "cpu-e2", "gpu_type": "cpu", "presets": [{"name": "4vcpu-16gb", "gpu_count": 0, "vcpus": 4}]},
]


class FakeCatalog:
    def __init__(self, h100: int = 2, cpu_slots: int = 4) -> None:
        self._regions = {
            "local": FakeRegion("local", {"h100": list(range(h100))}, cpu_slots),
            "eu": FakeRegion("eu", {}, 2, "https://eu.podium.example/v1"),
        }

    def templates(self) -> list[dict[str, Any]]:
        return TEMPLATES

    def platforms(self) -> list[dict[str, Any]]:
        return PLATFORMS

    def regions(self) -> list[FakeRegion]:
        return list(self._regions.values())

    def region(self, name: str) -> FakeRegion:
        if name not in self._regions:
            raise NotFound(f"region {name!r} not found")
        return self._regions[name]

    def resolve(self, model_name: str, flavor_name: str, gpu_type: str, gpu_count: int, region: str) -> FakeRecipe:
        """Like the real catalog: Invalid naming the first bad field, in the dedicated view's names."""
        offers = [t for t in TEMPLATES if t["model_name"] == model_name]
        if not offers:
            raise Invalid("model_name", f"unknown template {model_name!r}")
        offers = [t for t in offers if t["flavor_name"] == flavor_name]
        if not offers:
            raise Invalid("flavor_name", f"{model_name} has no flavor {flavor_name!r}")
        offers = [t for t in offers if t["gpu_type"] == gpu_type]
        if not offers:
            raise Invalid("gpu_type", f"{model_name} does not run on {gpu_type!r}")
        if gpu_count not in offers[0]["gpu_counts"]:
            raise Invalid("gpu_count", f"{model_name} on {gpu_type} takes gpu_count {offers[0]['gpu_counts']}")
        if region not in offers[0]["regions"]:
            raise Invalid("region", f"not offered in {region!r}")
        return FakeRecipe()
