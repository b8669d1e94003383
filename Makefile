# Two commands: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEVSTAMP := $(VENV)/.installed-dev-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck contracts pytest system-deps gui-deps xvfb-deps clean screenshots bench serverless-deps

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	@$(PYTHON) -m venv $(VENV) || { echo "make: could not create $(VENV); on Debian/Ubuntu install python3-venv"; exit 1; }
	@$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEVSTAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP)

## make run: create .venv, install, bring Qt's X11 libraries, start the console on the
## embedded local profile (without a display: `xvfb-run -a make run`)
run: $(STAMP) gui-deps
	$(VENV)/bin/smartiot

system-deps:
	@bash scripts/ensure-system-deps.sh

gui-deps:
	@bash scripts/ensure-system-deps.sh --gui

xvfb-deps:
	@bash scripts/ensure-system-deps.sh --xvfb

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .

typecheck: $(DEVSTAMP)
	$(VENV)/bin/mypy

contracts: $(DEVSTAMP)
	$(VENV)/bin/lint-imports

# The suite waits on brokers, subprocesses and timeouts far more than it computes, so
# worker processes (pytest-xdist) pay off even on 2 cores. --dist loadfile keeps each
# test file on one worker: module-scoped hubs and brokers are built once, as in a serial
# run; tests/conftest.py also keeps tests/chaos on one worker, one test at a time.
# `make test PYTEST_WORKERS=0` runs it serially. A worker that crashes (a segfault)
# ends the run at once, naming the test it ran: xdist 3.8 replacing it under
# --dist loadfile can leave the run waiting for work forever (pytest-xdist #784).
PYTEST_WORKERS ?= 3
PYTEST_ARGS := -n $(PYTEST_WORKERS) --dist loadfile --max-worker-restart=0 --durations=20

# Serverless Framework v3 for the AWS backend's template check (tests/integration/aws/
# test_serverless_package.py): installed from the lock file, reinstalled when it changes.
SLS_DIR := deploy/aws
SLS_STAMP := $(SLS_DIR)/node_modules/.package-lock.json

$(SLS_STAMP): $(SLS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm (Node 18 or newer) is needed to package the AWS backend"; exit 1; }
	npm ci --prefix $(SLS_DIR) --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

serverless-deps: $(SLS_STAMP)

pytest: $(DEVSTAMP) system-deps gui-deps $(SLS_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

## make test: install dev extras, then ruff, mypy (all packages, strict), import contracts and the whole suite
test: $(DEVSTAMP) system-deps gui-deps $(SLS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

## make bench: the benchmark suite in bench/ (~21 min, 10 of them a 10,000-device soak:
## BENCH_ARGS="--soak-minutes 0" skips it; set SMARTIOT_TEST_PG_URL for the PostgreSQL
## figures); rewrites its section of docs/benchmarks.md and the scaling chart
bench: $(DEVSTAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/run_suite.py $(BENCH_ARGS)

## make screenshots: every page in light and dark into docs/screenshots/ (under Xvfb)
screenshots: $(DEVSTAMP) gui-deps xvfb-deps
	bash scripts/screenshots.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
