"""The catalog's file format: what an operator may write in a `*.yaml` catalog file.

Every model forbids unknown keys, so a typo in a data file (`gpu_count:` for `gpu_counts:`) fails
at load with the file and the field named, instead of silently dropping a setting. One file may
hold any of the top-level lists; later files extend or override earlier ones by key (see loader).

Placeholders in commands, args and env values, filled in by `Catalog.resolve`:
`{{model_name}}`, `{{served_model_name}}`, `{{weights}}` (hub id or path of the weights),
`{{gpu_count}}`, `{{python}}` (the interpreter running Podium). `$PORT` is left for the runtime,
which gives every replica its own port.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from podium.core.errors import NotFound

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PRESET_RE = re.compile(r"^(?:(\d+)gpu-)?(\d+)vcpu-(\d+)gb$")
CPU = "cpu"  # the gpu_type of templates that run without a GPU


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"{value!r} must be lowercase letters, digits, '.', '_' or '-'")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuType(Spec):
    """A kind of accelerator: its memory decides which GPU counts fit a model."""

    name: Name = Field(description="short id used everywhere else: h100, h200, l40s")
    memory_gb: float = Field(gt=0, description="memory of one device")
    description: str = ""
    nvidia_smi_names: list[str] = Field(
        default_factory=list, description="substrings of `nvidia-smi --query-gpu=name` that mean this type"
    )


class Engine(Spec):
    """How a serving engine is started, in both forms. Flavors add their own args on top."""

    name: str
    image: str | None = Field(default=None, description="container image, pinned by tag")
    command: list[str] | None = Field(default=None, description="local-process argv head")
    process_args: list[str] = Field(default_factory=list, description="args of the local-process form")
    container_args: list[str] = Field(default_factory=list, description="args to the image's entrypoint")
    port: int = Field(default=8000, ge=1, le=65535, description="port inside the container")
    health_check_path: str = "/health"
    readiness: Literal["health", "generate"] = Field(
        default="health",
        description="generate: ready only once a 1-token completion succeeds (an engine that lists its"
        " model can still crash on the first matrix multiply, e.g. an unsupported CPU instruction)",
    )
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str | None) -> str | None:
        if v is not None and (":" not in v.rsplit("/", 1)[-1] or v.endswith(":latest")):
            raise ValueError(f"image {v!r} must be pinned by a tag other than latest (e.g. repo/name:v1.2)")
        return v

    @model_validator(mode="after")
    def _some_form(self) -> Engine:
        if not self.image and not self.command:
            raise ValueError("an engine needs an image, a command, or both")
        return self


class GpuOption(Spec):
    """One GPU type a flavor runs on, with the counts that fit, and what changes on it."""

    gpu_type: str
    gpu_counts: list[int] = Field(min_length=1)
    args: list[str] = Field(default_factory=list, description="extra args on this GPU type")
    env: dict[str, str] = Field(default_factory=dict)
    regions: list[str] | None = Field(default=None, description="default: the flavor's regions")

    @field_validator("gpu_counts")
    @classmethod
    def _counts(cls, v: list[int]) -> list[int]:
        if any(c < 0 or c > 64 for c in v) or len(set(v)) != len(v):
            raise ValueError("gpu_counts must be distinct numbers between 0 and 64")
        return sorted(v)


class Flavor(Spec):
    """A way to run a model; flavors of one model differ in what they buy (latency, cost, context)."""

    name: Name
    description: str = Field(min_length=1, description="what this flavor is for, in one or two sentences")
    engine: str | None = Field(default=None, description="default: the template's engine")
    weights: str | None = Field(default=None, description="hub id or path; default: the model name")
    memory_gb: float = Field(default=0, ge=0, description="weights + minimal KV cache, over all GPUs")
    args: list[str] = Field(default_factory=list, description="added to both forms' args")
    env: dict[str, str] = Field(default_factory=dict)
    regions: list[str] = Field(
        default_factory=lambda: ["local"], description="where it is offered; not set: every region"
    )
    gpus: list[GpuOption] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_gpu_types(self) -> Flavor:
        types = [g.gpu_type for g in self.gpus]
        if len(set(types)) != len(types):
            raise ValueError(f"flavor {self.name!r} lists a gpu_type twice: {types}")
        return self


class Template(Spec):
    model_name: str = Field(min_length=1, description="the model as users name it, e.g. openai/gpt-oss-20b")
    description: str = ""
    engine: str | None = None
    start_timeout_s: float | None = Field(
        default=None, gt=0, le=86400, description="how long a replica may take to get ready; default: the server's"
    )
    served_model_name: str | None = Field(default=None, description="what the replica answers to; default: model")
    flavors: list[Flavor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_flavors(self) -> Template:
        names = [f.name for f in self.flavors]
        if len(set(names)) != len(names):
            raise ValueError(f"template {self.model_name!r} lists a flavor twice: {names}")
        return self


class Preset(Spec):
    """A machine shape on a platform. Names like `8gpu-128vcpu-1600gb` must say what they hold."""

    name: str
    gpu_count: int = Field(default=0, ge=0, le=64)
    vcpus: int = Field(ge=1)
    memory_gb: int = Field(ge=1)

    @model_validator(mode="after")
    def _name_matches(self) -> Preset:
        m = _PRESET_RE.match(self.name)
        if m:
            gpus, vcpus, mem = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
            if (gpus, vcpus, mem) != (self.gpu_count, self.vcpus, self.memory_gb):
                raise ValueError(
                    f"preset {self.name!r} says {gpus} GPU, {vcpus} vCPU, {mem} GB but declares "
                    f"gpu_count={self.gpu_count}, vcpus={self.vcpus}, memory_gb={self.memory_gb}"
                )
        return self


class Platform(Spec):
    name: Name
    gpu_type: str | None = Field(default=None, description="a gpu_types name, or cpu (required, in some file)")
    aliases: list[Name] = Field(
        default_factory=list,
        description="other names the documents use for this platform (e.g. gpu-l40s-a); accepted wherever"
        " a platform or GPU type is",
    )
    description: str = ""
    presets: list[Preset] = Field(default_factory=list, description="merged by name across files")

    def preset(self, name: str) -> Preset:
        for p in self.presets:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.presets)
        raise NotFound(f"platform {self.name} has no preset {name!r} (presets: {known})")


class InventorySpec(Spec):
    """What a region can hold. `auto` means: look at this machine (nvidia-smi, os.cpu_count())."""

    gpus: dict[str, int | list[int]] | str = Field(
        default="auto", description="auto, or gpu_type -> count or device indices"
    )
    cpu_slots: int | str = Field(default="auto", description="auto (os.cpu_count()) or a number")
    cuda_version: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?$",
        description="the driver's CUDA version (e.g. 12.4); default: nvidia-smi's on this machine, else none",
    )

    @field_validator("gpus", "cpu_slots")
    @classmethod
    def _auto(cls, v: object) -> object:
        if isinstance(v, str) and v != "auto":
            raise ValueError(f"{v!r}: use 'auto' or explicit numbers")
        return v


EnvSecrets = dict[str, str]  # ENV_KEY -> secret selector (name[@version][:KEY]), resolved at replica start


class RegionSpec(Spec):
    name: Name
    runtime: str = Field(default="local", description="local, docker, ray, kubernetes")
    description: str = ""
    docker_host: str | None = Field(default=None, description="docker runtime: the engine (default: DOCKER_HOST)")
    ray_address: str | None = Field(default=None, description="ray runtime: the head's GCS HOST:PORT")
    ray_node_dir: str | None = Field(default=None, description="ray runtime: replicas' logs on each node")
    data_plane_url: str | None = Field(default=None, description="default: the listener's own URL")
    model_cache_dir: str | None = Field(default=None, description="weights cache; sets HF_HOME for replicas")
    template_env_secrets: EnvSecrets = Field(
        default_factory=dict, description="env secrets template replicas get here (over the catalog's)"
    )
    inventory: InventorySpec = Field(default_factory=InventorySpec)


class DraftModel(Spec):
    """A speculative-decoding draft the catalog uses: its context must cover the flavor's."""

    model: str = Field(min_length=1, description="hub id or path, as in --speculative-config's model")
    max_position_embeddings: int = Field(ge=1, description="from the draft's config.json")


class CatalogFile(Spec):
    """One YAML file. All lists are optional: a file may only add a flavor, a region or a preset."""

    gpu_types: list[GpuType] = Field(default_factory=list)
    engines: list[Engine] = Field(default_factory=list)
    templates: list[Template] = Field(default_factory=list)
    platforms: list[Platform] = Field(default_factory=list)
    regions: list[RegionSpec] = Field(default_factory=list)
    drafts: list[DraftModel] = Field(default_factory=list)
    template_env_secrets: EnvSecrets = Field(
        default_factory=dict, description="env secrets every template replica gets (e.g. HF_TOKEN: hf-token)"
    )
