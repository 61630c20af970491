"""Batches on a real SQLite store with an injected clock: lines parsed (bad ones to the error file),
finalised into OpenAI's output and error lines, expired at the end of the completion window, their
jobs purged after retention."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.jobs.batch import Batches, parse_line
from podium.jobs.batch_repo import BatchRepo
from podium.jobs.repo import JobRepo, Outcome
from podium.jobs.tables import SUCCEEDED, FileRow
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store

URL = "/v1/chat/completions"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = sqlite_url(tmp_path)
    migrate(url)
    s = Store(url)
    try:
        yield s
    finally:
        await s.close()


def request(custom_id: str, model: str = "known") -> bytes:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": URL, "body": {"model": model}}).encode()


def test_lines_that_cannot_run_say_why() -> None:
    assert parse_line(request("a"), 1, URL).error is None
    assert parse_line(b"{not json", 2, URL).error["code"] == "invalid_json"  # type: ignore[index]
    wrong_url = json.dumps({"custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m"}})
    assert "url" in parse_line(wrong_url.encode(), 3, URL).error["message"]  # type: ignore[index]
    no_model = json.dumps({"custom_id": "c", "method": "POST", "url": URL, "body": {}})
    assert "line 4: body.model" in parse_line(no_model.encode(), 4, URL).error["message"]  # type: ignore[index]


async def make(store: Store, clock: Clock, lines: list[bytes]) -> tuple[Batches, JobRepo, BatchRepo, str]:
    jobs, repo = JobRepo(store.session), BatchRepo(store.session)

    async def endpoint_of(model: str) -> str | None:
        return "ep-a" if model == "known" else None

    batches = Batches(jobs, repo, endpoint_of, lambda: None, wall_clock=clock)
    content = b"\n".join(lines)
    file = FileRow(
        id="file-1", filename="in.jsonl", purpose="batch", size=len(content), content=content, created_at=1.0
    )
    await repo.add_file(file)
    batch = await batches.create("t" * 64, file, URL, "24h", None)
    return batches, jobs, repo, batch.id


async def test_finalised_into_output_and_error_files(store: Store) -> None:
    clock = Clock()
    batches, jobs, repo, batch_id = await make(store, clock, [request("a"), b"oops", request("b", "unknown")])
    await batches.finalize_due()  # a job still queued: nothing yet
    assert (await repo.get_batch(batch_id)).status == "in_progress"  # type: ignore[union-attr]
    [job] = await jobs.claim("ep-a", "run-1", clock.now)
    assert job.custom_id == "a"
    await jobs.finish(job.id, "run-1", Outcome(SUCCEEDED, 200, "application/json", b'{"ok": true}'), clock.now)
    await batches.finalize_due()
    done = await repo.get_batch(batch_id)
    assert done is not None and done.status == "completed" and (done.completed, done.failed, done.total) == (1, 2, 3)
    out = await repo.get_file(done.output_file_id or "")
    assert out is not None and json.loads(out.content)["response"] == {
        "status_code": 200,
        "request_id": job.id,
        "body": {"ok": True},
    }
    errors = await repo.get_file(done.error_file_id or "")
    assert errors is not None
    assert {json.loads(x)["error"]["code"] for x in errors.content.splitlines()} == {"invalid_json", "model_not_found"}


async def test_expires_at_the_end_of_its_window_and_is_purged_after_retention(store: Store) -> None:
    clock = Clock()
    batches, jobs, repo, batch_id = await make(store, clock, [request("a"), request("b")])
    await jobs.claim("ep-a", "run-1", clock.now)  # one running, one queued
    clock.now += 24 * 3600
    await batches.finalize_due()
    gone = await repo.get_batch(batch_id)
    assert gone is not None and gone.status == "expired" and gone.output_file_id is None
    errors = await repo.get_file(gone.error_file_id or "")
    assert errors is not None
    assert [json.loads(x)["error"]["code"] for x in errors.content.splitlines()] == ["batch_expired"] * 2
    await batches.purge(finished_before=clock.now)  # finalised at now: not before it
    assert len(await jobs.of_batch(batch_id)) == 2
    await batches.purge(finished_before=clock.now + 1)
    assert await jobs.of_batch(batch_id) == []
