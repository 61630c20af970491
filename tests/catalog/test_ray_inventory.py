"""A Ray region's inventory follows its cluster's nodes (issue 12 item 3): what admission reads."""

from __future__ import annotations

from pathlib import Path

from podium.catalog import Catalog
from podium.services.catalog_view import CatalogView


def node(node_id: str, gpus: int, free: int, alive: bool = True) -> dict[str, object]:
    return {
        "node_id": node_id,
        "ip": "10.0.0.1",
        "alive": alive,
        "gpu_type": "h100" if gpus else None,
        "accelerator": "H100" if gpus else None,
        "gpus_total": gpus,
        "gpus_free": free,
        "cpus_total": 8.0,
        "cpus_free": 8.0,
        "memory_total": 0,
        "memory_free": 0,
    }


def test_inventory_is_what_alive_nodes_hold(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("regions:\n  - name: gpu\n    runtime: ray\n    ray_address: 10.0.0.1:6379\n")
    catalog = Catalog.load([tmp_path], detect_gpus=lambda: None, cpu_count=lambda: 4)
    assert catalog.region("gpu").ray_address == "10.0.0.1:6379"
    catalog.set_nodes("gpu", [node("head", 0, 0), node("a", 2, 1), node("b", 2, 2)])
    assert CatalogView(catalog).inventory("gpu") == {"h100": 4, "cpu": 24}
    catalog.set_nodes("gpu", [node("head", 0, 0), node("a", 2, 1), node("b", 2, 2, alive=False)])  # b left
    assert CatalogView(catalog).inventory("gpu") == {"h100": 2, "cpu": 16}
    shown = CatalogView(catalog).regions()
    assert [len(r["nodes"]) for r in shown if r["name"] == "gpu"] == [3]
