# Mintlog developer commands. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit lint format env-example bench bench-quick clean services-up services-down services-status

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install Mintlog with its dev tools

run: $(STAMP) ## Run all five roles on embedded defaults (data in ./data)
	$(BIN)/mintlog run

test: $(STAMP) ## Run the whole test suite (unit, contract, integration, e2e)
	$(BIN)/pytest

test-unit: $(STAMP) ## Run the unit tests only
	$(BIN)/pytest tests/unit

lint: $(STAMP) ## ruff (lint + format check) and pyright (strict on mintlog/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

env-example: $(STAMP) ## Regenerate .env.example from the settings tree
	$(BIN)/mintlog config example > .env.example

bench: $(STAMP) ## The whole benchmark suite (~1.5 h): benchmarks/results/<date>.json + docs/benchmarks.md
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
