# Two commands on a fresh machine: `make demo` and `make test` (Python and make only).
#
# Every install comes from uv.lock, which pins every package for Python 3.11 to 3.13 with its
# hashes (`make lock` regenerates it after pyproject.toml changes). uv, pinned below and
# installed from PyPI into the virtualenv, only exports the lock; pip installs exactly those
# pins (--require-hashes, --no-deps), then the package itself without resolving anything. The
# Docker image installs the same way, so tests, image and users run the same versions.
UV_VERSION := 0.13.9
PIP_VERSION := 26.3
VENV := .venv
BIN := $(VENV)/bin
# uv lives apart from the project's packages: PyAirbyte (the demo extra) depends on another uv.
UV := $(VENV)/tools/bin/uv
LOCK := uv.lock
TOOLS := $(VENV)/tools/.uv-$(UV_VERSION)-pip-$(PIP_VERSION)
INSTALLED := $(VENV)/.installed
DEMO_INSTALLED := $(VENV)/.demo-installed
BENCH_INSTALLED := $(VENV)/.bench-installed
SOURCES := pyproject.toml $(shell find source_customers manifests -type f -not -path '*/__pycache__/*')
# The versions requires-python admits; `make test-pythons` runs the unit tests on each present.
PYTHONS := 3.11 3.12 3.13
NEWEST := .venv-newest-cdk
NEWEST_LOCK := $(VENV)/newest-cdk

.PHONY: install test unit integration lint demo bench fuzz clean sandbox sandbox-start components \
	sandbox-stop examples lock test-newest-cdk test-pythons

# The interpreter a new virtualenv is made with (scripts/python.sh): the first of 3.11, 3.12
# (then 3.13, but not for the demo: PyAirbyte needs < 3.13) on this machine, or, when none is,
# one line saying which Python to install. `make test PYTHON=python3.12` names one.
PYTHON ?=
PURPOSE := $(if $(filter demo,$(MAKECMDGOALS)),demo,test)
# $(call python,ARGS...): what `scripts/python.sh ARGS` prints, or make stops with that line.
python = $(eval _python := $(shell $(SHELL) scripts/python.sh $(1)))$(if \
	$(filter 0,$(.SHELLSTATUS)),$(_python),$(error $(_python)))

$(VENV)/pyvenv.cfg:
	$(call python,pick $(PURPOSE) $(PYTHON)) -m venv $(VENV)

# pip and uv at the versions above, on their own stamp; uv in $(VENV)/tools.
$(TOOLS): | $(VENV)/pyvenv.cfg
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	rm -rf $(VENV)/tools
	$(BIN)/python -m pip install --quiet --no-deps --target $(VENV)/tools uv==$(UV_VERSION)
	touch $@

# The lock's pins with their hashes, one file per install: requirements-dev.txt (the package's
# dependencies and the dev extra), requirements-dev+demo.txt, requirements-dev+bench.txt. Every
# pin carries its environment marker, so one file serves every Python and platform. --locked
# stops when uv.lock no longer matches pyproject.toml.
$(VENV)/requirements-%.txt: $(LOCK) pyproject.toml $(TOOLS)
	@$(UV) export --quiet --locked --no-emit-project --format requirements-txt \
		$(addprefix --extra ,$(subst +, ,$*)) --output-file $@ \
		|| { echo "uv.lock does not match pyproject.toml: run make lock and commit uv.lock"; exit 1; }

# The package itself into the virtualenv $(1), as a wheel: no dependency resolved, built
# without isolation by the setuptools the lock pins (airbyte-cdk depends on it), so nothing is
# downloaded. setuptools builds in build/, and would ship a module deleted since from there.
install_package = rm -rf build && $(1)/bin/python -m pip install --quiet --no-deps \
	--no-build-isolation --force-reinstall .

# A regular (not editable) install: the tests run the package as a wheel would ship it. The
# stamp is remade when the sources or the lock change.
$(INSTALLED): $(SOURCES) $(VENV)/requirements-dev.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/requirements-dev.txt
	$(call install_package,$(VENV))
	touch $@

install: $(INSTALLED)

