"""The reconcile plan as a pure function of (endpoint, replicas, now).

Nothing here does I/O, so every rule — surge-first rolling updates, canaries, a failed rollout
rolling back, scale-down order, backoff, failure — is tested as a table of inputs and expected
actions (tests/controller/test_planner.py). Rollouts: docs/rollouts.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.controller.rollout_rules import CanaryStats, RolloutInput, canary_size, failed_rollout, rolling_moves
from podium.core.states import ReplicaState

__all__ = ["CanaryStats", "EndpointInput", "Plan", "ReplicaInput", "RolloutInput", "backoff_delay", "plan"]


@dataclass(frozen=True)
class EndpointInput:
    endpoint_id: str
    enabled: bool
    deleting: bool
    target: int  # the autoscaler's desired count, already clamped to [min, max]
    generation: int  # the current revision: replicas of other ones are rolled
    failed: bool  # too many failed starts: start nothing until the user changes something
    backoff_until: float  # no new start before this time (crash backoff)
    failures: int = 0  # consecutive failed starts (a rollout with old replicas serving rolls back on them)
    rollout: RolloutInput = field(default_factory=RolloutInput)


@dataclass(frozen=True)
class ReplicaInput:
    replica_id: str
    state: ReplicaState
    generation: int
    created_at: float


@dataclass(frozen=True)
class Plan:
    start: int = 0  # how many new replicas to start now
    drain: tuple[str, ...] = ()  # replicas to take out of routing, drain, then stop
    delete_endpoint: bool = False  # deleting and nothing is left running
    waiting_for_backoff: bool = False  # wanted to start, but a crash backoff holds it
    rollback_to: int | None = None  # the rollout failed: make this revision (the one still serving) current
    start_stable: int = 0  # a canary holds: replicas of the old revision to start (one ended, or scale-up)
    stable: int | None = None  # that old revision (a canary is measured against it)
    progress: str | None = None  # a rollout under way: where it stands, for events and `endpoint get`
    reasons: list[str] = field(default_factory=list)


_SERVING = (ReplicaState.PENDING, ReplicaState.STARTING, ReplicaState.READY)
_READY = ReplicaState.READY


def plan(ep: EndpointInput, replicas: list[ReplicaInput], now: float) -> Plan:
    target = ep.target if ep.enabled and not ep.deleting else 0
    live = [r for r in replicas if r.state.is_live]
    if ep.deleting and not live:
        return Plan(delete_endpoint=True, reasons=["deleted: no replica left"])

    drain: list[str] = [r.replica_id for r in live if r.state == ReplicaState.UNHEALTHY]
    current = [r for r in live if r.state in _SERVING and r.generation == ep.generation]
    old = sorted((r for r in live if r.state in _SERVING and r.generation != ep.generation), key=lambda r: r.created_at)
    old_ready = [r for r in old if r.state == _READY]
    reasons: list[str] = []
    # A canary holds while replicas of an older revision serve: a few new ones take a share of requests.
    canary = ep.rollout.canary_percent > 0 and bool(old_ready) and target > 0
    wanted = canary_size(target, ep.rollout.canary_percent) if canary else target

    if old_ready and target > 0:
        new_ready = sum(1 for r in current if r.state == _READY)
        why = failed_rollout(ep.rollout, ep.failures, new_ready < wanted, now)
        if why is not None:
            back = max(r.generation for r in old_ready)
            why = f"rollout to revision {ep.generation} failed: {why}"
            return Plan(drain=tuple(drain), rollback_to=back, reasons=[why])

    if len(current) > wanted:
        # Scale down: boot-in-progress replicas first (they serve nobody yet), then the newest.
        order = sorted(current, key=lambda r: (r.state == _READY, -r.created_at))
        excess = order[: len(current) - wanted]
        drain += [r.replica_id for r in excess]
        reasons.append(f"scale down {len(current)} -> {wanted}")
        current = [r for r in current if r not in excess]

    # An old one still booting serves nobody and goes, unless a canary holds: the old revision then keeps
    # the target, and its replacements boot like any replica.
    stable = max(r.generation for r in old_ready) if canary else None
    kept = [r for r in old if r.state != _READY and r.generation == stable]
    drain += [r.replica_id for r in old if r.state != _READY and r not in kept]
    new_ready = sum(1 for r in current if r.state == _READY)
    refill = 0
    if canary:
        over = len(old_ready) + len(kept) - target  # the old keep the target, no more: booting ones go first
        drain += [r.replica_id for r in kept[: max(0, over)]]
        leaving = old_ready[: max(0, over - len(kept))]
        refill = max(0, -over)
        budget = wanted - len(current)
    else:
        leaving, budget = rolling_moves(ep.rollout, target, len(current), new_ready, old_ready)
    drain += [r.replica_id for r in leaving]
    progress = None
    if old:
        kind = f"canary {ep.rollout.canary_percent:g}%" if canary else "rolling"
        left = len(old_ready) - len(leaving)
        progress = f"{kind} to revision {ep.generation}: {new_ready}/{wanted} new ready, {left} old serving"
        reasons.append(progress)

    missing = min(target - len(current), budget)
    start, waiting = 0, False
    if (missing > 0 or refill > 0) and not ep.failed:
        if now >= ep.backoff_until:
            start = max(0, missing)
            reasons.append(f"start {start} to reach {target}" + (f", {refill} of revision {stable}" if refill else ""))
        else:
            waiting, refill = True, 0
            reasons.append(f"restart backoff: {ep.backoff_until - now:.1f}s left")
    else:
        refill = 0
    return Plan(
        start=start,
        start_stable=refill,
        stable=stable,
        drain=tuple(dict.fromkeys(drain)),
        waiting_for_backoff=waiting,
        progress=progress,
        reasons=reasons,
    )


def backoff_delay(failures: int, base_s: float, max_s: float) -> float:
    """Exponential backoff after consecutive failures: base, 2*base, 4*base ... capped."""
    if failures <= 0:
        return 0.0
    return float(min(max_s, base_s * (2 ** (failures - 1))))
