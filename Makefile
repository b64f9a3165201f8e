# Every target creates .venv and installs what it needs, so a fresh clone needs only `make demo` or `make test`.
SHELL  := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# This machine's pip config names a local index that may be absent; its warnings are noise.
QUIET  := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
DEPS   := pyproject.toml constraints.txt

# Quiet Prefect in ephemeral mode (no telemetry, no shutdown noise).
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: demo test bench lint clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: $(BIN)/python $(DEPS)
	$(PIP) -e . $(QUIET)
	@touch $@

$(VENV)/.dev: $(BIN)/python $(DEPS)
	$(PIP) -e '.[dev]' $(QUIET)
	@touch $@ $(VENV)/.base

$(VENV)/.bench: $(BIN)/python $(DEPS)
	$(PIP) -e '.[dev,bench]' $(QUIET)
	@touch $@ $(VENV)/.dev $(VENV)/.base

install: $(VENV)/.base

demo: $(VENV)/.base
	$(BIN)/bankconnect-etl demo

test: $(VENV)/.dev
	$(BIN)/python -m pytest

bench: $(VENV)/.bench
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/nightly.py
	$(BIN)/python bench/peer_dlt.py --rounds 3

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
