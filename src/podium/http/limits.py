"""Limits on what one HTTP request may cost the listener: sizes of its head and body, and time.

(Per-token request rates are the gateway's policy: podium.gateway.ratelimit.)
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.http.message import Headers


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
