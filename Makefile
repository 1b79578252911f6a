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

.PHONY: install serve lint types test system-deps bench clean

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

install: $(TEST_STAMP)

serve: $(RUNTIME_STAMP)
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

test: $(TEST_STAMP) lint system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(TEST_STAMP)
	WITH_BENCH_DEPS=1 ./scripts/install-system-deps.sh
	$(BIN)/python bench/ris_api.py

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
