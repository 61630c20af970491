"""Immutable sliding windows over time: the only history the pure policies need.

Both are small: the load window holds one burst window of samples (4 at a 0.25 s tick) and the
max window is a monotonic queue that keeps only values that can still become the maximum, so a
30 s window of a steady load is one entry. Each update returns a new window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """(time, load) samples within `span_s` of the newest one."""

    span_s: float
    samples: tuple[tuple[float, float], ...] = ()

    def add(self, at: float, load: float) -> LoadWindow:
        kept = tuple(s for s in self.samples if s[0] > at - self.span_s and s[0] <= at)
        return LoadWindow(self.span_s, (*kept, (at, load)))

    def average(self) -> float:
        """Mean of the samples in the window; 0 with none. A step shows in full after one span."""
        if not self.samples:
            return 0.0
        return sum(load for _, load in self.samples) / len(self.samples)

    def peak(self) -> float:
        return max((load for _, load in self.samples), default=0.0)


@dataclass(frozen=True, slots=True)
class MaxWindow:
    """The largest value seen in the last `span_s` seconds (a monotonic queue, oldest first)."""

    span_s: float
    entries: tuple[tuple[float, int], ...] = ()

    def add(self, at: float, value: int) -> MaxWindow:
        kept = [e for e in self.entries if e[0] > at - self.span_s]
        while kept and kept[-1][1] <= value:
            kept.pop()
        kept.append((at, value))
        return MaxWindow(self.span_s, tuple(kept))

    def maximum(self, now: float) -> int | None:
        """Largest value still in the window at `now`, or None when the window is empty."""
        for at, value in self.entries:
            if at > now - self.span_s:
                return value
        return None
