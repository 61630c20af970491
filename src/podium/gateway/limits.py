"""Limits on what a client may cost: per-token request rates and per-request HTTP sizes and times.

Per-token rates: a token bucket per rate-limited platform token.

A token with `rate_limit_rpm = N` may burst N requests, then gets N per minute back; a request
over it is answered 429 with `Retry-After` (when the next one would pass) before it takes a slot
or a queue place. Pure arithmetic on an injected clock, so it is tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.gateway.http import Headers


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


@dataclass(frozen=True)
class HttpLimits:
    """What one client request may cost the listener before it is answered, and how long its head may take.

    Without these a client could park gigabytes in a connection's parser (one endless header) or
    hold a connection forever by sending its head a byte at a time (slowloris). Every limit is
    checked on the listener's existing paths (no extra timer or task per request): header bytes
    per received chunk, counts and sizes once per request head, the head deadline by the idle
    sweep that already visits every connection.
    """

    max_body_bytes: int = 64 * 1024 * 1024  # 413 beyond (Content-Length or bytes received)
    max_head_bytes: int = 64 * 1024  # request line + headers; 431 beyond
    max_headers: int = 100  # 431 beyond
    max_url_bytes: int = 16 * 1024  # 414 beyond
    head_timeout_s: float = 10.0  # from accept (first request) or first byte (later ones) to a complete head; 408
    linger_s: float = 2.0  # after a rejection: how long unread request bytes are drained before closing


class Rejected(Exception):
    """A request over a limit, raised in the listener's parser callbacks: answer `status`, close."""

    def __init__(self, status: int, message: bytes) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def head_size(url: bytes, headers: Headers) -> int:
    """The bytes of a request head as the limit counts them: URL, names, values, separators."""
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)
