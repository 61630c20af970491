"""Every (template, flavor, GPU type, GPU count) of the shipped catalog renders a runnable recipe.

No GPU here, so GPU recipes are checked as far as text allows: vLLM flags against the flags
vLLM v0.10.2 has (a typo would only show on a GPU machine otherwise), tensor parallel = GPU count,
FP8 only on GPUs with FP8 tensor cores, memory that fits, JSON-valued flags that parse. The CPU
recipe's args go through the real `podium.worker.llama` parser.
"""

from __future__ import annotations

import json
import re

import pytest

from podium.catalog import Catalog, TemplateView
from podium.catalog.loader import USABLE_GPU_FRACTION
from podium.core.errors import Invalid, NotFound
from podium.worker import llama

CATALOG = Catalog.load(python="/opt/py/bin/python", detect_gpus=lambda: None, cpu_count=lambda: 4)
VIEWS = CATALOG.templates()
COMBOS = [(v, n) for v in VIEWS for n in v.gpu_counts]

# Flags of `vllm serve` (v0.10.2) the catalog may use; a flag outside this list is a typo or needs a look.
VLLM_FLAGS = {
    "--model",
    "--host",
    "--port",
    "--served-model-name",
    "--tensor-parallel-size",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--async-scheduling",
    "--quantization",
    "--speculative-config",
    "--reasoning-parser",
}
FP8_GPUS = {"h100", "h200", "l40s"}  # Hopper and Ada; A100 (Ampere) has no FP8 tensor cores


def flag_value(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} appears {args.count(flag)} times in {args}"
    return args[args.index(flag) + 1]


