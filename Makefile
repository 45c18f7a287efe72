# phonefleet: the two commands of the README are `make demo` and `make test`.
# Both create or reuse the virtualenv and install what they need, so they work on a fresh clone.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
N ?= 100

.PHONY: demo test lint unit integration deps controlplane appium system-deps bench bench-jobs clean help lock

help:  ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The locked versions first (hash-checked), then phonefleet and its test bed (tests/support, a
# distribution of its own) as editable installs, with anything added since the lock was made.
# setuptools announces every editable install whose packages live in several folders (ours:
# operator/ and worker_image/) with an "Editable installation." notice that pip's quiet mode
# still prints; it says nothing about this project, so that one notice is filtered out.
$(STAMP): pyproject.toml tests/support/pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements/dev.txt
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e '.[dev]' -e tests/support
	touch $@

UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header
lock: $(STAMP)  ## Pin every dependency with hashes (requirements/*.txt) from the pyproject files.
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt
	$(UV_COMPILE) pyproject.toml --extra operator -o requirements/operator.txt
	$(UV_COMPILE) pyproject.toml --extra worker -o requirements/worker.txt
	$(UV_COMPILE) tests/support/pyproject.toml -o requirements/simulator.txt
	$(UV_COMPILE) pyproject.toml tests/support/pyproject.toml --extra dev -o requirements/dev.txt

system-deps:  ## Debian packages the tests run for real (adb, docker.io, debootstrap).
	hack/install-system-deps.sh

controlplane:  ## Build (or reuse) etcd, kube-apiserver, controllers, kubectl and KWOK.
	hack/controlplane/build.sh >/dev/null

appium:  ## Install (or reuse) Appium and its fake driver from npm.
	hack/appium/install.sh >/dev/null

prometheus:  ## Build (or reuse) Prometheus, promtool and kstatus (the monitoring tests).
	hack/prometheus/build.sh >/dev/null
	hack/kstatus/build.sh >/dev/null

deps: $(STAMP) system-deps controlplane appium prometheus  ## Everything the tests need.

lint: $(STAMP)  ## ruff format, ruff check, mypy strict, import-linter.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy operator/phonefleet_operator worker_image/phonefleet_worker tests/support/phonefleet_testbed bench
	$(BIN)/lint-imports

unit: $(STAMP)  ## The fast tier only.
	$(BIN)/pytest tests/unit

test: deps lint  ## The whole suite: lint, unit, integration on a real control plane, Appium, images.
	$(BIN)/pytest tests

demo: deps  ## The operator on a local control plane and simulator (a real node where root allows).
	$(BIN)/phonefleet dev demo --real-node

bench: deps  ## Converge N bindings (vs the seed's way and the ceiling), then drain N x 5 PhoneJobs.
	$(BIN)/python -m bench --bindings $(N)

bench-jobs: deps  ## Drain N x 5 PhoneJobs through the operator (stand-in workers; docs/jobs.md).
	$(BIN)/python -m bench.jobs --bindings $(N)

clean:  ## Remove the virtualenv and caches (the control-plane binaries stay cached).
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
