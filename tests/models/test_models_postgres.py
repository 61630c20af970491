"""The registry on PostgreSQL (PODIUM_DATABASE_URL): migration 0009, an upload in chunks through the
service, the synchronous start-up read (psycopg), delete. Skipped where no PostgreSQL binaries exist
(CI installs them, and a skip there fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.catalog.custom import CustomModel
from podium.models.files import ModelFiles
from podium.models.service import ModelService, NewUpload
from podium.models.wiring import read_models
from podium.store.db import migrate
from podium.store.repos import Store
from tests.conftest import free_port
from tests.models.ggufs import gguf_bytes
from tests.store.postgres import pg_bin, postgres_server

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries")


async def test_upload_read_and_delete_on_postgres(tmp_path: Path) -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        store = Store(url)
        seen: list[list[CustomModel]] = []

        async def nobody(_: str) -> list[tuple[str, str]]:
            return []

        async def no_volume(name: str) -> str:
            raise AssertionError(name)

        svc = ModelService(store, ModelFiles(tmp_path / "models"), nobody, no_volume, seen.append)
        data = gguf_bytes("qwen3", ctx=40960, pad=10_000)
        row = await svc.create_upload(NewUpload("org/pg-model", len(data)))
        for off in range(0, len(data), 4096):
            row = await svc.write_chunk(row.id, off, data[off : off + 4096])
        assert row.status == "ready" and row.architecture == "qwen3" and row.context_length == 40960
        assert [m.name for m in read_models(url)] == ["org/pg-model"] == [m.name for m in seen[-1]]
        await svc.delete("org/pg-model")
        assert read_models(url) == [] and not (tmp_path / "models" / row.id).exists()
        await store.close()
