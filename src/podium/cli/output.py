"""`--format table|json|yaml` for every read command."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import typer
import yaml


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


FORMAT_OPTION = typer.Option(Format.table, "--format", "-o", help="Output format: table, json or yaml.")


def emit(data: Any, fmt: Format, table: Callable[[Any], str]) -> None:
    if fmt == Format.json:
        typer.echo(json.dumps(data, indent=2))
    elif fmt == Format.yaml:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        typer.echo(table(data))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_col: int = 40) -> str:
    """Plain aligned columns, long cells cut with an ellipsis so the table fits a terminal."""

    def cell(v: Any) -> str:
        s = "-" if v is None or v == "" else str(v)
        return s if len(s) <= max_col else s[: max_col - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def render_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None or v == '' else v}" for k, v in pairs)
