"""Help that keeps flags whole at 80 columns.

Help texts are full of flags and values users copy (`--container-port 8080`,
`vllm/vllm-openai:v0.11.0`). click wraps at hyphens, so such a word could end one line and
continue on the next (`--container-` / `port`). This formatter glues hyphens inside words while
wrapping and restores them after; the root group hands it to every command's context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperGroup

_GLUE = "\u2011"  # non-breaking hyphen: textwrap never breaks there; same width as "-"
_INNER_HYPHEN = re.compile(r"(?<=[\w.])-(?=[\w])")
# The formatter of the click that typer runs on (typer >= 0.20 vendors its own click).
_HelpFormatter: Any = typer.Context.formatter_class


def _glue(text: str) -> str:
    return _INNER_HYPHEN.sub(_GLUE, text)


class WholeWordsFormatter(_HelpFormatter):
    """click's formatter, wrapping only at spaces."""

    def write_text(self, text: str) -> None:
        super().write_text(_glue(text))

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(term, _glue(desc)) for term, desc in rows], col_max, col_spacing)

    def getvalue(self) -> str:
        return str(super().getvalue()).replace(_GLUE, "-")


class WholeWordsContext(typer.Context):
    formatter_class = WholeWordsFormatter


class RootGroup(TyperGroup):
    """The `podium` group: before parsing, gives every command below it the formatter above."""

    context_class = WholeWordsContext

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        _adopt(self)
        return super().make_context(info_name, args, parent, **extra)


def _adopt(cmd: Any) -> None:
    """Set the context class on this freshly built command tree (instances only; nothing global)."""
    cmd.context_class = WholeWordsContext
    for child in getattr(cmd, "commands", {}).values():
        _adopt(child)
