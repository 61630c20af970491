"""The real CPU model end to end through `podium up`: a dedicated endpoint from the SmolLM2 template
(llama.cpp), called with the documents' OpenAI snippet (model = routing_key), streaming and not;
PATCH to 2 replicas gives two llama.cpp processes behind the gateway."""

from __future__ import annotations

import importlib.util
import time

import openai
import pytest

from tests.e2e.conftest import ADMIN, Podium

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed (make cpu-model)"
    ),
]


def wait_ready(p: Podium, endpoint_id: str, ready: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    with p.http() as h:
        while True:
            ep = h.get(f"/v0/endpoints/{endpoint_id}").json()
            if ep["status"]["ready_replicas"] == ready and ep["status"]["state"] == "serving":
                return ep
            assert time.monotonic() < deadline, ep["status"]
            time.sleep(0.2)


def test_dedicated_smollm2_answers_and_scales_to_two(podium: Podium) -> None:
    with podium.http() as h:
        created = h.post(
            "/v0/dedicated_endpoints",
            json={
                "name": "smol",
                "model_name": MODEL,
                "flavor_name": "base",
                "gpu_type": "cpu",
                "region": "local",
                "scaling": {"min_replicas": 1, "max_replicas": 2},
            },
        ).json()
    endpoint_id, key = created["endpoint_id"], created["routing_key"]
    wait_ready(podium, endpoint_id, 1)

    client = openai.OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    reply = client.chat.completions.create(model=key, messages=question, max_tokens=40, temperature=0)
    assert "Paris" in (reply.choices[0].message.content or "")
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model=key, messages=question, max_tokens=40, temperature=0, stream=True)
        if c.choices
    )
    assert "Paris" in streamed

    with podium.http() as h:
        patched = h.patch(f"/v0/dedicated_endpoints/{endpoint_id}", json={"scaling": {"min_replicas": 2}})
        assert patched.status_code == 200, patched.text
    ep = wait_ready(podium, endpoint_id, 2)
    addresses = {i["address"] for i in ep["status"]["instances"] if i["state"] == "ready"}
    assert len(addresses) == 2  # two llama.cpp servers
    for _ in range(4):
        assert "Paris" in (
            client.chat.completions.create(model=key, messages=question, max_tokens=40, temperature=0)
            .choices[0]
            .message.content
            or ""
        )
    with podium.http() as h:
        assert h.delete(f"/v0/dedicated_endpoints/{endpoint_id}").status_code in (200, 202, 204)
