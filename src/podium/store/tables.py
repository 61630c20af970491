"""SQL tables. Specs are stored as validated JSON documents (`spec_json`): the spec model evolves
faster than a column-per-field schema should, and the store never interprets it. Status fields the
controller and autoscaler update often are columns."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EndpointRow(Base):
    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    app_name: Mapped[str] = mapped_column(String(63), unique=True)
    routing_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "container" or "template": which view created it
    spec_json: Mapped[str] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every spec change
    auth_token_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    desired_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)  # autoscaler's; None = min
    desired_reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    backoff_until: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ReplicaRow(Base):
    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(32), ForeignKey("endpoints.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(Integer)  # spec generation it was started with
    state: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(128), nullable=True)
    gpus: Mapped[str] = mapped_column(String(128), default="")  # comma-separated device indices
    node: Mapped[str] = mapped_column(String(64), default="", server_default="")  # Ray node id; "" on one machine
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ready_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    usage_recorded_until: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_replicas_endpoint_state", "endpoint_id", "state"),)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    replica_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(128))  # comma-separated
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)  # data-plane requests/minute


class UsageRow(Base):
    """One finished stretch of a replica's life: what it cost. Open stretches are read from `replicas`."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(String(32), index=True)
    endpoint_name: Mapped[str] = mapped_column(String(128))
    replica_id: Mapped[str] = mapped_column(String(32))
    gpu_count: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float] = mapped_column(Float)


class SecretRow(Base):
    """A named, versioned secret. Only metadata here; payloads live encrypted in `secret_versions`."""

    __tablename__ = "secrets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class SecretVersionRow(Base):
    """One immutable payload of a secret: key names in clear (shown to users), values sealed (AES-GCM)."""

    __tablename__ = "secret_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_id: Mapped[str] = mapped_column(String(32), ForeignKey("secrets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    keys: Mapped[str] = mapped_column(Text)  # comma-separated payload keys
    sealed: Mapped[str] = mapped_column(Text)  # base64(nonce || ciphertext)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ux_secret_versions_secret_version", "secret_id", "version", unique=True),)


class VolumeRow(Base):
    """A named filesystem replicas mount by name (`--volume NAME:/path`)."""

    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(63), default="local")
    size: Mapped[str | None] = mapped_column(String(32), nullable=True)
    path: Mapped[str] = mapped_column(Text)  # where the local runtime keeps it
    created_at: Mapped[float] = mapped_column(Float)


class LeaseRow(Base):
    """A named lease (`controller`: who leads among several controllers). `expires_at` is wall-clock
    epoch seconds written by the holder; a holder that stops renewing loses it once that passes."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text, default="")  # where the holder is reached (--advertise-url)
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float)
