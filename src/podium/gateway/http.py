"""The transport-neutral request/response shapes the gateway's handler works on.

The same handler serves the fast built-in HTTP server and plain ASGI (tests, other servers):
each transport builds a `Request` and implements `Responder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

Headers = list[tuple[bytes, bytes]]

# RFC 9110 7.6.1 hop-by-hop headers, plus what the proxy sets itself on the way to the replica
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
NOT_FORWARDED_UP = HOP_BY_HOP | {b"host", b"content-length", b"authorization", b"expect"}
NOT_FORWARDED_DOWN = HOP_BY_HOP | {b"content-length"}


@dataclass(slots=True)
class Request:
    method: str
    path: str  # decoded path, no query
    raw_path: bytes  # as sent, no query (forwarded as is under /e/)
    query: bytes  # without "?"
    headers: Headers  # names lower-case
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Responder(Protocol):
    """Where a response goes. `started` is True once the status line is committed."""

    started: bool

    async def send_full(self, status: int, headers: Headers, body: bytes) -> None: ...

    async def start(self, status: int, headers: Headers, content_length: int | None) -> None: ...

    async def write(self, chunk: bytes) -> None: ...

    async def end(self) -> None: ...

    def abort(self) -> None:
        """Cut the connection: the response cannot be completed (replica died mid-stream)."""
        ...
