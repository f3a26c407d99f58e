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
# The lock files: every package, pinned with hashes (make lock regenerates them).
RUN_LOCK := requirements/run.lock
DEV_LOCK := requirements/dev.lock
UV_VERSION ?= 0.13.9
# make lock LOCK_FLAGS=--upgrade  moves every pin to the newest allowed release.
LOCK_FLAGS ?=

.PHONY: help run test lint lock check-python browser clean translations screenshots

help:
	@echo "make run    start palaute on http://127.0.0.1:$(PORT) (simulator at /simulator)"
	@echo "make test   install test tools and run the whole suite"
	@echo "make translations   update the staff pages' message catalogues (fi, sv, en)"
	@echo "make lock   regenerate requirements/*.lock from pyproject.toml (LOCK_FLAGS=--upgrade)"

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

# Install exactly the locked versions (hash-checked), then palaute itself without
# resolving anything. A changed lock rebuilds the venv from scratch, so nothing stale
# stays behind; pip check catches a pyproject.toml dependency missing from the lock.
define install_lock
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
	  echo "$(1) does not match pyproject.toml: run  make lock  and commit the lock files."; \
	  exit 1; }
endef

$(VENV)/.run-installed: $(RUN_LOCK) pyproject.toml | check-python
	$(call install_lock,$(RUN_LOCK))
	@rm -f $(VENV)/.dev-installed
	@touch $@

$(VENV)/.dev-installed: $(DEV_LOCK) pyproject.toml | check-python
	$(call install_lock,$(DEV_LOCK))
	@touch $@ $(VENV)/.run-installed

# Regenerate the lock files after changing dependencies in pyproject.toml. Existing pins
# are kept where they still fit (LOCK_FLAGS=--upgrade to move them all). The runtime lock
# is resolved within the dev lock, so both pin the same versions.
lock: | $(BIN)/python
	@$(BIN)/uv --version 2>/dev/null | grep -q " $(UV_VERSION)" || \
	  $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	@mkdir -p requirements
	$(BIN)/uv pip compile pyproject.toml --extra dev $(UV_COMPILE) -o $(DEV_LOCK)
	$(BIN)/uv pip compile pyproject.toml -c $(DEV_LOCK) $(UV_COMPILE) -o $(RUN_LOCK)

UV_COMPILE = --universal --python-version 3.12 --generate-hashes --quiet \
	--custom-compile-command "make lock" $(LOCK_FLAGS)

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
	  tests/palaute/test_dashboard_browser.py tests/palaute/test_dashboard_results_browser.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
