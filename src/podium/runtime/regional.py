"""One RuntimeBackend over several regions: each region's replicas go to that region's own backend.

Why a composite rather than a map in the controller: the controller, the API's log reader and the
adoption path all speak the one RuntimeBackend contract; routing here keeps them unaware of regions.
A replica is started in the region its LaunchSpec names; afterwards its id is remembered with the
backend that holds it. An id never seen by this process (the API's log reader, a replica started by an
earlier Podium) is found by asking each backend, and remembered once one knows it.

Errors: a region whose engine or cluster cannot be reached raises its backend's RuntimeUnavailable
(which names the engine or cluster) from calls about its replicas. `list()` answers for the regions
that can be reached and names the others in `down` (region -> reason): one region's outage must not
stop the controller from adopting, starting and replacing replicas elsewhere. Only when no region
answers does `list()` raise, so a single-region setup behaves as one runtime.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping

from podium.runtime.base import (
    LaunchSpec,
    ReplicaObservation,
    RunPhase,
    RuntimeBackend,
    RuntimeUnavailable,
    StartProgress,
)


class RegionalBackend:
    name = "regional"

    def __init__(self, backends: Mapping[str, RuntimeBackend], default: str) -> None:
        """backends: region -> its backend; default: the region of a LaunchSpec that names none."""
        if default not in backends:
            raise ValueError(f"default region {default!r} has no backend")
        self.backends = dict(backends)
        self.default = default
        self._region_of: dict[str, str] = {}  # replica id -> region whose backend holds it
        self.down: dict[str, str] = {}  # region -> why it could not be reached, as of the last list()

    def kind(self, region: str) -> str:
        """The runtime a region runs (local, docker, ray): what a LaunchSpec for it must carry."""
        return self._backend(region).name

    def backend_of_region(self, region: str) -> RuntimeBackend:
        return self._backend(region)

    @property
    def on_progress(self) -> StartProgress | None:
        return next(
            (getattr(b, "on_progress", None) for b in self.backends.values() if hasattr(b, "on_progress")), None
        )

    @on_progress.setter
    def on_progress(self, report: StartProgress | None) -> None:
        for backend in self.backends.values():
            if hasattr(backend, "on_progress"):
                backend.on_progress = report  # type: ignore[attr-defined]

    def _backend(self, region: str) -> RuntimeBackend:
        backend = self.backends.get(region or self.default)
        if backend is None:
            known = ", ".join(sorted(self.backends))
            raise RuntimeUnavailable(f"region {region!r} has no runtime here (regions: {known})")
        return backend

    def region_of(self, replica_id: str) -> str | None:
        """The region known to hold this replica (started here, or found by list()); None: not known."""
        return self._region_of.get(replica_id)

    async def _holder(self, replica_id: str) -> RuntimeBackend:
        """The backend holding this replica: remembered, else the first that knows it (default: none)."""
        region = self._region_of.get(replica_id)
        if region is not None:
            return self.backends[region]
        unreachable: RuntimeUnavailable | None = None
        for name, backend in self.backends.items():
            try:
                obs = await backend.poll(replica_id)
            except RuntimeUnavailable as exc:
                unreachable = exc
                continue
            if obs.phase != RunPhase.UNKNOWN:
                self._region_of[replica_id] = name
                return backend
        if unreachable is not None:  # the unreachable region may be the one that holds it
            raise unreachable
        return self.backends[self.default]

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        region = spec.region or self.default
        backend = self._backend(region)
        self._region_of[spec.replica_id] = region
        return await backend.start(spec)

    async def poll(self, replica_id: str) -> ReplicaObservation:
        return await (await self._holder(replica_id)).poll(replica_id)

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        await (await self._holder(replica_id)).stop(replica_id, grace_s)

    async def kill(self, replica_id: str) -> None:
        await (await self._holder(replica_id)).kill(replica_id)

    async def list(self) -> builtins.list[ReplicaObservation]:
        """The replicas of every region that answers; the others are named in `down`, since their
        replicas may still run (adoption must not mistake them for lost ones). Raises (the first
        region's RuntimeUnavailable) only when no region answers."""
        names = builtins.list({id(b): n for n, b in reversed(self.backends.items())}.values())  # one per backend
        answers = await asyncio.gather(*(self.backends[n].list() for n in names), return_exceptions=True)
        found: builtins.list[ReplicaObservation] = []
        failed: dict[int, RuntimeUnavailable] = {}
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, RuntimeUnavailable):
                failed[id(self.backends[name])] = answer
                continue
            if isinstance(answer, BaseException):
                raise answer
            for obs in answer:
                self._region_of[obs.replica_id] = name
            found.extend(answer)
        self.down = {n: str(failed[id(b)]) for n, b in self.backends.items() if id(b) in failed}
        if failed and len(failed) == len(names):
            raise next(iter(failed.values()))
        return found

    async def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        backend = await self._holder(replica_id)
        async for line in backend.logs(replica_id, tail=tail, follow=follow):
            yield line

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        return await (await self._holder(replica_id)).tail_text(replica_id, lines)

    async def close(self) -> None:
        """Close every backend, even when one fails (its replicas stay for the next start to adopt)."""
        unique = {id(b): b for b in self.backends.values()}  # several regions may share one (local)
        results = await asyncio.gather(*(b.close() for b in unique.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
