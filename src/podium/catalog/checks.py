"""Recipe rules that need the whole catalog or the args' meaning, checked at load.

These catch, from text alone, recipes that parse but fail on a GPU machine (issue 18):
- a speculative draft whose context is shorter than the flavor's `--max-model-len` (vLLM v0.10
  sizes the draft's rotary table from the draft's config, so long requests crash the engine);
- `--async-scheduling` with `--speculative-config` (vLLM v0.10.2 rejects the pair at start);
- `--async-scheduling` on a flavor whose description does not say it is experimental (users who
  need structured outputs must be able to read that they should pick another flavor).
Each error names the file, template and flavor, like the loader's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from podium.catalog.models import DraftModel, Flavor

ASYNC = "--async-scheduling"
SPECULATIVE = "--speculative-config"
MAX_LEN = "--max-model-len"


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value after `flag` (or in `flag=value`), None when absent."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def flavor_problems(fl: Flavor, option_args: Sequence[str], drafts: dict[str, DraftModel]) -> list[str]:
    """What is wrong with one flavor on one GPU option (its args plus the option's); [] if nothing."""
    args = [*fl.args, *option_args]
    problems: list[str] = []
    spec_text = flag_value(args, SPECULATIVE)
    if has_flag(args, ASYNC):
        if spec_text is not None:
            problems.append(f"{ASYNC} cannot be combined with {SPECULATIVE} (vLLM rejects the pair)")
        if "experimental" not in fl.description.lower():
            problems.append(f"uses {ASYNC}: its description must say async scheduling is experimental")
    if spec_text is not None:
        problems += _draft_problems(spec_text, flag_value(args, MAX_LEN), drafts)
    return problems


def _draft_problems(spec_text: str, max_len_text: str | None, drafts: dict[str, DraftModel]) -> list[str]:
    try:
        spec = json.loads(spec_text)
    except json.JSONDecodeError as e:
        return [f"{SPECULATIVE} is not valid JSON: {e}"]
    if not isinstance(spec, dict):
        return [f"{SPECULATIVE} must be a JSON object"]
    model = spec.get("model")
    if not model:
        return []  # ngram and friends: no draft model, no draft context
    draft = drafts.get(str(model))
    if draft is None:
        return [
            f"draft {model!r} is not declared under drafts: (its max_position_embeddings must be known"
            " to check it covers --max-model-len)"
        ]
    if max_len_text is None:
        return [f"a flavor with draft {model!r} must set {MAX_LEN} (the target's default may exceed the draft's)"]
    if int(max_len_text) > draft.max_position_embeddings:
        return [
            f"draft {model!r} covers {draft.max_position_embeddings} tokens but {MAX_LEN} is {max_len_text}:"
            " requests past the draft's context crash vLLM; use a draft config raised to the target's"
            " context (and rope scaling), or lower --max-model-len"
        ]
    return []
