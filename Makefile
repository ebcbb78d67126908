# ACME Integration Gateway — developer and CI commands (GNU make).
#
#   make run    venv + install, then `python -m acme_integration.run`: migrate, seed the demo tenant, start
#               the web app (:8000), one worker and the sandbox CRM/Slack (:8765); Ctrl-C stops everything.
#               Development only: it sets DEBUG=1 for its own processes (production: README, "Deploy")
#   make test   venv + test extras, then ruff (lint, format --check), mypy, the import contracts (lint-imports),
#               the missing-migration check and the whole pytest suite
#   make bench  venv + test extras, then bench/run_all.py: the product against the bare stack on PostgreSQL
#               (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379, db $BENCH_REDIS_DB, default 5)
#
# The venv is created with $(PYTHON) (Python 3.11) when missing; `pip install` runs again only when
# pyproject.toml is newer than the stamp file of that install (.venv/.installed-run, .venv/.installed-test).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PIP_FLAGS := --disable-pip-version-check --no-input
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-x tests/approvals"`.
PYTEST_ARGS ?=
# ruff format: Python files only (ruff also formats code blocks in Markdown, where the README aligns comments).
FORMAT_ARGS := --exclude '*.md' .

.PHONY: help venv install install-test run test bench drills lint format format-check typecheck clean distclean

help:
	@echo "make run           migrate, seed the demo tenant, start web (:8000), worker and sandbox (:8765)"
	@echo "make test          ruff check + ruff format --check + mypy + lint-imports + makemigrations --check + pytest (PYTEST_ARGS=... passed to pytest)"
	@echo "make bench         bench/run_all.py: intake, commit, scale figures vs the bare stack (PostgreSQL + Redis)"
	@echo "make drills        fault drills on real processes (PostgreSQL at DATABASE_URL); figures to docs/reliability.md"
	@echo "make lint          ruff check"
	@echo "make format        ruff format (rewrites files); make format-check only reports"
	@echo "make typecheck     mypy (django-stubs, drf-stubs, pydantic plugin)"
	@echo "make venv          create .venv; make install / make install-test install into it"
	@echo "make clean         stop the embedded Redis and remove var/ and tool caches; distclean also .venv"

# --- venv and installs --------------------------------------------------------------------------------
$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

venv: $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "make: $(VENV) is not Python 3.11 ($$($(PY) --version)); run 'make distclean' and retry" >&2; exit 1; }

# The test install is a superset of the run install: a current test stamp satisfies `make run` too.
$(VENV)/.installed-run: pyproject.toml | venv
	@if [ $(VENV)/.installed-test -nt pyproject.toml ]; then echo "$(VENV): already installed (with test extras)"; \
	else echo "$(PY) -m pip install $(PIP_FLAGS) -e ."; $(PY) -m pip install $(PIP_FLAGS) -e .; fi
	@touch $@

$(VENV)/.installed-test: pyproject.toml | venv
	$(PY) -m pip install $(PIP_FLAGS) -e '.[test]'
	@touch $@

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

# --- the two commands -----------------------------------------------------------------------------------
# run.py itself migrates and seeds: it must start the embedded Redis first (every Django process starts
# it on demand when REDIS_URL is unset) so that it knows whether it owns that server and stops it on exit.
run: $(VENV)/.installed-run
	$(PY) -m acme_integration.run

# pytest's exit code 5 means "no tests collected": for us that is a failure, never a pass.
test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/ruff format --check $(FORMAT_ARGS)
	$(VENV)/bin/lint-imports
	$(MANAGE) makemigrations --check --dry-run
	@echo "$(PY) -m pytest $(PYTEST_ARGS)"
	@# Embedded defaults get a var/ of their own, apart from `make run`'s (whose worker would take test jobs);
	@# the embedded Redis the tests start is stopped when they end (embedded_redis.run_and_clean).
	@export ACME_VAR_DIR="$${ACME_VAR_DIR:-$(CURDIR)/var/test}"; \
	$(PY) -m acme_integration.embedded_redis --dir "$$ACME_VAR_DIR/redis" -- $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); failing" >&2; exit 1; fi; \
	exit $$rc

# Benchmarks (scripts, not tests; see bench/README.md). BENCH_SCALE=0.1 for a smaller record.
bench: $(VENV)/.installed-test
	$(PY) bench/run_all.py

# Fault drills (drills/): real web, worker and sandbox on a fresh PostgreSQL database and a private Redis.
drills: $(VENV)/.installed-test
	DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" $(PY) -m drills --write docs/reliability.md

# --- other checks ---------------------------------------------------------------------------------------
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format $(FORMAT_ARGS)

# Reports files ruff would reformat (and how); `make test` runs the same check.
format-check: $(VENV)/.installed-test
	$(VENV)/bin/ruff format --check --diff $(FORMAT_ARGS)

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy .

# --- cleaning -------------------------------------------------------------------------------------------
# embedded_redis imports only the standard library, so any python3 can stop the server.
clean:
	@if [ -d var/redis ]; then \
	  $$( [ -x $(PY) ] && echo $(PY) || echo python3 ) -c \
	    'from acme_integration import embedded_redis; embedded_redis.stop("var/redis")'; \
	fi
	rm -rf var/ .pytest_cache/ .ruff_cache/ .mypy_cache/
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
