"""The one wrapper around every policy: bounds, idle timeout, anti-flap and scale-from-zero.

`decide(ctx, state, now, tuning) -> (Decision, new_state)` is pure: the loop owns the state of
each endpoint and passes it back in on the next tick; tests and the simulator drive it with a
virtual clock. The rules, in the order they win:

1. stopped endpoint -> 0 (and history is forgotten);
2. cold start: requests waiting (or a gateway's wake-up) while the desired count is 0 -> at least
   1 at once, whatever the windows say;
3. idle timeout: no request for `scaling.idle_timeout_s` -> min_replicas (0 when min is 0);
4. scale up: at once to the policy's number (capped at max_replicas);
5. scale down: only to the highest number any tick asked for during the stable window (each
   policy's `hold`, which measures against a 10% lower threshold), only once the window has
   been watched in full, never while the load is rising (burst average >10% above the stable
   average) and never while a gateway is missing from the stats. An active endpoint keeps at
   least one replica until the idle timeout says otherwise.

Rule 5 is the anti-flap guarantee: a load sitting on a threshold makes the recommendation
alternate between k and k+1; the window maximum stays k+1, so the count goes up once and stays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from podium.autoscaler.context import Decision, ScalingContext, Tuning
from podium.autoscaler.policies import LoadSignals, Recommendation, policy_for
from podium.autoscaler.window import LoadWindow, MaxWindow

RISING = 1.1  # no scale-down while the last second's load is >10% above the stable average


@dataclass(frozen=True, slots=True)
class ScalerState:
    """Per-endpoint history the windows need; owned by the loop, never mutated."""

    loads: LoadWindow
    recommendations: MaxWindow
    observed_since: float  # when this history started: scale-down waits for a full stable window
    last_busy_at: float  # last time the endpoint had a request (running, queued, or just seen)
    wake_pending: bool = False  # a gateway asked for 0 -> 1; holds >= 1 until the store shows it


def initial_state(now: float, tuning: Tuning) -> ScalerState:
    """Fresh history. The endpoint counts as busy `now` so nothing idles out before it was watched."""
    return ScalerState(
        loads=LoadWindow(tuning.stable_window_s),
        recommendations=MaxWindow(tuning.stable_window_s),
        observed_since=now,
        last_busy_at=now,
    )


def note_wake(state: ScalerState | None, now: float, tuning: Tuning) -> ScalerState:
    """A gateway holds a request at zero replicas: count it as traffic and as a need for 1 replica."""
    base = state or initial_state(now, tuning)
    return replace(
        base,
        recommendations=base.recommendations.add(now, 1),
        last_busy_at=max(base.last_busy_at, now),
        wake_pending=True,
    )


def decide(
    ctx: ScalingContext, state: ScalerState | None, now: float, tuning: Tuning = Tuning()
) -> tuple[Decision, ScalerState]:
    """One endpoint, one tick: the desired replica count, its reason, and the next state."""
    fresh = state is None
    if state is None:
        state = initial_state(now, tuning)
    if not ctx.enabled:
        return Decision(0, "endpoint is stopped", 0), initial_state(now, tuning)

    loads = state.loads.add(now, ctx.load)
    last_busy = now if ctx.load > 0 else state.last_busy_at
    if ctx.since_last_request_s is not None and ctx.load == 0:
        seen = now - ctx.since_last_request_s
        # Fresh history trusts the gateway's clock (it saw traffic before we did); later ticks only
        # move the idle clock forward.
        last_busy = seen if fresh else max(last_busy, seen)
    signals = LoadSignals(
        burst_avg=loads.average(now, tuning.burst_window_s),
        burst_peak=loads.peak(now, tuning.burst_window_s),
        stable_avg=loads.average(now, tuning.stable_window_s),
    )
    rec = policy_for(ctx.scaling.scale_policy).decide(ctx, signals, now)
    recs = state.recommendations.add(now, rec.keep)
    wake_pending = state.wake_pending and ctx.current < 1
    state = replace(state, loads=loads, recommendations=recs, last_busy_at=last_busy, wake_pending=wake_pending)

    desired, reason = _apply_rules(ctx, state, rec, signals, now, tuning)
    if desired > ctx.current:
        # Remember what we scaled up to, so the window holds it even when a rule (cold start,
        # floor) asked for more than the policy did.
        state = replace(state, recommendations=state.recommendations.add(now, desired))
    return Decision(desired, reason, rec.replicas), state


def _apply_rules(
    ctx: ScalingContext, state: ScalerState, rec: Recommendation, load: LoadSignals, now: float, tuning: Tuning
) -> tuple[int, str]:
    sc = ctx.scaling
    lo, hi = sc.min_replicas, sc.max_replicas
    waiting = ctx.load > 0 or state.wake_pending
    if ctx.current == 0 and waiting and hi >= 1:
        n = min(hi, max(1, rec.replicas, lo))
        why = f"{ctx.load} requests" if ctx.load else "a request"
        return n, f"cold start: {why} waiting at 0 replicas -> {n}"

    idle_for = now - state.last_busy_at
    if ctx.load == 0 and idle_for >= sc.idle_timeout_s and ctx.stats_complete:
        return lo, f"idle: no requests for {idle_for:.0f}s (idle timeout {sc.idle_timeout_s:g}s) -> min {lo}"

    floor = max(lo, 1) if ctx.current >= 1 and hi >= 1 else lo
    target = max(rec.replicas, floor)
    if target > ctx.current:
        return _cap(target, hi, rec.reason)
    if target == ctx.current:
        return _cap(target, hi, rec.reason)
    return _scale_down(ctx, state, rec, load, floor, now, tuning)


def _scale_down(
    ctx: ScalingContext,
    state: ScalerState,
    rec: Recommendation,
    load: LoadSignals,
    floor: int,
    now: float,
    tuning: Tuning,
) -> tuple[int, str]:
    current, hi = ctx.current, ctx.scaling.max_replicas
    if current > hi:
        return hi, f"{rec.reason}; max_replicas lowered to {hi}"
    if not ctx.stats_complete:
        return current, f"holding {current}: a gateway did not report stats this tick"
    watched = now - state.observed_since
    if watched < tuning.stable_window_s:
        return current, f"holding {current}: watching load {watched:.0f}s of {tuning.stable_window_s:g}s"
    if load.burst_avg > load.stable_avg * RISING:
        return current, (
            f"holding {current}: load is rising ({load.burst_avg:.1f} now, {load.stable_avg:.1f} on average)"
        )
    peak = state.recommendations.maximum(now) or 0
    n = min(current, max(floor, peak))
    if n == current:
        return current, f"holding {current}: load needed {peak} within the last {tuning.stable_window_s:g}s"
    return n, f"scale down to {n}: {rec.reason}; at most {peak} needed in {tuning.stable_window_s:g}s"


def _cap(n: int, hi: int, reason: str) -> tuple[int, str]:
    if n > hi:
        return hi, f"{reason}; capped at max_replicas {hi}"
    return n, reason
