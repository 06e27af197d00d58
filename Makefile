# Arc Posture: the two commands every user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed

.PHONY: install demo test lint lock bench-scan bench-evaluate bench-web bench-alerts clean

$(INSTALLED): requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	touch $@

$(NODE_INSTALLED): package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

install: $(INSTALLED) $(NODE_INSTALLED)

## demo: migrate the embedded SQLite database, scan the built-in demo fleet, serve :8000
demo: install
	DEMO_ADDRESS=$(or $(DEMO_ADDRESS),127.0.0.1:8000) $(PY) scripts/demo.py

## test: the import contracts (docs/architecture.md), then the whole suite (PostgreSQL and Redis
## when DATABASE_URL / CELERY_BROKER_URL are set)
test: install
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

## lock: re-resolve requirements/*.txt from pyproject.toml (needs network)
lock: install
	$(PY) -m piptools compile --quiet --generate-hashes --strip-extras --allow-unsafe -o requirements/base.txt pyproject.toml
	$(PY) -m piptools compile --quiet --generate-hashes --strip-extras --allow-unsafe --extra dev -o requirements/dev.txt pyproject.toml

bench-scan: install
	$(PY) bench/scan.py --clusters 50000

bench-evaluate: install
	$(PY) bench/evaluate.py --clusters 50000

bench-web: install
	$(PY) bench/web.py --clusters 50000

bench-alerts: install
	$(PY) bench/alerts.py --clusters 50000

clean:
	rm -rf $(VENV) node_modules var test-artifacts
