"""GPU placement on one machine: which device indices a replica gets.

Rebuilt from the live replicas at start, so a restart never hands a GPU out twice.
"""

from __future__ import annotations


class GpuPool:
    def __init__(self, devices: dict[str, list[int]]) -> None:
        """devices: gpu_type -> device indices of that type (from the region's inventory)."""
        self._free = {t: sorted(ix) for t, ix in devices.items()}
        self._total = {t: len(ix) for t, ix in devices.items()}
        self._type_of = {i: t for t, ix in devices.items() for i in ix}  # device index -> its GPU type

    def allocate(self, gpu_type: str, count: int) -> tuple[int, ...] | None:
        if count <= 0:
            return ()
        free = self._free.get(gpu_type, [])
        if len(free) < count:
            return None
        taken, self._free[gpu_type] = free[:count], free[count:]
        return tuple(taken)

    def mark_used(self, gpu_type: str, indices: tuple[int, ...]) -> None:
        free = self._free.get(gpu_type, [])
        self._free[gpu_type] = [i for i in free if i not in indices]

    def release(self, gpu_type: str, indices: tuple[int, ...]) -> None:
        if not indices:
            return
        free = set(self._free.get(gpu_type, [])) | set(indices)
        self._free[gpu_type] = sorted(free)

    def type_of(self, indices: tuple[int, ...]) -> str | None:
        """The GPU type of these device indices (a replica found running after a restart), if known."""
        types = {self._type_of.get(i) for i in indices}
        return types.pop() if len(types) == 1 else None

    def free(self, gpu_type: str) -> int:
        return len(self._free.get(gpu_type, []))

    def total(self, gpu_type: str) -> int:
        return self._total.get(gpu_type, 0)
