"""What users ask for: the endpoint spec and its parts.

Every model forbids unknown fields, so a typo (`min_replica`) is a 422 naming the field instead
of a silently ignored setting. These are domain models; the REST schemas in `podium.api.schemas`
wrap them for each view (container endpoints, dedicated endpoints).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from podium.core.ids import APP_NAME_RE

_SIZE_RE = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")
_UNITS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _is_utf8(text: str) -> bool:
    """JSON can carry lone surrogates (`"\\ud800"`); they cannot be stored, logged or passed to a process."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_size(text: str) -> int:
    """`250Gi` -> bytes. Sizes use binary units as in the container-endpoint documents."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size like 250Gi, 16Gi or 1Ti")
    return int(m.group(1)) * _UNITS[m.group(2)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ScalePolicyKind(StrEnum):
    CONCURRENCY = "concurrency"  # default: keep in-flight per replica near a target share of max
    QUEUE_DELAY = "queue-delay"  # scale up when the oldest queued request waited > value seconds
    REQUEST_COUNT = "request-count"  # desired = ceil((queued + in-flight) / value)


class ScalePolicy(Strict):
    kind: ScalePolicyKind = ScalePolicyKind.CONCURRENCY
    value: float = Field(default=0.7, gt=0, description="seconds, requests, or target utilisation")

    @classmethod
    def parse(cls, text: str) -> ScalePolicy:
        """`queue-delay=2`, `request-count=5`, `concurrency=0.7` (CLI form)."""
        kind, _, value = text.partition("=")
        if not value:
            raise ValueError("scale policy must look like queue-delay=SECONDS or request-count=N")
        return cls(kind=ScalePolicyKind(kind.strip()), value=float(value))

    def __str__(self) -> str:
        return f"{self.kind.value}={self.value:g}"


class Scaling(Strict):
    min_replicas: int = Field(default=1, ge=0, le=1000)
    max_replicas: int = Field(default=1, ge=0, le=1000)
    idle_timeout_s: float = Field(default=300, ge=0, description="no traffic this long -> scale down")
    max_concurrency: int = Field(default=32, ge=1, le=10_000_000, description="in-flight per replica")
    scale_policy: ScalePolicy = Field(default_factory=ScalePolicy)
    queue_size: int = Field(default=1000, ge=0, le=1_000_000, description="waiting requests, per endpoint")
    queue_timeout_s: float = Field(default=60, gt=0, description="longest wait in the queue -> 503")
    cold_start_timeout_s: float = Field(default=600, gt=0, description="hold time with no ready replica")
    request_timeout_s: float = Field(default=3600, gt=0, description="a whole request, streaming included")

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class Registry(Strict):
    username: str | None = None
    password: str | None = None
    secret: str | None = Field(default=None, description="secret selector with REGISTRY_USERNAME/PASSWORD")


class ContainerSource(Strict):
    """A model server the user brings: an image (run by a container engine) and/or a command."""

    image: str | None = None
    command: str | None = Field(default=None, description="entrypoint; `$PORT` is expanded")
    args: list[str] = Field(default_factory=list)
    port: int = Field(default=8000, ge=1, le=65535, description="port inside the container")
    env: dict[str, str] = Field(default_factory=dict)
    env_secrets: dict[str, str] = Field(default_factory=dict, description="ENV_KEY -> secret selector")
    registry: Registry = Field(default_factory=Registry)

    @field_validator("command", "image")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        if v is not None and "\0" in v:
            raise ValueError("must not contain NUL")
        return v

    @field_validator("args")
    @classmethod
    def _args(cls, v: list[str]) -> list[str]:
        if any("\0" in a for a in v):
            raise ValueError("arguments must not contain NUL")
        return v

    @field_validator("env", "env_secrets")
    @classmethod
    def _env_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if not _is_utf8(value) or "\0" in value:
                raise ValueError(f"the value of {key} is not valid text (NUL or a lone surrogate)")
        return v


class TemplateSource(Strict):
    """A catalog model: the recipe (image, command, args) comes from the template's flavor."""

    model_name: str
    flavor_name: str = "base"


class Compute(Strict):
    region: str = "local"
    platform: str | None = Field(default=None, description="e.g. gpu-h100-sxm, cpu-e2; None = any")
    preset: str | None = Field(default=None, description="e.g. 1gpu-16vcpu-200gb")
    gpu_type: str = Field(default="cpu", description="cpu, h100, h200, l40s, ...")
    gpu_count: int = Field(default=0, ge=0, le=64)
    disk_size: str = "250Gi"
    shm_size: str = "16Gi"

    @field_validator("disk_size", "shm_size")
    @classmethod
    def _size(cls, v: str) -> str:
        parse_size(v)
        return v


class AuthMode(StrEnum):
    NONE = "none"  # any platform token with the inference scope (or none, if the region is open)
    TOKEN = "token"  # the endpoint's own bearer token (or a platform inference token)


class Auth(Strict):
    mode: AuthMode = AuthMode.NONE
    token: str | None = Field(default=None, description="given token; generated when absent")
    token_secret: str | None = Field(default=None, description="secret selector with AUTH_TOKEN")


class VolumeMode(StrEnum):
    RO = "ro"
    RW = "rw"


class VolumeMount(Strict):
    """`source:container_path[:ro|rw]` or `s3://bucket:/path[:mode[:profile]]`."""

    source: str = Field(description="volume name, host path, or s3://bucket")
    container_path: str
    mode: VolumeMode = VolumeMode.RW
    profile: str | None = None

    @field_validator("container_path")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("container_path must be absolute")
        return v

    @property
    def is_bucket(self) -> bool:
        return self.source.startswith("s3://")

    @classmethod
    def parse(cls, text: str) -> VolumeMount:
        bucket = text.startswith("s3://")
        rest = text[5:] if bucket else text
        parts = rest.split(":")
        if len(parts) < 2:
            raise ValueError("volume must look like SOURCE:/container/path[:ro|rw]")
        source = ("s3://" if bucket else "") + parts[0]
        mode = VolumeMode(parts[2]) if len(parts) > 2 and parts[2] else VolumeMode.RW
        profile = parts[3] if len(parts) > 3 else None
        return cls(source=source, container_path=parts[1], mode=mode, profile=profile)


class EndpointSpec(Strict):
    """Everything a user can set on an endpoint. Status lives apart (`podium.core.status`)."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str = ""
    app_name: str | None = Field(default=None, description="URL name; generated when absent")
    template: TemplateSource | None = None
    container: ContainerSource | None = None
    served_model_name: str | None = None
    compute: Compute = Field(default_factory=Compute)
    scaling: Scaling = Field(default_factory=Scaling)
    auth: Auth = Field(default_factory=Auth)
    volumes: list[VolumeMount] = Field(default_factory=list)
    health_check_path: str = "/health"
    ssh_key: str | None = None
    subnet_id: str | None = None
    public: bool = False
    enabled: bool = True

    @field_validator("app_name")
    @classmethod
    def _app_name(cls, v: str | None) -> str | None:
        if v is not None and not APP_NAME_RE.match(v):
            raise ValueError("use lowercase letters, digits and hyphens (1-63), not starting/ending with -")
        return v

    @field_validator("health_check_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> EndpointSpec:
        if (self.template is None) == (self.container is None):
            raise ValueError("give exactly one source: template or container")
        return self


SourceKind = Literal["template", "container"]
