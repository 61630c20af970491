"""The walking skeleton, as a user runs it: `podium up`, CLI create, OpenAI client through the gateway."""

from __future__ import annotations

import time

import httpx
import openai

from tests.e2e.conftest import ADMIN, Podium, create_fake, replica_pids


def test_create_call_stream_and_delete(podium: Podium) -> None:
    ep = create_fake(podium, "my-chatbot")
    assert ep["id"].startswith("ep-") and ep["routing_key"]
    listed = podium.cli_json("endpoint", "list")["endpoints"]
    assert [e["id"] for e in listed] == [ep["id"]]
    assert podium.cli("endpoint", "wait", ep["id"], "--for", "serving", "--timeout", "30").stdout.strip() == "serving"
    served = podium.wait_state(ep["id"], "serving")
    instance = served["status"]["instances"][0]
    assert instance["public_ip"] == instance["address"] == f"127.0.0.1:{instance['port']}"  # curl-able as is
    assert podium.cli_json("endpoint", "get", ep["id"])["status"]["state"] == "serving"

    client = openai.OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN)
    reply = client.chat.completions.create(model=ep["routing_key"], messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model=ep["routing_key"], messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert len(chunks) > 1 and any(c.choices and c.choices[0].delta.content for c in chunks)

    resp = httpx.post(
        f"{podium.url}/e/{ep['app_name']}/v1/chat/completions",
        json={"model": ep["routing_key"], "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text

    assert replica_pids(podium.mark)
    podium.cli("endpoint", "delete", "--id", ep["id"])
    deadline = time.monotonic() + 20
    with podium.http() as h:
        while h.get(f"/v0/endpoints/{ep['id']}").status_code != 404:
            assert time.monotonic() < deadline, "endpoint never went away"
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while replica_pids(podium.mark):
        assert time.monotonic() < deadline, "replica still running after delete"
        time.sleep(0.05)


def test_api_needs_a_token(podium: Podium) -> None:
    assert httpx.get(f"{podium.url}/v0/endpoints").status_code == 401
    assert httpx.get(f"{podium.url}/healthz").status_code == 200


def test_unknown_model_is_404(podium: Podium) -> None:
    client = openai.OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN)
    try:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    except openai.NotFoundError:
        return
    raise AssertionError("expected 404")


def test_get_shows_the_autoscalers_current_reason(podium: Podium) -> None:
    ep = create_fake(podium, "reasoned", "--min-replicas", "1", "--max-replicas", "3")
    podium.wait_state(ep["id"], "serving")
    deadline = time.monotonic() + 5
    while not (reason := podium.cli_json("endpoint", "get", ep["id"])["status"]["autoscaler_reason"]):
        assert time.monotonic() < deadline, "no autoscaler reason shown"
        time.sleep(0.1)
    assert "concurrency" in reason  # the default policy says what it measured, e.g. "concurrency: 0.0 in flight…"
