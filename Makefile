# phonefleet: the two commands of the README are `make demo` and `make test`.
# Both create or reuse the virtualenv and install what they need, so they work on a fresh clone.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
N ?= 100

.PHONY: demo test lint unit integration deps controlplane appium system-deps bench bench-jobs clean help

help:  ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

system-deps:  ## Debian packages the tests run for real (adb, docker.io, debootstrap).
	hack/install-system-deps.sh

controlplane:  ## Build (or reuse) etcd, kube-apiserver, controllers, kubectl and KWOK.
	hack/controlplane/build.sh >/dev/null

appium:  ## Install (or reuse) Appium and its fake driver from npm.
	hack/appium/install.sh >/dev/null

deps: $(STAMP) system-deps controlplane appium  ## Everything the tests need.

lint: $(STAMP)  ## ruff format, ruff check, mypy strict, import-linter.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy operator/phonefleet_operator worker_image/phonefleet_worker tests/support/phonefleet_testbed bench
	$(BIN)/lint-imports

unit: $(STAMP)  ## The fast tier only.
	$(BIN)/pytest tests/unit

test: deps lint  ## The whole suite: lint, unit, integration on a real control plane, Appium, images.
	$(BIN)/pytest tests

demo: deps  ## Run the operator on a local control plane with the Geelark simulator.
	$(BIN)/phonefleet dev demo

bench: deps  ## Converge N bindings and compare with the seed's way and the ceiling.
	$(BIN)/python -m bench --bindings $(N)

bench-jobs: deps  ## Drain N x 5 PhoneJobs through the operator (stand-in workers; docs/jobs.md).
	$(BIN)/python -m bench.jobs --bindings $(N)

clean:  ## Remove the virtualenv and caches (the control-plane binaries stay cached).
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
