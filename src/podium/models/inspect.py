"""What a weights file or directory is, read from its own metadata: format, architecture, context
length, model or adapter, and which of Podium's engines can serve it.

A file that is not a model, or an architecture no engine serves, is the user's mistake: `Invalid`
naming the field (422), decided before anything is registered.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import Invalid
from podium.models.gguf import MAGIC, NotGguf, read_gguf

# Architectures as GGUF's `general.architecture` names them that the bundled llama.cpp runs
# (llama-cpp-python 0.3.x; a subset of llama.cpp's llm_arch list: the common decoder families).
LLAMA_CPP_ARCHS = frozenset(
    [
        "llama",
        "llama4",
        "qwen",
        "qwen2",
        "qwen2moe",
        "qwen3",
        "qwen3moe",
        "gemma",
        "gemma2",
        "gemma3",
        "phi2",
        "phi3",
        "gpt2",
        "gptneox",
        "falcon",
        "mpt",
        "starcoder",
        "starcoder2",
        "bloom",
        "stablelm",
        "mistral3",
        "deepseek",
        "deepseek2",
        "command-r",
        "cohere2",
        "olmo",
        "olmo2",
        "granite",
        "granitemoe",
        "internlm2",
        "minicpm",
        "minicpm3",
        "exaone",
        "baichuan",
        "chatglm",
        "glm4",
        "nemotron",
        "arctic",
        "bert",
        "nomic-bert",
        "t5",
        "mamba",
        "rwkv6",
        "smollm3",
        "gpt-oss",
        "openelm",
    ]
)
# Hugging Face `architectures` (config.json) that vLLM v0.10.2 (the catalog's vLLM) serves: a subset.
VLLM_ARCHS = frozenset(
    [
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "GemmaForCausalLM",
        "Gemma2ForCausalLM",
        "Gemma3ForCausalLM",
        "Gemma3ForConditionalGeneration",
        "Phi3ForCausalLM",
        "PhiForCausalLM",
        "GPT2LMHeadModel",
        "GPTNeoXForCausalLM",
        "FalconForCausalLM",
        "GPTBigCodeForCausalLM",
        "Starcoder2ForCausalLM",
        "DeepseekV2ForCausalLM",
        "DeepseekV3ForCausalLM",
        "GptOssForCausalLM",
        "GraniteForCausalLM",
        "OlmoForCausalLM",
        "Olmo2ForCausalLM",
        "CohereForCausalLM",
        "InternLM2ForCausalLM",
    ]
)
FORMATS = ("gguf", "safetensors")


@dataclass(frozen=True)
class ModelFacts:
    format: str  # gguf | safetensors
    architecture: str
    kind: str  # model | adapter
    context_length: int | None
    engines: tuple[str, ...]  # catalog engine names that can serve it
    size_bytes: int


def inspect_path(path: Path, declared_format: str | None = None) -> ModelFacts:
    """A GGUF file, or a Hugging Face directory (config.json + *.safetensors, or a PEFT adapter dir)."""
    try:
        if path.is_dir():
            facts = _hf_dir(path)
        elif path.is_file():
            facts = _file(path)
        else:
            raise Invalid("path", f"{path} does not exist")
    except OSError as exc:  # unreadable (permissions, a vanished file): say which, never a 500
        raise Invalid("path", f"cannot read {path}: {exc.strerror or exc}") from exc
    if declared_format and declared_format != facts.format:
        raise Invalid("format", f"declared {declared_format!r} but the file is {facts.format}")
    return facts


def _file(path: Path) -> ModelFacts:
    with path.open("rb") as f:
        head = f.read(8)
    if head[:4] == MAGIC:
        try:
            info = read_gguf(path)
        except NotGguf as exc:
            raise Invalid("file", str(exc)) from exc
        arch = info.architecture
        if not arch:
            raise Invalid("file", "the GGUF file names no general.architecture")
        if arch not in LLAMA_CPP_ARCHS:
            raise Invalid(
                "file",
                f"architecture {arch!r}: no engine here serves it (llama.cpp serves: "
                f"{', '.join(sorted(LLAMA_CPP_ARCHS))})",
            )
        return ModelFacts("gguf", arch, info.kind, info.context_length, ("llama.cpp",), path.stat().st_size)
    if _looks_like_safetensors(path, head):
        raise Invalid(
            "format",
            "a single .safetensors file has no architecture: register its Hugging Face directory "
            "(config.json beside the weights) on a volume instead",
        )
    raise Invalid("file", "not a model: neither GGUF (no GGUF magic) nor safetensors")


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 8:
        return False
    n = struct.unpack("<Q", head)[0]
    if n <= 1 or n > 100 * 1024 * 1024:
        return False
    with path.open("rb") as f:
        f.seek(8)
        return f.read(1) == b"{"


def _hf_dir(path: Path) -> ModelFacts:
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if (path / "adapter_config.json").is_file():  # PEFT LoRA adapter
        cfg = _json(path / "adapter_config.json")
        return ModelFacts("safetensors", str(cfg.get("peft_type", "LORA")).lower(), "adapter", None, ("vllm",), size)
    if not (path / "config.json").is_file():
        raise Invalid("path", f"{path} is a directory without config.json: not a Hugging Face model")
    if not any(path.glob("*.safetensors")):
        raise Invalid("path", f"{path} has no *.safetensors weights")
    cfg = _json(path / "config.json")
    listed = cfg.get("architectures")
    archs = [str(a) for a in listed] if isinstance(listed, list) else []
    served = [a for a in archs if a in VLLM_ARCHS]
    if not served:
        raise Invalid(
            "path",
            f"architecture {archs or 'unknown'}: no engine here serves it (vLLM serves: "
            f"{', '.join(sorted(VLLM_ARCHS))})",
        )
    ctx = cfg.get("max_position_embeddings")
    return ModelFacts("safetensors", served[0], "model", ctx if isinstance(ctx, int) else None, ("vllm",), size)


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Invalid("path", f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Invalid("path", f"{path.name} is not a JSON object")
    return data
