"""`/v0/models` over the real catalog and SQLite, in process: uploads in chunks, the checks that refuse
bad input without leaving anything behind, deployment through the documents' create call, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from podium.catalog import Catalog
from podium.store.repos import Store
from tests.api.conftest import _client
from tests.models.conftest import Api
from tests.models.ggufs import gguf_bytes


async def upload(
    client: httpx.AsyncClient, name: str, data: bytes, chunk: int = 1000, **extra: object
) -> httpx.Response:
    """Create, then PATCH chunks in order; the last answer (the model, or the error) is returned."""
    created = await client.post("/v0/models", json={"name": name, "size": len(data), **extra})
    assert created.status_code == 201, created.text
    mid, res = created.json()["id"], created
    for off in range(0, len(data), chunk):
        res = await client.patch(f"/v0/models/{mid}/content", params={"offset": off}, content=data[off : off + chunk])
        if res.status_code != 200:
            return res
    return res


def read(path: str) -> bytes:
    return Path(path).read_bytes()


def models_dir(tmp_path: Path) -> list[str]:
    root = tmp_path / "models"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_deploy_and_delete(real: Api, tmp_path: Path) -> None:
    client, _, _ = real
    data = gguf_bytes("llama", ctx=8192, pad=5000)
    res = await upload(client, "acme/tiny", data, sha256=hashlib.sha256(data).hexdigest())
    assert res.status_code == 200, res.text
    model = res.json()
    assert model["status"] == "ready" and model["format"] == "gguf" and model["architecture"] == "llama"
    assert model["sha256"] == hashlib.sha256(data).hexdigest() and model["engines"] == ["llama.cpp"]
    assert model["context_length"] == 8192 and model["size_bytes"] == len(data)
    assert read(model["path"]) == data and not list((tmp_path / "models" / ".uploads").iterdir())

    templates = (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]
    mine = [t for t in templates if t["model_name"] == "acme/tiny"]
    assert {(t["flavor_name"], t["gpu_type"]) for t in mine} == {("base", "cpu"), ("long", "cpu")}
    assert all("local" in t["regions"] for t in mine)
    described = (await client.get("/v0/templates/acme/tiny")).json()  # what `podium template get` shows
    assert described["model_name"] == "acme/tiny" and [f["flavor_name"] for f in described["flavors"]] == [
        "base",
        "long",
    ]

    ep = await client.post("/v0/dedicated_endpoints", json={"name": "tiny", "model_name": "acme/tiny"})
    assert ep.status_code == 201, ep.text
    refused = await client.delete(f"/v0/models/{model['id']}")
    assert refused.status_code == 409 and ep.json()["endpoint_id"] in refused.text

    gone = await client.delete(f"/v0/dedicated_endpoints/{ep.json()['endpoint_id']}")
    assert gone.status_code == 200
    # the endpoint row stays (deleting) until the controller ends its replicas; no controller here
    await _forget_endpoints(real[1])
    assert (await client.delete(f"/v0/models/{model['id']}")).status_code == 200
    assert models_dir(tmp_path) == [] and (await client.get(f"/v0/models/{model['id']}")).status_code == 404
    names = [t["model_name"] for t in (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]]
    assert "acme/tiny" not in names


async def _forget_endpoints(store: Store) -> None:
    for row in await store.list_endpoints():
        await store.delete_endpoint(row.id)


async def test_bad_uploads_leave_nothing(real: Api, tmp_path: Path) -> None:
    client, _, _ = real
    data = gguf_bytes(pad=3000)
    wrong = await upload(client, "wrong-sha", data, sha256="0" * 64)
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "sha256"
    text = await upload(client, "notes", b"just some text, not weights\n" * 50)
    assert text.status_code == 422 and "not a model" in text.text
    arch = await upload(client, "odd", gguf_bytes("frobnicator"))
    assert arch.status_code == 422 and "no engine" in text.text + arch.text
    cut = await upload(client, "cut", gguf_bytes()[:40])
    assert cut.status_code == 422 and "cut short" in cut.text
    lora = await upload(client, "lonely-lora", gguf_bytes(kind="adapter"))
    assert lora.status_code == 422 and lora.json()["error"]["details"][0]["field"] == "base"
    assert (await client.get("/v0/models")).json()["models"] == [] and models_dir(tmp_path) == []


async def test_truncated_upload_resumes_at_its_offset(real: Api, tmp_path: Path) -> None:
    client, _, _ = real
    data = gguf_bytes(pad=4000)
    mid = (await client.post("/v0/models", json={"name": "resume", "size": len(data)})).json()["id"]
    assert (await client.patch(f"/v0/models/{mid}/content?offset=0", content=data[:1500])).json()[
        "received_bytes"
    ] == 1500
    truncated = await client.post(f"/v0/models/{mid}/complete")
    assert truncated.status_code == 422 and "1500 of" in truncated.text
    skip = await client.patch(f"/v0/models/{mid}/content?offset=2000", content=data[2000:])
    assert skip.status_code == 409 and skip.json()["error"]["details"][0]["offset"] == 1500
    over = await client.patch(f"/v0/models/{mid}/content?offset=1500", content=data[1500:] + b"x")
    assert over.status_code == 422
    got = await client.get(f"/v0/models/{mid}")
    assert got.json()["upload_url"] == f"/v0/models/{mid}/content?offset=1500"
    done = await client.patch(f"/v0/models/{mid}/content?offset=1500", content=data[1500:])
    assert done.status_code == 200 and done.json()["status"] == "ready"
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_payload_mistakes_name_the_field(real: Api) -> None:
    client, _, _ = real
    cases = [
        ({"name": "x"}, None),
        ({"name": "x", "size": 10, "hub_id": "a/b"}, None),
        ({"name": "x", "size": 0}, "size"),
        ({"name": "bad name!", "size": 10}, "name"),
        ({"name": "x", "size": 10, "sha256": "abc"}, "sha256"),
        ({"name": "x", "size": 10, "format": "onnx"}, "format"),
        ({"name": "x", "size": 10, "base": "nothing"}, "base"),
        ({"name": "x", "size": 10, "colour": "red"}, "colour"),
        ({"name": "x", "hub_id": "a/b", "architecture": "NopeForCausalLM"}, "architecture"),
    ]
    for body, field in cases:
        res = await client.post("/v0/models", json=body)
        assert res.status_code == 422, (body, res.text)
        if field:
            assert field in res.text, (body, res.text)
    shipped = await client.post("/v0/models", json={"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "size": 10})
    assert shipped.status_code == 409
    assert (await client.get("/v0/models/mdl-nothing")).status_code == 404


async def test_hub_and_volume_registrations(real: Api, tmp_path: Path) -> None:
    client, _, _ = real
    hub = await client.post(
        "/v0/models", json={"name": "org/hub-model", "hub_id": "org/model", "architecture": "LlamaForCausalLM"}
    )
    assert hub.status_code == 201 and hub.json()["engines"] == ["vllm"]
    vol = (await client.post("/v0/volumes", json={"name": "weights"})).json()
    (Path(vol["path"]) / "m.gguf").write_bytes(gguf_bytes("qwen2", ctx=1024))
    reg = await client.post("/v0/models", json={"name": "from-volume", "volume": "weights", "path": "m.gguf"})
    assert reg.status_code == 201, reg.text
    assert reg.json()["architecture"] == "qwen2" and reg.json()["source"] == "volume"
    outside = await client.post("/v0/models", json={"name": "escape", "volume": "weights", "path": "../../x"})
    assert outside.status_code == 422 and "path" in outside.text
    offers = [
        t
        for t in (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]
        if t["model_name"] == "from-volume"
    ]
    assert [(t["flavor_name"], t["gpu_type"]) for t in offers] == [("base", "cpu")]
    assert (await client.delete(f"/v0/models/{reg.json()['id']}")).status_code == 200
    assert (Path(vol["path"]) / "m.gguf").exists()  # a volume's file is the user's: never deleted


async def test_quota(tmp_path: Path) -> None:
    from dataclasses import replace

    from podium.settings import Settings

    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    async for client, _, _ in _client(tmp_path, catalog):
        client._transport.app.state.services.settings = replace(  # type: ignore[attr-defined]
            Settings(data_dir=tmp_path), model_quota_bytes=10_000
        )
        assert (await upload(client, "a", gguf_bytes(pad=6000))).status_code == 200
        over = await client.post("/v0/models", json={"name": "b", "size": 6000})
        assert over.status_code == 413 and over.json()["error"]["code"] == "quota_exceeded"


async def test_restart_keeps_uploads_resumable_and_removes_orphans(tmp_path: Path) -> None:
    """A new process (new app, same database and store): the upload resumes where it stood (the sha256
    state is rebuilt from the bytes on disk), bytes past the recorded offset are dropped, and files no
    row knows are removed."""
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    data = gguf_bytes(pad=4000)
    async for client, _, _ in _client(tmp_path, catalog):
        mid = (await client.post("/v0/models", json={"name": "r", "size": len(data)})).json()["id"]
        await client.patch(f"/v0/models/{mid}/content?offset=0", content=data[:2000])
    with (tmp_path / "models" / ".uploads" / f"{mid}.part").open("ab") as f:
        f.write(b"garbage a crash left past the recorded offset")
    (tmp_path / "models" / "mdl-orphan").mkdir()
    (tmp_path / "models" / "mdl-orphan" / "x.gguf").write_bytes(b"x")
    async for client, _, _ in _client(tmp_path, catalog):
        assert (await client.get(f"/v0/models/{mid}")).json()["received_bytes"] == 2000
        assert not (tmp_path / "models" / "mdl-orphan").exists()
        done = await client.patch(f"/v0/models/{mid}/content?offset=2000", content=data[2000:])
        assert done.status_code == 200, done.text
        assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()
        assert read(done.json()["path"]) == data


async def test_one_request_multipart_upload(real: Api) -> None:
    """`curl -F file=@x.gguf -F name=N`: the same checks, one request (small files, e.g. adapters)."""
    client, _, _ = real
    data = gguf_bytes(pad=2000)
    files = {"file": ("x.gguf", data, "application/octet-stream")}
    sha = hashlib.sha256(data).hexdigest()
    res = await client.post("/v0/models", data={"name": "form-base", "sha256": sha}, files=files)
    assert res.status_code == 201 and res.json()["status"] == "ready" and res.json()["sha256"] == sha, res.text
    lora = {"file": ("l.gguf", gguf_bytes(kind="adapter"), "application/octet-stream")}
    res = await client.post("/v0/models", data={"name": "form-lora", "base": "form-base"}, files=lora)
    assert res.status_code == 201 and res.json()["kind"] == "adapter", res.text
    bad = await client.post("/v0/models", data={"name": "bad", "sha256": "0" * 64}, files=files)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "sha256"
    nofile = await client.post("/v0/models", data={"name": "nofile"}, files={"other": ("a", b"x")})
    assert nofile.status_code == 422
    garbage = await client.post("/v0/models", content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 422
    assert [m["name"] for m in (await client.get("/v0/models")).json()["models"]] == ["form-base", "form-lora"]
