"""Engine metrics and token metering end to end: `podium up`, a fake worker serving vLLM's /metrics,
the real CLI and the real `openai` client.

A replica whose engine reports a long queue (`vllm:num_requests_waiting`) drives a scale-out under
`--scale-policy engine-queue=N`; its engine numbers show in `endpoint get` and on /metrics; a stream
that did not ask for usage is metered and `podium usage` shows the tokens of the token that paid."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import ADMIN, Podium, create_fake

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # ~10-20 s: podium up, a scale-out, a 5 s metering pass


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.1)


def test_engine_queue_scales_out_and_tokens_are_metered(podium: Podium) -> None:
    ep = create_fake(podium, "eng", "--min-replicas", "1", "--max-replicas", "2", "--scale-policy", "engine-queue=2")
    ready = podium.wait_state(ep["id"], "serving")
    [first] = ready["status"]["instances"]
    httpx.post(f"http://{first['address']}/admin/engine", json={"waiting": 9, "kv_cache": 0.5}).raise_for_status()

    http = podium.http()

    def status() -> dict:
        return http.get(f"/v0/endpoints/{ep['id']}").json()["status"]

    def scaled() -> dict | None:
        got = status()
        return got if got["ready_replicas"] == 2 else None

    got = wait_for("a second ready replica", scaled)
    assert got["desired_replicas"] == 2

    def first_engine() -> dict | None:
        instances = status()["instances"]
        return next((i["engine"] for i in instances if i["id"] == first["id"] and i["engine"]), None)

    engine = wait_for("the first replica's engine sample in status", first_engine)
    assert (engine["engine"], engine["waiting"], engine["kv_cache_usage"]) == ("vllm", 9, 0.5)

    def both_engines() -> dict | None:
        load = status()["engine"]
        return load if load and load["replicas"] == 2 else None

    load = wait_for("both engines in the endpoint's load", both_engines)
    assert load["waiting"] == 9 and load["kv_cache_max"] == 0.5
    metrics = httpx.get(f"{podium.url}/metrics").text
    assert f'podium_engine_requests_waiting{{endpoint="{ep["id"]}",replica="{first["id"]}",engine="vllm"}} 9' in metrics

    # a stream that did not ask for usage: the client sees no usage chunk, the tokens are metered
    client = OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=ep["routing_key"], messages=[{"role": "user", "content": "one two three"}], max_tokens=5, stream=True
        )
    )
    assert chunks and all(c.usage is None for c in chunks)
    admin_id = next(t["id"] for t in http.get("/v0/tokens").json()["tokens"] if t["name"] == "bootstrap-admin")

    def booked() -> dict | None:
        usage = http.get("/v0/usage").json()
        rows = [t for t in usage["tokens"] if t["endpoint_id"] == ep["id"] and t["token_id"] == admin_id]
        return rows[0] if rows else None

    row = wait_for("tokens in podium usage", booked)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 5)
    table = podium.cli("usage").stdout  # the CLI, as users read it
    assert "PROMPT-TOKENS" in table and admin_id in table
    http.close()
