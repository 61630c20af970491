"""Catalog loading: shipped files, operator directories that extend and override by key, and
malformed files that fail with the file and the field named."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium.catalog import Catalog, CatalogError
from podium.core.errors import NotFound
from podium.services.catalog_view import CatalogView

FIXTURES = Path(__file__).parent / "fixtures"


def load(*dirs: Path) -> Catalog:
    return Catalog.load(list(dirs), python="py", detect_gpus=lambda: None, cpu_count=lambda: 2)


def write(d: Path, name: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(textwrap.dedent(text))
    return p


def test_shipped_catalog_loads_and_missing_dirs_are_empty(tmp_path: Path) -> None:
    c = load(tmp_path / "does-not-exist")
    assert [r.name for r in c.regions()] == ["local"]
    assert {p.name for p in c.platforms()} >= {"gpu-h100-sxm", "gpu-h200-sxm", "gpu-l40s", "cpu-e2"}
    assert c.platform("gpu-h100-sxm").preset("8gpu-128vcpu-1600gb").gpu_count == 8
    assert c.platform("cpu-e2").preset("2vcpu-8gb").memory_gb == 8
    with pytest.raises(NotFound):
        c.platform("gpu-h100-sxm").preset("3gpu")
    with pytest.raises(NotFound):
        c.region("mars")
    assert all(f.startswith("podium/catalog/data/") for f in c.files)


def test_operator_dir_extends_and_overrides_by_key(tmp_path: Path) -> None:
    ops = tmp_path / "catalog"
    write(
        ops,
        "10-lab.yaml",
        """
        regions:
          - name: lab
            runtime: local
            model_cache_dir: /models
            inventory: {gpus: {h100: 8, l40s: [2, 3]}, cpu_slots: 64}
        platforms:
          - name: gpu-h100-sxm
            presets:
              - {name: 3gpu-48vcpu-600gb, gpu_count: 3, vcpus: 48, memory_gb: 600}
        templates:
          - model_name: openai/gpt-oss-20b
            flavors:
              - name: base
                description: Our base runs on L40S too, in the lab.
                memory_gb: 24
                args: ["--max-model-len", "16384"]
                regions: [lab]
                gpus:
                  - {gpu_type: l40s, gpu_counts: [1]}
              - name: tiny-context
                description: 4k context.
                memory_gb: 20
                args: ["--max-model-len", "4096"]
                regions: [local, lab]
                gpus:
                  - {gpu_type: h100, gpu_counts: [1]}
        """,
    )
    c = load(ops)
    lab = c.region("lab")
    assert lab.inventory == {"h100": 8, "l40s": 2, "cpu": 64}
    assert lab.gpu_devices() == {"h100": list(range(8)), "l40s": [2, 3]}
    assert lab.inventory_source == "config"
    presets = [p.name for p in c.platform("gpu-h100-sxm").presets]
    assert presets[0] == "1gpu-16vcpu-200gb" and presets[-1] == "3gpu-48vcpu-600gb"
    flavors = [f.name for f in c.template("openai/gpt-oss-20b").flavors]
    assert flavors == ["base", "fast", "tiny-context"]  # base replaced in place, fast kept, new one added
    r = c.resolve("openai/gpt-oss-20b", "base", "l40s", 1, "lab")
    assert r.args[-2:] == ["--max-model-len", "16384"] and r.env["HF_HOME"] == "/models"
    with pytest.raises(Exception, match="gpu_type"):
        c.resolve("openai/gpt-oss-20b", "base", "h100", 1, "local")  # the override dropped h100
    assert c.template("openai/gpt-oss-20b").description.startswith("OpenAI's 21B")  # not set -> kept
    assert c.files[-1].endswith("10-lab.yaml")


def test_later_directories_win(tmp_path: Path) -> None:
    for i, slots in enumerate((4, 9)):
        write(
            tmp_path / f"d{i}", "r.yaml", f"regions: [{{name: local, inventory: {{gpus: {{}}, cpu_slots: {slots}}}}}]"
        )
    c = load(tmp_path / "d0", tmp_path / "d1")
    assert c.region("local").inventory == {"cpu": 9}


def test_fake_worker_fixture_template(tmp_path: Path) -> None:
    c = load(FIXTURES)
    r = c.resolve("podium/fake-chat", "base", "cpu", 0, "local")
    assert [*(r.command or []), *r.args] == [
        "py",
        "-m",
        "podium.worker.fake",
        "--port",
        "$PORT",
        "--model",
        "podium/fake-chat",
    ]
    assert r.image is None and r.health_check_path == "/health"
    assert c.resolve("podium/fake-chat", "gpu", "h100", 2, "local").command


MALFORMED = [
    ("bad yaml", "templates: [unclosed", "not valid YAML"),
    ("not a mapping", "- just\n- a list\n", "expected a mapping"),
    ("unknown top-level key", "template: []\n", "template: Extra inputs are not permitted"),
    (
        "typo in a gpu option",
        """
        templates:
          - model_name: x/y
            engine: vllm
            flavors:
              - name: base
                description: d
                gpus: [{gpu_type: h100, gpu_count: [1]}]
        """,
        "templates[0].flavors[0].gpus[0].gpu_count: Extra inputs are not permitted",
    ),
    (
        "model does not fit",
        """
        templates:
          - model_name: x/y
            engine: vllm
            flavors:
              - name: base
                description: d
                memory_gb: 100
                gpus: [{gpu_type: h100, gpu_counts: [1, 2]}]
        """,
        "1 x h100 gives 72 GB usable, the flavor needs 100 GB",
    ),
    (
        "unknown gpu type",
        """
        templates:
          - model_name: x/y
            engine: vllm
            flavors: [{name: base, description: d, gpus: [{gpu_type: tpu, gpu_counts: [1]}]}]
        """,
        "gpu_type 'tpu' is not a known GPU type",
    ),
    (
        "unknown region",
        """
        templates:
          - model_name: x/y
            engine: vllm
            flavors: [{name: base, description: d, regions: [moon], gpus: [{gpu_type: h100, gpu_counts: [1]}]}]
        """,
        "region 'moon' is not a known region",
    ),
    (
        "unknown engine",
        """
        templates:
          - model_name: x/y
            engine: tgi
            flavors: [{name: base, description: d, gpus: [{gpu_type: h100, gpu_counts: [1]}]}]
        """,
        "engine 'tgi' is not a known engine",
    ),
    (
        "unknown placeholder",
        """
        templates:
          - model_name: x/y
            engine: vllm
            flavors: [{name: base, description: d, args: ["{{modle}}"], gpus: [{gpu_type: h100, gpu_counts: [1]}]}]
        """,
        "unknown placeholder {{modle}}",
    ),
    (
        "flavor without purpose",
        "templates: [{model_name: x/y, engine: vllm, "
        "flavors: [{name: base, gpus: [{gpu_type: h100, gpu_counts: [1]}]}]}]",
        "description: Field required",
    ),
    ("unpinned image", "engines: [{name: e, image: 'vllm/vllm-openai:latest'}]", "must be pinned"),
    ("untagged image", "engines: [{name: e, image: 'vllm/vllm-openai'}]", "must be pinned"),
    (
        "preset name lies",
        "platforms: [{name: p, gpu_type: h100, "
        "presets: [{name: 2gpu-8vcpu-10gb, gpu_count: 1, vcpus: 8, memory_gb: 10}]}]",
        "says 2 GPU",
    ),
    (
        "gpu preset on a cpu platform",
        "platforms: [{name: p, gpu_type: cpu, presets: [{name: big, gpu_count: 1, vcpus: 8, memory_gb: 10}]}]",
        "gpu_count must be 0",
    ),
    ("inventory word", "regions: [{name: r, inventory: {gpus: detect}}]", "use 'auto'"),
    ("bad name", "regions: [{name: Local Box}]", "must be lowercase"),
    (
        "platform without gpu_type",
        "platforms: [{name: p, presets: [{name: a, vcpus: 1, memory_gb: 1}]}]",
        "gpu_type None",
    ),
    ("platform without presets", "platforms: [{name: p, gpu_type: cpu}]", "has no presets"),
]


@pytest.mark.parametrize(("case", "text", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_file_and_field(tmp_path: Path, case: str, text: str, expected: str) -> None:
    path = write(tmp_path / "ops", "broken.yaml", text)
    with pytest.raises(CatalogError) as info:
        load(tmp_path / "ops")
    message = str(info.value)
    assert str(path) in message, message
    assert expected in message, message


def test_control_plane_view_of_the_catalog(tmp_path: Path) -> None:
    """The lead's CatalogView (what /v0 answers) reads these objects as intended."""
    view = CatalogView(load())
    items = view.templates()
    assert {"model_name", "flavor_name", "gpu_type", "gpu_counts", "regions", "description"} <= set(items[0])
    assert len(items) == len(load().templates())
    (local,) = view.regions()
    assert local["name"] == "local" and local["inventory"] == {"cpu": 2}
    assert view.inventory("local") == {"cpu": 2}
    assert view.preset(view.platform("gpu-l40s"), "1gpu-8vcpu-32gb")["gpu_count"] == 1