# uv.lock from pyproject.toml: `make lock` keeps every pin that still fits; `make lock
# UPGRADE=airbyte-cdk` moves that package (and what it needs) to its newest allowed version;
# `make lock UPGRADE=all` moves every package.
lock: $(TOOLS)
	$(UV) lock $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE)))

# The bench's extra (dlt, the peer it measures the connector against): only `make bench`
# installs it, on its own stamp.
$(BENCH_INSTALLED): $(INSTALLED) $(VENV)/requirements-dev+bench.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/requirements-dev+bench.txt
	touch $@

# The demo's extra (PyAirbyte, DuckDB) is heavy: only `make demo` installs it, on its own stamp.
# A virtualenv made earlier with Python 3.13 cannot run it: make says so in one line.
$(DEMO_INSTALLED): $(INSTALLED) $(VENV)/requirements-dev+demo.txt
	$(call python,venv demo $(VENV))
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/requirements-dev+demo.txt
	touch $@

test: lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest unit_tests

integration: install
	$(BIN)/pytest integration_tests

lint: install
	$(BIN)/ruff check source_customers unit_tests integration_tests bench scripts
	$(BIN)/mypy source_customers

demo: $(DEMO_INSTALLED)
	$(BIN)/python -m scripts.demo

bench: $(BENCH_INSTALLED)
	$(BIN)/python -m bench

# The unit tests and the platform-runner tests under the newest airbyte-cdk 7.x that
# pyproject.toml allows, in a virtualenv of its own: uv re-locks a copy of uv.lock with only the
# CDK (and what it needs) moved to its newest allowed version. When that is the locked version,
# `make test` has tested it and nothing more runs (ALWAYS=1 runs it anyway). CI runs this after
# `make test` and fails when it fails: the platform's runner takes a new CDK without waiting for
# our lock. The way back to green: fix the code, or exclude that version in pyproject.toml (as
# 7.23.7 is) and run make lock.
$(NEWEST)/pyvenv.cfg:
	$(call python,pick test $(PYTHON)) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install --quiet pip==$(PIP_VERSION)

test-newest-cdk: $(TOOLS)
	@rm -rf $(NEWEST_LOCK) && mkdir -p $(NEWEST_LOCK) && cp pyproject.toml $(LOCK) $(NEWEST_LOCK)/
	$(UV) lock --quiet --project $(NEWEST_LOCK) --upgrade-package airbyte-cdk
	$(UV) export --quiet --frozen --project $(NEWEST_LOCK) --no-emit-project --format requirements-txt \
		--extra dev --output-file $(NEWEST_LOCK)/requirements-dev.txt
	@newest=$$(sed -n 's/^airbyte-cdk==\([^ ;]*\).*/\1/p' $(NEWEST_LOCK)/requirements-dev.txt); \
	locked=$$(sed -n '/^name = "airbyte-cdk"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' $(LOCK)); \
	echo "test-newest-cdk: airbyte-cdk $$newest is the newest 7.x pyproject.toml allows; uv.lock has $$locked"; \
	if [ "$$newest" = "$$locked" ] && [ -z "$(ALWAYS)" ]; then \
		echo "test-newest-cdk: nothing newer than the lock to test (ALWAYS=1 tests it anyway)"; exit 0; fi; \
	$(MAKE) --no-print-directory $(NEWEST)/pyvenv.cfg \
	&& $(NEWEST)/bin/python -m pip install --quiet --require-hashes --no-deps \
		-r $(NEWEST_LOCK)/requirements-dev.txt \
	&& $(call install_package,$(NEWEST)) \
	&& echo "test-newest-cdk: $$($(NEWEST)/bin/python -m pip show airbyte-cdk | grep ^Version:)" \
	&& SOURCE_CUSTOMERS_LOCK=$(NEWEST_LOCK)/$(LOCK) $(NEWEST)/bin/pytest -p no:cacheprovider -q \
		unit_tests integration_tests/test_platform_runner.py \
	|| { echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	     echo "!!! airbyte-cdk $$newest, the newest 7.x pyproject.toml allows, FAILS (uv.lock has $$locked)."; \
	     echo "!!! The platform's runner may already run it. Fix the code, or exclude the version in"; \
	     echo "!!! pyproject.toml (as 7.23.7 is: \"airbyte-cdk>=...,!=$$newest\") and run make lock."; \
	     echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	     exit 1; }

