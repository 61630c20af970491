"""Every rendered vLLM recipe uses only flags `vllm serve` v0.10.2 has, each with a valid value.

The manifest (scripts/vllm-flags-v0.10.2.json) comes from vLLM's own parser via
scripts/vllm-flags.py wherever vLLM installs; this test needs only the JSON, so CI keeps the
recipes honest without a GPU or vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.catalog import Catalog

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "scripts" / "vllm-flags-v0.10.2.json"
MANIFEST: dict[str, Any] = json.loads(MANIFEST_PATH.read_text())
FLAGS: dict[str, dict[str, Any]] = MANIFEST["flags"]
CATALOG = Catalog.load(python="/py", detect_gpus=lambda: None, cpu_count=lambda: 4)
COMBOS = [(v, n) for v in CATALOG.templates() if v.engine == "vllm" for n in v.gpu_counts]


def flag_problems(args: list[str]) -> list[str]:
    """What is wrong with an argv tail of `vllm serve` per the manifest ([] if nothing)."""
    problems, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            problems.append(f"stray value {arg!r}")
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        spec = FLAGS.get(name)
        if spec is None:
            problems.append(f"{name} is not a vllm serve v{MANIFEST['vllm_version']} flag")
            i += 1
            continue
        if spec["kind"] == "flag":
            if eq:
                problems.append(f"{name} takes no value")
            i += 1
            continue
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
        i += 1 if eq else 2
        if value is None:
            problems.append(f"{name} needs a value")
        else:
            problems += value_problems(name, spec, value)
    return problems


def value_problems(name: str, spec: dict[str, Any], value: str) -> list[str]:
    try:
        if spec["kind"] == "int":
            int(value)
        elif spec["kind"] == "float":
            float(value)
        elif spec["kind"] == "json" and not isinstance(json.loads(value), dict):
            return [f"{name} takes a JSON object, not {value!r}"]
    except ValueError:
        return [f"{name} takes {spec['kind']}, not {value!r}"]
    if "choices" in spec and value not in spec["choices"]:
        return [f"{name} {value!r} is not one of its choices"]
    return []


def test_manifest_is_for_the_pinned_image() -> None:
    image = CATALOG.resolve("openai/gpt-oss-20b", "base", "h100", 1, "local").image
    assert image == f"vllm/vllm-openai:v{MANIFEST['vllm_version']}"
    assert FLAGS["--async-scheduling"]["kind"] == "flag" and "fp8" in FLAGS["--quantization"]["choices"]


@pytest.mark.parametrize(
    ("view", "count"), COMBOS, ids=[f"{v.model_name}-{v.flavor_name}-{v.gpu_type}x{n}" for v, n in COMBOS]
)
def test_recipe_uses_only_known_flags_with_valid_values(view: Any, count: int) -> None:
    r = CATALOG.resolve(view.model_name, view.flavor_name, view.gpu_type, count, view.regions[0])
    assert r.command is not None
    serve = r.command.index("serve")
    assert r.command[serve + 2 :] == [], "the model is the only positional argument"
    process = [a.replace("$PORT", "8000") for a in r.args]
    assert flag_problems(process) == []
    assert flag_problems(r.container_args) == []


def test_the_checker_catches_typos_and_bad_values() -> None:
    """Guards the guard: each of these would start on no GPU machine."""
    assert flag_problems(["--max-model-length", "4096"])[0] == "--max-model-length is not a vllm serve v0.10.2 flag"
    assert flag_problems(["--max-model-len", "16k"]) == ["--max-model-len takes int, not '16k'"]
    assert flag_problems(["--quantization", "fp4"]) == ["--quantization 'fp4' is not one of its choices"]
    assert flag_problems(["--speculative-config", "[1]"]) == ["--speculative-config takes a JSON object, not '[1]'"]
    assert flag_problems(["--async-scheduling=1"]) == ["--async-scheduling takes no value"]
    assert flag_problems(["--gpu-memory-utilization"]) == ["--gpu-memory-utilization needs a value"]
