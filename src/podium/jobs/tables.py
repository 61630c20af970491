"""The jobs, files and batches tables (migration 0008). One row per job is the queue itself: a job is
durable the moment its row is committed, and a runner claims it with a conditional UPDATE (status and
lock token), so two runners can never both run it."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.tables import Base

# job states: queued -> running -> succeeded | failed | cancelled; finished -> expired (retention)
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
CANCELLED, EXPIRED = "cancelled", "expired"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_endpoint_status", "endpoint_id", "status"),
        Index("ix_jobs_batch", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(32))
    token_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who submitted (reads it)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # as sent, with its query
    content_type: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times a runner started it
    lock: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the running runner's token
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed, in words
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pending|delivered|failed
    webhook_next_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    webhook_attempts: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {at, status, error}
    batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    custom_id: Mapped[str | None] = mapped_column(Text, nullable=True)


class FileRow(Base):
    """An uploaded file (the Batch API's input) or one Podium wrote (a batch's output and errors)."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column("bytes", Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class BatchRow(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    endpoint: Mapped[str] = mapped_column(String(64))  # the OpenAI path every line targets
    input_file_id: Mapped[str] = mapped_column(String(40))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # OpenAI's: in_progress, finalizing, completed, ...
    output_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    invalid_lines: Mapped[str] = mapped_column(Text, default="[]")  # JSON: error-file lines of bad input
    metadata_json: Mapped[str] = mapped_column(Text, default="null")
    created_at: Mapped[float] = mapped_column(Float)
    in_progress_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finalizing_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancelling_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancelled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)
