"""One typed settings object, built once at start-up and passed explicitly to whatever needs it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from podium.http.limits import HttpLimits
from podium.jobs.tuning import JobsTuning


def default_data_dir() -> Path:
    return Path(os.environ.get("PODIUM_DATA_DIR") or Path.home() / ".podium")


@dataclass(frozen=True)
class ControllerTuning:
    probe_interval_starting_s: float = 0.05  # health probes while a replica boots: readiness is latency
    probe_interval_ready_s: float = 2.0  # liveness probes of ready replicas
    probe_timeout_s: float = 2.0
    unhealthy_after: int = 3  # consecutive failed liveness probes -> out of routing, replaced
    start_timeout_s: float = 600.0  # never healthy within this -> failed (big models load slowly)
    drain_timeout_s: float = 30.0  # in-flight requests get this long before SIGTERM
    stop_grace_s: float = 10.0  # SIGTERM -> SIGKILL
    resync_interval_s: float = 1.0  # a full reconcile even without hints (catches process exits)
    max_failures: int = 5  # consecutive failed starts (or crashes soon after ready) -> endpoint failed
    stable_after_s: float = 30.0  # a replica ready this long clears the endpoint's crash count
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8800
    role: str = "all"  # all | api | gateway | controller
    database_url: str | None = None  # default: SQLite in the data dir
    admin_token: str | None = None  # PODIUM_ADMIN_TOKEN; else generated once into <data_dir>/admin_token
    public_url: str | None = None  # how clients reach this listener (shown in endpoint URLs)
    controller_url: str | None = None  # roles api/gateway: where the controller's /internal/v0 is
    advertise_url: str | None = None  # role gateway: the URL the controller pulls stats from
    region: str | None = None  # role gateway: serve only this region's endpoints (None: every region)
    controller: ControllerTuning = field(default_factory=ControllerTuning)
    http: HttpLimits = field(default_factory=HttpLimits)  # per-request sizes and head deadline (listener)
    jobs: JobsTuning = field(default_factory=JobsTuning)  # async jobs: retention, bounds, webhooks (docs/jobs.md)
    model_store: Path | None = None  # PODIUM_MODEL_STORE: uploaded weights (default <data_dir>/models)
    model_quota_bytes: int | None = None  # PODIUM_MODEL_QUOTA (e.g. 200Gi): most bytes of uploads; None: no limit

    @property
    def models_dir(self) -> Path:
        return self.model_store or self.data_dir / "models"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'podium.db'}"

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return self.public_url or f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env: dict[str, object] = {}
        if os.environ.get("PODIUM_ADMIN_TOKEN"):
            env["admin_token"] = os.environ["PODIUM_ADMIN_TOKEN"]
        if os.environ.get("PODIUM_DATABASE_URL"):
            env["database_url"] = os.environ["PODIUM_DATABASE_URL"]
        if os.environ.get("PODIUM_CONTROLLER_URL"):
            env["controller_url"] = os.environ["PODIUM_CONTROLLER_URL"]
        if os.environ.get("PODIUM_PUBLIC_URL"):
            env["public_url"] = os.environ["PODIUM_PUBLIC_URL"]
        if os.environ.get("PODIUM_MODEL_STORE"):
            env["model_store"] = Path(os.environ["PODIUM_MODEL_STORE"])
        if os.environ.get("PODIUM_MODEL_QUOTA"):
            from podium.core.specs import parse_size

            env["model_quota_bytes"] = parse_size(os.environ["PODIUM_MODEL_QUOTA"])
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)  # type: ignore[arg-type]
