"""A response's head and framing on a built-in connection, decided in one place.

Every writer of a response head (the gateway's responder, the fast relay, the ASGI host, the
listener's own rejections) gets it from `frame`, which also decides the body's framing: a known
length is a Content-Length; a body of unknown length is chunked, or on HTTP/1.0 delimited by
closing the connection; a connection that will not be kept alive says `connection: close`.
Written once so the writers cannot disagree.
"""

from __future__ import annotations

from typing import Protocol

from podium.http.message import STATUS_PHRASES, Headers

CHUNKED = b"transfer-encoding: chunked\r\n"
CLOSE = b"connection: close\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class Framed(Protocol):
    """What framing reads of a connection (listener.Connection), and may turn off (keep_alive)."""

    keep_alive: bool
    http10: bool


def frame(conn: Framed, status: int, headers: Headers, length: int | None, *, body: bool = True) -> tuple[bytes, bool]:
    """The head of a response on `conn`, and whether its body must be sent chunked (`chunk`).

    `length`: the body's size when known. `body=False`: no body follows (HEAD, 204/304, or the
    headers already carry their own Content-Length), so an unknown length needs no framing.
    An HTTP/1.0 body of unknown length ends with the connection, so `conn.keep_alive` is cleared.
    """
    chunked = False
    if length is not None:
        framing = b"content-length: %d\r\n" % length
    elif not body:
        framing = b""
    elif conn.http10:
        framing, conn.keep_alive = b"", False
    else:
        framing, chunked = CHUNKED, True
    if not conn.keep_alive:
        framing += CLOSE
    # the head is built here, not in a helper: one call less on every response of the hot path
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, STATUS_PHRASES.get(status, b"Unknown"))]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(framing + b"\r\n")
    return b"".join(parts), chunked


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)
