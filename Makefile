# JourneyHub. `make run` starts the platform on this machine, `make test` runs the suite.
# Needs only Python 3.11+ and GNU make; see README.md.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall only when requirements.txt is newer than the last install.
STAMP := $(VENV)/.requirements-installed
PORT ?= 8000
# make run DEMO=0: the demo campaigns are created as drafts, none live
DEMO ?= 1
export PORT

# Tests get a var/ of their own, so a running `make run` (its file broker, its SQLite file)
# never sees the tests' tasks. Override by exporting JOURNEYHUB_VAR_DIR.
TEST_VAR_DIR ?= $(CURDIR)/var/test

.PHONY: help venv migrate run test lint bench

help:
	@echo "make run                        web + Celery worker + beat on http://127.0.0.1:$(PORT)/"
	@echo "make test                       the whole suite (PYTEST_ARGS='-k worker' to narrow it)"
	@echo "make lint                       ruff check ."
	@echo "make bench [NAME=...] [SIZE=N]  run one benchmark; without NAME, list them"
	@echo "make venv                       create $(VENV) and install requirements.txt"
	@echo "make migrate                    apply migrations to the configured database"

$(PY):
	@if [ -z "$(PYTHON)" ]; then echo "Python 3.11 or newer is needed (python3.11 or python3)." >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements.txt
	touch $@

venv: $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput

run: migrate
ifeq ($(DEMO),0)
	@echo "DEMO=0: no demo data and no demo campaigns; create a login with: $(PY) manage.py createsuperuser"
	DEMO=0 DEMO_WEBPUSH_SINK=0 exec $(PY) -m journeyhub.devserver
else
	$(PY) manage.py seed_demo
	exec $(PY) -m journeyhub.devserver
endif

test: venv
	JOURNEYHUB_VAR_DIR="$${JOURNEYHUB_VAR_DIR:-$(TEST_VAR_DIR)}" $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

bench: migrate
	$(PY) manage.py bench $(NAME) $(if $(SIZE),--size $(SIZE))
