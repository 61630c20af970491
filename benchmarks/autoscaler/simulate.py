"""Replay load traces against the real autoscaler policy code with a virtual clock.

A small discrete-event model of one endpoint: Poisson arrivals at a time-varying rate, replicas
that boot for `startup_s` then serve up to `max_concurrency` requests each (service time drawn
per request, independent of concurrency, like a batching model server), one FIFO queue, and a
controller that applies each desired count at once (new replicas boot; surplus ones drain). The
autoscaler ticks every 0.25 s and calls `podium.autoscaler.decide` exactly as the loop does.

It reports what an operator trades: replica-seconds used vs. requests delayed (and p95 wait).

    .venv/bin/python benchmarks/autoscaler/simulate.py            # all traces x all policies
    .venv/bin/python benchmarks/autoscaler/simulate.py --trace spike --policy queue-delay=2
    .venv/bin/python benchmarks/autoscaler/simulate.py --windows  # stable-window sweep
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from podium.autoscaler import Decision, ScalerState, ScalingContext, Tuning, decide, note_wake
from podium.core.specs import ScalePolicy, Scaling
from podium.core.stats import EndpointStats

TICK_S = 0.25
Rate = Callable[[float], float]


def ramp(t: float) -> float:
    """0 -> 40 rps over 300 s, hold 60 s, down over 120 s, then silence (idle -> zero)."""
    if t < 300:
        return 40 * t / 300
    if t < 360:
        return 40.0
    if t < 480:
        return 40 * (480 - t) / 120
    return 0.0


def spike(t: float) -> float:
    """2 rps background with a 30 s burst to 30 rps at t=120 s and a second one at t=300 s."""
    return 30.0 if 120 <= t < 150 or 300 <= t < 330 else 2.0


def diurnal(t: float) -> float:
    """Two compressed 'days' of 600 s: 0.5 rps at night, 15.5 rps at noon."""
    return 0.5 + 15 * (1 - math.cos(2 * math.pi * t / 600)) / 2


TRACES: dict[str, tuple[Rate, float]] = {"ramp": (ramp, 600.0), "spike": (spike, 480.0), "diurnal": (diurnal, 1200.0)}
POLICIES = ("concurrency=0.7", "request-count=6", "queue-delay=2", "queue-delay=0.5")


@dataclass(frozen=True)
class ModelConfig:
    startup_s: float = 15.0  # a model server boots in ~15 s (weights already on disk)
    service_mean_s: float = 2.0  # a chat completion, lognormal around this
    max_concurrency: int = 8
    min_replicas: int = 0
    max_replicas: int = 20
    idle_timeout_s: float = 60.0
    seed: int = 7


@dataclass
class Replica:
    ready_at: float
    started_at: float
    in_flight: int = 0
    draining: bool = False
    ended_at: float | None = None


@dataclass
class Result:
    trace: str
    policy: str
    requests: int
    replica_seconds: float
    delayed: int  # waited more than 1 s for a slot (cold starts included)
    p95_wait_s: float
    max_wait_s: float
    peak_replicas: int
    changes: int  # how often the desired count moved (a flap detector)
    decisions: list[Decision] = field(default_factory=list, repr=False)

    def row(self) -> str:
        return (
            f"{self.trace:8} {self.policy:16} {self.requests:6d} {self.replica_seconds:9.0f} "
            f"{self.delayed:6d} {100 * self.delayed / max(1, self.requests):6.1f}% {self.p95_wait_s:7.2f} "
            f"{self.max_wait_s:7.2f} {self.peak_replicas:5d} {self.changes:5d}"
        )


HEADER = (
    f"{'trace':8} {'policy':16} {'reqs':>6} {'rep-sec':>9} {'>1s':>6} {'delayed':>7} "
    f"{'p95 s':>7} {'max s':>7} {'peak':>5} {'moves':>5}"
)


def arrivals(rate: Rate, duration: float, rng: random.Random) -> list[float]:
    """Non-homogeneous Poisson arrivals by thinning."""
    top = max(rate(t / 10) for t in range(int(duration * 10))) or 1.0
    out: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(top)
        if t >= duration:
            return out
        if rng.random() * top < rate(t):
            out.append(t)


class Simulation:
    """One endpoint, one trace, one policy. Event kinds: arrive, done, ready, tick."""

    def __init__(self, trace: str, policy: str, cfg: ModelConfig, tuning: Tuning) -> None:
        self.rate, self.duration = TRACES[trace]
        self.trace, self.policy, self.cfg, self.tuning = trace, policy, cfg, tuning
        self.rng = random.Random(cfg.seed)
        self.scaling = Scaling(
            min_replicas=cfg.min_replicas,
            max_replicas=cfg.max_replicas,
            idle_timeout_s=cfg.idle_timeout_s,
            max_concurrency=cfg.max_concurrency,
            scale_policy=ScalePolicy.parse(policy),
        )
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = 0
        self.replicas: list[Replica] = []
        self.queue: deque[float] = deque()
        self.waits: list[float] = []
        self.desired = cfg.min_replicas
        self.state: ScalerState | None = None
        self.last_request_at: float | None = None
        self.changes = 0
        self.decisions: list[Decision] = []

    def push(self, at: float, kind: str, payload: object = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, payload))

    def run(self) -> Result:
        for t in arrivals(self.rate, self.duration, self.rng):
            self.push(t, "arrive")
        self.apply(self.desired, 0.0)
        tick = 0.0
        while tick <= self.duration + 300:
            self.push(tick, "tick")
            tick += TICK_S
        while self.events:
            now, _, kind, payload = heapq.heappop(self.events)
            getattr(self, f"on_{kind}")(now, payload)
        end = self.duration + 300
        seconds = sum((r.ended_at if r.ended_at is not None else end) - r.started_at for r in self.replicas)
        waits = sorted(self.waits)
        return Result(
            trace=self.trace,
            policy=self.policy,
            requests=len(waits),
            replica_seconds=seconds,
            delayed=sum(1 for w in waits if w > 1.0),
            p95_wait_s=waits[int(0.95 * (len(waits) - 1))] if waits else 0.0,
            max_wait_s=waits[-1] if waits else 0.0,
            peak_replicas=max((d.desired for d in self.decisions), default=0),
            changes=self.changes,
            decisions=self.decisions,
        )

    # -- data plane -------------------------------------------------------------------------
    def on_arrive(self, now: float, _: object) -> None:
        self.last_request_at = now
        self.queue.append(now)
        if self.desired == 0:  # the gateway's wake-up: 0 -> 1 at once
            self.state = note_wake(self.state, now, self.tuning)
            if self.scaling.max_replicas >= 1:
                self.apply(1, now)
        self.dispatch(now)

    def on_done(self, now: float, replica: object) -> None:
        assert isinstance(replica, Replica)
        replica.in_flight -= 1
        if replica.draining and replica.in_flight == 0 and replica.ended_at is None:
            replica.ended_at = now
        self.dispatch(now)

    def on_ready(self, now: float, replica: object) -> None:
        self.dispatch(now)

    def dispatch(self, now: float) -> None:
        while self.queue:
            free = [r for r in self.serving(now) if r.in_flight < self.cfg.max_concurrency]
            if not free:
                return
            replica = min(free, key=lambda r: r.in_flight)
            self.waits.append(now - self.queue.popleft())
            replica.in_flight += 1
            service = self.rng.lognormvariate(math.log(self.cfg.service_mean_s) - 0.125, 0.5)
            self.push(now + service, "done", replica)

    def serving(self, now: float) -> list[Replica]:
        return [r for r in self.replicas if not r.draining and r.ended_at is None and r.ready_at <= now]

    # -- control plane ----------------------------------------------------------------------
    def on_tick(self, now: float, _: object) -> None:
        active = [r for r in self.replicas if r.ended_at is None]
        stats = EndpointStats(
            in_flight=sum(r.in_flight for r in active),
            queued=len(self.queue),
            oldest_wait_s=now - self.queue[0] if self.queue else 0.0,
            last_request_at=self.last_request_at,
        )
        ctx = ScalingContext(
            endpoint_id="ep-sim",
            scaling=self.scaling,
            stats=stats,
            current=self.desired,
            ready=len(self.serving(now)),
            live=len(active),
            since_last_request_s=None if self.last_request_at is None else now - self.last_request_at,
        )
        decision, self.state = decide(ctx, self.state, now, self.tuning)
        self.decisions.append(decision)
        self.apply(decision.desired, now)

    def apply(self, desired: int, now: float) -> None:
        """The controller: boot what is missing, stop what is surplus (booting first, then drain)."""
        if desired != self.desired:
            self.changes += 1
        self.desired = desired
        kept = [r for r in self.replicas if r.ended_at is None and not r.draining]
        for _ in range(desired - len(kept)):
            replica = Replica(ready_at=now + self.cfg.startup_s, started_at=now)
            self.replicas.append(replica)
            self.push(replica.ready_at, "ready", replica)
        surplus = max(0, len(kept) - desired)
        for replica in sorted(kept, key=lambda r: (r.ready_at <= now, r.in_flight, -r.ready_at))[:surplus]:
            replica.draining = True
            if replica.in_flight == 0:
                replica.ended_at = now


def simulate(trace: str, policy: str, cfg: ModelConfig | None = None, tuning: Tuning | None = None) -> Result:
    return Simulation(trace, policy, cfg or ModelConfig(), tuning or Tuning()).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", choices=sorted(TRACES), action="append")
    parser.add_argument("--policy", action="append", help="e.g. queue-delay=2 (repeatable)")
    parser.add_argument("--windows", action="store_true", help="sweep the stable window (concurrency)")
    parser.add_argument("--startup", type=float, default=ModelConfig.startup_s, help="replica boot seconds")
    args = parser.parse_args()
    cfg = ModelConfig(startup_s=args.startup)
    traces = args.trace or list(TRACES)
    print(HEADER)
    if args.windows:
        for burst, stable in ((1.0, 10.0), (1.0, 20.0), (1.0, 30.0), (1.0, 60.0), (3.0, 20.0)):
            print(f"-- burst window {burst:g}s, stable window {stable:g}s")
            for trace in traces:
                for policy in args.policy or ["concurrency=0.7"]:
                    print(simulate(trace, policy, cfg, Tuning(burst, stable)).row())
        return
    for trace in traces:
        for policy in args.policy or POLICIES:
            print(simulate(trace, policy, cfg).row())


if __name__ == "__main__":
    main()
