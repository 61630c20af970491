"""podium.http.framing: the one place a response's framing is decided (used by every writer)."""

from __future__ import annotations

from dataclasses import dataclass

from podium.http.framing import chunk, frame

JSON = [(b"content-type", b"application/json")]


@dataclass
class Conn:
    keep_alive: bool = True
    http10: bool = False


def test_a_known_length_is_a_content_length() -> None:
    head, chunked = frame(Conn(), 200, JSON, 5)
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\n"
    assert not chunked


def test_an_unknown_length_is_chunked_on_http11_and_close_delimited_on_http10() -> None:
    head, chunked = frame(Conn(), 200, [], None)
    assert head == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" and chunked
    old = Conn(http10=True)
    head, chunked = frame(old, 200, [], None)
    assert head == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" and not chunked and not old.keep_alive


def test_no_body_needs_no_framing_and_a_closing_connection_says_so() -> None:
    assert frame(Conn(), 204, [], None, body=False) == (b"HTTP/1.1 204 No Content\r\n\r\n", False)
    head, _ = frame(Conn(keep_alive=False), 404, [], 2)
    assert head == b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"


def test_a_chunk_is_hex_length_data_crlf() -> None:
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
