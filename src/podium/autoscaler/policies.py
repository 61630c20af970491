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
from podium.core.specs import ScalePolicy, ScalePolicyKind

DOWN_BAND = 0.9  # scale down only to a count the load fits at 90% of the scale-up threshold
_EPS = 1e-9  # 2.0000000001 replicas of work is 2 replicas, not 3


def replicas_for(work: float, per_replica: float) -> int:
    """Smallest replica count whose capacity `per_replica` each covers `work`."""
    if work <= 0:
        return 0
    return math.ceil(work / per_replica - _EPS)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """`replicas`: what the load asks for now. `hold`: the fewest replicas the policy would scale
    down to (>= replicas): the same load measured against a 10% lower threshold. The gap is the
    hysteresis band: after a scale-down, going back up needs a load 11% above the one that allowed
    it, not the next tick's noise."""

    replicas: int
    reason: str
    hold: int = 0

    @property
    def keep(self) -> int:
        return max(self.replicas, self.hold)


@dataclass(frozen=True, slots=True)
class LoadSignals:
    """In-flight + queued, summarised over the two windows of `Tuning` (this tick included)."""

    burst_avg: float  # mean over the burst window (1 s): what the load is now, minus one-tick blips
    burst_peak: float  # highest sample in the burst window
    stable_avg: float  # mean over the stable window (30 s): what the load is, minus its noise

    @classmethod
    def steady(cls, load: float) -> LoadSignals:
        return cls(load, load, load)


class Policy(Protocol):
    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation: ...


@dataclass(frozen=True, slots=True)
class ConcurrencyPolicy:
    """Keep each replica's share of the load near `target` x max_concurrency (Knative-like).

    Normally it sizes for the stable-window average, so Poisson noise around a steady load does
    not buy replicas for its peaks. When the burst-window load exceeds what the current replicas
    can take at all (current x max_concurrency: requests are about to queue) it sizes for the
    burst at once ("panic", in Knative's words; Knative waits for 2x its target, we for real
    saturation, which with the default 0.7 target is 1.43x).

    `target` <= 1 is a utilisation share (0.7 leaves 30% headroom for the growth of the load
    while a new replica boots); a value above 1 is an absolute in-flight count per replica.
    """

    target: float

    def per_replica(self, max_concurrency: int) -> float:
        if self.target <= 1:
            return max(self.target * max_concurrency, _EPS * 10)
        return min(self.target, float(max_concurrency))

    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation:
        per = self.per_replica(ctx.scaling.max_concurrency)
        stable = replicas_for(load.stable_avg, per)
        hold = replicas_for(load.stable_avg, per * DOWN_BAND)
        if load.burst_avg > ctx.current * ctx.scaling.max_concurrency:
            n = max(stable, replicas_for(load.burst_avg, per))
            return Recommendation(
                n,
                f"concurrency burst: {load.burst_avg:.1f} in flight or queued > capacity of {ctx.current} "
                f"replicas, target {per:g} per replica -> {n}",
                hold,
            )
        return Recommendation(
            stable,
            f"concurrency: {load.stable_avg:.1f} in flight or queued on average, target {per:g} per "
            f"replica -> {stable}",
            hold,
        )


