"""Immutable sliding windows over time: the only history the pure policies need.

The load window holds one stable window of samples; the max window is a monotonic queue that
keeps only values that can still become the maximum, so 30 s of a steady load is one entry.
Each update returns a new window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """(time, load) samples within `span_s` of the newest one (one per tick: 120 at 0.25 s / 30 s)."""

    span_s: float
    samples: tuple[tuple[float, float], ...] = ()

    def add(self, at: float, load: float) -> LoadWindow:
        kept = tuple(s for s in self.samples if at - self.span_s < s[0] <= at)
        return LoadWindow(self.span_s, (*kept, (at, load)))

    def _recent(self, now: float, over_s: float) -> list[float]:
        return [load for at, load in self.samples if at > now - over_s]

    def average(self, now: float, over_s: float) -> float:
        """Mean of the samples of the last `over_s` seconds; 0 with none."""
        recent = self._recent(now, over_s)
        return sum(recent) / len(recent) if recent else 0.0

    def peak(self, now: float, over_s: float) -> float:
        return max(self._recent(now, over_s), default=0.0)


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
