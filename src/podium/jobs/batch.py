"""The OpenAI Batch API on the jobs queue: an uploaded JSONL file becomes one job per line, on the
endpoint named by the line's `body.model`; when none of its jobs is left queued or running, the batch
is finalised into an output file and an error file in OpenAI's line formats. A line that cannot run
(bad JSON, wrong method or url, no such model) goes to the error file at once; the rest runs."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from podium.jobs.batch_repo import BatchRepo
from podium.jobs.intake import new_job_id
from podium.jobs.repo import JobRepo
from podium.jobs.tables import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, BatchRow, FileRow, JobRow
from podium.jobs.views import decode_body

BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
WINDOW_S = {"24h": 24 * 3600.0}


def new_id(prefix: str) -> str:
    return f"{prefix}-" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Line:
    custom_id: str | None
    body: bytes = b""
    model: str = ""
    error: dict[str, str] | None = None  # {"code", "message"}: the line goes to the error file


def parse_line(raw: bytes, number: int, endpoint: str) -> Line:
    """One JSONL line: {"custom_id", "method": "POST", "url": endpoint, "body": {"model": …}}."""
    try:
        item = json.loads(raw)
    except ValueError as exc:
        return Line(None, error={"code": "invalid_json", "message": f"line {number}: not JSON ({exc})"})
    if not isinstance(item, dict):
        return Line(None, error={"code": "invalid_request", "message": f"line {number}: not a JSON object"})
    custom_id = item.get("custom_id") if isinstance(item.get("custom_id"), str) else None
    body = item.get("body")
    problem = None
    if custom_id is None:
        problem = "custom_id: a string is required"
    elif item.get("method", "POST") != "POST":
        problem = "method: only POST is supported"
    elif item.get("url") != endpoint:
        problem = f"url: must be the batch's endpoint {endpoint}"
    elif not isinstance(body, dict) or not isinstance(body.get("model"), str):
        problem = "body.model: a string naming the endpoint is required"
    if problem is not None:
        return Line(custom_id, error={"code": "invalid_request", "message": f"line {number}: {problem}"})
    assert isinstance(body, dict)
    return Line(custom_id, json.dumps(body).encode(), body["model"])


def error_record(custom_id: str | None, code: str, message: str) -> dict[str, Any]:
    return {
        "id": new_id("batch_req"),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


class Batches:
    """Create batches from files, and finalise them (a runner hook)."""

    def __init__(
        self,
        jobs: JobRepo,
        repo: BatchRepo,
        find_endpoint: Callable[[str], Awaitable[str | None]],
        wake_runner: Callable[[], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs, self.repo, self._find, self._wake, self._wall = jobs, repo, find_endpoint, wake_runner, wall_clock

    async def create(
        self, token: str | None, file: FileRow, endpoint: str, window: str, metadata: dict[str, str] | None
    ) -> BatchRow:
        now = self._wall()
        batch = BatchRow(
            id=new_id("batch"),
            token_sha256=token,
            endpoint=endpoint,
            input_file_id=file.id,
            completion_window=window,
            status="in_progress",
            metadata_json=json.dumps(metadata),
            created_at=now,
            in_progress_at=now,
            expires_at=now + WINDOW_S[window],
        )
        invalid: list[dict[str, Any]] = []
        rows: list[JobRow] = []
        endpoints: dict[str, str | None] = {}
        lines = [raw for raw in file.content.splitlines() if raw.strip()]
        for number, raw in enumerate(lines, start=1):
            line = parse_line(raw, number, endpoint)
            if line.error is None and line.model not in endpoints:
                endpoints[line.model] = await self._find(line.model)
            if line.error is not None:
                invalid.append(error_record(line.custom_id, line.error["code"], line.error["message"]))
            elif (endpoint_id := endpoints[line.model]) is None:
                message = f"line {number}: model {line.model!r}: no endpoint has this routing key"
                invalid.append(error_record(line.custom_id, "model_not_found", message))
            else:
                rows.append(self._job(batch, token, endpoint_id, line, now + number * 1e-6))
        batch.total, batch.failed, batch.invalid_lines = len(lines), len(invalid), json.dumps(invalid)
        await self.repo.add_batch(batch, rows)
        self._wake()
        return batch

    def _job(self, batch: BatchRow, token: str | None, endpoint_id: str, line: Line, at: float) -> JobRow:
        return JobRow(
            id=new_job_id(),
            endpoint_id=endpoint_id,
            token_sha256=token,
            method="POST",
            path=batch.endpoint,
            content_type="application/json",
            body=line.body,
            status=QUEUED,
            attempts=0,
            created_at=at,  # in file order
            webhook_attempts="[]",
            batch_id=batch.id,
            custom_id=line.custom_id,
        )

    async def cancel(self, batch: BatchRow) -> None:
        if batch.status == "in_progress":
            now = self._wall()
            await self.jobs.cancel_batch(batch.id, now)
            await self.repo.update_batch(batch.id, status="cancelling", cancelling_at=now)
            self._wake()

    async def finalize_due(self) -> None:
        """Every open batch whose jobs are all finished: output + error files, final status. A batch
        still running at the end of its completion window expires: what has not run never will."""
        now = self._wall()
        for batch in await self.repo.open_batches():
            expired = batch.status == "in_progress" and now >= batch.expires_at
            if expired:
                window = batch.completion_window
                await self.jobs.cancel_batch(batch.id, now, f"the batch's completion window ({window}) ended")
            counts = await self.repo.job_counts(batch.id)
            if counts.get(QUEUED, 0) or counts.get(RUNNING, 0):
                continue
            await self._finalize(batch, expired)

    async def purge(self, finished_before: float) -> None:
        """The jobs of batches finished before `finished_before` (retention): their results are in the
        batch's output and error files, which stay."""
        for batch_id in await self.repo.finished_batches(finished_before):
            await self.jobs.delete_batch_jobs(batch_id)

    async def _finalize(self, batch: BatchRow, expired: bool = False) -> None:
        now = self._wall()
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = list(json.loads(batch.invalid_lines or "[]"))
        for job in await self.jobs.of_batch(batch.id):
            if job.response_status is not None:
                body = decode_body(job.response_type, job.response_body)
                response = {"status_code": job.response_status, "request_id": job.id, "body": body}
                output.append({"id": job.id, "custom_id": job.custom_id, "response": response, "error": None})
            else:
                code = "request_failed"
                if job.status == CANCELLED:
                    code = "batch_expired" if expired else "batch_cancelled"
                errors.append(error_record(job.custom_id, code, job.error or job.status))
        out_file = self._file(batch, "batch_output", output, now) if output else None
        err_file = self._file(batch, "batch_error", errors, now) if errors else None
        files = [f for f in (out_file, err_file) if f is not None]
        ok = sum(1 for o in output if 200 <= o["response"]["status_code"] < 300)
        final: dict[str, object] = {}
        if batch.status == "cancelling":
            final = {"status": "cancelled", "cancelled_at": now}
        elif expired:
            final = {"status": "expired", "completed_at": None}
        await self.repo.close_batch(
            batch.id,
            files,
            output_file_id=out_file.id if out_file else None,
            error_file_id=err_file.id if err_file else None,
            completed=ok,
            failed=batch.total - ok,
            finalizing_at=now,
            **({"status": "completed", "completed_at": now} | final),
        )

    def _file(self, batch: BatchRow, purpose: str, records: list[dict[str, Any]], now: float) -> FileRow:
        content = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        suffix = "output" if purpose == "batch_output" else "error"
        return FileRow(
            id=new_id("file"),
            token_sha256=batch.token_sha256,
            filename=f"{batch.id}_{suffix}.jsonl",
            purpose=purpose,
            size=len(content),
            content=content,
            created_at=now,
        )

    async def live_counts(self, batch: BatchRow) -> dict[str, int]:
        """request_counts of a batch still running: finished jobs so far, invalid lines as failed."""
        if batch.status not in ("in_progress", "cancelling"):
            return {"total": batch.total, "completed": batch.completed, "failed": batch.failed}
        counts = await self.repo.job_counts(batch.id)
        done_bad = counts.get(FAILED, 0) + counts.get(CANCELLED, 0)
        return {"total": batch.total, "completed": counts.get(SUCCEEDED, 0), "failed": batch.failed + done_bad}
