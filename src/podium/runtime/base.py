"""The runtime-backend contract, declared where the controller uses it.

Backends are non-blocking and pollable: `start` returns as soon as the replica is launched,
`poll` reports what the backend sees now, `list` finds replicas left running by an earlier
Podium process (so they can be adopted), `stop` drains gracefully (TERM, then KILL after a
grace period), `kill` ends at once. Health (is the server answering?) is the controller's
job, not the backend's: the backend only knows whether the process/container runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RuntimeUnavailable(Exception):
    """The backend cannot reach what runs replicas (a container engine that is down, its socket gone,
    a call that timed out). Nothing is known about the replicas then: callers must not count it as a
    replica failure, only wait and retry. The message says what was tried and why it failed."""


# A backend may report the steps of a slow start (an image pull) as they happen: called with the
# LaunchSpec being started and one line of progress. Backends expose it as `on_progress` (optional).
StartProgress = Callable[["LaunchSpec", str], Awaitable[None]]


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
    # Container runtimes only: arguments for the image's own entrypoint, used when `command` is None
    # (with a command, put the arguments in it). `$PORT` is expanded here too.
    args: tuple[str, ...] = ()
    # Runtimes that place replicas themselves (Ray): what to ask the scheduler for. `gpus` above are
    # device indices Podium chose (local, docker); here the runtime chooses them. gpu_count None:
    # len(gpus). gpu_type: a catalog type (h100), matched to nodes' own types.
    gpu_type: str | None = None
    gpu_count: int | None = None
    cpus: float | None = None
    memory_bytes: int | None = None
    # The endpoint's region: a backend serving several regions (runtime/regional.py) starts it there.
    region: str = ""


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
    node: str = ""  # where it runs when the runtime has several machines (the Ray node id)


class RuntimeBackend(Protocol):
    name: str

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        """Launch and return at once: RUNNING with an address, or EXITED with a `detail` when it
        cannot be launched (e.g. the command does not exist). Starting a started id is a no-op."""
        ...

    async def poll(self, replica_id: str) -> ReplicaObservation:
        """What runs now. UNKNOWN for an id the backend never saw; EXITED keeps answering after stop."""
        ...

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        """SIGTERM (the whole process group / container), up to grace_s, then SIGKILL. Idempotent."""
        ...

    async def kill(self, replica_id: str) -> None:
        """SIGKILL at once. Idempotent; also how the controller ends orphans found by list()."""
        ...

    async def list(self) -> list[ReplicaObservation]:
        """Replicas recorded by this or an earlier Podium process: RUNNING ones (adopt or end them),
        and EXITED ones that ended while nobody watched."""
        ...

    def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        """The last `tail` output lines; with follow, then new lines until the replica has ended."""
        ...

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        """The last lines of a replica's output as one string, for failure messages ("" if none).
        Async because container engines answer it over HTTP."""
        ...

    async def close(self) -> None:
        """Process shutdown: stop every replica this backend started (SIGTERM path of `podium up`)."""
        ...
