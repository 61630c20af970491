"""Per-token request rates: a token bucket per rate-limited platform token.

A token with `rate_limit_rpm = N` may burst N requests, then gets N per minute back; a request
over it is answered 429 with `Retry-After` (when the next one would pass) before it takes a slot
or a queue place. Pure arithmetic on an injected clock, so it is tested without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("capacity", "level", "per_second", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Spend one request: None when allowed, else seconds until one would be."""
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now
        if self.level >= 1.0:
            self.level -= 1.0
            return None
        return (1.0 - self.level) / self.per_second
