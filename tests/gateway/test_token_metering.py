"""Token metering through a real gateway listener: usage counted per endpoint and per caller (platform
token, endpoint token, anonymous) on both relay paths; a stream that did not ask for usage is asked on
the way in and its extra chunk stripped on the way out (the client sees the events it would have);
OTel GenAI histograms on /metrics; the real `openai` client."""

from __future__ import annotations

import re

import orjson
import pytest
from openai import AsyncOpenAI

from podium.gateway.metering import NOT_STREAM, STREAM, STREAM_INJECTED, UsageStrip, stream_mode, usage_of
from podium.gateway.routes import EndpointRoute
from podium.gateway.routing import Routed
from tests.gateway.conftest import ENDPOINT_TOKEN, PLATFORM_TOKEN, FakeReplica, Harness, make_route, sha


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def routed(body: dict[str, object]) -> Routed:
    return Routed(make_route([]), b"/v1/chat/completions", orjson.dumps(body))


@pytest.mark.parametrize(
    ("body", "path", "mode", "sent_options"),
    [
        ({"model": "m"}, "/v1/chat/completions", NOT_STREAM, None),
        ({"model": "m", "stream": False}, "/v1/chat/completions", NOT_STREAM, None),
        ({"model": "m", "stream": True}, "/v1/embeddings", NOT_STREAM, None),
        ({"model": "m", "stream": True}, "/v1/chat/completions", STREAM_INJECTED, {"include_usage": True}),
        ({"model": "m", "stream": True}, "/v1/completions", STREAM_INJECTED, {"include_usage": True}),
        (
            {"model": "m", "stream": True, "stream_options": {"include_usage": False, "x": 1}},
            "/v1/chat/completions",
            STREAM_INJECTED,
            {"include_usage": True, "x": 1},
        ),
        (
            {"model": "m", "stream": True, "stream_options": {"include_usage": True}},
            "/v1/chat/completions",
            STREAM,
            {"include_usage": True},
        ),
        ({"model": "m", "stream": True, "stream_options": "bad"}, "/v1/chat/completions", STREAM, "bad"),
    ],
)
def test_stream_mode_rewrites_only_streams_without_usage(
    body: dict[str, object], path: str, mode: int, sent_options: object
) -> None:
    r = routed(body)
    before = r.body
    assert stream_mode(r, path) == mode
    if mode != STREAM_INJECTED:
        assert r.body is before  # untouched, byte for byte
    assert orjson.loads(r.body).get("stream_options") == sent_options


def test_strip_removes_only_the_usage_chunk_whatever_the_reads() -> None:
    chunks = [
        b'data: {"id":"c","choices":[{"delta":{"content":"a"}}],"usage":null}\n\n',
        b'data: {"id":"c","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,"total_tokens":16}}\n\n',
        b"data: [DONE]\n\n",
    ]
    want = (
        b'data: {"id":"c","choices":[{"delta":{"content":"a"}}]}\n\n'
        b'data: {"id":"c","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    whole = b"".join(chunks)
    for size in (1, 7, 64, len(whole)):  # the stream cut anywhere, even inside "usage"
        strip = UsageStrip()
        out = b"".join(strip.feed(whole[i : i + size]) for i in range(0, len(whole), size)) + strip.flush()
        assert out == want, size
        assert strip.usage == (11, 5)


@pytest.mark.parametrize("sep", [b"\r\n\r\n", b"\r\r"])
def test_strip_with_other_line_endings_holds_nothing_back(sep: bytes) -> None:
    first = b'data: {"choices":[{"delta":{"content":"a"}}]}' + sep
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}' + sep
    strip = UsageStrip()
    assert strip.feed(first) == first  # passed on at once, not held for a "\n\n" that never comes
    assert strip.feed(usage + b"data: [DONE]" + sep) == b"data: [DONE]" + sep
    assert strip.usage == (2, 1) and strip.flush() == b""


def test_usage_of() -> None:
    assert usage_of(b'{"usage": {"prompt_tokens": 3, "completion_tokens": 4}}') == (3, 4)
    assert usage_of(b'{"usage": null}') is None
    assert usage_of(b"nothing") is None


