"""Token metering on the data plane: who spent how many tokens, streams included.

Non-streaming answers carry OpenAI's `usage` object; a stream carries it only when the client asked
for `stream_options.include_usage`, in one extra chunk with no choices before `data: [DONE]`. To
meter every stream, a streaming request to /v1/chat/completions or /v1/completions that did not ask
gets `"stream_options": {"include_usage": true}` added on the way in (`stream_mode`), and on the way
out `UsageStrip` removes that extra chunk (and the `"usage":null` some engines then add to every
chunk), so the client receives exactly the events it would have without the rewrite.

Cost: a request body without `"stream"` in it (every non-streaming request but the explicit
`"stream": false`) pays one substring scan and is never parsed again or rewritten; an unrewritten
stream's bytes are only scanned for `"usage"` (as before). Only a rewritten stream's events are
parsed, and only the few that mention usage.

Tokens are attributed to the caller: the platform token's id, `endpoint` for the endpoint's own
token, `anonymous` for an open endpoint called without one. The digest is the one admission already
computed, or (open endpoints, no rate limits) computed only when a usage object is found.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import orjson

from podium.gateway.auth import bearer_token

if TYPE_CHECKING:
    from podium.gateway.auth import TokenBook
    from podium.gateway.routing import Routed
    from podium.http.message import Request

NOT_STREAM = 0  # not a stream (or not an OpenAI generation path): nothing to do
STREAM = 1  # a stream whose client asked for usage itself: counted, left as it is
STREAM_INJECTED = 2  # a stream we asked usage for: counted, and the usage chunk stripped
STREAM_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
OPERATIONS = {"/v1/chat/completions": "chat", "/v1/completions": "text_completion", "/v1/embeddings": "embeddings"}
ANONYMOUS = "anonymous"  # no token presented (an open endpoint)
ENDPOINT_TOKEN = "endpoint"  # the endpoint's own token

STREAM_MARK = b'"stream"'
USAGE_MARK = b'"usage"'
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null')
_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")  # SSE: an event ends at a blank line, any line ending
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_MAX_PENDING = 1 << 20  # an "event" this long without a blank line is not SSE: passed on as it is


def stream_mode(routed: Routed, path: str) -> int:
    """Which kind of request this is for metering; rewrites `routed.body` for STREAM_INJECTED."""
    body = routed.body
    if STREAM_MARK not in body or path not in STREAM_PATHS:
        return NOT_STREAM
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return NOT_STREAM
    if not isinstance(payload, dict) or payload.get("stream") is not True:
        return NOT_STREAM
    options = payload.get("stream_options")
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        return STREAM  # the client's own mistake, for the engine to answer
    if options.get("include_usage") is True:
        return STREAM
    payload["stream_options"] = {**options, "include_usage": True}
    routed.body = _dumps(payload)
    return STREAM_INJECTED


def _dumps(payload: dict[str, object]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(payload, separators=(",", ":")).encode()


def usage_of(data: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens of the last OpenAI `usage` object in `data`, or None."""
    at = data.rfind(USAGE_MARK)
    if at < 0:
        return None
    tail = data[at : at + 512]
    prompt = _PROMPT_TOKENS.search(tail)
    completion = _COMPLETION_TOKENS.search(tail)
    if prompt is None and completion is None:
        return None
    return (int(prompt.group(1)) if prompt else 0, int(completion.group(1)) if completion else 0)


def caller_of(book: TokenBook | None, digest: str | None, endpoint_sha256: str | None, request: Request) -> str:
    """Who is charged for this request's tokens (see the module doc). `digest`: the one admission
    computed, if it did."""
    if book is None:
        return ANONYMOUS
    if digest is None:
        token = bearer_token(request.header(b"authorization"))
        if token is None:
            return ANONYMOUS
        digest = book.digest(token)
    if digest == endpoint_sha256:
        return ENDPOINT_TOKEN
    return book.token_id(digest) or ANONYMOUS


class UsageStrip:
    """Removes, from an SSE stream, the usage chunk the client did not ask for, and returns its usage.

    Events are passed on whole: bytes after the last blank line wait for the rest of their event
    (engines write one event per write, so this holds nothing back in practice). Events that do not
    mention `"usage"` pass untouched."""

    __slots__ = ("pending", "usage")

    def __init__(self) -> None:
        self.pending = b""
        self.usage: tuple[int, int] | None = None

    def feed(self, data: bytes) -> bytes:
        if self.pending:
            data = self.pending + data
            self.pending = b""
        if data.endswith(EVENT_ENDS):  # whole events, the common case: a scan and nothing else
            return data if USAGE_MARK not in data else self._strip(data)
        ends = [at + len(sep) for sep in EVENT_ENDS if (at := data.rfind(sep)) >= 0]
        cut = max(ends, default=0)
        if not cut:
            if len(data) > _MAX_PENDING:
                return data
            self.pending = data
            return b""
        whole, self.pending = data[:cut], data[cut:]
        return whole if USAGE_MARK not in whole else self._strip(whole)

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return rest

    def _strip(self, whole: bytes) -> bytes:
        """Whole events (each with its blank line) minus the usage chunk, `"usage":null` taken out.
        Only the events that mention usage are looked at, by byte patterns (no JSON parse): a whole
        stream read at once (a fast replica) costs a few finds, not a loop over its events."""
        at = whole.find(USAGE_MARK)
        while at >= 0:
            start, end = _event_bounds(whole, at)
            event = whole[start:end]
            if b"null" in event and _NULL_USAGE.search(event) is not None:  # "usage": null in a chunk
                kept = _NULL_USAGE.sub(b"", event)
            elif _EMPTY_CHOICES.search(event) is not None and (usage := usage_of(event)) is not None:
                self.usage = usage  # the extra chunk: counted, not forwarded
                kept = b""
            else:
                kept = event
            if kept is not event:
                whole = whole[:start] + kept + whole[end:]
                end = start + len(kept)
            at = whole.find(USAGE_MARK, end)
        return whole


def _event_bounds(data: bytes, at: int) -> tuple[int, int]:
    """[start, end) of the SSE event around offset `at`, its blank line included in `end` (a stream
    uses one kind of line ending: the first kind found is the one)."""
    for sep in EVENT_ENDS:
        after = data.find(sep, at)
        if after >= 0:
            before = data.rfind(sep, 0, at)
            return (0 if before < 0 else before + len(sep)), after + len(sep)
    return 0, len(data)
