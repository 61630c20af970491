"""A Ray cluster's nodes as Podium sees them, and what a replica asks Ray for.

GPU types follow Ray's convention: a node with GPUs carries an `accelerator_type:<X>` resource (Ray
sets it on real GPU nodes from the device name, e.g. H100, A100-80G, L40S; `ray start --resources`
sets it in simulation). X maps to a catalog type with the catalog's own nvidia-smi names (the same
rule as the local inventory), so H100 -> h100 and A100-80G -> a100. Placement asks for the GPU
count, CPUs and memory, plus a sliver of `accelerator_type:<X>` to pin the type (Ray's own way,
as its `accelerator_type=` option does). Pure functions: tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podium.catalog.inventory import gpu_type_of
from podium.catalog.models import GpuType
from podium.runtime.base import LaunchSpec

ACCELERATOR_PREFIX = "accelerator_type:"
TYPE_PIN = 0.001  # what Ray's accelerator_type= option asks: any node with the type fits


@dataclass(frozen=True)
class RayNode:
    node_id: str
    ip: str
    alive: bool
    gpu_type: str | None  # catalog type, or None for a node without GPUs
    accelerator: str | None  # Ray's name for it (the X of accelerator_type:X)
    gpus_total: int
    gpus_free: int
    cpus_total: float
    cpus_free: float
    memory_total: int  # bytes, Ray's `memory` resource
    memory_free: int


def parse_nodes(raw: Sequence[dict[str, Any]], gpu_types: Sequence[GpuType] = ()) -> list[RayNode]:
    """From the driver's `nodes` answer: [{node_id, ip, alive, total: {...}, free: {...}}]."""
    out = []
    for n in raw:
        total, free = n.get("total") or {}, n.get("free") or {}
        accel = next((k.removeprefix(ACCELERATOR_PREFIX) for k in total if k.startswith(ACCELERATOR_PREFIX)), None)
        out.append(
            RayNode(
                node_id=str(n["node_id"]),
                ip=str(n["ip"]),
                alive=bool(n["alive"]),
                gpu_type=gpu_type_of(accel, gpu_types) if accel else None,
                accelerator=accel,
                gpus_total=int(total.get("GPU", 0)),
                gpus_free=int(free.get("GPU", 0)),
                cpus_total=float(total.get("CPU", 0)),
                cpus_free=float(free.get("CPU", 0)),
                memory_total=int(total.get("memory", 0)),
                memory_free=int(free.get("memory", 0)),
            )
        )
    return out


def gpu_count(spec: LaunchSpec) -> int:
    return spec.gpu_count if spec.gpu_count is not None else len(spec.gpus)


def describe_request(spec: LaunchSpec) -> str:
    parts = []
    n = gpu_count(spec)
    if n:
        parts.append(f"{n} {spec.gpu_type or 'any'} GPU{'s' if n > 1 else ''}")
    if spec.cpus:
        parts.append(f"{spec.cpus:g} CPUs")
    if spec.memory_bytes:
        parts.append(f"{spec.memory_bytes / 2**30:.1f} GiB memory")
    return ", ".join(parts) or "no resources"


def placement(spec: LaunchSpec, nodes: Sequence[RayNode]) -> tuple[dict[str, Any] | None, str]:
    """(Ray actor options, "") when some alive node could ever hold the replica, else (None, why).
    Whether one has room *now* is Ray's to decide: the actor waits for it."""
    n = gpu_count(spec)
    fits = [
        node
        for node in nodes
        if node.alive
        and node.gpus_total >= n
        and (not n or not spec.gpu_type or node.gpu_type == spec.gpu_type)
        and node.cpus_total >= (spec.cpus or 0)
        and node.memory_total >= (spec.memory_bytes or 0)
    ]
    if not fits:
        alive = sum(1 for node in nodes if node.alive)
        return None, f"no node of the cluster ({alive} alive) can hold {describe_request(spec)}"
    resources: dict[str, float] = {}
    if n and spec.gpu_type:
        best = max(fits, key=lambda node: (node.gpus_free, node.gpus_total))  # a type that has room now
        assert best.accelerator is not None
        resources[ACCELERATOR_PREFIX + best.accelerator] = TYPE_PIN
    options = {
        "num_gpus": n,
        "num_cpus": spec.cpus or 0,
        "memory": spec.memory_bytes or 0,
        "resources": resources,
    }
    return options, ""
