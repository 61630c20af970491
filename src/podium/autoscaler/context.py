"""The values a scaling decision is made from and the decision itself.

Everything here is immutable, so a decision is a pure function of (context, state, now) and can be
replayed in tests and in the simulator exactly as the loop saw it.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.core.specs import Scaling
from podium.core.stats import EndpointStats, EngineLoad


@dataclass(frozen=True, slots=True)
class Tuning:
    """The autoscaler's time constants. Why these numbers: docs/autoscaler.md ("Windows").

    - `burst_window_s`: the load averaged over this long is what burst ("panic") scale-up
      reacts to. In-flight counts of model requests (seconds each) are already smooth, so 1 s
      (4 ticks) is enough to ignore a one-tick blip and still act within the 1 s budget.
    - `stable_window_s`: the concurrency policy sizes for the load averaged over this long, and
      every scale-down goes only to the highest count asked for during this long. A replica
      removed too early costs a cold start (seconds to minutes for a model server) plus delayed
      requests; one kept too long costs this many replica-seconds: holding about one boot time is
      the ski-rental break-even. The simulator's sweep (benchmarks/autoscaler) picked 20 s over
      10, 30 and 60 s: 10 s saves replica-seconds only by moving the count twice as often, and
      30/60 s cost 3-86% more replica-seconds without fewer delayed requests.
    """

    burst_window_s: float = 1.0
    stable_window_s: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.burst_window_s <= self.stable_window_s:
            raise ValueError("need 0 < burst_window_s <= stable_window_s")


@dataclass(frozen=True, slots=True)
class ScalingContext:
    """One endpoint as the autoscaler sees it on one tick."""

    endpoint_id: str
    scaling: Scaling
    stats: EndpointStats
    current: int  # desired replica count in the store right now (what the controller works toward)
    ready: int = 0  # replicas serving traffic
    live: int = 0  # replicas holding resources (pending, starting, ready, draining)
    enabled: bool = True
    since_last_request_s: float | None = None  # wall-clock age of stats.last_request_at; None = never
    stats_complete: bool = True  # False when a gateway did not answer: never scale down on half the data
    engine: EngineLoad | None = None  # the replicas' own engine metrics; None: no engine says (llama_cpp.server)

    @property
    def load(self) -> int:
        """Requests that want a replica slot: running plus waiting."""
        return self.stats.in_flight + self.stats.queued


@dataclass(frozen=True, slots=True)
class Decision:
    """What the autoscaler wants and why, in words shown by `endpoint get` and in events."""

    desired: int
    reason: str
    recommended: int = 0  # the policy's own number before bounds, idle and anti-flap