# The unit tests on every Python requires-python admits that this machine has (PATH, pyenv's
# and uv's versions), each in its own virtualenv installed from the lock; says which ran, which
# failed and which are absent, and fails if one failed.
.PRECIOUS: .venv-py%/pyvenv.cfg .venv-py%/.installed $(VENV)/requirements-%.txt
.venv-py%/pyvenv.cfg:
	$(call python,find $*) -m venv .venv-py$*
	.venv-py$*/bin/python -m pip install --quiet pip==$(PIP_VERSION)

.venv-py%/.installed: $(SOURCES) $(VENV)/requirements-dev.txt | .venv-py%/pyvenv.cfg
	.venv-py$*/bin/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/requirements-dev.txt
	$(call install_package,.venv-py$*)
	touch $@

test-pythons: $(VENV)/requirements-dev.txt
	@passed=; failed=; absent=; \
	for version in $(PYTHONS); do \
		if ! sh scripts/python.sh find $$version >/dev/null; then absent="$$absent $$version"; continue; fi; \
		echo "=== Python $$version: $$(sh scripts/python.sh find $$version)"; \
		if $(MAKE) --no-print-directory .venv-py$$version/.installed \
			&& .venv-py$$version/bin/pytest -p no:cacheprovider -q unit_tests; \
		then passed="$$passed $$version"; else failed="$$failed $$version"; fi; \
	done; \
	echo "test-pythons: passed:$${passed:- none}; failed:$${failed:- none}; absent:$${absent:- none}"; \
	test -z "$$failed"

# The property-based suite's long budget (integration_tests/test_any_answer.py): random
# scenarios per vendor, each failing one shrunk to its smallest script. About an hour;
# ANY_ANSWER_EXAMPLES sets the examples per test (default 150).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest integration_tests/test_any_answer.py \
		integration_tests/test_write_any_answer.py integration_tests/test_agent_any_answer.py \
		-p no:cacheprovider

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
# manifests/components.py, the one components file the platform's runner injects, made from
# source_customers/ (scripts/bundle.py); unit_tests/test_bundle.py fails while it is stale.
components: install
	$(BIN)/python -m scripts.bundle

examples: install
	$(BIN)/python -m scripts.examples

clean:
	rm -rf $(VENV) .venv-py3.* $(NEWEST) build *.egg-info .demo demo .sandbox .pytest_cache \
		.mypy_cache .ruff_cache

# An MCP client over stdio against every vendor's sandbox (scripts/agent_demo.py): the tools
# of `customers-mcp`, one person found across the four vendors, a previewed and an applied fix.
.PHONY: agent-demo
agent-demo: install
	$(BIN)/python -m scripts.agent_demo

.PHONY: catalog image-test clean-images

# dist/airbyte-catalog/source-<vendor>/: the folder Airbyte's connector catalog takes for each
# vendor, generated from manifests/ (scripts/catalog.py; docs/running.md says how to
# contribute one). Never edit a folder by hand: change manifests/ or the generator.
catalog: install
	$(BIN)/python -m scripts.catalog

# Both images, and each catalog folder's, built and run against the sandbox as Airbyte runs
# them (integration_tests/test_images.py). A container engine is installed (Debian's docker.io,
# as root) and started where none runs; where Airbyte's registry is out of reach the images
# build on a stand-in base made with debootstrap, cached by tag (scripts/base-image.sh). The
# engine this target started is stopped at the end, pass or fail; images stay cached.
image-test: catalog
	@sh scripts/engine.sh start; status=0; \
	{ sh scripts/images.sh && IMAGE_TEST_ENV=.image-test/images.env $(BIN)/pytest \
		-p no:cacheprovider integration_tests/test_images.py; } || status=$$?; \
	sh scripts/engine.sh stop; exit $$status

clean: clean-images
clean-images:
	rm -rf .image-test dist integration_tests/catalog/build