class NoRelay:
    def try_relay(self, *args: object) -> bool:
        return False


def stream_events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e]


@pytest.mark.parametrize("fast_path", [True, False])
async def test_tokens_per_caller_and_stream_strip(harness: Harness, replica: FakeReplica, fast_path: bool) -> None:
    if not fast_path:  # every request takes the general path (proxy.py)
        harness.gateway._relay = NoRelay()  # type: ignore[assignment]
    route: EndpointRoute = make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN))
    harness.gateway.set_route(route)
    platform = {"authorization": f"Bearer {PLATFORM_TOKEN}"}
    own = {"authorization": f"Bearer {ENDPOINT_TOKEN}"}
    async with harness.client() as client:
        for _ in range(3):  # non-streaming, platform token: 1 + 1 each
            r = await client.post("/v1/chat/completions", json={"model": "my-model"}, headers=platform)
            assert r.status_code == 200
        # a stream that did not ask for usage: asked for on the way in, stripped on the way out
        r = await client.post("/v1/chat/completions", json={"model": "my-model", "stream": True}, headers=own)
        assert r.status_code == 200
        assert b'"usage"' not in r.content
        assert len(stream_events(r.content)) == 4 and stream_events(r.content)[-1] == b"data: [DONE]"
        sent = orjson.loads(replica.seen[-1]["body"])
        assert sent["stream_options"] == {"include_usage": True}
        # a stream that asked: its usage chunk reaches it
        asked = {"model": "my-model", "stream": True, "stream_options": {"include_usage": True}}
        r = await client.post("/v1/chat/completions", json=asked, headers=platform)
        assert b'"usage"' in r.content and len(stream_events(r.content)) == 5
        # a non-streaming body reaches the replica byte for byte
        raw = b'{"model":"my-model",  "stream": false}'
        r = await client.post("/v1/chat/completions", content=raw, headers={**platform, "content-type": "x"})
        assert r.status_code == 200 and replica.seen[-1]["body"] == raw
        text = (await client.get("/metrics")).text
    assert (harness.gateway.fast_hits > 0) is fast_path
    ep = {"endpoint": "ep-test"}
    assert metric(text, "podium_gateway_tokens_total", **ep, gen_ai_token_type="input") == 4 + 7 + 7
    assert metric(text, "podium_gateway_tokens_total", **ep, gen_ai_token_type="output") == 4 + 3 + 3
    caller = "podium_gateway_caller_tokens_total"
    assert metric(text, caller, **ep, caller="tok-inf", gen_ai_token_type="input") == 4 + 7
    assert metric(text, caller, **ep, caller="endpoint", gen_ai_token_type="output") == 3
    assert harness.gateway.token_usage()["usage"] == [
        {"endpoint_id": "ep-test", "caller": "endpoint", "prompt_tokens": 7, "completion_tokens": 3},
        {"endpoint_id": "ep-test", "caller": "tok-inf", "prompt_tokens": 11, "completion_tokens": 7},
    ]
    chat = {**ep, "gen_ai_operation_name": "chat", "gen_ai_request_model": "my-model"}
    assert metric(text, "gen_ai_server_request_duration_seconds_count", **chat) == 6
    assert metric(text, "gen_ai_server_time_to_first_token_seconds_count", **chat) == 2  # streams only
    assert metric(text, "gen_ai_server_time_per_output_token_seconds_count", **chat) == 2
    usage = "gen_ai_client_token_usage_sum"
    assert metric(text, usage, **chat, gen_ai_token_type="output", gen_ai_provider_name="podium") == 10


async def test_openai_client_stream_without_usage_sees_none(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    client = AsyncOpenAI(base_url=f"{harness.url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="my-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [c async for c in stream]
    assert chunks and all(c.usage is None and c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "tok0 tok1 tok2 "
    await client.close()
    assert harness.gateway.token_usage()["usage"] == [
        {"endpoint_id": "ep-test", "caller": "anonymous", "prompt_tokens": 7, "completion_tokens": 3}
    ]
