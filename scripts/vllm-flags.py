#!/usr/bin/env python3
"""Regenerate scripts/vllm-flags-v0.10.2.json from vLLM's own `vllm serve` parser.

Run wherever vLLM installs (it needs torch; not on Podium's CI machine):
    pip install vllm==0.10.2 && python scripts/vllm-flags.py > scripts/vllm-flags-v0.10.2.json
With --check it also runs every rendered catalog recipe (both forms, every GPU count) through
`make_arg_parser` + `validate_parsed_serve_args` + `AsyncEngineArgs.from_cli_args`, so a recipe
that only a real parser rejects shows here, not on a GPU machine.

The manifest lists each flag with what tests/catalog/test_vllm_flags.py needs to check a value:
kind (flag: takes no value; int, float, str, json), choices when the parser has them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    t = getattr(action.type, "__name__", "") if action.type else "str"
    if t in ("int", "float"):
        return t
    if "json" in t.lower() or "loads" in t.lower() or "dict" in t.lower():
        return "json"
    return "str"


def manifest() -> dict[str, Any]:
    import vllm
    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser())
    flags: dict[str, Any] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if not opt.startswith("--") or opt in ("--help",):
                continue
            entry: dict[str, Any] = {"kind": _kind(action)}
            if action.choices is not None:
                entry["choices"] = sorted(str(c) for c in action.choices)
            flags[opt] = entry
    return {
        "vllm_version": vllm.__version__,
        "generated_by": "scripts/vllm-flags.py",
        "flags": dict(sorted(flags.items())),
    }


def check_recipes() -> int:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils import FlexibleArgumentParser

    from podium.catalog import Catalog

    cat = Catalog.load(detect_gpus=lambda: None)
    failures = 0
    for v in cat.templates():
        if v.engine != "vllm":
            continue
        for n in v.gpu_counts:
            r = cat.resolve(v.model_name, v.flavor_name, v.gpu_type, n, v.regions[0])
            assert r.command is not None
            weights = r.command[r.command.index("serve") + 1]
            for form in (["--model", weights, *[a.replace("$PORT", "8000") for a in r.args]], r.container_args):
                try:
                    ns = make_arg_parser(FlexibleArgumentParser()).parse_args(list(form))
                    validate_parsed_serve_args(ns)
                    AsyncEngineArgs.from_cli_args(ns)
                except (Exception, SystemExit) as e:  # report every recipe, then fail
                    failures += 1
                    print(f"FAIL {v.model_name} {v.flavor_name} {v.gpu_type}x{n}: {e}", file=sys.stderr)
    print(f"{failures} failing recipe forms", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check_recipes())
    json.dump(manifest(), sys.stdout, indent=1)
    print()
