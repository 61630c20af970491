"""The jobs runner's knobs (docs/jobs.md), passed to what needs them; the defaults are what `podium up`
runs with, tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobsTuning:
    """Async jobs and batches (docs/jobs.md)."""

    retention_s: float = 24 * 3600.0  # a finished job's result is kept this long, then `expired`
    max_queued_per_endpoint: int = 10_000  # default bound on queued jobs (spec jobs.max_queued overrides)
    max_file_bytes: int = 48 * 1024 * 1024  # a bigger /v1/files upload is 413 (under the listener's 64 MiB body cap)
    age_bound_s: float = 30.0  # a job queued this long runs even while sync requests wait (no starvation)
    heartbeat_s: float = 1.0  # a running job's row is touched this often (cancel is seen within it)
    stale_after_s: float = 10.0  # a running job not touched this long lost its runner (crash)
    tick_s: float = 0.05  # the runner's idle poll of the queue (a submit in-process wakes it at once)
    min_gap_s: float = 0.005  # between two passes of the runner: a burst is one pass (few writes)
    webhook_attempts: int = 5  # deliveries tried per job, backoff doubling from webhook_backoff_s
    webhook_backoff_s: float = 0.5
