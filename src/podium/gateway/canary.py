"""A canary's request split and the per-revision outcomes it is judged by (issue 13).

While a canary holds, the route names `canary_revision` and `canary_percent`: that share of the
requests goes to replicas of the canary revision, the rest to the others (each side least-loaded of
two), so the split follows the percentage whatever the replica counts. Each lease's outcome is
counted per revision, which the controller reads (error rate beside the old revision's) to roll a
bad canary back, and `/v0/endpoints/{id}/revisions` shows. Plain counters: no lock, no thread.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from podium.gateway.routes import EndpointRoute, ReplicaRoute


@dataclass(frozen=True, slots=True)
class Split:
    canary: tuple[ReplicaRoute, ...]
    stable: tuple[ReplicaRoute, ...]
    percent: float

    def side(self, rng: random.Random) -> tuple[ReplicaRoute, ...]:
        return self.canary if rng.random() * 100.0 < self.percent else self.stable


def split_of(route: EndpointRoute, usable: tuple[ReplicaRoute, ...]) -> Split | None:
    """The two sides of a canary among the usable replicas; None without a canary or with one side empty."""
    rev = route.canary_revision
    if rev is None:
        return None
    canary = tuple(r for r in usable if r.revision == rev)
    stable = tuple(r for r in usable if r.revision != rev)
    return Split(canary, stable, route.canary_percent) if canary and stable else None


def least_of_two(
    side: tuple[ReplicaRoute, ...], counts: dict[str, int], cap: int, rng: random.Random
) -> ReplicaRoute | None:
    """The less loaded of two random replicas of `side` with a free slot (any other with one if both are full)."""
    n = len(side)
    if n == 1:
        return side[0] if counts.get(side[0].replica_id, 0) < cap else None
    i = rng.randrange(n)
    j = rng.randrange(n - 1)
    j += j >= i
    a, b = side[i], side[j]
    best = a if counts.get(a.replica_id, 0) <= counts.get(b.replica_id, 0) else b
    if counts.get(best.replica_id, 0) < cap:
        return best
    least = min(side, key=lambda r: counts.get(r.replica_id, 0))
    return least if counts.get(least.replica_id, 0) < cap else None


class RevisionOutcomes:
    """Requests, errors (5xx) and latency per revision of one endpoint, since the gateway started."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[int, list[float]] = {}  # revision -> [requests, errors, latency sum]

    def record(self, revision: int, status: int, took_s: float) -> None:
        c = self._counts.get(revision)
        if c is None:
            c = self._counts[revision] = [0, 0, 0.0]
        c[0] += 1
        c[1] += status >= 500
        c[2] += took_s

    def snapshot(self) -> dict[int, tuple[int, int, float]]:
        """revision -> (requests, errors, mean latency in seconds)."""
        return {rev: (int(c[0]), int(c[1]), c[2] / c[0] if c[0] else 0.0) for rev, c in self._counts.items()}
