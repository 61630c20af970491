"""`podium model upload|list|get|delete` against a real listener (tests/cli's in-process server): the
sha256 sent and checked, a resumed upload, names with '/', the answers a user reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from podium.catalog.catalog import Catalog
from podium.catalog.custom import CustomModel
from podium.models.wiring import read_models
from tests.cli.conftest import ADMIN, Cli
from tests.models.ggufs import gguf_bytes


def test_upload_list_get_delete(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(gguf_bytes("qwen2", ctx=4096, pad=3000))
    model = cli.json("model", "upload", str(path), "--name", "acme/tiny")
    assert model["status"] == "ready" and model["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model["architecture"] == "qwen2" and model["context_length"] == 4096
    table = cli("model", "list").stdout
    assert "acme/tiny" in table and "ready" in table and "qwen2" in table
    assert cli.json("model", "get", "acme/tiny")["id"] == model["id"]
    again = cli("model", "upload", str(path), "--name", "acme/tiny", ok=False)
    assert again.exit_code == 1 and "exists" in again.stderr
    assert [m.name for m in read_models(f"sqlite+aiosqlite:///{cli.server.data_dir / 'podium.db'}")] == [
        "acme/tiny"
    ]  # what a new process reads
    assert cli("model", "delete", "acme/tiny").stdout.strip() == f"deleted model acme/tiny ({model['id']})"
    assert "no models" in cli("model", "list").stdout


def test_upload_resumes_where_the_server_stands(cli: Cli, tmp_path: Path) -> None:
    data = gguf_bytes(pad=5000)
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    with httpx.Client(base_url=cli.server.url, headers={"Authorization": f"Bearer {ADMIN}"}) as h:
        mid = h.post("/v0/models", json={"name": "half", "size": len(data)}).json()["id"]
        h.patch(f"/v0/models/{mid}/content?offset=0", content=data[:2500]).raise_for_status()
    assert "uploading (2500 bytes)" in cli("model", "get", mid).stdout
    done = cli.json("model", "upload", str(path), "--name", "half")
    assert done["id"] == mid and done["status"] == "ready" and done["sha256"] == hashlib.sha256(data).hexdigest()
    bad = cli("model", "upload", str(tmp_path / "missing.gguf"), "--name", "x", ok=False)
    assert bad.exit_code == 2


def test_a_catalog_learns_models_registered_after_it_loaded() -> None:
    """A controller in its own process: an endpoint naming a model it has not seen re-reads the registry."""
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    reads: list[int] = []

    def loader() -> list[CustomModel]:
        reads.append(1)
        return [CustomModel("late/model", "gguf", "/m/late.gguf", "llama", 100, 2048)]

    catalog.set_custom_loader(loader)
    recipe = catalog.resolve("late/model", "base", "cpu", 0, "local")
    assert "/m/late.gguf" in recipe.args and reads == [1]
    catalog.resolve("late/model", "base", "cpu", 0, "local")
    assert reads == [1]  # known now: no second read
