"""The registry's service under two API processes and across a long restart (SQLite, no HTTP)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from podium.core.errors import Conflict
from podium.models.files import ModelFiles
from podium.models.service import ModelService, NewUpload
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from tests.models.ggufs import gguf_bytes


async def test_two_api_processes_one_offset_and_stale_uploads(tmp_path: Path) -> None:
    """Two services (as two `--role api` processes: a lock each) on one store and one model store: of
    two writes at the same offset exactly one lands; a week-old upload is dropped at the next start.
    (SQLite here: the offset check is the same statement on both databases.)"""
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)

    async def nobody(_: str) -> list[tuple[str, str]]:
        return []

    async def no_volume(name: str) -> str:
        raise AssertionError(name)

    a, b = (ModelService(store, ModelFiles(tmp_path / "models"), nobody, no_volume, lambda _: None) for _ in "ab")
    data = gguf_bytes(pad=4000)
    row = await a.create_upload(NewUpload("twice", len(data)))
    results = await asyncio.gather(
        a.write_chunk(row.id, 0, data[:2000]), b.write_chunk(row.id, 0, data[:2000]), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "ModelRow"]
    assert all(isinstance(r, Conflict) or r.received_bytes == 2000 for r in results)
    done = await b.write_chunk(row.id, 2000, data[2000:])  # b rebuilds its hash from the file
    assert done.status == "ready" and done.sha256 == hashlib.sha256(data).hexdigest()
    stale = await a.create_upload(NewUpload("abandoned", 100))
    await a.recover(now=stale.updated_at + 8 * 86400)
    assert [r.name for r in await a.list()] == ["twice"] and not a.files.part(stale.id).exists()
    await store.close()
