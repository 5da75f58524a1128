# tapedeck: `make demo` runs a recording end to end; `make test` runs every suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test lint demo bench crds binaries clean images kind-up kind-down

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools prints an informational box for every editable install of a multi-folder
	@# layout ("be careful with folders named like your package"); a first run stays quiet.
	set -o pipefail; $(PY) -m pip install --quiet -e '.[dev]' 2>&1 \
	  | sed '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d'
	touch $@

# The control-plane binaries are built from the Go module proxy on first use (cached under
# ~/.cache/tapedeck/<version>/); doing it up front makes the wait visible.
binaries: $(VENV)/.installed
	$(VENV)/bin/tapedeck-dev binaries

# The CRD and the API reference are generated from tapedeck_bot.contract; tests catch drift.
crds: $(VENV)/.installed
	$(PY) -m tapedeck_bot.contract.crd > crds/recording.yaml
	cp crds/recording.yaml charts/tapedeck/files/recording-crd.yaml
	$(PY) -m tapedeck_bot.contract.reference > docs/recording-api.md
	$(PY) -m tapedeck_operator.values_schema > charts/tapedeck/values.schema.json

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint binaries
	$(PY) -m pytest -p no:cacheprovider

# The whole system on this machine (dev/tapedeck_dev/demo.py): control plane, process kubelet,
# Janus, SeaweedFS, a synthetic meeting, the Helm chart's operator and a Recording, recorded,
# paused, resumed, stopped, downloaded into ./recordings/ with a contact sheet; webhooks
# verified. Everything binds to 127.0.0.1; the process kubelet needs root. Ctrl-C stops it all.
DEMO_SECONDS ?= 30
demo: $(VENV)/.installed
	@command -v janus >/dev/null && command -v cc >/dev/null || { \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus gcc; \
	  rm -f /usr/sbin/policy-rc.d; }
	@$(VENV)/bin/tapedeck-dev binaries > /dev/null
	@$(VENV)/bin/tapedeck-dev demo --seconds $(DEMO_SECONDS)

# Container images, named as the chart's defaults name them (tests/unit/test_image_names.py
# keeps this, charts/tapedeck and the kind targets in agreement). CONTAINER_TOOL: docker or
# podman for `make images`; kind-up needs docker. This repository's tests build the images with
# buildah instead (tapedeck_dev.images).
VERSION := 0.1.0
REGISTRY ?= ghcr.io/tapedeck
OPERATOR_IMAGE := $(REGISTRY)/operator:$(VERSION)
BOT_IMAGE := $(REGISTRY)/bot:$(VERSION)
DEMO_IMAGE := $(REGISTRY)/demo:$(VERSION)
CONTAINER_TOOL ?= docker
# BuildKit's attestations make `docker save` write an index that `kind load` cannot import.
BUILD_FLAGS ?= $(if $(filter docker,$(CONTAINER_TOOL)),--provenance=false --sbom=false)
KIND ?= kind
HELM ?= helm
KIND_CLUSTER := tapedeck
KIND_NAMESPACE := tapedeck
images:
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) -f operator/Dockerfile -t $(OPERATOR_IMAGE) .
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) -f bot_image/Dockerfile -t $(BOT_IMAGE) .
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) -f dev/Dockerfile -t $(DEMO_IMAGE) .

# kind with the chart and its demo (Janus, participants, an S3 server) in one namespace that
# enforces PodSecurity restricted. Record with: kubectl -n tapedeck apply -f examples/recording-kind-demo.yaml
kind-up: CONTAINER_TOOL = docker
kind-up: images
	$(KIND) get clusters | grep -qx $(KIND_CLUSTER) || $(KIND) create cluster --config kind-config.yaml
	docker save $(OPERATOR_IMAGE) $(BOT_IMAGE) $(DEMO_IMAGE) -o /tmp/tapedeck-images.tar
	$(KIND) load image-archive /tmp/tapedeck-images.tar --name $(KIND_CLUSTER)
	kubectl --context kind-$(KIND_CLUSTER) create namespace $(KIND_NAMESPACE) \
	  --dry-run=client -o yaml | kubectl --context kind-$(KIND_CLUSTER) apply -f -
	kubectl --context kind-$(KIND_CLUSTER) label --overwrite namespace $(KIND_NAMESPACE) \
	  pod-security.kubernetes.io/enforce=restricted
	$(HELM) upgrade --install tapedeck charts/tapedeck --kube-context kind-$(KIND_CLUSTER) \
	  --namespace $(KIND_NAMESPACE) --wait \
	  --set operator.image.repository=$(REGISTRY)/operator --set operator.image.tag=$(VERSION) \
	  --set bot.image=$(BOT_IMAGE) --set demo.image=$(DEMO_IMAGE) --set demo.enabled=true

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)

bench: $(VENV)/.installed binaries
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
