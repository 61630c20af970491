"""What users ask for: the endpoint spec and its parts.

Every model forbids unknown fields, so a typo (`min_replica`) is a 422 naming the field instead
of a silently ignored setting. Every number must be finite: JSON's `1e400` parses to infinity, which
the JSON encoder would store as `null`, a row no reader could parse again. Every text field has a
size cap (docs/control-plane.md lists them), so one request cannot store megabytes.

These are domain models; the REST schemas in `podium.api.schemas` wrap them for each view
(container endpoints, dedicated endpoints).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from podium.core.errors import UnreadableSpec, plain
from podium.core.ids import APP_NAME_RE

_SIZE_RE = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")
_UNITS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")  # whitespace and control characters (CR, LF, NUL, ...)
MASK = "********"  # shown in place of a secret value (registry password; env values to non-admins)
SEALED_PREFIX = "sealed:v1:"  # a value sealed with the master key inside a stored spec

# Size caps (characters; lists and maps: entries). Generous for real use, small enough that a
# request cannot store megabytes. docs/control-plane.md lists them.
NAME_MAX = 128
DESCRIPTION_MAX = 10_000
SHORT_MAX = 256  # identifiers: model/flavor names, GPU types, usernames, selectors, profiles
PATH_MAX = 1024  # image references, paths, volume sources
COMMAND_MAX = 16_384
ARG_MAX, ARGS_MAX = 4096, 256
ENV_VALUE_MAX, ENV_MAX = 32_768, 256
SECRET_MAX = 4096  # inline registry password, endpoint token
SSH_KEY_MAX = 16_384
VOLUMES_MAX = 64
TOKEN_MIN = 16  # an endpoint token shorter than this is guessable
DAY_S = 86_400.0

Short = Annotated[str, Field(max_length=SHORT_MAX)]
Arg = Annotated[str, Field(max_length=ARG_MAX)]
EnvValue = Annotated[str, Field(max_length=ENV_VALUE_MAX)]


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
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ScalePolicyKind(StrEnum):
    CONCURRENCY = "concurrency"  # default: keep in-flight per replica near a target share of max
    QUEUE_DELAY = "queue-delay"  # scale up when the oldest queued request waited > value seconds
    REQUEST_COUNT = "request-count"  # desired = ceil((queued + in-flight) / value)
    KV_CACHE = "kv-cache"  # engine KV-cache share in use (0..1] averaged over ready replicas -> scale out
    ENGINE_QUEUE = "engine-queue"  # requests waiting inside the engines, per replica (controller/engine_metrics.py)


class ScalePolicy(Strict):
    kind: ScalePolicyKind = ScalePolicyKind.CONCURRENCY
    value: float = Field(default=0.7, gt=0, le=1e6, description="seconds, requests, or target utilisation")

    @classmethod
    def parse(cls, text: str) -> ScalePolicy:
        """`queue-delay=2`, `request-count=5`, `concurrency=0.7` (CLI form)."""
        kind, _, value = text.partition("=")
        known = ", ".join(k.value for k in ScalePolicyKind)
        if not value:
            raise ValueError(
                "scale policy must look like queue-delay=SECONDS, request-count=N, kv-cache=SHARE or engine-queue=N"
            )
        if kind.strip() not in {k.value for k in ScalePolicyKind}:
            raise ValueError(f"unknown scale policy {kind.strip()!r}; policies: {known}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number (e.g. queue-delay=2)") from None
        return cls(kind=ScalePolicyKind(kind.strip()), value=number)

    def __str__(self) -> str:
        return f"{self.kind.value}={self.value:g}"

    @model_validator(mode="after")
    def _share(self) -> ScalePolicy:
        if self.kind is ScalePolicyKind.KV_CACHE and self.value > 1:
            raise ValueError("kv-cache is a share of the KV cache in use: 0 < value <= 1 (e.g. kv-cache=0.8)")
        return self


class Scaling(Strict):
    min_replicas: int = Field(default=1, ge=0, le=1000)
    max_replicas: int = Field(default=1, ge=0, le=1000)
    idle_timeout_s: float = Field(default=300, ge=0, le=30 * DAY_S, description="no traffic this long -> scale down")
    max_concurrency: int = Field(default=32, ge=1, le=10_000_000, description="in-flight per replica")
    scale_policy: ScalePolicy = Field(default_factory=ScalePolicy)
    queue_size: int = Field(default=1000, ge=0, le=1_000_000, description="waiting requests, per endpoint")
    queue_timeout_s: float = Field(default=60, gt=0, le=DAY_S, description="longest wait in the queue -> 503")
    cold_start_timeout_s: float = Field(default=600, gt=0, le=DAY_S, description="hold time with no ready replica")
    request_timeout_s: float = Field(
        default=3600, gt=0, le=7 * DAY_S, description="a whole request, streaming included"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class RoutingPolicy(StrEnum):
    LEAST_LOAD = "least-load"  # less loaded of two random replicas: any HTTP server
    PREFIX_CACHE = "prefix-cache"  # same prompt prefix -> same replica (its KV cache), bounded load


class Routing(Strict):
    """How the gateway picks a replica. `policy` unset: prefix-cache for GPU template endpoints, whose
    engine (vLLM) batches many requests over a paged KV cache and reuses a cached prefix; least-load for
    CPU templates and containers. Measured (docs/benchmarks.md): on the llama.cpp CPU template, which
    serves one request at a time, least-load's TTFT p50 was lower with the worker's default prompt
    cache, because affinity queues requests on one replica while the other idles."""

    policy: RoutingPolicy | None = None

    def resolved(self, is_template: bool, on_gpu: bool) -> RoutingPolicy:
        if self.policy is not None:
            return self.policy
        return RoutingPolicy.PREFIX_CACHE if is_template and on_gpu else RoutingPolicy.LEAST_LOAD


class RolloutStrategy(StrEnum):
    ROLLING = "rolling"  # replace replicas surge-first: a new one is ready before an old one drains
    CANARY = "canary"  # a few new replicas take canary_percent of requests until promoted


class Rollout(Strict):
    """How a new revision replaces the running one (docs/rollouts.md). Changing only this block makes
    no new revision: it says how the next change rolls."""

    strategy: RolloutStrategy = RolloutStrategy.ROLLING
    max_surge: int = Field(default=1, ge=0, le=1000, description="replicas above the target while rolling")
    max_unavailable: int = Field(default=0, ge=0, le=1000, description="ready replicas below the target")
    canary_percent: float = Field(default=10, gt=0, le=100, description="share of requests to the new revision")
    max_failed_starts: int = Field(default=3, ge=1, le=100, description="failed starts -> roll back")
    progress_deadline_s: float = Field(default=900, gt=0, le=DAY_S, description="not rolled by then -> roll back")
    canary_error_margin: float = Field(
        default=0.05, ge=0, le=1, description="canary error rate above the old one's by more -> roll back"
    )
    canary_min_requests: int = Field(default=20, ge=1, le=1_000_000, description="before the error rates count")

    @model_validator(mode="after")
    def _moves(self) -> Rollout:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError("max_surge and max_unavailable cannot both be 0: nothing could move")
        return self


class Jobs(Strict):
    """Async jobs on this endpoint (docs/jobs.md). A job that was running when Podium died is retried
    once only if `retry_running` says the request is safe to run twice; else it fails, saying why."""

    retry_running: bool = False
    max_queued: int | None = Field(default=None, ge=1, le=1_000_000, description="None: the server's default")


class Registry(Strict):
    username: Short | None = None
    password: str | None = Field(default=None, description="stored sealed, shown masked")
    secret: Short | None = Field(default=None, description="secret selector with REGISTRY_USERNAME/PASSWORD")

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        """The cap is on the clear text; the stored, sealed form is longer and passes as it is."""
        if v is not None and not v.startswith(SEALED_PREFIX) and len(v) > SECRET_MAX:
            raise ValueError(f"at most {SECRET_MAX} characters")
        return v


class ContainerSource(Strict):
    """A model server the user brings: an image (run by a container engine) and/or a command."""

    image: str | None = Field(default=None, max_length=PATH_MAX)
    command: str | None = Field(default=None, max_length=COMMAND_MAX, description="entrypoint; `$PORT` is expanded")
    args: list[Arg] = Field(default_factory=list, max_length=ARGS_MAX)
    port: int = Field(default=8000, ge=1, le=65535, description="port inside the container")
    env: dict[Short, EnvValue] = Field(default_factory=dict, max_length=ENV_MAX)
    env_secrets: dict[Short, Short] = Field(
        default_factory=dict, max_length=ENV_MAX, description="ENV_KEY -> secret selector"
    )
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

    model_name: Short
    flavor_name: Short = "base"
    env_secrets: dict[Short, Short] = Field(
        default_factory=dict,
        max_length=ENV_MAX,
        description="ENV_KEY -> secret selector, e.g. HF_TOKEN for gated weights (over the region's defaults)",
    )

    @field_validator("env_secrets")
    @classmethod
    def _env_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return ContainerSource._env_keys(v)


class Compute(Strict):
    region: Short = "local"
    platform: Short | None = Field(default=None, description="e.g. gpu-h100-sxm, cpu-e2; None = any")
    preset: Short | None = Field(default=None, description="e.g. 1gpu-16vcpu-200gb")
    gpu_type: Short = Field(default="cpu", description="cpu, h100, h200, l40s, ...")
    gpu_count: int = Field(default=0, ge=0, le=64)
    min_cuda_version: str | None = Field(
        default=None,
        pattern=r"^\d{1,3}(\.\d{1,3})?$",
        description="replicas only go where the driver runs this CUDA version or newer (e.g. 12.4)",
    )
    disk_size: Short = "250Gi"
    shm_size: Short = "16Gi"

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
    token: str | None = Field(
        default=None, min_length=TOKEN_MIN, max_length=SECRET_MAX, description="given token; generated when absent"
    )
    token_secret: Short | None = Field(default=None, description="secret selector with AUTH_TOKEN")


class VolumeMode(StrEnum):
    RO = "ro"
    RW = "rw"


class VolumeMount(Strict):
    """`source:container_path[:ro|rw]` or `s3://bucket:/path[:mode[:profile]]`."""

    source: str = Field(max_length=PATH_MAX, description="volume name, host path, or s3://bucket")
    container_path: str = Field(max_length=PATH_MAX)
    mode: VolumeMode = VolumeMode.RW
    profile: Short | None = None

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

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    app_name: str | None = Field(default=None, max_length=63, description="URL name; generated when absent")
    template: TemplateSource | None = None
    container: ContainerSource | None = None
    served_model_name: Short | None = None
    compute: Compute = Field(default_factory=Compute)
    scaling: Scaling = Field(default_factory=Scaling)
    routing: Routing = Field(default_factory=Routing)
    jobs: Jobs = Field(default_factory=Jobs)
    rollout: Rollout = Field(default_factory=Rollout)
    auth: Auth = Field(default_factory=Auth)
    volumes: list[VolumeMount] = Field(default_factory=list, max_length=VOLUMES_MAX)
    health_check_path: str = Field(default="/health", max_length=PATH_MAX)
    ssh_key: str | None = Field(default=None, max_length=SSH_KEY_MAX)
    subnet_id: Short | None = None
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
        """It becomes a request line to the replica: CR/LF would inject headers, spaces break the line."""
        if not v.startswith("/"):
            raise ValueError("must start with /")
        if _CONTROL_RE.search(v):
            raise ValueError("must not contain spaces or control characters (CR, LF, tab, NUL)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> EndpointSpec:
        if (self.template is None) == (self.container is None):
            raise ValueError("give exactly one source: template or container")
        return self


SourceKind = Literal["template", "container"]


def stored_spec(text: str) -> EndpointSpec:
    """Parse a spec as the store holds it. A row that no longer parses (written by hand, by an older
    bug, or by a newer version) raises `UnreadableSpec` with a reason that names the fields, never
    their values (a stored spec may hold an env value or a sealed password)."""
    try:
        return EndpointSpec.model_validate_json(text)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {plain(e['msg'])}" for e in exc.errors()[:3]]
        raise UnreadableSpec("stored spec cannot be read (" + "; ".join(problems) + ")") from None
