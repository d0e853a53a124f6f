# Developer entry points: `make run` serves the app locally, `make test` runs every test.
# Core Tools cannot be installed on our machines, so `run` uses the project's own local host
# (devhost/) over Azurite; see docs and devhost/server.py.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Stamps make `venv`/`node` reinstall only when their inputs change.
VENV_STAMP := $(VENV)/.requirements.stamp
NODE_STAMP := node_modules/.package-lock.stamp

.PHONY: venv node run test lint clean sync

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node: $(NODE_STAMP)

# Azurite, pinned in package.json / package-lock.json (3.35.0: 3.36+ needs Node 21).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: venv node
	$(PY) -m devhost

test: venv node
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

# Runs the Graph sync timer once: on the running `make run` host if there is one (it owns the
# Azurite data), otherwise in this process over Azurite.
sync: venv node
	$(PY) -m devhost --fire-timer graph_sync

# Local data only: Azurite's tables, the generated bearer token, the running host's URL.
clean:
	rm -rf .local

# Benchmarks and scale proof (bench/README.md): Entra cycle vs scim2-server, storage requests per
# operation, cost growth to 100k users / 100k-member groups, protocol CPU, cold start. Writes
# bench/results/<date>.json and .md; under 10 minutes on 2 cores. BENCH_ARGS=--quick: a smoke run.
.PHONY: bench
bench: venv node
	$(PY) -m bench $(BENCH_ARGS)
