"""Ray nodes as inventory, and what a replica asks Ray for: pure logic, no cluster."""

from __future__ import annotations

from podium.catalog.models import GpuType
from podium.runtime.base import LaunchSpec
from podium.runtime.ray_nodes import parse_nodes, placement

TYPES = [
    GpuType(name="h100", memory_gb=80, nvidia_smi_names=["H100"]),
    GpuType(name="a100", memory_gb=80, nvidia_smi_names=["A100"]),
]


def raw(node_id: str, accel: str | None, gpus: int, free_gpus: int, alive: bool = True) -> dict[str, object]:
    total: dict[str, float] = {"CPU": 8.0, "memory": 64 * 2**30}
    if accel:
        total |= {"GPU": float(gpus), f"accelerator_type:{accel}": float(gpus)}
    return {
        "node_id": node_id,
        "ip": "10.0.0.1",
        "alive": alive,
        "total": total,
        "free": {"GPU": float(free_gpus), "CPU": 4.0, "memory": 32 * 2**30},
    }


def spec(**kw: object) -> LaunchSpec:
    return LaunchSpec("r1", "ep", ["x"], **kw)  # type: ignore[arg-type]


def test_accelerator_types_map_to_catalog_types() -> None:
    nodes = parse_nodes([raw("a", "H100", 8, 3), raw("b", "A100-80G", 4, 4), raw("c", None, 0, 0)], TYPES)
    assert [(n.gpu_type, n.accelerator, n.gpus_total, n.gpus_free) for n in nodes] == [
        ("h100", "H100", 8, 3),
        ("a100", "A100-80G", 4, 4),
        (None, None, 0, 0),
    ]
    assert nodes[0].cpus_total == 8.0 and nodes[0].memory_free == 32 * 2**30
    # Without catalog types, Ray's own name, lowercased, is the type (the catalog's naming).
    assert parse_nodes([raw("a", "L40S", 2, 2)])[0].gpu_type == "l40s"


def test_placement_pins_the_gpu_type_and_asks_for_count_cpus_memory() -> None:
    nodes = parse_nodes([raw("a", "H100", 8, 0), raw("b", "A100-80G", 4, 4)], TYPES)
    options, why = placement(spec(gpu_type="a100", gpu_count=2, cpus=2, memory_bytes=2**30), nodes)
    assert why == ""
    assert options == {"num_gpus": 2, "num_cpus": 2, "memory": 2**30, "resources": {"accelerator_type:A100-80G": 0.001}}
    # gpu_count defaults to the number of device indices; no type: any GPU node.
    options, _ = placement(spec(gpus=(0, 1)), nodes)
    assert options is not None and options["num_gpus"] == 2 and options["resources"] == {}


def test_placement_refuses_what_no_alive_node_can_ever_hold() -> None:
    nodes = parse_nodes([raw("a", "H100", 2, 2), raw("b", "H100", 8, 8, alive=False)], TYPES)
    options, why = placement(spec(gpu_type="h100", gpu_count=4), nodes)
    assert options is None and why == "no node of the cluster (1 alive) can hold 4 h100 GPUs"
    options, why = placement(spec(gpu_type="a100", gpu_count=1), nodes)
    assert options is None and "1 a100 GPU" in why
    options, why = placement(spec(cpus=16), nodes)
    assert options is None and "16 CPUs" in why
