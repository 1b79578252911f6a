# Two commands: `make serve` sets up and runs the platform; `make test` sets up
# everything the tests need, lints the code (`make lint`) and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is installed in the venv: the server's packages only (`make serve`), or
# those and the test tools (`make test`, `make install`). A change to
# pyproject.toml makes both stale; the test install covers the server's too.
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
# The browser assets Yingyun serves itself (the console's ECharts), pinned in
# package.json + package-lock.json: `npm ci` installs exactly the lock, from the
# npm registry, into node_modules/ (its hidden lockfile is the stamp). Pages
# never load them from a CDN: hospitals' intranets are offline.
ASSETS_STAMP := node_modules/.package-lock.json
# Published builds pinned under "prebuilt" in package.json (OHIF's @ohif/app for
# /reading/viewer/): their own tarball only, integrity-checked, unpacked after
# `npm ci` (which empties node_modules/, so this stamp goes with it).
PREBUILT_STAMP := node_modules/@ohif/app/.prebuilt-integrity

.PHONY: install assets serve lint types test system-deps bench clean

$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(RUNTIME_STAMP) $(TEST_STAMP)

$(ASSETS_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

$(PREBUILT_STAMP): $(ASSETS_STAMP) package.json scripts/install-prebuilt.mjs
	node scripts/install-prebuilt.mjs

assets: $(ASSETS_STAMP) $(PREBUILT_STAMP)

install: $(TEST_STAMP) $(ASSETS_STAMP) $(PREBUILT_STAMP)

serve: $(RUNTIME_STAMP) $(ASSETS_STAMP) $(PREBUILT_STAMP)
	$(BIN)/yingyun serve --demo

system-deps:
	./scripts/install-system-deps.sh

# ruff and mypy --strict over src/ (both configured in pyproject.toml): a finding
# of either fails `make test` before any test runs.
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# mypy alone, for working through its findings.
types: $(TEST_STAMP)
	$(BIN)/mypy

test: $(TEST_STAMP) $(ASSETS_STAMP) $(PREBUILT_STAMP) lint system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(TEST_STAMP)
	WITH_BENCH_DEPS=1 ./scripts/install-system-deps.sh
	$(BIN)/python bench/ris_api.py

clean:
	rm -rf $(VENV) node_modules test-artifacts .pytest_cache