def test_catalog_offers_the_documented_models() -> None:
    models = {v.model_name for v in VIEWS}
    assert {
        "openai/gpt-oss-20b",
        "openai/gpt-oss-120b",
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen3-32B",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    } <= models
    cpu = [v for v in VIEWS if v.gpu_type == "cpu"]
    assert {v.model_name for v in cpu} == {"HuggingFaceTB/SmolLM2-135M-Instruct"}
    assert all("local" in v.regions and v.gpu_counts == [0] for v in cpu)
    assert {v.gpu_type for v in VIEWS} >= {"h100", "h200", "l40s", "cpu"}


@pytest.mark.parametrize("model", sorted({v.model_name for v in VIEWS if v.gpu_type != "cpu"}))
def test_gpu_flavors_differ_for_real(model: str) -> None:
    flavors = {v.flavor_name: v for v in VIEWS if v.model_name == model}
    assert {"base", "fast"} <= set(flavors)
    recipes = {name: CATALOG.resolve(model, name, v.gpu_type, v.gpu_counts[0], "local") for name, v in flavors.items()}
    assert recipes["base"].args != recipes["fast"].args
    assert flavors["base"].description != flavors["fast"].description


@pytest.mark.parametrize(
    ("view", "count"), COMBOS, ids=[f"{v.model_name}-{v.flavor_name}-{v.gpu_type}x{n}" for v, n in COMBOS]
)
def test_recipe_renders(view: TemplateView, count: int) -> None:
    r = CATALOG.resolve(view.model_name, view.flavor_name, view.gpu_type, count, "local")
    everything = [*(r.command or []), *r.args, *r.container_args, *r.env.values(), r.image or ""]
    assert not any("{{" in s or "}}" in s for s in everything), everything
    assert r.image and re.match(r"^[\w./-]+:[\w.-]+$", r.image) and not r.image.endswith(":latest")
    assert r.command, "the local runtime needs a command"
    assert flag_value(r.args, "--port") == "$PORT", "local replicas listen on the port the runtime gives"
    assert flag_value(r.args, "--host") == "127.0.0.1", "local replicas are reachable only through the gateway"
    assert flag_value(r.container_args, "--port") == str(r.port)
    assert flag_value(r.container_args, "--host") == "0.0.0.0"
    assert r.health_check_path.startswith("/")
    assert r.served_model_name == view.served_model_name == view.model_name
    assert view.description.strip(), "every flavor says what it is for"
    if r.engine == "vllm":
        check_vllm(view, count, r.command, r.args, r.container_args)
    else:
        check_llama(count, r.command, r.args, r.health_check_path)


def check_vllm(view: TemplateView, count: int, command: list[str], args: list[str], cargs: list[str]) -> None:
    head = ["/opt/py/bin/python", "-m", "podium.worker.engine_check", "--expect", "vllm==0.10.2", "--"]
    assert command[:-3] == head, "the local form checks the engine's version first"
    weights = command[-1]
    assert command[-3:-1] == ["vllm", "serve"] and flag_value(cargs, "--model") == weights
    for form in (args, cargs):
        flags = {a for a in form if a.startswith("--")}
        assert flags <= VLLM_FLAGS, f"unknown vLLM flags {flags - VLLM_FLAGS}"
        assert flag_value(form, "--tensor-parallel-size") == str(count)
        assert flag_value(form, "--served-model-name") == view.model_name
        assert int(flag_value(form, "--max-model-len")) >= 8192
        if "--speculative-config" in form:
            spec = json.loads(flag_value(form, "--speculative-config"))
            assert spec["method"] in {"eagle", "eagle3", "ngram"} and spec["num_speculative_tokens"] >= 1
        if "--gpu-memory-utilization" in form:
            assert 0.5 <= float(flag_value(form, "--gpu-memory-utilization")) <= 0.95
        fp8 = "--quantization" in form or weights.endswith("-FP8")
        if fp8:
            assert view.gpu_type in FP8_GPUS, f"FP8 on {view.gpu_type}"
    template = CATALOG.template(view.model_name)
    flavor = next(f for f in template.flavors if f.name == view.flavor_name)
    gpu = next(g for g in CATALOG.gpu_types() if g.name == view.gpu_type)
    assert count * gpu.memory_gb * USABLE_GPU_FRACTION >= flavor.memory_gb > 0


def check_llama(count: int, command: list[str], args: list[str], health: str) -> None:
    assert count == 0
    assert command == ["/opt/py/bin/python", "-m", "podium.worker.llama"]
    ns = llama.parse_args([a.replace("$PORT", "4321") for a in args], {})
    assert (ns.port, ns.host, ns.alias) == (4321, "127.0.0.1", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert ns.ctx_size in (2048, 8192)
    assert health == llama.HEALTH_PATH


BAD = [
    (("nope/model", "base", "h100", 1, "local"), "model_name"),
    (("openai/gpt-oss-20b", "turbo", "h100", 1, "local"), "flavor_name"),
    (("openai/gpt-oss-20b", "base", "h100", 1, "mars"), "region"),
    (("openai/gpt-oss-20b", "base", "l40s", 1, "local"), "gpu_type"),
    (("openai/gpt-oss-20b", "base", "cpu", 0, "local"), "gpu_type"),
    (("openai/gpt-oss-20b", "base", "h100", 3, "local"), "gpu_count"),
    (("openai/gpt-oss-120b", "fast", "h100", 1, "local"), "gpu_count"),
    (("HuggingFaceTB/SmolLM2-135M-Instruct", "base", "cpu", 1, "local"), "gpu_count"),
    (("HuggingFaceTB/SmolLM2-135M-Instruct", "base", "h100", 1, "local"), "gpu_type"),
]


@pytest.mark.parametrize(("combo", "field"), BAD, ids=[f"{c[0]}-{c[1]}-{c[2]}x{c[3]}-{c[4]}" for c, _ in BAD])
def test_invalid_combinations_name_the_field(combo: tuple, field: str) -> None:
    with pytest.raises(Invalid) as info:
        CATALOG.resolve(*combo)
    assert info.value.field == field and info.value.status == 422
    assert info.value.to_json()["error"]["details"][0]["field"] == field


def test_error_messages_list_the_valid_choices() -> None:
    with pytest.raises(Invalid, match="flavors: base, fast"):
        CATALOG.resolve("openai/gpt-oss-20b", "turbo", "h100", 1, "local")
    with pytest.raises(Invalid, match="takes gpu_count 2, 4, 8, not 1"):
        CATALOG.resolve("openai/gpt-oss-120b", "fast", "h100", 1, "local")
    with pytest.raises(NotFound):
        CATALOG.template("nope/model")


def test_weights_and_served_name_can_differ() -> None:
    """Qwen3-32B fast loads the FP8 checkpoint but answers as Qwen/Qwen3-32B (the gateway's rewrite target)."""
    r = CATALOG.resolve("Qwen/Qwen3-32B", "fast", "h100", 1, "local")
    assert r.command is not None and r.command[-3:] == ["vllm", "serve", "Qwen/Qwen3-32B-FP8"]
    assert r.served_model_name == "Qwen/Qwen3-32B"


def test_describe_has_every_flavor_and_gpu_type() -> None:
    d = CATALOG.describe("meta-llama/Llama-3.1-8B-Instruct")
    assert [f["flavor_name"] for f in d["flavors"]] == ["base", "fast"]
    fast = d["flavors"][1]
    assert [g["gpu_type"] for g in fast["gpus"]] == ["h100", "h200", "l40s"]
    assert "--quantization" in fast["gpus"][0]["recipe"].args
