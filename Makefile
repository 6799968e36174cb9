# Two commands on a fresh machine: `make demo` and `make test` (Python 3.11 and make only).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_INSTALLED := $(VENV)/.demo-installed
SOURCES := pyproject.toml $(shell find source_customers manifests -type f -not -path '*/__pycache__/*')

.PHONY: install test unit integration lint demo bench fuzz clean

# A regular (not editable) install: the tests run the package as a wheel would ship it.
$(INSTALLED): $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet ".[dev]"
	touch $@

install: $(INSTALLED)

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

bench: install
	$(BIN)/python -m bench

# The property-based suite's long budget (integration_tests/test_any_answer.py): random
# scenarios per vendor, each failing one shrunk to its smallest script. About an hour;
# ANY_ANSWER_EXAMPLES sets the examples per test (default 150).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest integration_tests/test_any_answer.py -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info .demo demo .pytest_cache .mypy_cache .ruff_cache
