"""Registered models (`/v0/models`) as templates: the flavors and GPU types their engine and size allow.

The catalog's YAML templates are written by hand; a model a user uploads gets its offers computed
here from what the registry read in its file: a GGUF runs on llama.cpp on CPU (flavor `base`, 2k
context, and `long` with the file's full context, up to 32k, when it has more), a safetensors directory on vLLM
on each GPU type whose memory holds it. The recipe names the file by its absolute path, so the one
change from a shipped template is where the weights come from. An adapter is not a template: it
rides on its base's endpoints (`adapters` of the recipe, one routing key each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podium.catalog.models import CPU, GpuType

BASE_CTX = 2048  # the `base` flavor's context: the least memory and the fastest start
LONG_CTX_MAX = 32768  # `long` on CPU: a 128k-context file's full KV cache would not fit a CPU box's RAM
GPU_COUNTS = (1, 2, 4, 8)
FIT = 0.9  # of a GPU's memory usable for weights + cache (the catalog's own rule)


@dataclass(frozen=True)
class Adapter:
    name: str  # the adapter model's name: what the replica serves it as
    path: str  # its file (GGUF LoRA) or directory (PEFT)


@dataclass(frozen=True)
class CustomModel:
    """A ready model of the registry, as the catalog needs it (built by podium.models.service)."""

    name: str
    format: str  # gguf | safetensors
    path: str
    architecture: str
    size_bytes: int
    context_length: int | None = None
    adapters: tuple[Adapter, ...] = ()

    @property
    def engine(self) -> str:
        return "llama.cpp" if self.format == "gguf" else "vllm"


@dataclass(frozen=True)
class Offer:
    flavor_name: str
    description: str
    gpu_type: str
    gpu_counts: tuple[int, ...]
    ctx: int | None = None  # llama.cpp --ctx-size


def offers(model: CustomModel, gpu_types: list[GpuType]) -> list[Offer]:
    if model.format == "gguf":
        full = min(model.context_length or BASE_CTX, LONG_CTX_MAX)
        out = [
            Offer(
                "base",
                f"{model.architecture} GGUF on llama.cpp (CPU), {min(full, BASE_CTX)}-token context",
                CPU,
                (0,),
                min(full, BASE_CTX),
            )
        ]
        if full > BASE_CTX:
            out.append(
                Offer("long", f"{full}-token context (the file's, at most 32k) on llama.cpp (CPU)", CPU, (0,), full)
            )
        return out
    need_gb = model.size_bytes / 1e9 * 1.2 + 2  # weights + a minimal KV cache and activations
    out = []
    for g in gpu_types:
        counts = tuple(c for c in GPU_COUNTS if c * g.memory_gb * FIT >= need_gb)
        if counts:
            out.append(Offer("base", f"{model.architecture} (safetensors) on vLLM", g.name, counts))
    return out


def process_argv(model: CustomModel, offer: Offer, gpu_count: int, python: str) -> tuple[list[str], list[str]]:
    """(command, args) of the local-process form: the engines' own local forms, with the file's path."""
    common = ["--host", "127.0.0.1", "--port", "$PORT"]
    if model.format == "gguf":
        lora = [f"--lora={a.name}={a.path}" for a in model.adapters]
        module = "podium.models.llama_server" if lora else "podium.worker.llama"
        args = [*common, "--alias", model.name, "-m", model.path, "--ctx-size", str(offer.ctx or BASE_CTX), *lora]
        return [python, "-m", module], args
    command = [
        python,
        "-m",
        "podium.worker.engine_check",
        "--expect",
        "vllm==0.10.2",
        "--",
        "vllm",
        "serve",
        model.path,
    ]
    args = [*common, "--served-model-name", model.name, "--tensor-parallel-size", str(gpu_count)]
    if model.adapters:  # vLLM: LoRA on, each adapter loaded by name (requests pick it with `model`)
        args += ["--enable-lora", "--lora-modules", *(f"{a.name}={a.path}" for a in model.adapters)]
    return command, args


def describe(model: CustomModel, gpu_types: list[GpuType]) -> dict[str, Any]:
    return {
        "model_name": model.name,
        "description": f"registered model ({model.format}, {model.architecture}, {model.size_bytes} bytes)",
        "served_model_name": model.name,
        "adapters": [a.name for a in model.adapters],
        "flavors": [
            {
                "flavor_name": o.flavor_name,
                "description": o.description,
                "gpus": [{"gpu_type": o.gpu_type, "gpu_counts": list(o.gpu_counts)}],
            }
            for o in offers(model, gpu_types)
        ],
    }
