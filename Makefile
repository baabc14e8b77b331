# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch==2.13.0 (the CPU wheel) first, then hearai with its dev
# extras; when nothing changed the set-up is a quick no-op.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hearai-installed
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup pretrained browser axe lint test test-slow demo bench clean default-model ear-reference ear-decisions

setup: $(STAMP)

# Pretrained weights come from a mirror folder when there is one, never from the network here:
# ../shared/models on the project's machines. 'hearai pull' checks the pinned sha256 and makes the model file.
MIRROR ?= ../shared/models
export HEARAI_MIRROR ?= $(if $(wildcard $(MIRROR)),$(abspath $(MIRROR)))
pretrained: setup
	@if [ -n "$$HEARAI_MIRROR" ]; then $(BIN)/hearai pull efficientat-mn04 --offline --quiet; \
	else echo "make: no mirror of pretrained weights; 'hearai pull efficientat-mn04' downloads them"; fi

# The browser tests (in make test-slow) drive Debian's Chromium (Playwright only talks to it; it
# downloads no browser); the emoji font draws the page's sound icons.
browser:
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; } \
		|| { echo "make: the browser test needs Chromium at $(CHROMIUM): apt-get install chromium, or set CHROMIUM=PATH"; exit 1; }

# The browser tests audit every screen with axe-core (pinned in package.json, from npm).
AXE := node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } \
		|| { echo "make: the accessibility test needs npm (Node.js) to fetch axe-core"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# make test: lint and every test but those marked slow (each trains a model or drives a browser, tens of
# seconds); make test-slow runs those. CI (.ci/run) runs both.
PYTEST := HEARAI_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -n 2 --dist worksteal -q
test: setup pretrained lint
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

test-slow: setup pretrained browser axe
	$(PYTEST) -m slow $(PYTEST_ARGS)

# Lint (ruff) and types (mypy, configured in pyproject.toml): part of make test, so CI runs them.
lint: setup
	$(BIN)/ruff check hearai tests bench
	$(BIN)/mypy

# The last step names real sounds with the shipped model when the UrbanSound8K sample is there.
US8K_SAMPLE ?= ../shared/data/us8k-sample/UrbanSound8K
demo: setup pretrained
	$(BIN)/hearai demo --out demo-output $(if $(wildcard $(US8K_SAMPLE)),--real-audio $(US8K_SAMPLE))

# The shipped detector (README, "The shipped model"): trained on every ESC-50 fold by the detector's
# recipe (15 % of the clips held out to keep the best epoch and calibrate the thresholds), then exported.
# One thread: CPU training is reproducible for a given thread count; 34 minutes here.
ESC50 ?= ../shared/data/esc50
DEFAULT_MODEL := hearai/default_model/esc50-sed
default-model: setup
	OMP_NUM_THREADS=1 $(BIN)/hearai train --model sed --dataset esc50 --root $(ESC50) --out $(DEFAULT_MODEL).safetensors
	$(BIN)/hearai export $(DEFAULT_MODEL).safetensors --onnx $(DEFAULT_MODEL).onnx
	rm -f $(DEFAULT_MODEL).curves.png

# What the pretrained ear is taught new sounds against (README, "Teaching a sound"): the embeddings of
# 891 1-s windows of ESC-50's sounds and of silence and noise, made with the pinned weights; 30 s here.
ear-reference: pretrained
	$(BIN)/python -m hearai.ear.reference --root $(ESC50) --out hearai/default_model/ear-reference.safetensors

# How the ear decides each sound (README, "What it measured"): per sound, a logistic regression on the
# network's hidden layer and the sound's AudioSet logit, or AudioSet's logit alone, whichever hears it better
# in cross-validation, learnt from ESC-50 and alerts-dev's real recordings; about 4 minutes here.
ALERTS_DEV ?= ../shared/data/alerts-dev
ear-decisions: pretrained
	$(BIN)/python -m hearai.ear.heads --esc50 $(ESC50) --alerts-dev $(ALERTS_DEV) --out hearai/default_model/ear-decisions.safetensors

bench: setup
	$(BIN)/python bench/featurize.py

clean:
	rm -rf $(VENV) node_modules demo-output bench/results .pytest_cache .mypy_cache .ruff_cache *.egg-info
