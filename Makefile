# Mintlog developer commands. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-contract test-integration test-e2e test-distributed lint format env-example bench bench-quick clean services-up services-down services-status

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# scripts/build-tantivy.sh rebuilds tantivy with zstd when cargo is there (once, ~3 min; cached), else keeps PyPI's.
$(STAMP): pyproject.toml scripts/build-tantivy.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	PYTHON=$(BIN)/python scripts/build-tantivy.sh
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install Mintlog with its dev tools

run: $(STAMP) ## Run all five roles on embedded defaults (data in ./data)
	$(BIN)/mintlog run

# pytest-xdist workers for the test targets (docs/testing.md); TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 4
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP) ## Run every tier: unit, contract, integration, e2e, distributed
	$(PYTEST)

test-unit: $(STAMP) ## The unit tier: fakes only, runs with every service stopped
	$(PYTEST) tests/unit

test-contract: $(STAMP) ## The contract tier: each adapter of a port against one suite (real services)
	$(PYTEST) tests/contract

test-integration: $(STAMP) ## The integration tier: adapters and workers on the real services
	$(PYTEST) tests/integration

test-e2e: $(STAMP) ## The e2e tier: real `mintlog run` processes over HTTP
	$(PYTEST) tests/e2e

test-distributed: $(STAMP) ## The distributed tier: one process per role on the real services
	$(PYTEST) tests/distributed

lint: $(STAMP) ## ruff (lint + format check) and pyright (strict on mintlog/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

env-example: $(STAMP) ## Regenerate .env.example from the settings tree
	$(BIN)/mintlog config example > .env.example

bench: $(STAMP) ## The whole benchmark suite (~4 h 20, a 3-hour soak included): benchmarks/results/<date>.json + docs/benchmarks.md
	BENCH_MAKE_TARGET="make bench" $(BIN)/python -m benchmarks.suite

bench-quick: $(STAMP) ## The suite's short development run (a few minutes): <date>-quick.json + docs
	BENCH_MAKE_TARGET="make bench-quick" $(BIN)/python -m benchmarks.suite --quick

services-up: ## Start NATS, PostgreSQL, Redis, OpenSearch and SeaweedFS S3 on 127.0.0.1 (installs what is missing)
	scripts/services.sh up

services-down: ## Stop them
	scripts/services.sh down

services-status: ## Say what runs where
	scripts/services.sh status

clean: ## Remove the virtualenv, caches and ./data
	rm -rf $(VENV) .pytest_cache .ruff_cache data
