#!/usr/bin/env bash
# Issue 18's GPU check, in two steps (docs/benchmarks.md, "GPU templates on a real GPU").
#
#   scripts/gpu-check.sh prepare [PYVER...]   here (PyPI reachable): Podium's wheel and its
#       dependencies' wheels for each Python version (default: 3.10 3.11 3.12; the GPU machine's
#       is not known in advance) into build/gpu-wheels/, pruned to what the run needs.
#   scripts/gpu-check.sh run                  on the GPU machine (torch, transformers, nvidia-smi,
#       no network): a venv over the system site-packages (its torch), Podium from the carried
#       wheels, then scripts/gpu_check.py: nvidia-smi -> Podium's inventory -> a GPU endpoint of a
#       tiny transformers model -> CUDA_VISIBLE_DEVICES and device seen by the replica -> a real
#       completion -> GPU-seconds in usage. Results in $OUT/gpu-check.{md,json} (+ podium-up.log).
#
# Device call (from the repo root, carrying the wheels):
#   run(command="bash scripts/gpu-check.sh run", carry=["build/gpu-wheels"], timeout_s=420)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=build/gpu-wheels
OUT=${OUT:-$PWD/gpu-check-out}
# What `podium up` on SQLite needs. Left out to fit the 64 MiB carry: asyncpg/psycopg (PostgreSQL
# only) and uvloop (optional: Podium falls back to asyncio's loop), ~12 MB per Python version.
DEPS=("fastapi>=0.110" "uvicorn>=0.29" "httptools>=0.6" "aiohttp>=3.9" "httpx>=0.27" "sqlalchemy[asyncio]>=2.0"
      "aiosqlite>=0.20" "alembic>=1.13" "pydantic>=2.6" "typer>=0.12" "pyyaml>=6" "cryptography>=42" "orjson>=3.9"
      "python-multipart>=0.0.9" "swagger-ui-bundle>=1.1")

prepare() {
  local versions=("$@")
  [ ${#versions[@]} -gt 0 ] || versions=(3.10 3.11 3.12)
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  .venv/bin/pip wheel --no-deps --quiet -w "$WHEELS" .
  for v in "${versions[@]}"; do
    .venv/bin/pip download --quiet --only-binary=:all: --python-version "$v" --implementation cp \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
      -d "$WHEELS" "${DEPS[@]}"
  done
  # abi3 wheels serve every version from their tag up: keep only the lowest of each.
  .venv/bin/python - "$WHEELS" <<'PY'
import re, sys
from pathlib import Path
best = {}
for w in Path(sys.argv[1]).glob("*-abi3-*.whl"):
    name, version, tag = w.name.split("-")[:3]
    minor = int(re.sub(r"\D", "", tag)[1:] or 0)
    key = (name, version, w.name.split("-abi3-")[1])
    if key in best and best[key][0] <= minor:
        w.unlink()
        continue
    if key in best:
        best[key][1].unlink()
    best[key] = (minor, w)
PY
  du -sh "$WHEELS"
}

run() {
  mkdir -p "$OUT"
  local py; py=$(command -v python3 || command -v python)
  "$py" -V 2>&1 | tee "$OUT/python.txt"
  nvidia-smi | tee "$OUT/nvidia-smi.txt" || true
  rm -rf /tmp/podium-gpu-venv
  "$py" -m venv --system-site-packages /tmp/podium-gpu-venv
  # The wheel's own dependency pins need only be met: the system's torch/transformers stay.
  /tmp/podium-gpu-venv/bin/pip install --quiet --no-index --find-links "$WHEELS" --no-deps podium
  /tmp/podium-gpu-venv/bin/pip install --quiet --no-index --find-links "$WHEELS" "${DEPS[@]}"
  /tmp/podium-gpu-venv/bin/python -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)" 2>&1 | tee "$OUT/torch.txt" || true
  # REHEARSE=1: the same flow without a GPU (the fake worker on a declared h200), to check the script.
  /tmp/podium-gpu-venv/bin/python scripts/gpu_check.py --out "$OUT" ${REHEARSE:+--rehearse}
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) run ;;
  *) echo "usage: $0 prepare [PYVER...] | run" >&2; exit 2 ;;
esac