@dataclass(frozen=True, slots=True)
class RequestCountPolicy:
    """desired = ceil((queued + in-flight) / N), on the current tick's numbers (reacts at once)."""

    per_replica: float

    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation:
        n = replicas_for(ctx.load, self.per_replica)
        return Recommendation(
            n,
            f"request-count: {ctx.load} in flight or queued, {self.per_replica:g} per replica -> {n}",
            replicas_for(ctx.load, self.per_replica * DOWN_BAND),
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

    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation:
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
        peak = load.burst_peak
        n = min(ctx.current, replicas_for(peak, mc * DOWN_BAND))
        return Recommendation(n, f"queue-delay: no queue, peak {peak:.0f} in flight fit {n} replicas of {mc} slots")


FALLBACK = ConcurrencyPolicy(0.7)  # engine policies without an engine sample: what the default does


@dataclass(frozen=True, slots=True)
class KvCachePolicy:
    """Keep the engines' KV-cache use near `target` (a share, e.g. 0.8) on average over ready replicas.

    An engine whose KV cache fills preempts or queues requests (vLLM recomputes them), long before the
    gateway's in-flight count says anything: a 4k-token conversation fills what eight short ones use.
    Sized like Knative sizes concurrency: ceil(ready x average use / target). The number does not grow
    while new replicas boot (their caches are empty, not yet averaged in), so a breach lasting many
    ticks starts replicas once. Without an engine sample (an engine with no `/metrics`) it does what
    the default policy does, and says so."""

    target: float

    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation:
        engine = ctx.engine
        if engine is None or engine.kv_cache_avg is None:
            rec = FALLBACK.decide(ctx, load, now)
            return Recommendation(rec.replicas, f"kv-cache: no engine metrics; {rec.reason}", rec.hold)
        base = max(ctx.ready, engine.replicas)
        work = base * engine.kv_cache_avg
        n = replicas_for(work, self.target)
        return Recommendation(
            n,
            f"kv-cache: {engine.kv_cache_avg:.0%} in use on average over {base} replicas, "
            f"target {self.target:.0%} -> {n}",
            replicas_for(work, self.target * DOWN_BAND),
        )


@dataclass(frozen=True, slots=True)
class EngineQueuePolicy:
    """Add replicas when the engines hold more than `per_replica` waiting requests per ready replica.

    The gateway hands an engine up to max_concurrency requests; how many of those the engine really
    runs depends on its batch and KV-cache room, and the rest wait inside it, invisible to the
    gateway's queue. On a breach it asks for the ready replicas plus enough to take the excess
    (ceil(excess / per_replica), at least one), a number that stays put while they boot; with some
    waiting but within the limit it keeps what it has; with none it sizes, like queue-delay, for the
    burst window's peak in-flight work at 90% of max_concurrency. No engine sample: the default
    policy's number, said so."""

    per_replica: float

    def decide(self, ctx: ScalingContext, load: LoadSignals, now: float) -> Recommendation:
        engine = ctx.engine
        if engine is None:
            rec = FALLBACK.decide(ctx, load, now)
            return Recommendation(rec.replicas, f"engine-queue: no engine metrics; {rec.reason}", rec.hold)
        ready = max(ctx.ready, engine.replicas, 1)
        allowed = self.per_replica * ready
        if engine.waiting > allowed:
            extra = max(1, replicas_for(engine.waiting - allowed, self.per_replica))
            n = max(ctx.current, ready + extra)
            return Recommendation(
                n,
                f"engine-queue: {engine.waiting:g} waiting in the engines of {ready} ready replicas "
                f"> {self.per_replica:g} per replica -> {n}",
            )
        if engine.waiting > 0:
            return Recommendation(
                ctx.current,
                f"engine-queue: {engine.waiting:g} waiting <= {self.per_replica:g} per replica -> keep {ctx.current}",
            )
        mc = ctx.scaling.max_concurrency
        n = min(ctx.current, replicas_for(load.burst_peak, mc * DOWN_BAND))
        return Recommendation(n, f"engine-queue: none waiting, peak {load.burst_peak:.0f} in flight fit {n} replicas")


def policy_for(policy: ScalePolicy) -> Policy:
    """The policy object for an endpoint's `scaling.scale_policy`."""
    if policy.kind is ScalePolicyKind.KV_CACHE:
        return KvCachePolicy(policy.value)
    if policy.kind is ScalePolicyKind.ENGINE_QUEUE:
        return EngineQueuePolicy(policy.value)
    if policy.kind is ScalePolicyKind.QUEUE_DELAY:
        return QueueDelayPolicy(policy.value)
    if policy.kind is ScalePolicyKind.REQUEST_COUNT:
        return RequestCountPolicy(policy.value)
    return ConcurrencyPolicy(policy.value)
