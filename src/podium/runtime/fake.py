"""FakeBackend: an in-memory RuntimeBackend whose replicas a test moves by hand.

For controller unit tests: no processes, no ports. Every call is recorded in `calls` as
(method, replica_id); tests set phases (`set_exited`, `set_running`), make the next starts fail
(`fail_next_start`), seed replicas "left running by an earlier Podium" (`add_running`), and give
replicas log lines (`set_logs`). Addresses are fake ("127.0.0.1:<n>"), nothing listens there.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase


@dataclass
class FakeReplica:
    obs: ReplicaObservation
    spec: LaunchSpec | None = None
    lines: list[str] = field(default_factory=list)
    stop_grace_s: float | None = None  # the grace of the last stop() call
    killed: bool = False


class FakeBackend:
    name = "fake"

    def __init__(self, *, clock: Callable[[], float] = time.time, first_port: int = 20000) -> None:
        self.clock = clock
        self.replicas: dict[str, FakeReplica] = {}
        self.calls: list[tuple[str, str]] = []  # (method, replica_id); ("list", "") / ("close", "")
        self._ports = itertools.count(first_port)
        self._start_failures: list[tuple[str, Exception | None]] = []
        self.start_delay_s = 0.0  # make start() take this long (to test concurrency/timeouts)
        self.closed = False

    # ---- test controls -------------------------------------------------------------------------

    def fail_next_start(
        self, detail: str = "cannot execute 'x': no such file", *, times: int = 1, raise_error: Exception | None = None
    ) -> None:
        """The next `times` starts return EXITED with `detail` (or raise `raise_error`)."""
        self._start_failures.extend([(detail, raise_error)] * times)

    def set_exited(self, replica_id: str, exit_code: int | None = 1, detail: str | None = None) -> None:
        r = self.replicas[replica_id]
        text = detail if detail is not None else f"exited with code {exit_code}"
        r.obs = replace(r.obs, phase=RunPhase.EXITED, exit_code=exit_code, detail=text)

    def set_running(self, replica_id: str) -> None:
        r = self.replicas[replica_id]
        r.obs = replace(r.obs, phase=RunPhase.RUNNING, exit_code=None, detail="")

    def add_running(
        self, replica_id: str, endpoint_id: str, gpus: tuple[int, ...] = (), phase: RunPhase = RunPhase.RUNNING
    ) -> ReplicaObservation:
        """A replica "left by an earlier Podium": list() reports it, as after a restart."""
        obs = ReplicaObservation(
            replica_id,
            endpoint_id,
            phase,
            address=self._address(),
            gpus=gpus,
            started_at=self.clock(),
            exit_code=None if phase == RunPhase.RUNNING else 1,
        )
        self.replicas[replica_id] = FakeReplica(obs)
        return obs

    def set_logs(self, replica_id: str, lines: list[str]) -> None:
        self.replicas[replica_id].lines = list(lines)

    def running_ids(self) -> set[str]:
        return {rid for rid, r in self.replicas.items() if r.obs.phase == RunPhase.RUNNING}

    def called(self, method: str) -> list[str]:
        """Replica ids passed to `method`, in call order."""
        return [rid for m, rid in self.calls if m == method]

    # ---- RuntimeBackend ----------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        self.calls.append(("start", spec.replica_id))
        if self.start_delay_s:
            await asyncio.sleep(self.start_delay_s)
        if spec.replica_id in self.replicas:
            return self.replicas[spec.replica_id].obs
        if self._start_failures:
            detail, error = self._start_failures.pop(0)
            if error is not None:
                raise error
            obs = ReplicaObservation(
                spec.replica_id, spec.endpoint_id, RunPhase.EXITED, exit_code=127, gpus=spec.gpus, detail=detail
            )
        else:
            obs = ReplicaObservation(
                spec.replica_id,
                spec.endpoint_id,
                RunPhase.RUNNING,
                address=self._address(),
                gpus=spec.gpus,
                started_at=self.clock(),
            )
        self.replicas[spec.replica_id] = FakeReplica(obs, spec)
        return obs

    async def poll(self, replica_id: str) -> ReplicaObservation:
        self.calls.append(("poll", replica_id))
        r = self.replicas.get(replica_id)
        if r is None:
            return ReplicaObservation(replica_id, "", RunPhase.UNKNOWN, detail="no such replica")
        return r.obs

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        self.calls.append(("stop", replica_id))
        r = self.replicas.get(replica_id)
        if r is not None and r.obs.phase == RunPhase.RUNNING:
            r.stop_grace_s = grace_s
            r.obs = replace(r.obs, phase=RunPhase.EXITED, exit_code=-15, detail="killed by signal SIGTERM")

    async def kill(self, replica_id: str) -> None:
        self.calls.append(("kill", replica_id))
        r = self.replicas.get(replica_id)
        if r is not None and r.obs.phase == RunPhase.RUNNING:
            r.killed = True
            r.obs = replace(r.obs, phase=RunPhase.EXITED, exit_code=-9, detail="killed by signal SIGKILL")

    async def list(self) -> list[ReplicaObservation]:
        self.calls.append(("list", ""))
        return [r.obs for r in self.replicas.values()]

    async def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        self.calls.append(("logs", replica_id))
        r = self.replicas.get(replica_id)
        for line in r.lines[-tail:] if r and tail > 0 else []:
            yield line

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        r = self.replicas.get(replica_id)
        return "\n".join(r.lines[-lines:]) if r and lines > 0 else ""

    async def close(self) -> None:
        self.calls.append(("close", ""))
        self.closed = True
        for rid in self.running_ids():
            await self.stop(rid)

    def _address(self) -> str:
        return f"127.0.0.1:{next(self._ports)}"
