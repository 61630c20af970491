#!/usr/bin/env bash
# Make the Ray-runtime tests runnable (CI): the `ray` extra of pyproject.toml (ray[default]) in .venv.
# The tests start their own simulated cluster (tests/ray_cluster.py); nothing else is needed.
#
#   bash scripts/ci-ray.sh            (idempotent: a second run installs nothing; needs .venv: make setup)
#
# ~35 s and ~400 MB the first time (wheels from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
t0=$(date +%s)
if [ ! -x "$BIN/python" ]; then
  echo "ci-ray: no .venv here; run make setup first" >&2
  exit 1
fi
have() {
  "$BIN/python" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
v = md.version("ray")
major, minor = (int(x) for x in v.split(".")[:2])
import ray.dashboard  # the [default] extra's part that the CLI's `ray start` needs
sys.exit(0 if (major, minor) >= (2, 40) else 1)
PY
}
if have; then
  echo "ci-ray: ray $("$BIN/python" -c 'import ray; print(ray.__version__)') already installed"
else
  echo "ci-ray: installing the ray extra"
  "$BIN/pip" install -q -e '.[ray]'
fi
"$BIN/ray" --version >/dev/null
echo "ci-ray: ready in $(( $(date +%s) - t0 )) s (run: $BIN/pytest -q -m slow tests/runtime/test_ray_backend.py)"
