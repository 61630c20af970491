"""Traffic numbers the gateway measures and the autoscaler reads: one shape for both, so the
autoscaler decides on exactly what the balancer enforces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EndpointStats:
    in_flight: int = 0  # requests holding a replica slot right now
    queued: int = 0  # requests waiting for a slot (or for a first ready replica)
    oldest_wait_s: float = 0.0  # how long the oldest queued request has waited
    rps: float = 0.0  # completed requests per second, recent window
    last_request_at: float | None = None  # wall-clock time.time() of the last request seen

    def merge(self, other: EndpointStats) -> EndpointStats:
        """Combine two gateways' views of one endpoint (sums; max of waits; latest request)."""
        last = max((t for t in (self.last_request_at, other.last_request_at) if t is not None), default=None)
        return EndpointStats(
            in_flight=self.in_flight + other.in_flight,
            queued=self.queued + other.queued,
            oldest_wait_s=max(self.oldest_wait_s, other.oldest_wait_s),
            rps=self.rps + other.rps,
            last_request_at=last,
        )


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """An endpoint's model engines together, from their own `/metrics` (controller/engine_metrics.py):
    what the kv-cache and engine-queue scale policies read. Absent (None) when no engine says."""

    replicas: int  # ready replicas whose engine answered
    waiting: float  # requests waiting inside the engines (not yet scheduled), summed
    running: float  # requests the engines run now, summed
    kv_cache_avg: float | None = None  # KV-cache share in use, 0..1, mean over those replicas
    kv_cache_max: float | None = None
