# Two commands: `make serve` sets up and runs the platform; `make test` sets up
# everything the tests need and runs them all.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/yingyun serve --demo

system-deps:
	./scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	WITH_BENCH_DEPS=1 ./scripts/install-system-deps.sh
	$(BIN)/python bench/ris_api.py

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
