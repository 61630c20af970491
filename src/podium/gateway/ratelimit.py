"""Per-token request rates: a token bucket per rate-limited platform token.

A token with `rate_limit_rpm = N` may burst N requests, then gets N per minute back; a request
over it is answered 429 with `Retry-After` (when the next one would pass) before it takes a slot
or a queue place. Pure arithmetic on an injected clock, so it is tested without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("capacity", "level", "per_second", "updated")

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Spend one request: None when allowed, else seconds until one would be.

        A bucket smaller than one request (a gateway's small share of a token's rate, roles/shares.py)
        admits one when full and goes into debt, so over time it still passes exactly its rate."""
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now
        need = min(1.0, self.capacity)
        if self.level >= need:
            self.level -= 1.0
            return None
        return (need - self.level) / self.per_second

    def resize(self, per_minute: float, now: float) -> None:
        """A new rate (this gateway's share changed): keep what was spent, so resizing grants no burst."""
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.level = min(self.level, self.capacity)
