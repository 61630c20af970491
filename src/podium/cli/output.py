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


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], max_col: int = 40, empty: str | None = None
) -> str:
    """Plain aligned columns, long cells cut with an ellipsis so the table fits a terminal.

    A cell with several lines (an event carrying a replica's last output) continues on indented
    lines under its own column, so it never breaks the columns after it. `empty`: what to say
    instead of a bare header when there are no rows (JSON/YAML keep the empty list)."""
    if not rows and empty is not None:
        return empty

    def cut(s: str) -> str:
        return s if len(s) <= max_col else s[: max_col - 1] + "…"

    def lines_of(v: Any) -> list[str]:
        s = "-" if v is None or v == "" else str(v)
        return [cut(line.rstrip()) for line in s.splitlines() or [""]]

    split = [[lines_of(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(line) for r in split for line in r[i]]) for i, h in enumerate(headers)]

    def join(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [join([h.upper() for h in headers])]
    for row in split:
        for n in range(max(len(c) for c in row)):
            out.append(join([c[n] if n < len(c) else "" for c in row]))
    return "\n".join(out)


def render_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None or v == '' else v}" for k, v in pairs)
