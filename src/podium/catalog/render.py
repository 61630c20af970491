"""Text for `podium template list` and `podium template get MODEL`.

The CLI talks REST, so these take the JSON the API answers (template items as in
`GET /v0/dedicated_endpoints/templates`, and `Catalog.describe()` dumped), not catalog objects.
The point of both views is the column people otherwise have to guess: what each flavor is for.
"""

from __future__ import annotations

import shlex
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TABLE_COLUMNS = ("MODEL", "FLAVOR", "GPU", "COUNTS", "REGIONS", "FOR")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def template_rows(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for it in items:
        rows.append(
            (
                str(it.get("model_name", "")),
                str(it.get("flavor_name", "")),
                str(it.get("gpu_type", "")),
                ",".join(str(c) for c in it.get("gpu_counts", [])),
                ",".join(str(r) for r in it.get("regions", [])),
                _one_line(str(it.get("description", ""))),
            )
        )
    return rows


def format_templates_table(items: Iterable[Mapping[str, Any]], width: int | None = None) -> str:
    """A table that fits the terminal: the FOR column (what the flavor buys) is cut to fit."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    rows = template_rows(items)
    if not rows:
        return "no templates"
    widths = [max(len(TABLE_COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(TABLE_COLUMNS) - 1)]
    room = max(20, width - sum(widths) - 2 * len(widths))

    def line(cells: Sequence[str]) -> str:
        last = cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "…"
        return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True)) + "  " + last

    return "\n".join([line(TABLE_COLUMNS), *(line(r) for r in rows)])


def _argv(parts: Iterable[str]) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def format_template_detail(detail: Mapping[str, Any], width: int = 100) -> str:
    """Every flavor with its full purpose, and per GPU type the recipe in both forms."""
    out = [f"{detail['model_name']}", *textwrap.wrap(str(detail.get("description", "")), width)]
    out.append(f"served model name: {detail.get('served_model_name')}")
    for fl in detail.get("flavors", []):
        out += ["", f"flavor {fl['flavor_name']}:"]
        out += textwrap.wrap(str(fl.get("description", "")), width, initial_indent="  ", subsequent_indent="  ")
        for opt in fl.get("gpus", []):
            counts = ",".join(str(c) for c in opt.get("gpu_counts", []))
            regions = ",".join(opt.get("regions", []))
            out.append(
                f"  on {opt['gpu_type']} x {counts} (regions: {regions}); recipe for {opt['recipe_for_gpu_count']}:"
            )
            r = opt.get("recipe") or {}
            if r.get("image"):
                out.append(f"    container: {r['image']} {_argv(r.get('container_args', []))}")
            if r.get("command"):
                out.append(f"    process:   {_argv([*r['command'], *r.get('args', [])])}")
            env = " ".join(f"{k}={v}" for k, v in (r.get("env") or {}).items())
            out.append(
                f"    port {r.get('port')}, health {r.get('health_check_path')}" + (f", env {env}" if env else "")
            )
    return "\n".join(out)
