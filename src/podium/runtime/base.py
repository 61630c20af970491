"""The runtime-backend contract, declared where the controller uses it.

Backends are non-blocking and pollable: `start` returns as soon as the replica is launched,
`poll` reports what the backend sees now, `list` finds replicas left running by an earlier
Podium process (so they can be adopted), `stop` drains gracefully (TERM, then KILL after a
grace period), `kill` ends at once. Health (is the server answering?) is the controller's
job, not the backend's: the backend only knows whether the process/container runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RunPhase(StrEnum):
    RUNNING = "running"  # the process/container exists and has not exited
    EXITED = "exited"  # it ended; exit_code says how
    UNKNOWN = "unknown"  # the backend has no record of this replica


@dataclass(frozen=True)
class VolumeBind:
    source: str  # host path (local/docker) or s3://bucket
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a backend needs to start one replica. Secrets are already resolved into env."""

    replica_id: str
    endpoint_id: str
    command: list[str] | None  # argv; `$PORT`/`${PORT}` still unexpanded (the backend knows the port)
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    container_port: int = 8000  # port inside a container; local processes get a free host port
    gpus: tuple[int, ...] = ()  # device indices -> CUDA_VISIBLE_DEVICES / device requests
    volumes: tuple[VolumeBind, ...] = ()
    shm_size_bytes: int | None = None
    registry_username: str | None = None
    registry_password: str | None = None


@dataclass(frozen=True)
class ReplicaObservation:
    replica_id: str
    endpoint_id: str
    phase: RunPhase
    address: str | None = None  # "127.0.0.1:PORT": where the gateway and health probe reach it
    exit_code: int | None = None
    gpus: tuple[int, ...] = ()
    started_at: float | None = None  # time.time()
    detail: str = ""  # e.g. "exited with code 1" or a backend error


class RuntimeBackend(Protocol):
    name: str

    async def start(self, spec: LaunchSpec) -> ReplicaObservation: ...

    async def poll(self, replica_id: str) -> ReplicaObservation: ...

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None: ...

    async def kill(self, replica_id: str) -> None: ...

    async def list(self) -> list[ReplicaObservation]: ...

    def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]: ...

    async def close(self) -> None:
        """Process shutdown: stop every replica this backend started (SIGTERM path of `podium up`)."""
        ...
