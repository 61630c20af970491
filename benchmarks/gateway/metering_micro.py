"""The gateway's per-request Python work for three answer shapes, to compare token metering's cost.

    .venv/bin/python benchmarks/gateway/metering_micro.py SHAPE N
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/gateway/metering_micro.py SHAPE N     # instructions ("I refs")

SHAPE: `plain` (a non-streaming answer without usage), `usage` (an OpenAI non-streaming answer with
usage), `stream` (16 SSE chunks; like vLLM, the replica adds the usage chunk when the request asked
for `stream_options.include_usage`). Like micro.py it drives the listener's `Connection` and the
`UpstreamConnection` with fake transports through the fast path, N requests with an open endpoint
then N with a token endpoint. Instructions per request = (I refs at N=1500 - at N=500) / 2000, with
PYTHONHASHSEED=0 (docs/gateway.md, "Token metering").
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from micro import fast_path_rig

USAGE = b'"usage":{"prompt_tokens":9,"completion_tokens":16,"total_tokens":25}'


def request_bytes(stream: bool) -> bytes:
    body: dict[str, object] = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    raw = orjson.dumps(body)
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8800\r\nAuthorization: Bearer tok\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw)
    )


def answer(shape: str, asked: bool) -> list[bytes]:
    if shape != "stream":
        body = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"content":"hi"}}]'
        body += (b"," + USAGE if shape == "usage" else b"") + b"}"
        return [
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        ]

    def sse(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    parts = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
    for i in range(16):
        delta = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t%d"}}]}' % i
        parts.append(sse(b"data: " + delta + b"\n\n"))
    if asked:
        parts.append(sse(b'data: {"id":"c","object":"chat.completion.chunk","choices":[],' + USAGE + b"}\n\n"))
    return [*parts, sse(b"data: [DONE]\n\n"), b"0\r\n\r\n"]


async def run(shape: str, n: int, token: bool) -> None:
    rig = fast_path_rig(token)
    gateway, client, up, up_transport = rig.gateway, rig.client, rig.up, rig.up_transport
    request = request_bytes(shape == "stream")
    for _ in range(n):
        client.data_received(request)
        for piece in answer(shape, b"include_usage" in up_transport.sent[-1]):
            up.data_received(piece)
    assert gateway.fast_hits == n


if __name__ == "__main__":
    shape, count = sys.argv[1], int(sys.argv[2])
    for with_token in (False, True):
        uvloop.run(run(shape, count, with_token))
