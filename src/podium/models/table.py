"""The `models` table: one row per registered model or adapter, and per upload still in progress.

An upload is a row in state `uploading` (bytes so far in `received_bytes`, the file under a temp name)
until its last chunk arrives and checks out; only then is it `ready` and offered as a template. So a
half-uploaded file is never deployable, and a restart finds every unfinished upload to resume or
clean up (`ModelService.recover`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.tables import Base

UPLOADING, READY = "uploading", "ready"


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    base: Mapped[str | None] = mapped_column(String(128), nullable=True)  # an adapter's base model (by name)
    source: Mapped[str] = mapped_column(String(16))  # upload | volume | hub
    status: Mapped[str] = mapped_column(String(16))  # uploading | ready
    format: Mapped[str] = mapped_column(String(16), default="")  # gguf | safetensors ("" while uploading)
    architecture: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="model")  # model | adapter
    context_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    engines: Mapped[str] = mapped_column(String(128), default="")  # comma-separated catalog engine names
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")  # expected while uploading, computed once ready
    path: Mapped[str] = mapped_column(Text, default="")  # the file or directory (or hub id) engines load
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
