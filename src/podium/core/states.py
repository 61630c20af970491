"""Lifecycle states. Each value is commented: these are what users read in `status`."""

from __future__ import annotations

from enum import StrEnum


class EndpointState(StrEnum):
    """What an endpoint as a whole is doing, derived from its spec and its replicas."""

    PROVISIONING = "provisioning"  # enabled, wants replicas, none ready yet (first start or from zero)
    SERVING = "serving"  # at least one replica is ready and receives traffic
    SCALING = "scaling"  # serving, while replicas are being added or removed
    IDLE = "idle"  # enabled with zero replicas (scaled to zero); the next request wakes it
    STOPPED = "stopped"  # disabled by the user: holds no replicas, is not billed, data plane says so
    FAILED = "failed"  # replicas cannot start (bad command, port never opens); see last_error
    DELETING = "deleting"  # delete requested; replicas are draining, then the record goes away


class ReplicaState(StrEnum):
    """One replica's life, from being planned to having ended."""

    PENDING = "pending"  # planned by the controller, not yet handed to the runtime
    STARTING = "starting"  # process/container started; health check not yet 200
    READY = "ready"  # health check answers 200: the balancer may send it traffic
    UNHEALTHY = "unhealthy"  # was ready, health checks now fail: out of routing, will be replaced
    DRAINING = "draining"  # leaving service: no new requests, in-flight ones finish, then stop
    STOPPED = "stopped"  # ended on purpose (scale-down, stop, delete)
    FAILED = "failed"  # exited or never became healthy; the controller may restart with backoff

    @property
    def is_live(self) -> bool:
        """Holds resources (a process, GPUs) right now."""
        return self in (
            ReplicaState.PENDING,
            ReplicaState.STARTING,
            ReplicaState.READY,
            ReplicaState.UNHEALTHY,
            ReplicaState.DRAINING,
        )
