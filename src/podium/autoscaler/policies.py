"""The scale policies: each turns one tick's traffic into a replica count, nothing more.

A policy is pure and knows nothing of bounds, idle timeout, anti-flap windows or scale-from-zero:
the shared wrapper (`podium.autoscaler.decide`) applies those identically to every policy, so a
new policy cannot forget one. A policy may read `ctx.current` and `ctx.ready` (queue-delay must,
to avoid adding a replica per tick while the last one is still booting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from podium.autoscaler.context import ScalingContext
from podium.autoscaler.window import LoadWindow
from podium.core.specs import ScalePolicy, ScalePolicyKind

QUEUE_DELAY_DOWN_FILL = 0.9  # queue-delay scales down only when the load fits fewer replicas at 90%
_EPS = 1e-9  # 2.0000000001 replicas of work is 2 replicas, not 3


def replicas_for(work: float, per_replica: float) -> int:
    """Smallest replica count whose capacity `per_replica` each covers `work`."""
    if work <= 0:
        return 0
    return math.ceil(work / per_replica - _EPS)


@dataclass(frozen=True, slots=True)
class Recommendation:
    replicas: int
    reason: str


class Policy(Protocol):
    def decide(self, ctx: ScalingContext, window: LoadWindow, now: float) -> Recommendation:
        """`window`: in-flight + queued samples over the burst window (see Tuning), this tick's last."""
        ...


@dataclass(frozen=True, slots=True)
class ConcurrencyPolicy:
    """Keep each replica's share of the load near `target` x max_concurrency.

    `target` <= 1 is a utilisation share (0.7 leaves 30% headroom for the next burst while a new
    replica boots); a value above 1 is read as an absolute in-flight count per replica.
    """

    target: float

    def per_replica(self, max_concurrency: int) -> float:
        if self.target <= 1:
            return max(self.target * max_concurrency, _EPS * 10)
        return min(self.target, float(max_concurrency))

    def decide(self, ctx: ScalingContext, window: LoadWindow, now: float) -> Recommendation:
        burst_load = window.average()
        per = self.per_replica(ctx.scaling.max_concurrency)
        n = replicas_for(burst_load, per)
        return Recommendation(
            n,
            f"concurrency: {burst_load:.1f} requests in flight or queued (burst avg), "
            f"target {per:g} per replica -> {n}",
        )


@dataclass(frozen=True, slots=True)
class RequestCountPolicy:
    """desired = ceil((queued + in-flight) / N), on the current tick's numbers (reacts at once)."""

    per_replica: float

    def decide(self, ctx: ScalingContext, window: LoadWindow, now: float) -> Recommendation:
        n = replicas_for(ctx.load, self.per_replica)
        return Recommendation(
            n,
            f"request-count: {ctx.load} in flight or queued, {self.per_replica:g} per replica -> {n}",
        )


@dataclass(frozen=True, slots=True)
class QueueDelayPolicy:
    """Add replicas when the oldest queued request has waited longer than `max_wait_s`.

    On a breach it asks for the ready replicas plus enough new ones to absorb the queue
    (ceil(queued / max_concurrency), at least one). That number does not grow while new replicas
    boot and the queue stands still, so a breach lasting many ticks starts replicas once, not once
    per tick. Without a breach it never asks for more than it has, and with an empty queue it asks
    for what the burst window's peak in-flight work fills at 90%: the user accepted queueing up to
    `max_wait_s`, so replicas may run nearly full, but a count that only fits the load exactly
    would breach again and come back 30 s later (a slow flap the 10% band prevents).
    """

    max_wait_s: float

    def decide(self, ctx: ScalingContext, window: LoadWindow, now: float) -> Recommendation:
        stats, mc = ctx.stats, ctx.scaling.max_concurrency
        if stats.queued > 0 and stats.oldest_wait_s > self.max_wait_s:
            extra = max(1, replicas_for(stats.queued, mc))
            n = max(ctx.current, ctx.ready + extra)
            return Recommendation(
                n,
                f"queue-delay: oldest of {stats.queued} queued requests waited {stats.oldest_wait_s:.2f}s "
                f"> {self.max_wait_s:g}s with {ctx.ready} ready -> {n}",
            )
        if stats.queued > 0:
            return Recommendation(
                ctx.current,
                f"queue-delay: {stats.queued} queued, oldest {stats.oldest_wait_s:.2f}s "
                f"<= {self.max_wait_s:g}s -> keep {ctx.current}",
            )
        peak = window.peak()
        n = min(ctx.current, replicas_for(peak, mc * QUEUE_DELAY_DOWN_FILL))
        return Recommendation(n, f"queue-delay: no queue, peak {peak:.0f} in flight fit {n} replicas of {mc} slots")


def policy_for(policy: ScalePolicy) -> Policy:
    """The policy object for an endpoint's `scaling.scale_policy`."""
    if policy.kind is ScalePolicyKind.QUEUE_DELAY:
        return QueueDelayPolicy(policy.value)
    if policy.kind is ScalePolicyKind.REQUEST_COUNT:
        return RequestCountPolicy(policy.value)
    return ConcurrencyPolicy(policy.value)
