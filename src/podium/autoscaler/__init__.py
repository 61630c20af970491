"""Autoscaling: pure policies `decide(ctx, now)` and the loop that applies them.

- `policies`: queue-delay, request-count and concurrency, each a pure replica recommendation;
- `decide`: the one wrapper (bounds, idle timeout, anti-flap windows, scale from zero);
- `loop`: `Autoscaler`, the only writer of desired replica counts.
"""

from podium.autoscaler.context import Decision, ScalingContext, Tuning
from podium.autoscaler.decide import ScalerState, decide, initial_state, note_wake
from podium.autoscaler.loop import Autoscaler, ScalingStore, ScalingTarget, StatsSource
from podium.autoscaler.policies import policy_for

__all__ = [
    "Autoscaler",
    "Decision",
    "ScalerState",
    "ScalingContext",
    "ScalingStore",
    "ScalingTarget",
    "StatsSource",
    "Tuning",
    "decide",
    "initial_state",
    "note_wake",
    "policy_for",
]
