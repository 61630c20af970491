"""Auth, routing, rewrite and error answers, through a real listener to a real fake replica."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from podium.gateway.routes import PlatformToken, ReplicaRoute
from tests.gateway.conftest import (
    ENDPOINT_TOKEN,
    PLATFORM_TOKEN,
    READ_TOKEN,
    FakeReplica,
    Harness,
    eventually,
    make_route,
    sha,
)

CHAT = {"model": "my-model", "messages": [{"role": "user", "content": "hi"}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_open_endpoint_forwards_body_bytes_untouched(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    raw = b'{"messages": [],   "model": "my-model", "extra": 1.50}'
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert replica.seen[-1]["body"] == raw
    assert replica.seen[-1]["path"] == "/v1/chat/completions"


async def test_model_rewritten_to_served_name(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], served_model_name="org/Real-Model-7B"))
    async with harness.client() as c:
        r = await c.post("/v1/completions", json={"model": "my-model", "prompt": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["echo"]["model"] == "org/Real-Model-7B"
    assert orjson.loads(replica.seen[-1]["body"]) == {"model": "org/Real-Model-7B", "prompt": "x"}


async def test_token_endpoint_auth(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN)))
    async with harness.client() as c:
        for headers in ({}, bearer("wrong"), bearer(READ_TOKEN), {"Authorization": ENDPOINT_TOKEN}):
            r = await c.post("/v1/chat/completions", json=CHAT, headers=headers)
            assert r.status_code == 401, headers
            err = r.json()["error"]
            assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
            assert ENDPOINT_TOKEN not in r.text
        for token in (ENDPOINT_TOKEN, PLATFORM_TOKEN):
            r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
            assert r.status_code == 200, r.text
    assert len(replica.seen) == 2
    assert all("authorization" not in seen["headers"] for seen in replica.seen)


async def test_platform_tokens_are_replaced_in_full(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN)))
    harness.gateway.set_platform_tokens([])
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(PLATFORM_TOKEN))
    assert r.status_code == 401


async def test_unknown_stopped_and_deleted_are_404(harness: Harness, replica: FakeReplica) -> None:
    gw = harness.gateway
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
        gw.set_route(make_route([replica], enabled=False))
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 404 and "stopped" in r.json()["error"]["message"]
        r = await c.get("/e/my-app/anything")
        assert r.status_code == 404 and "stopped" in r.json()["error"]["message"]
        gw.set_route(make_route([replica]))
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
        gw.remove_route("ep-test")
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 404
        assert (await c.get("/e/my-app/x")).status_code == 404


async def test_bad_bodies_are_4xx_with_a_message(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", content=b"{not json")
        assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
        r = await c.post("/v1/chat/completions", json={"messages": []})
        assert r.status_code == 422 and "model" in r.json()["error"]["message"]
        r = await c.post("/v1/embeddings", json=[1, 2])
        assert r.status_code == 422
        r = await c.get("/v1/chat/completions")
        assert r.status_code == 405
        r = await c.post("/v1/unknown", json=CHAT)
        assert r.status_code == 404
    assert replica.seen == []


async def test_app_prefix_is_stripped_any_method(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN)))
    async with harness.client() as c:
        r = await c.put("/e/my-app/items/7?x=1&y=%20z", content=b"raw \x00 bytes", headers=bearer(ENDPOINT_TOKEN))
        assert r.status_code == 200, r.text
        assert r.json()["echo"] == {"model": None, "path": "/items/7?x=1&y=%20z", "method": "PUT"}
        assert replica.seen[-1]["body"] == b"raw \x00 bytes"
        r = await c.get("/e/my-app", headers=bearer(ENDPOINT_TOKEN))
        assert r.status_code == 200 and replica.seen[-1]["path"] == "/"
        length = str(int(r.headers["content-length"]) + 1)  # the echo says "HEAD", not "GET"
        for _ in range(2):  # the task path (new connection), then the fast path (pooled)
            r = await c.head("/e/my-app", headers=bearer(ENDPOINT_TOKEN))
            assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == length
        assert (await c.get("/e/my-app/items")).status_code == 401
        assert (await c.get("/e/other-app/items")).status_code == 404


async def test_models_lists_what_the_token_may_call(harness: Harness, replica: FakeReplica) -> None:
    gw = harness.gateway
    gw.set_route(make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN)))
    gw.set_route(replace(make_route([replica]), endpoint_id="ep-open", routing_key="open-model", app_name="open-app"))
    gw.set_route(
        replace(
            make_route([replica]),
            endpoint_id="ep-other",
            routing_key="other-model",
            app_name="other",
            auth_token_sha256=sha("other-token"),
        )
    )
    async with harness.client() as c:
        ids = lambda r: [m["id"] for m in r.json()["data"]]  # noqa: E731
        assert ids(await c.get("/v1/models")) == ["open-model"]
        assert ids(await c.get("/v1/models", headers=bearer(ENDPOINT_TOKEN))) == ["my-model", "open-model"]
        everything = ["my-model", "open-model", "other-model"]
        assert ids(await c.get("/v1/models", headers=bearer(PLATFORM_TOKEN))) == everything


async def test_other_paths_reach_the_fallback(harness: Harness) -> None:
    async with harness.client() as c:
        r = await c.get("/v0/endpoints")
    assert r.status_code == 200 and r.text == "control plane: /v0/endpoints"


async def test_metrics_count_requests_by_code(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN)))
    async with harness.client() as c:
        await c.post("/v1/chat/completions", json=CHAT, headers=bearer(ENDPOINT_TOKEN))
        await c.post("/v1/chat/completions", json=CHAT)
        text = (await c.get("/metrics")).text
    assert 'podium_gateway_requests_total{endpoint="ep-test",code="200"} 1' in text
    assert 'podium_gateway_requests_total{endpoint="ep-test",code="401"} 1' in text
    assert 'podium_gateway_ttfb_seconds_count{endpoint="ep-test"} 1' in text
    assert 'podium_gateway_queue_length{endpoint="ep-test",routing_key="my-model"} 0' in text


async def test_connect_failure_retries_another_replica(harness: Harness, replica: FakeReplica) -> None:
    from tests.conftest import free_port

    dead = ReplicaRoute("rep-dead", f"127.0.0.1:{free_port()}")
    route = make_route([replica])
    harness.gateway.set_route(replace(route, replicas=(dead, *route.replicas)))
    async with harness.client() as c:
        for _ in range(10):
            r = await c.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200, r.text
    assert harness.gateway.replica_in_flight("rep-dead") == 0
    assert len(replica.seen) == 10


async def test_all_replicas_unreachable_holds_until_a_working_one_is_published(
    harness: Harness, replica: FakeReplica
) -> None:
    """The only replica crashed and the controller has not republished yet: the request is held (as in a
    cold start, the controller is woken) instead of failing with 502, and served by the replacement."""
    from tests.conftest import free_port

    gw = harness.gateway
    gw.set_route(replace(make_route(), replicas=(ReplicaRoute("rep-dead", f"127.0.0.1:{free_port()}"),)))
    async with harness.client() as c:
        held = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await eventually(lambda: gw.stats()["ep-test"].queued == 1)
        assert harness.wakes == ["ep-test"] and not held.done()
        gw.set_route(make_route([replica]))  # the controller replaced the crashed replica
        r = await held
    assert r.status_code == 200, r.text
    stats = gw.stats()["ep-test"]
    assert stats.in_flight == 0 and stats.queued == 0 and gw.replica_in_flight("rep-dead") == 0


async def test_all_replicas_unreachable_ends_at_the_cold_start_timeout(harness: Harness) -> None:
    from tests.conftest import free_port

    dead = (ReplicaRoute("rep-dead", f"127.0.0.1:{free_port()}"),)
    harness.gateway.set_route(replace(make_route(cold_start_timeout_s=0.3), replicas=dead))
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503 and r.json()["error"]["code"] == "cold_start_timeout"
    assert harness.gateway.stats()["ep-test"].in_flight == 0


async def test_a_rate_limited_token_is_limited_on_an_open_endpoint_too(harness: Harness, replica: FakeReplica) -> None:
    """The limit follows the token: sending it to an endpoint without auth does not escape it, on the
    fast path (a warm pool) as on the general one; requests without a token, or with another, are not limited."""
    gw = harness.gateway
    gw.set_platform_tokens(
        [
            PlatformToken("tok-inf", sha(PLATFORM_TOKEN), frozenset({"inference"}), rate_limit_rpm=3),
            PlatformToken("tok-read", sha(READ_TOKEN), frozenset({"read"})),
        ]
    )
    gw.set_route(make_route([replica]))
    async with harness.client() as c:
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200  # warms the pool
        codes = [(await c.post("/v1/chat/completions", json=CHAT, headers=bearer(PLATFORM_TOKEN))) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert int(codes[-1].headers["retry-after"]) >= 1
        assert codes[-1].json()["error"]["code"] == "rate_limit_exceeded"
        for headers in ({}, bearer(READ_TOKEN), bearer("unknown")):
            assert (await c.post("/v1/chat/completions", json=CHAT, headers=headers)).status_code == 200
    assert set(gw.token_demand()) == {sha(PLATFORM_TOKEN)}  # what the controller splits the rate by
