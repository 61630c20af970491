"""Reading catalog files: YAML -> validated models, merged by key, then checked as a whole.

Order: the files shipped in `podium/catalog/data/` (sorted by name), then each operator directory
(`<data-dir>/catalog`, `$PODIUM_CATALOG_DIR`) in the order given, its `*.yaml`/`*.yml` sorted.
Later files extend or override earlier ones by key: a template with a known `model_name` adds or
replaces flavors (by flavor name) and overrides the fields it sets; a platform adds or replaces
presets; GPU types, engines and regions are replaced whole. Every error names the file and the
field, because the person reading it is an operator who just edited that file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from podium.catalog.checks import flavor_problems
from podium.catalog.models import CPU, CatalogFile, DraftModel, Engine, GpuType, Platform, RegionSpec, Template
from podium.core.errors import plain

USABLE_GPU_FRACTION = 0.9  # of a GPU's memory a model may plan for (CUDA context, activations)
PLACEHOLDERS = frozenset({"model_name", "served_model_name", "weights", "gpu_count", "python"})
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")

M = TypeVar("M", bound=BaseModel)


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file and the field."""


@dataclass
class Merged:
    """The whole catalog after merging, with the last file that touched each entry."""

    gpu_types: dict[str, GpuType] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    platforms: dict[str, Platform] = field(default_factory=dict)
    regions: dict[str, RegionSpec] = field(default_factory=dict)
    drafts: dict[str, DraftModel] = field(default_factory=dict)
    template_env_secrets: dict[str, str] = field(default_factory=dict)  # merged by key, later files win
    origin: dict[str, str] = field(default_factory=dict)  # "template:openai/gpt-oss-20b" -> file
    files: list[str] = field(default_factory=list)


def builtin_files() -> list[tuple[str, str]]:
    base = resources.files("podium.catalog") / "data"
    names = sorted(p.name for p in base.iterdir() if p.name.endswith((".yaml", ".yml")))
    return [(f"podium/catalog/data/{n}", (base / n).read_text(encoding="utf-8")) for n in names]


def directory_files(dirs: Iterable[Path]) -> list[tuple[str, str]]:
    """Operator files; a directory that does not exist is simply empty (nothing configured)."""
    out: list[tuple[str, str]] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            out.append((str(p), p.read_text(encoding="utf-8")))
    return out


def _loc(parts: Sequence[int | str]) -> str:
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "(top level)"


def parse_file(name: str, text: str) -> CatalogFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"catalog file {name}: not valid YAML: {e}") from e
    if data is None:
        return CatalogFile()
    if not isinstance(data, dict):
        raise CatalogError(f"catalog file {name}: expected a mapping with gpu_types/engines/templates/...")
    try:
        return CatalogFile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{_loc(err['loc'])}: {plain(err['msg'])}" for err in e.errors())
        raise CatalogError(f"catalog file {name}: {problems}") from e


def _override(old: M, new: M, **merged: Any) -> M:
    """`old` with the fields `new` set explicitly, plus the merged collections."""
    update = {k: getattr(new, k) for k in new.model_fields_set if k not in merged}
    return old.model_copy(update={**update, **merged})


def _merge_by_name(old: Sequence[Any], new: Sequence[Any], key: str = "name") -> list[Any]:
    out = {getattr(x, key): x for x in old}
    out.update({getattr(x, key): x for x in new})
    return list(out.values())


def merge(files: Sequence[tuple[str, str]]) -> Merged:
    m = Merged()
    for name, text in files:
        f = parse_file(name, text)
        m.files.append(name)
        for g in f.gpu_types:
            m.gpu_types[g.name], m.origin[f"gpu_type:{g.name}"] = g, name
        for e in f.engines:
            m.engines[e.name], m.origin[f"engine:{e.name}"] = e, name
        for r in f.regions:
            m.regions[r.name], m.origin[f"region:{r.name}"] = r, name
        for d in f.drafts:
            m.drafts[d.model] = d
        m.template_env_secrets.update(f.template_env_secrets)
        for p in f.platforms:
            old = m.platforms.get(p.name)
            if old is not None:
                p = _override(old, p, presets=_merge_by_name(old.presets, p.presets))
            m.platforms[p.name], m.origin[f"platform:{p.name}"] = p, name
        for t in f.templates:
            old_t = m.templates.get(t.model_name)
            if old_t is not None:
                t = _override(old_t, t, flavors=_merge_by_name(old_t.flavors, t.flavors))
            m.templates[t.model_name], m.origin[f"template:{t.model_name}"] = t, name
    check(m)
    return m


