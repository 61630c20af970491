"""Your own weights end to end (slow): `podium up` as a process, the SmolLM2 GGUF uploaded with the real
CLI as a custom model, deployed with the documents' create call on CPU, "Paris" through the `openai`
client with `model=routing_key`; the model's delete is refused (409) while the endpoint uses it and
removes the file once the endpoint is gone; a LoRA added to the deployed base rolls in."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from podium.worker.llama import packaged_gguf
from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, start_podium, stop_podium
from tests.models.ggufs import gguf_bytes, lora_bytes
from tests.worker.test_cpu_template_e2e import processes_of
from tests.worker.test_llama import QUESTION, needs_llama

pytestmark = [pytest.mark.slow, pytest.mark.e2e, needs_llama]


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[Podium]:
    p = start_podium(tmp_path / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)


def test_upload_deploy_call_and_delete_a_custom_gguf(podium: Podium) -> None:
    gguf = packaged_gguf()
    start = time.monotonic()
    model = podium.cli_json("model", "upload", str(gguf), "--name", "acme/smol-custom")
    print(f"\nupload of {gguf.stat().st_size / 1e6:.0f} MB through the CLI: {time.monotonic() - start:.2f} s")
    assert model["status"] == "ready" and model["architecture"] == "llama" and model["format"] == "gguf"
    assert model["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    stored = Path(model["path"])
    assert stored.is_file() and stored.is_relative_to(podium.data_dir / "models")

    with podium.http() as h:
        names = {t["model_name"] for t in h.get("/v0/dedicated_endpoints/templates").json()["templates"]}
        assert "acme/smol-custom" in names
        body = {
            "name": "custom",
            "model_name": "acme/smol-custom",
            "flavor_name": "base",
            "gpu_type": "cpu",
            "gpu_count": 0,
            "region": "local",
            "scaling": {"min_replicas": 1, "max_replicas": 1},
        }
        created = h.post("/v0/dedicated_endpoints", json=body)
        assert created.status_code == 201, created.text
    endpoint_id, key = created.json()["endpoint_id"], created.json()["routing_key"]

    client = OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN, max_retries=0, timeout=120)
    answer = client.chat.completions.create(model=key, messages=QUESTION, temperature=0, max_tokens=40)  # type: ignore[arg-type]
    assert "Paris" in (answer.choices[0].message.content or "")
    assert any(str(stored).encode() in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in processes_of(endpoint_id))

    refused = podium.cli("model", "delete", "acme/smol-custom", check=False)
    assert refused.returncode == 1 and "409" in refused.stderr and endpoint_id in refused.stderr
    with podium.http() as h:
        assert h.delete(f"/v0/dedicated_endpoints/{endpoint_id}").status_code == 200
        deadline = time.monotonic() + 30
        while h.get(f"/v0/endpoints/{endpoint_id}").status_code != 404:
            assert time.monotonic() < deadline, "the endpoint was never removed"
            time.sleep(0.1)
    assert "deleted model acme/smol-custom" in podium.cli("model", "delete", "acme/smol-custom").stdout
    assert not stored.exists() and podium.cli_json("model", "list")["models"] == []


def test_a_real_gguf_lora_gets_its_own_routing_key(podium: Podium, tmp_path: Path) -> None:
    """A LoRA written here (tests/models/ggufs.py: attn_q pairs on all 30 layers of SmolLM2) uploaded
    with --base *after* the base is deployed and serving: the endpoint rolls to a revision whose
    replica loads it (llama-cpp-python's lora_path) while the base's key keeps answering Paris; once
    rolled, the adapter's key answers differently (the adapter was applied), both through the gateway
    with the `openai` client."""
    lora = tmp_path / "pirate.gguf"
    lora.write_bytes(lora_bytes(layers=30, n_embd=576))
    podium.cli_json("model", "upload", str(packaged_gguf()), "--name", "smol-base")
    with podium.http() as h:
        created = h.post("/v0/dedicated_endpoints", json={"name": "lora", "model_name": "smol-base"})
        assert created.status_code == 201, created.text
        key, endpoint_id = created.json()["routing_key"], created.json()["endpoint_id"]
    client = OpenAI(base_url=f"{podium.url}/v1", api_key=ADMIN, max_retries=0, timeout=120)
    ask = {"messages": QUESTION, "temperature": 0, "max_tokens": 30}
    base = client.chat.completions.create(model=key, **ask).choices[0].message.content or ""  # type: ignore[call-overload]
    assert "Paris" in base
    adapter = podium.cli_json("model", "upload", str(lora), "--name", "smol-pirate", "--base", "smol-base")
    assert adapter["kind"] == "adapter" and adapter["base"] == "smol-base"
    with podium.http() as h:
        keys = h.get(f"/v0/models/{adapter['id']}").json()["routing_keys"]
        revisions = h.get(f"/v0/endpoints/{endpoint_id}/revisions").json()["revisions"]
    assert keys == [f"{key}:smol-pirate"] and revisions[0]["changes"] == ["adapters (+smol-pirate)"]
    deadline = time.monotonic() + 180
    while keys[0] not in {m.id for m in client.models.list().data}:  # routed once the rollout is done
        during = client.chat.completions.create(model=key, **ask).choices[0].message.content or ""  # type: ignore[call-overload]
        assert "Paris" in during  # the base key answers throughout the rollout
        assert time.monotonic() < deadline, "the adapter's key was never routed"
    adapted = client.chat.completions.create(model=keys[0], **ask).choices[0].message.content or ""  # type: ignore[call-overload]
    print(f"\nbase: {base!r}\nadapter: {adapted!r}")
    assert adapted and adapted != base


def test_a_restarted_podium_still_deploys_a_registered_model(tmp_path: Path) -> None:
    """The catalog learns the registry at start (models/wiring.attach_registry), before any /v0/models
    call: after a restart the documents' create call with the custom name is accepted at once."""
    data = tmp_path / "data"
    first = start_podium(data, free_port())
    try:
        small = tmp_path / "small.gguf"
        small.write_bytes(gguf_bytes("llama", ctx=2048, pad=1000))
        first.cli_json("model", "upload", str(small), "--name", "kept")
    finally:
        stop_podium(first)
    second = start_podium(data, free_port())
    try:
        with second.http() as h:
            body = {"name": "after", "model_name": "kept", "scaling": {"min_replicas": 0, "max_replicas": 1}}
            created = h.post("/v0/dedicated_endpoints", json=body)
            assert created.status_code == 201, created.text
            assert (created.json()["gpu_type"], created.json()["flavor_name"]) == ("cpu", "base")
    finally:
        stop_podium(second)
