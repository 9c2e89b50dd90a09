# The two commands of the README: `make run` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[run]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[run,test]'
	touch $@ $(RUN_STAMP)

## make run: legacy stub on :8081, image service on :8082, proxy on :8080 (admin :8089); Ctrl-C stops all
run: $(RUN_STAMP)
	mkdir -p var
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile --no-colour start

## make test: ruff, mypy, then the whole pytest suite
test: $(TEST_STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

system-deps:
	@bash scripts/system-deps.sh

bench: $(TEST_STAMP)
	@echo "make bench: the benchmark suite arrives with the benchmarks issue; nothing to run yet" >&2
	@exit 1

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
