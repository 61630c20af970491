"""Issue 18: recipe rules that keep GPU templates starting on real GPUs, proven on text.

Each test builds the shipped catalog plus one operator file that reintroduces a problem the
issue found, and expects the load to fail naming it; the shipped catalog itself must load.
"""

from __future__ import annotations

import json

import pytest

from podium.catalog import Catalog, CatalogError
from podium.catalog.inventory import build_inventory, gpu_type_of
from podium.catalog.loader import builtin_files, merge
from podium.catalog.models import InventorySpec

CATALOG = Catalog.load(python="/py", detect_gpus=lambda: None, cpu_count=lambda: 4)
EAGLE3_8B = "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"


def with_flavor(args: list[str], description: str = "a flavor for a test") -> str:
    return json.dumps(
        {
            "templates": [
                {
                    "model_name": "meta-llama/Llama-3.1-8B-Instruct",
                    "flavors": [
                        {
                            "name": "probe",
                            "description": description,
                            "memory_gb": 16,
                            "args": args,
                            "gpus": [{"gpu_type": "h100", "gpu_counts": [1]}],
                        }
                    ],
                }
            ]
        }
    )


def load_with(text: str) -> None:
    merge([*builtin_files(), ("operator/probe.yaml", text)])


def spec(model: str | None) -> str:
    return json.dumps({"method": "eagle3", "num_speculative_tokens": 3, **({"model": model} if model else {})})


def test_the_shipped_llama_8b_fast_has_no_short_draft() -> None:
    for n in (1,):
        r = CATALOG.resolve("meta-llama/Llama-3.1-8B-Instruct", "fast", "h100", n, "local")
        assert "--speculative-config" not in r.args and EAGLE3_8B not in " ".join(r.container_args)


def test_a_draft_shorter_than_the_context_fails_the_load() -> None:
    """The 2048-position EAGLE-3 draft under a 16k context was issue 18's engine crash."""
    with pytest.raises(
        CatalogError, match=r"operator/probe.yaml.*'probe'.*covers 2048 tokens but --max-model-len is 16384"
    ):
        load_with(with_flavor(["--max-model-len", "16384", "--speculative-config", spec(EAGLE3_8B)]))
    load_with(with_flavor(["--max-model-len", "2048", "--speculative-config", spec(EAGLE3_8B)]))


def test_an_undeclared_draft_or_a_missing_max_len_fails_the_load() -> None:
    with pytest.raises(CatalogError, match="not declared under drafts"):
        load_with(with_flavor(["--max-model-len", "2048", "--speculative-config", spec("someone/draft")]))
    with pytest.raises(CatalogError, match="must set --max-model-len"):
        load_with(with_flavor(["--speculative-config", spec(EAGLE3_8B)]))


def test_a_raised_draft_config_is_accepted() -> None:
    raised = json.dumps({"drafts": [{"model": "ops/eagle3-8b-128k", "max_position_embeddings": 131072}]})
    merge(
        [
            *builtin_files(),
            ("operator/drafts.yaml", raised),
            (
                "operator/probe.yaml",
                with_flavor(["--max-model-len", "16384", "--speculative-config", spec("ops/eagle3-8b-128k")]),
            ),
        ]
    )


def test_async_scheduling_with_speculative_decoding_fails_the_load() -> None:
    args = ["--max-model-len", "2048", "--async-scheduling", "--speculative-config", spec(None)]
    with pytest.raises(CatalogError, match="--async-scheduling cannot be combined with --speculative-config"):
        load_with(with_flavor(args, "experimental async scheduling"))


def test_async_scheduling_must_be_documented_as_experimental() -> None:
    with pytest.raises(CatalogError, match="must say async scheduling is experimental"):
        load_with(with_flavor(["--max-model-len", "4096", "--async-scheduling"]))
    for v in CATALOG.templates():
        r = CATALOG.resolve(v.model_name, v.flavor_name, v.gpu_type, v.gpu_counts[0], v.regions[0])
        if "--async-scheduling" in r.args:
            assert "experimental" in v.description and "structured outputs" in v.description


def test_llama_70b_fast_loads_a_prequantised_fp8_checkpoint() -> None:
    for gpu, n in (("h200", 1), ("h100", 2), ("l40s", 4)):
        r = CATALOG.resolve("meta-llama/Llama-3.3-70B-Instruct", "fast", gpu, n, "local")
        assert r.command is not None and r.command[-1] == "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"
        assert "--quantization" not in r.args, "quantising BF16 at load stages ~131 GiB on one H200"
        assert r.served_model_name == "meta-llama/Llama-3.3-70B-Instruct"


A100_40 = "index, name, memory.total [MiB]\n0, NVIDIA A100-SXM4-40GB, 40960 MiB\n1, NVIDIA A100-PCIE-40GB, 40536 MiB\n"
A100_80 = "index, name, memory.total [MiB]\n0, NVIDIA A100-SXM4-80GB, 81920 MiB\n1, NVIDIA A100 80GB PCIe, 81920 MiB\n"


@pytest.mark.parametrize(
    ("csv", "expected"),
    [(A100_40, {"a100-40gb": (0, 1)}), (A100_80, {"a100": (0, 1)})],
    ids=["a100-40gb", "a100-80gb"],
)
def test_a100s_are_told_apart_by_memory(csv: str, expected: dict[str, tuple[int, ...]]) -> None:
    inv = build_inventory(InventorySpec(), CATALOG.gpu_types(), detect=lambda: csv, cpu_count=lambda: 8)
    assert inv.gpus == expected


def test_a_device_smaller_than_every_matching_type_is_not_booked_as_one() -> None:
    types = [g for g in CATALOG.gpu_types() if g.name == "a100"]  # an operator catalog without a100-40gb
    assert gpu_type_of("NVIDIA A100-SXM4-40GB", types, 40960) == "a100-sxm4-40gb"
    assert gpu_type_of("NVIDIA H200", CATALOG.gpu_types(), 143771) == "h200"
    assert gpu_type_of("NVIDIA H100 80GB HBM3", CATALOG.gpu_types(), 81559) == "h100"
    assert gpu_type_of("NVIDIA L40S", CATALOG.gpu_types(), 46068) == "l40s"


def test_llama_8b_base_runs_on_an_a100_40gb() -> None:
    r = CATALOG.resolve("meta-llama/Llama-3.1-8B-Instruct", "base", "a100-40gb", 1, "local")
    assert "--quantization" not in r.args  # Ampere: no FP8


def test_each_gpu_template_has_a_start_timeout_sized_to_its_weights() -> None:
    """A cold start downloads the weights (141 GB for Llama-70B BF16): the server's 600 s is too short."""
    for t in {v.model_name for v in CATALOG.templates() if v.gpu_type != "cpu"}:
        template = CATALOG.template(t)
        biggest = max(f.memory_gb for f in template.flavors)
        assert template.start_timeout_s is not None and template.start_timeout_s >= 600 + 15 * biggest, t
        r = CATALOG.resolve(
            t, "base", template.flavors[0].gpus[0].gpu_type, template.flavors[0].gpus[0].gpu_counts[0], "local"
        )
        assert r.start_timeout_s == template.start_timeout_s
