"""The CPU template end to end (slow): `podium up` as a process, a dedicated endpoint created from
`HuggingFaceTB/SmolLM2-135M-Instruct`, the documents' OpenAI snippet (`model=routing_key`) through
the gateway, streaming too, then PATCH to 2 replicas = two llama.cpp processes, and delete."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, start_podium, stop_podium
from tests.worker.test_llama import MODEL, QUESTION, needs_llama

pytestmark = [pytest.mark.slow, pytest.mark.e2e, needs_llama]


def processes_of(endpoint_id: str) -> list[int]:
    """Replica processes (the llama worker execs the server, so it keeps the replica's env)."""
    needle = f"PODIUM_ENDPOINT_ID={endpoint_id}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                needle in (entry / "environ").read_bytes().split(b"\0")
                and b"podium.worker.llama_serve" in (entry / "cmdline").read_bytes()
            ):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[Podium]:
    p = start_podium(tmp_path / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)


def wait_ready(p: Podium, endpoint_id: str, count: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    with p.http() as h:
        while True:
            ep = h.get(f"/v0/dedicated_endpoints/{endpoint_id}").json()
            states = [i["state"] for i in ep["status"]["instances"]]
            if states == ["ready"] * count:  # and nothing else (e.g. an old replica still draining)
                return ep
            assert time.monotonic() < deadline, f"never {count} ready replicas: {ep['status']}"
            time.sleep(0.2)


def test_dedicated_endpoint_from_the_cpu_template(podium: Podium) -> None:
    body = {
        "name": "smollm2",
        "model_name": MODEL,
        "flavor_name": "base",
        "gpu_type": "cpu",
        "gpu_count": 0,
        "region": "local",
        "scaling": {"min_replicas": 1, "max_replicas": 2},
    }
    with podium.http() as h:
        created = h.post("/v0/dedicated_endpoints", json=body)
        assert created.status_code in (200, 201), created.text
    endpoint_id, key = created.json()["endpoint_id"], created.json()["routing_key"]

    client = OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN, max_retries=0, timeout=120)
    start = time.monotonic()
    answer = client.chat.completions.create(model=key, messages=QUESTION, temperature=0, max_tokens=40)  # type: ignore[arg-type]
    print(f"\nfirst answer {time.monotonic() - start:.2f} s after create (held through the cold start)")
    assert "Paris" in (answer.choices[0].message.content or "")
    stream = client.chat.completions.create(
        model=key,
        messages=QUESTION,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=40,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "Paris" in text

    with podium.http() as h:
        patched = h.patch(f"/v0/dedicated_endpoints/{endpoint_id}", json={"scaling": {"min_replicas": 2}})
        assert patched.status_code == 200, patched.text
    ep = wait_ready(podium, endpoint_id, 2)
    assert len({i["address"] for i in ep["status"]["instances"]}) == 2
    assert len(processes_of(endpoint_id)) == 2
    for _ in range(4):  # both replicas behind the gateway keep answering
        r = client.chat.completions.create(model=key, messages=QUESTION, temperature=0, max_tokens=20)  # type: ignore[arg-type]
        assert r.choices[0].message.content

    with podium.http() as h:
        assert h.delete(f"/v0/dedicated_endpoints/{endpoint_id}").status_code in (200, 202, 204)
    deadline = time.monotonic() + 30
    while processes_of(endpoint_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(endpoint_id) == []
