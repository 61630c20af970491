# Podium: the two commands are `make demo` and `make test`; everything else is what they share.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= $(HOME)/.podium
PORT ?= 8800

.PHONY: setup cpu-model demo test test-fast test-slow lint typecheck check bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## venv + Podium + dev tools; leaves the CLI at .venv/bin/podium

cpu-model: setup  ## llama.cpp server + SmolLM2 (compiles llama-cpp-python once: ~5 min on 2 cores)
	bash scripts/install-cpu-model.sh $(VENV)

demo: cpu-model  ## start Podium and deploy a real CPU model (SmolLM2 on llama.cpp)
	DATA_DIR=$(DATA_DIR) PORT=$(PORT) bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: setup
	$(BIN)/mypy

test-fast: setup  ## unit + end-to-end tests (no real model)
	$(BIN)/pytest -q -x --durations=10

test: lint typecheck test-fast  ## what CI runs (plus test-slow from .ci/run)

test-slow: cpu-model  ## tests with real model servers (llama.cpp on CPU)
	$(BIN)/pytest -q -m slow --durations=10 || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
