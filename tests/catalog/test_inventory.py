"""Inventory: nvidia-smi's CSV parsed from canned output, device names mapped to GPU types,
declared inventories, and a region's inventory as the control plane reads it."""

from __future__ import annotations

import pytest

from podium.catalog import Catalog, parse_nvidia_smi_csv
from podium.catalog.inventory import (
    DetectedGpu,
    build_inventory,
    cuda_version_key,
    gpu_type_of,
    parse_cuda_version,
    run_nvidia_smi,
    run_nvidia_smi_banner,
)
from podium.catalog.models import InventorySpec

H100_NODE = """index, name, memory.total [MiB]
0, NVIDIA H100 80GB HBM3, 81559 MiB
1, NVIDIA H100 80GB HBM3, 81559 MiB
2, NVIDIA H100 80GB HBM3, 81559 MiB
3, NVIDIA H100 80GB HBM3, 81559 MiB
4, NVIDIA H100 80GB HBM3, 81559 MiB
5, NVIDIA H100 80GB HBM3, 81559 MiB
6, NVIDIA H100 80GB HBM3, 81559 MiB
7, NVIDIA H100 80GB HBM3, 81559 MiB
"""

MIXED = """index, name, memory.total [MiB]
0, NVIDIA L40S, 46068 MiB
1, NVIDIA H200, 143771 MiB
2, NVIDIA L40S, 46068 MiB
3, NVIDIA GeForce RTX 4090, 24564 MiB
"""

GPU_TYPES = Catalog.load(detect_gpus=lambda: None).gpu_types()


def test_parse_h100_node() -> None:
    gpus = parse_nvidia_smi_csv(H100_NODE)
    assert len(gpus) == 8
    assert gpus[0] == DetectedGpu(0, "NVIDIA H100 80GB HBM3", 81559)
    assert [g.index for g in gpus] == list(range(8))


@pytest.mark.parametrize("text", ["", "index, name, memory.total [MiB]\n", "No devices were found\n", "garbage"])
def test_parse_empty_or_noise(text: str) -> None:
    assert parse_nvidia_smi_csv(text) == []


@pytest.mark.parametrize(
    ("name", "gpu_type"),
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100"),
        ("NVIDIA H100 NVL", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA GeForce RTX 4090", "geforce-rtx-4090"),
    ],
)
def test_device_names_map_to_types(name: str, gpu_type: str) -> None:
    assert gpu_type_of(name, GPU_TYPES) == gpu_type


def test_auto_inventory_groups_devices_by_type() -> None:
    inv = build_inventory(InventorySpec(), GPU_TYPES, detect=lambda: MIXED, cpu_count=lambda: 32)
    assert inv.gpus == {"l40s": (0, 2), "h200": (1,), "geforce-rtx-4090": (3,)}
    assert inv.counts() == {"l40s": 2, "h200": 1, "geforce-rtx-4090": 1, "cpu": 32}
    assert inv.source == "nvidia-smi"


def test_no_nvidia_smi_means_cpu_only() -> None:
    inv = build_inventory(InventorySpec(), GPU_TYPES, detect=lambda: None, cpu_count=lambda: None)
    assert inv.gpus == {} and inv.cpu_slots == 1 and inv.source.startswith("none")


def test_declared_inventory_wins_over_detection() -> None:
    spec = InventorySpec(gpus={"h100": 4, "l40s": [6, 7], "h200": 0}, cpu_slots=12)
    inv = build_inventory(spec, GPU_TYPES, detect=lambda: H100_NODE, cpu_count=lambda: 2)
    assert inv.gpus == {"h100": (0, 1, 2, 3), "l40s": (6, 7)}
    assert inv.cpu_slots == 12 and inv.source == "config"


def test_local_region_with_detected_gpus() -> None:
    c = Catalog.load(detect_gpus=lambda: H100_NODE, cpu_count=lambda: 128)
    local = c.region("local")
    assert local.inventory == {"h100": 8, "cpu": 128}
    assert local.gpu_devices() == {"h100": [0, 1, 2, 3, 4, 5, 6, 7]}
    assert local.runtime == "local" and local.inventory_source == "nvidia-smi"


def test_run_nvidia_smi_on_this_machine() -> None:
    """None on a CPU-only machine; CSV that parses where the tool exists (never raises)."""
    text = run_nvidia_smi(timeout_s=10)
    if text is not None:
        assert parse_nvidia_smi_csv(text), text


BANNER = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


def test_cuda_version_from_the_banner_or_declared() -> None:
    assert parse_cuda_version(BANNER) == "12.4" and parse_cuda_version("no driver") is None
    assert cuda_version_key("12.10") > cuda_version_key("12.9") > cuda_version_key("12")
    detected = build_inventory(InventorySpec(), GPU_TYPES, detect=lambda: MIXED, detect_banner=lambda: BANNER)
    assert detected.cuda_version == "12.4"
    no_gpu = build_inventory(InventorySpec(), GPU_TYPES, detect=lambda: None, detect_banner=lambda: BANNER)
    assert no_gpu.cuda_version is None  # no GPU here: no driver to speak of
    declared = build_inventory(InventorySpec(gpus={"h100": 2}, cuda_version="12.8"), GPU_TYPES)
    assert declared.cuda_version == "12.8"


def test_run_nvidia_smi_banner_on_this_machine() -> None:
    """None on a CPU-only machine; where the tool exists, its banner names the CUDA version."""
    text = run_nvidia_smi_banner(timeout_s=10)
    if text is not None:
        assert parse_cuda_version(text), text
