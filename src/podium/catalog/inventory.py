"""What a region can hold: GPUs per type (device indices) and CPU slots.

A region's inventory is declared in its catalog file, or `auto`: on the local machine GPUs are
found with `nvidia-smi --query-gpu=index,name,memory.total --format=csv` and CPU slots are
`os.cpu_count()`. Parsing is a pure function of nvidia-smi's text so it is tested on canned output;
running the tool is one small function with a timeout (a wedged driver must not hang start-up).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from podium.catalog.models import GpuType, InventorySpec

NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv"]


@dataclass(frozen=True)
class DetectedGpu:
    index: int
    name: str  # as nvidia-smi prints it, e.g. "NVIDIA H100 80GB HBM3"
    memory_mib: int


@dataclass(frozen=True)
class Inventory:
    gpus: dict[str, tuple[int, ...]]  # gpu_type -> device indices (for CUDA_VISIBLE_DEVICES)
    cpu_slots: int
    source: str  # "nvidia-smi", "config", "none (nvidia-smi not found)", ...
    cuda_version: str | None = None  # the highest CUDA version the driver supports; None: no driver known

    def counts(self) -> dict[str, int]:
        """Units per resource as capacity checks count them: GPU type -> count, "cpu" -> slots."""
        return {**{t: len(ix) for t, ix in self.gpus.items()}, "cpu": self.cpu_slots}


def parse_nvidia_smi_csv(text: str) -> list[DetectedGpu]:
    """Parse `nvidia-smi --query-gpu=index,name,memory.total --format=csv` (header line included)."""
    gpus: list[DetectedGpu] = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue  # the header ("index, name, memory.total [MiB]") or noise
        index, name, memory = int(parts[0]), ",".join(parts[1:-1]), parts[-1]
        m = re.match(r"(\d+)", memory)
        gpus.append(DetectedGpu(index, name, int(m.group(1)) if m else 0))
    return gpus


MIB_TO_GB = 1.048576 / 1000  # nvidia-smi reports MiB; catalogs use the vendors' GB
MEMORY_TOLERANCE = 0.95  # a device reporting a bit less than its type's marketing GB still is that type


def gpu_type_of(name: str, gpu_types: Sequence[GpuType], memory_mib: int = 0) -> str:
    """Map a device to a catalog GPU type: its name must match, and, when nvidia-smi reported its
    memory, the device must hold the type's memory_gb (an A100-40GB is not an `a100` booked as
    80 GB). Of several types that fit, the one with the most memory wins. A device no type fits
    gets a slug of its name (it shows in the inventory, but no template asks for it)."""
    upper = name.upper()
    matches = [t for t in gpu_types if any(p.upper() in upper for p in t.nvidia_smi_names)]
    if memory_mib > 0:
        reported_gb = memory_mib * MIB_TO_GB
        matches = [t for t in matches if reported_gb >= t.memory_gb * MEMORY_TOLERANCE]
    if matches:
        return max(matches, key=lambda t: t.memory_gb).name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().removeprefix("nvidia ")).strip("-")
    return slug or "unknown-gpu"


def group_by_type(gpus: Sequence[DetectedGpu], gpu_types: Sequence[GpuType]) -> dict[str, tuple[int, ...]]:
    out: dict[str, list[int]] = {}
    for g in gpus:
        out.setdefault(gpu_type_of(g.name, gpu_types, g.memory_mib), []).append(g.index)
    return {t: tuple(sorted(ix)) for t, ix in out.items()}


_CUDA_RE = re.compile(r"CUDA Version:\s*(\d+(?:\.\d+)?)")


def parse_cuda_version(text: str) -> str | None:
    """`CUDA Version: 12.4` from plain `nvidia-smi`'s banner: the newest CUDA the driver runs."""
    m = _CUDA_RE.search(text or "")
    return m.group(1) if m else None


def cuda_version_key(version: str) -> tuple[int, int]:
    """`12.4` -> (12, 4), so versions compare as numbers (12.10 > 12.9)."""
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def run_nvidia_smi_banner(timeout_s: float = 10.0) -> str | None:
    """Plain `nvidia-smi` (its banner carries the CUDA version), or None without a driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run([exe], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def run_nvidia_smi(timeout_s: float = 10.0) -> str | None:
    """nvidia-smi's CSV, or None when the tool is missing or fails (a CPU-only machine)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run([exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def build_inventory(
    spec: InventorySpec,
    gpu_types: Sequence[GpuType],
    detect: Callable[[], str | None] = run_nvidia_smi,
    cpu_count: Callable[[], int | None] = os.cpu_count,
    detect_banner: Callable[[], str | None] = run_nvidia_smi_banner,
) -> Inventory:
    """Declared numbers win; `auto` looks at this machine. Declared counts become indices 0..n-1.
    The CUDA version is declared, or read from nvidia-smi when GPUs were detected here."""
    if isinstance(spec.gpus, dict):
        gpus = {t: tuple(v) if isinstance(v, list) else tuple(range(v)) for t, v in spec.gpus.items() if v}
        source = "config"
    else:
        text = detect()
        gpus = group_by_type(parse_nvidia_smi_csv(text), gpu_types) if text else {}
        source = "nvidia-smi" if text is not None else "none (nvidia-smi not found)"
    slots = spec.cpu_slots if isinstance(spec.cpu_slots, int) else (cpu_count() or 1)
    cuda = spec.cuda_version
    if cuda is None and source == "nvidia-smi" and gpus:
        cuda = parse_cuda_version(detect_banner() or "")
    return Inventory(gpus, slots, source, cuda)
