"""Test doubles for the controller: a runtime whose replicas' fates the test sets, a prober whose
answers the test sets, a gateway that records routes, and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from podium.gateway.routes import EndpointRoute
from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase


@dataclass
class FakeRuntime:
    name: str = "fake"
    replicas: dict[str, ReplicaObservation] = field(default_factory=dict)
    launches: dict[str, LaunchSpec] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    next_port: int = 20000

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        self.next_port += 1
        obs = ReplicaObservation(
            spec.replica_id,
            spec.endpoint_id,
            RunPhase.RUNNING,
            f"127.0.0.1:{self.next_port}",
            gpus=spec.gpus,
            started_at=0.0,
        )
        self.replicas[spec.replica_id] = obs
        self.launches[spec.replica_id] = spec
        return obs

    def exit(self, replica_id: str, code: int = 1, detail: str | None = None) -> None:
        obs = self.replicas[replica_id]
        self.replicas[replica_id] = ReplicaObservation(
            obs.replica_id,
            obs.endpoint_id,
            RunPhase.EXITED,
            obs.address,
            exit_code=code,
            detail=detail or f"exited with code {code}",
        )

    async def poll(self, replica_id: str) -> ReplicaObservation:
        return self.replicas.get(replica_id) or ReplicaObservation(replica_id, "", RunPhase.UNKNOWN)

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        self.stopped.append(replica_id)
        self.replicas.pop(replica_id, None)

    async def kill(self, replica_id: str) -> None:
        self.killed.append(replica_id)
        self.replicas.pop(replica_id, None)

    async def list(self) -> list[ReplicaObservation]:
        return [o for o in self.replicas.values() if o.phase == RunPhase.RUNNING]

    async def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        yield f"log of {replica_id}"

    async def close(self) -> None:
        for rid in list(self.replicas):
            await self.stop(rid)


@dataclass
class FakeProber:
    healthy_addresses: set[str] = field(default_factory=set)
    all_healthy: bool = True
    all_generate: bool = True  # answer of the readiness completion of engine templates
    generated: list[tuple[str, str]] = field(default_factory=list)  # (address, model) asked

    async def healthy(self, address: str, path: str) -> bool:
        return self.all_healthy or address in self.healthy_addresses

    async def generates(self, address: str, model: str) -> bool:
        self.generated.append((address, model))
        return self.all_generate

    async def close(self) -> None:
        pass


@dataclass
class FakeGateway:
    routes: dict[str, EndpointRoute] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    def set_route(self, route: EndpointRoute) -> None:
        self.routes[route.endpoint_id] = route

    def remove_route(self, endpoint_id: str) -> None:
        self.routes.pop(endpoint_id, None)

    def replica_in_flight(self, replica_id: str) -> int:
        return self.in_flight.get(replica_id, 0)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now
