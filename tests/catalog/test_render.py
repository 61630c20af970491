"""The text behind `podium template list` and `podium template get MODEL`, from API-shaped JSON."""

from __future__ import annotations

import json

from podium.catalog import Catalog
from podium.catalog.render import TABLE_COLUMNS, format_template_detail, format_templates_table
from podium.services.catalog_view import dump

CATALOG = Catalog.load(python="python3", detect_gpus=lambda: None, cpu_count=lambda: 2)


def api_items() -> list[dict]:
    """Exactly what a client gets: the catalog's template items through JSON."""
    return json.loads(json.dumps([dump(t) for t in CATALOG.templates()]))


def test_table_has_every_item_and_fits_the_width() -> None:
    text = format_templates_table(api_items(), width=140)
    lines = text.splitlines()
    assert lines[0].split() == list(TABLE_COLUMNS)
    assert len(lines) == 1 + len(CATALOG.templates())
    assert all(len(line) <= 140 for line in lines)
    smol = next(line for line in lines if line.startswith("HuggingFaceTB/SmolLM2-135M-Instruct") and " base " in line)
    assert " cpu " in smol and " local " in smol and "2k-token context" in smol
    assert format_templates_table([]) == "no templates"


def test_detail_shows_each_flavor_purpose_and_both_recipe_forms() -> None:
    detail = json.loads(json.dumps(dump(CATALOG.describe("openai/gpt-oss-120b"))))
    text = format_template_detail(detail)
    assert "flavor base:" in text and "flavor fast:" in text
    assert "Tensor parallel over 2-8 GPUs" in text
    assert "container: vllm/vllm-openai:v0.10.2 --model openai/gpt-oss-120b" in text
    assert "-- vllm serve openai/gpt-oss-120b --host 127.0.0.1 --port '$PORT'" in text
    assert "--tensor-parallel-size 2" in text  # the fast recipe is shown for its smallest count
