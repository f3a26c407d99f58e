# The two commands a newcomer runs:  make run   and   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# Python 3.12 exactly: python3.12 on PATH, else a pyenv-installed 3.12, else the usual places.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 \
	/usr/local/bin/python3.12 /usr/bin/python3.12; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 \
	&& { echo "$$p"; break; }; done)
PORT ?= 8000

.PHONY: help run test lint check-python browser clean translations screenshots

help:
	@echo "make run    start palaute on http://127.0.0.1:$(PORT) (simulator at /simulator)"
	@echo "make test   install test tools and run the whole suite"
	@echo "make translations   update the staff pages' message catalogues (fi, sv, en)"

check-python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "palaute needs Python 3.12, and none was found (tried python3.12 on PATH and pyenv)."; \
	  echo "Install it, e.g.:  pyenv install 3.12   or   uv python install 3.12"; \
	  echo "or, on Debian/Ubuntu with 3.12 packaged:  apt-get install python3.12 python3.12-venv"; \
	  echo "then run make again (or point to it: make PYTHON=/path/to/python3.12 ...)."; \
	  exit 1; fi

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/palaute db upgrade
	SESSION_COOKIE_SECURE=false $(BIN)/palaute serve --host 127.0.0.1 --port $(PORT)

# Debian's chromium for the browser tests (never a downloaded browser build).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium \
	    >/dev/null; fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.dev-installed browser lint
	$(BIN)/pytest

# The staff pages' texts: collect them from the code and templates into messages.pot, merge
# new ones into each language's .po (translate them there), compile the .mo files the app
# reads (committed, so a fresh clone runs without this step).
TRANSLATIONS := palaute/translations
translations: $(VENV)/.dev-installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
	  --width 100 -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) \
	  --no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

# Review artefacts: each staff page at desktop (1280x800) and phone (390x844) width.
screenshots: $(VENV)/.dev-installed browser
	PALAUTE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider \
	  tests/palaute/test_dashboard_browser.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
