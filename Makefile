# Two commands on a fresh machine: `make demo` and `make test` (Python 3.11 and make only).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_INSTALLED := $(VENV)/.demo-installed
BENCH_INSTALLED := $(VENV)/.bench-installed
SOURCES := pyproject.toml $(shell find source_customers manifests -type f -not -path '*/__pycache__/*')

.PHONY: install test unit integration lint demo bench fuzz clean sandbox sandbox-start sandbox-stop examples

# A regular (not editable) install: the tests run the package as a wheel would ship it.
$(INSTALLED): $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet ".[dev]"
	touch $@

install: $(INSTALLED)

# The bench's extra (dlt, the peer it measures the connector against): only `make bench`
# installs it, on its own stamp.
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet ".[bench]"
	touch $@

# The demo's extra (PyAirbyte, DuckDB) is heavy: only `make demo` installs it, on its own stamp.
$(DEMO_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet ".[demo]"
	touch $@

test: lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest unit_tests

integration: install
	$(BIN)/pytest integration_tests

lint: install
	$(BIN)/ruff check source_customers
	$(BIN)/mypy source_customers

demo: $(DEMO_INSTALLED)
	$(BIN)/python -m scripts.demo

bench: $(BENCH_INSTALLED)
	$(BIN)/python -m bench

# The property-based suite's long budget (integration_tests/test_any_answer.py): random
# scenarios per vendor, each failing one shrunk to its smallest script. About an hour;
# ANY_ANSWER_EXAMPLES sets the examples per test (default 150).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest integration_tests/test_any_answer.py -p no:cacheprovider

# Every vendor's sandbox API on 127.0.0.1, with .sandbox/<vendor>/config.json and catalog.json
# to read it (README, "Running it"): `sandbox` serves until Ctrl-C, `sandbox-start` in the
# background until `sandbox-stop`.
sandbox: install
	@$(BIN)/python -m scripts.sandbox

sandbox-start: install
	@$(BIN)/python -m scripts.sandbox --detach

sandbox-stop:
	@$(BIN)/python -m scripts.sandbox --stop

# Regenerates integration_tests/examples/<vendor>/configured_catalog.json and
# sample_state.json from the sandbox (integration_tests/test_examples.py says when).
examples: install
	$(BIN)/python -m scripts.examples

clean:
	rm -rf $(VENV) build *.egg-info .demo demo .sandbox .pytest_cache .mypy_cache .ruff_cache
