# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch==2.13.0 (the CPU wheel) first, then hearai with its dev
# extras; when nothing changed the set-up is a quick no-op.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hearai-installed
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup browser lint test demo bench clean

setup: $(STAMP)

# The browser test drives Debian's Chromium (Playwright only talks to it; it downloads no browser);
# the emoji font draws the page's sound icons.
browser:
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; } \
		|| { echo "make: the browser test needs Chromium at $(CHROMIUM): apt-get install chromium, or set CHROMIUM=PATH"; exit 1; }

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: setup browser lint
	HEARAI_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -n 2 --dist worksteal -q $(PYTEST_ARGS)

# Lint (ruff) and types (mypy, configured in pyproject.toml): part of make test, so CI runs them.
lint: setup
	$(BIN)/ruff check hearai tests bench
	$(BIN)/mypy

demo: setup
	$(BIN)/hearai demo --out demo-output

bench: setup
	$(BIN)/python bench/featurize.py

clean:
	rm -rf $(VENV) demo-output bench/results .pytest_cache .mypy_cache .ruff_cache *.egg-info
