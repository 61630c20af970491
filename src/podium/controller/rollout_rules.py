"""The rollout rules of the pure planner (issue 13): how many old replicas may leave and how many
new ones may start (surge first), how big a canary is, and when a rollout has failed.

Pure functions of their inputs; `planner.plan` composes them, `tests/controller/test_planner.py`
tables them. docs/rollouts.md explains the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class CanaryStats:
    """Requests and errors (5xx, cut streams) per side of a canary, from the gateways' counters."""

    new_requests: int = 0
    new_errors: int = 0
    old_requests: int = 0
    old_errors: int = 0


@dataclass(frozen=True)
class RolloutInput:
    """The spec's `rollout` block, the revision's rollout start, and what the controller saw."""

    max_surge: int = 1
    max_unavailable: int = 0
    canary_percent: float = 0.0  # > 0: the current revision is a canary not promoted yet
    started_at: float = 0.0  # when the current revision became the target (wall clock)
    deadline_s: float = 900.0  # not rolled by then -> roll back
    max_failed_starts: int = 3  # this many failed starts in a row -> roll back
    no_surge: bool = False  # no capacity for a replica above the target: one at a time
    canary: CanaryStats | None = None
    error_margin: float = 0.05  # canary error rate above the old one's by more than this -> roll back
    min_requests: int = 20  # per side, before the error rates are compared


class _Replica(Protocol):
    @property
    def created_at(self) -> float: ...


R = TypeVar("R", bound=_Replica)


def canary_size(target: int, percent: float) -> int:
    """New replicas a canary runs: its share of the target, at least one, at most the target."""
    return max(1, min(target, math.ceil(target * percent / 100)))


def rolling_moves(
    rollout: RolloutInput, target: int, current: int, new_ready: int, old_ready: Sequence[R]
) -> tuple[list[R], int]:
    """(old ready replicas that may drain now, how many new ones may start), surge first: ready
    replicas never fall below target - max_unavailable, live ones never exceed target + max_surge.
    Without room for a surge replica the rollout goes one at a time (surge 0, unavailable 1)."""
    surge, unavailable = rollout.max_surge, rollout.max_unavailable
    if rollout.no_surge:
        surge, unavailable = 0, max(unavailable, 1)
    if target == 0:
        return list(old_ready), 0
    may_leave = max(0, min(len(old_ready), new_ready + len(old_ready) - (target - unavailable)))
    leaving = list(old_ready[:may_leave])  # the oldest first
    budget = target + surge - current - (len(old_ready) - may_leave)
    return leaving, max(0, budget)


def failed_rollout(rollout: RolloutInput, failures: int, incomplete: bool, now: float) -> str | None:
    """Why the rollout to the current revision has failed (old replicas still serve), or None."""
    if failures >= rollout.max_failed_starts:
        return f"{failures} failed starts in a row"
    if incomplete and now - rollout.started_at > rollout.deadline_s:
        return f"new replicas not ready within {rollout.deadline_s:g}s"
    c = rollout.canary
    if c is not None and c.new_requests >= rollout.min_requests and c.old_requests >= rollout.min_requests:
        new_rate, old_rate = c.new_errors / c.new_requests, c.old_errors / c.old_requests
        if new_rate > old_rate + rollout.error_margin:
            return f"canary error rate {new_rate:.1%} vs {old_rate:.1%} on the old revision"
    return None
