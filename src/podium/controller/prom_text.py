"""A small parser for the Prometheus text exposition format (0.0.4), enough to read an engine's
`/metrics`: sample lines `name{label="v",...} value [timestamp]`, comments skipped.

Pure and forgiving: a line it cannot read is skipped (an engine's page is not ours to validate), and
only the metric names asked for are kept, so a vLLM page of a few hundred lines costs one pass.
"""

from __future__ import annotations

import math
from collections.abc import Collection

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str, wanted: Collection[str]) -> Samples:
    """{name: [(labels, value), ...]} for the sample lines whose metric name is in `wanted`."""
    out: Samples = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if space < 0:
            continue
        if 0 <= brace < space:
            name = line[:brace]
            if name not in wanted:
                continue
            close = line.rfind("}")
            if close < brace:
                continue
            labels = _labels(line[brace + 1 : close])
            rest = line[close + 1 :].split()
        else:
            name = line[:space]
            if name not in wanted:
                continue
            labels = {}
            rest = line[space + 1 :].split()
        if not rest or labels is None:
            continue
        value = _number(rest[0])
        if value is None:
            continue
        out.setdefault(name, []).append((labels, value))
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _labels(text: str) -> dict[str, str] | None:
    """`a="x",b="y\\"z"` -> {"a": "x", "b": 'y"z'}; None when malformed."""
    labels: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
            return None
        key = text[i:eq].strip()
        j = eq + 2
        value: list[str] = []
        while j < n and text[j] != '"':
            if text[j] == "\\" and j + 1 < n:
                j += 1
                value.append({"n": "\n"}.get(text[j], text[j]))
            else:
                value.append(text[j])
            j += 1
        if j >= n:
            return None
        labels[key] = "".join(value)
        i = j + 1
    return labels