def check(m: Merged) -> None:
    """Cross-file rules: references resolve, placeholders are known, GPU counts hold the model."""
    for t in m.templates.values():
        where = f"catalog file {m.origin[f'template:{t.model_name}']}: template {t.model_name!r}"
        if not t.flavors:
            raise CatalogError(f"{where}: has no flavors")
        for fl in t.flavors:
            _check_flavor(m, t, fl.name, where)
    for e in m.engines.values():
        strings = [*(e.command or []), *e.process_args, *e.container_args, *e.env.values()]
        _check_placeholders(strings, f"catalog file {m.origin[f'engine:{e.name}']}: engine {e.name!r}")
    for p in m.platforms.values():
        where = f"catalog file {m.origin[f'platform:{p.name}']}: platform {p.name!r}"
        if not p.presets:
            raise CatalogError(f"{where}: has no presets")
        if p.gpu_type != CPU and p.gpu_type not in m.gpu_types:
            raise CatalogError(f"{where}: gpu_type {p.gpu_type!r} is not a known GPU type ({_known(m.gpu_types)})")
        for preset in p.presets:
            if (p.gpu_type == CPU) != (preset.gpu_count == 0):
                raise CatalogError(f"{where}: preset {preset.name!r}: gpu_count must be 0 exactly on CPU platforms")


def _check_flavor(m: Merged, t: Template, flavor_name: str, where: str) -> None:
    fl = next(f for f in t.flavors if f.name == flavor_name)
    where = f"{where} flavor {fl.name!r}"
    engine = fl.engine or t.engine
    if engine is None or engine not in m.engines:
        raise CatalogError(f"{where}: engine {engine!r} is not a known engine ({_known(m.engines)})")
    _check_placeholders([*fl.args, *fl.env.values()], where)
    for opt in fl.gpus:
        _check_placeholders([*opt.args, *opt.env.values()], where)
        for problem in flavor_problems(fl, opt.args, m.drafts):
            raise CatalogError(f"{where} on {opt.gpu_type}: {problem}")
        for region in [*fl.regions, *(opt.regions or [])]:
            if region not in m.regions:
                raise CatalogError(f"{where}: region {region!r} is not a known region ({_known(m.regions)})")
        if opt.gpu_type == CPU:
            if opt.gpu_counts != [0]:
                raise CatalogError(f"{where}: gpu_type cpu takes gpu_counts [0], not {opt.gpu_counts}")
            continue
        gpu = m.gpu_types.get(opt.gpu_type)
        if gpu is None:
            raise CatalogError(f"{where}: gpu_type {opt.gpu_type!r} is not a known GPU type ({_known(m.gpu_types)})")
        for count in opt.gpu_counts:
            usable = count * gpu.memory_gb * USABLE_GPU_FRACTION
            if count < 1 or usable < fl.memory_gb:
                raise CatalogError(
                    f"{where}: {count} x {gpu.name} gives {usable:.0f} GB usable, "
                    f"the flavor needs {fl.memory_gb:g} GB (memory_gb)"
                )


def _check_placeholders(strings: Iterable[str], where: str) -> None:
    for s in strings:
        for name in _PLACEHOLDER_RE.findall(s):
            if name not in PLACEHOLDERS:
                raise CatalogError(
                    f"{where}: unknown placeholder {{{{{name}}}}} (known: {', '.join(sorted(PLACEHOLDERS))})"
                )


def render(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda mt: values[mt.group(1)], text)


def _known(d: dict[str, Any]) -> str:
    return "known: " + (", ".join(sorted(d)) or "none")
