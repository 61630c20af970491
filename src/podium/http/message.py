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
# request headers the proxy rewrites (RFC 7239 section 5 / de facto X-Forwarded-*): looked at, then re-added
FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
HANDLED_UP = NOT_FORWARDED_UP | FORWARDING
PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"Keep-Alive", b"Close"})


def connection_options(value: bytes) -> frozenset[bytes]:
    """Header names a `Connection` value declares hop-by-hop (RFC 9110 7.6.1), beyond the standard set."""
    if value in PLAIN_CONNECTION:  # what nearly every client sends: nothing to parse
        return frozenset()
    names = {token.strip().lower() for token in value.split(b",")}
    return frozenset(names - HOP_BY_HOP - {b"", b"close"})


def without_hop_by_hop(headers: Headers, drop: frozenset[bytes]) -> Headers:
    """`headers` less `drop` and less any header their own `Connection` names (a response's headers)."""
    kept: Headers = []
    named: frozenset[bytes] = frozenset()
    for name, value in headers:
        if name not in drop:
            kept.append((name, value))
        elif name == b"connection":
            named |= connection_options(value)
    return [(n, v) for n, v in kept if n not in named] if named else kept


STATUS_PHRASES = {
    100: b"Continue",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    413: b"Content Too Large",
    414: b"URI Too Long",
    422: b"Unprocessable Content",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    499: b"Client Closed Request",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
NO_BODY = frozenset({204, 304})


@dataclass(slots=True)
class Request:
    method: str
    path: str  # decoded path, no query
    raw_path: bytes  # as sent, no query (forwarded as is under /e/)
    query: bytes  # without "?"
    headers: Headers  # names lower-case
    body: bytes
    client: bytes = b""  # the client's address as X-Forwarded-For writes it (no port); b"" if unknown

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
