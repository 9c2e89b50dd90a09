# The two commands of the README: `make run` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=
# Every install takes the exact versions of the committed lock (pip itself included); `make lock` refreshes it.
LOCK := requirements.lock
PIP_INSTALL := $(BIN)/python -m pip install --quiet --constraint $(LOCK)

.PHONY: run test lint typecheck unit bench system-deps clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP_INSTALL) pip
	$(PIP_INSTALL) -e '.[run]'
	touch $@

$(TEST_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP_INSTALL) pip
	$(PIP_INSTALL) -e '.[run,test]'
	touch $@ $(RUN_STAMP)

## make lock: re-resolve requirements.lock from pyproject.toml (newest versions it allows, for Python 3.11
## on Linux, every extra, plus pip and uv themselves); review the diff, run make test, commit the lock
lock: | $(BIN)/python
	$(PIP_INSTALL) uv
	printf 'pip\nuv\n' | $(BIN)/uv pip compile --quiet --upgrade --all-extras --python-version 3.11 \
	  --python-platform linux --custom-compile-command 'make lock' --output-file $(LOCK) pyproject.toml -

## make run: legacy stub on :8081, image service on :8082, proxy on :8080 (admin :8089); Ctrl-C stops all
## The three services share a shadow-signing key: yours (STRANGLER_SHADOW_KEY[_FILE]), or one generated
## once into var/shadow.key and kept across runs. The admin token likewise: yours (STRANGLER_ADMIN_TOKEN
## [_FILE]), or one generated once into var/admin.token. It prints how to reach things first, the
## migration console's URL with the token in it (like Jupyter's): open it to log in.
SHADOW_KEY_FILE := var/shadow.key
ADMIN_TOKEN_FILE := var/admin.token
run: $(RUN_STAMP)
	mkdir -p var
	@if [ -z "$${STRANGLER_SHADOW_KEY:-}$${STRANGLER_SHADOW_KEY_FILE:-}" ]; then \
	  $(BIN)/python -m strangler_common.devkey $(SHADOW_KEY_FILE) && \
	  export STRANGLER_SHADOW_KEY_FILE="$(abspath $(SHADOW_KEY_FILE))"; fi; \
	token_file=""; \
	if [ -z "$${STRANGLER_ADMIN_TOKEN:-}$${STRANGLER_ADMIN_TOKEN_FILE:-}" ]; then \
	  token_file="$(abspath $(ADMIN_TOKEN_FILE))"; export STRANGLER_ADMIN_TOKEN_FILE="$$token_file"; fi; \
	$(BIN)/python -m strangler_common.devurls $${token_file:+--token-file "$$token_file"} || exit 1; \
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho --procfile Procfile --no-colour start

## make test: ruff, mypy, the docs site (strict: a broken link or a page left out of the nav fails), then
## the whole pytest suite
test: $(TEST_STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## make docs: build the MkDocs site (mkdocs.yml, docs/) into site/; make docs-serve: serve it while editing.
## Never --quiet: it silences the warnings that --strict counts, and the build passes whatever is broken.
DOCS_SITE := site
.PHONY: docs docs-serve
docs: $(TEST_STAMP)
	$(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)

docs-serve: $(TEST_STAMP)
	$(BIN)/mkdocs serve --strict

system-deps:
	@bash scripts/system-deps.sh

## make screenshots: the storefront's and the console's pages into docs/img/, taken by the browser tests
## themselves (tests/e2e/browser, STRANGLER_SCREENSHOTS names the folder); on demand, never in make test
.PHONY: screenshots
screenshots: $(TEST_STAMP) system-deps
	STRANGLER_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/browser

## make bench: every benchmark scenario on real local processes (about 10 min); report in bench/results/
## make bench BASELINE=<ref>: the pass-through scenario also runs our proxy as it was at git <ref>, side by side
BASELINE ?=
bench: $(TEST_STAMP)
	@PIP_CONSTRAINT=$(CURDIR)/$(LOCK) bash bench/install.sh $(BIN)/python
	PATH="$(CURDIR)/$(BIN):/usr/sbin:$$PATH" $(BIN)/python -m bench all$(if $(BASELINE), --baseline $(BASELINE))

## make soak: 10 minutes of mixed traffic with reloads every 30 s (on demand, not in make bench)
.PHONY: soak
soak: $(TEST_STAMP)
	@PIP_CONSTRAINT=$(CURDIR)/$(LOCK) bash bench/install.sh $(BIN)/python
	PATH="$(CURDIR)/$(BIN):/usr/sbin:$$PATH" $(BIN)/python -m bench soak

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
