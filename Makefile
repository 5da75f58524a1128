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

# Until the demo moves onto Kubernetes, it runs the bot's data plane alone: three synthetic
# participants in a local Janus room (a fourth joins late), recorded as a composite and
# per-participant tracks that stream to a local S3 server (SeaweedFS) while recording, then
# downloaded through presigned URLs. Everything binds to 127.0.0.1.
DEMO_OUT ?= demo-out
DEMO_STORAGE = {"type": "s3", "region": "us-east-1", "endpoint": "http://127.0.0.1:17600", \
  "bucket": "recordings", "path": "demo", "secretRef": {"name": "local"}}
export TAPEDECK_STORAGE_ACCESS_KEY_ID ?= tapedeck-dev
export TAPEDECK_STORAGE_SECRET_ACCESS_KEY ?= tapedeck-dev-secret
demo: $(VENV)/.installed
	@command -v janus >/dev/null || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	  chmod +x /usr/sbin/policy-rc.d; apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus gcc; rm -f /usr/sbin/policy-rc.d; }
	$(VENV)/bin/tapedeck-dev janus up
	rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(VENV)/bin/tapedeck-dev s3 --dir $(DEMO_OUT)/s3 > $(DEMO_OUT)/s3.log 2>&1 & s3=$$!; \
	until grep -q "s3 ready" $(DEMO_OUT)/s3.log; do kill -0 $$s3 || exit 1; sleep 0.2; done; \
	$(VENV)/bin/tapedeck-dev meeting --room 4242 --participants 4 --join-at 0,0,0,8 \
	  --seconds 30 > $(DEMO_OUT)/meeting.log 2>&1 & meeting=$$!; sleep 4; \
	TAPEDECK_ICE_HOST_ADDRESSES=127.0.0.1 $(VENV)/bin/tapedeck-bot record \
	  --janus http://127.0.0.1:8088/janus --room 4242 --seconds 20 \
	  --out composite.mp4 --tracks tracks --upload '$(DEMO_STORAGE)' --recording-id standup-1 \
	  --spool $(DEMO_OUT)/spool 2> $(DEMO_OUT)/bot.log | grep -v "^recording"; \
	status=$${PIPESTATUS[0]}; wait $$meeting; \
	if [ $$status -eq 0 ]; then $(VENV)/bin/tapedeck-dev fetch --storage '$(DEMO_STORAGE)' \
	  --prefix demo/standup-1/ --out $(DEMO_OUT)/downloaded; status=$$?; fi; \
	kill $$s3; wait $$s3; $(VENV)/bin/tapedeck-dev janus down; exit $$status
	@echo "demo: outputs in $(DEMO_OUT)/downloaded/ (logs in $(DEMO_OUT)/)."
	@echo "To record through Kubernetes (the operator and a Recording), see tapedeck-dev up in the README."

# Container images, named as the chart's defaults name them (tests/unit/test_image_names.py
# keeps this, charts/tapedeck and the kind targets in agreement). CONTAINER_TOOL: docker or
# podman; this repository's tests build them with buildah instead (tapedeck_dev.images).
VERSION := 0.1.0
REGISTRY ?= ghcr.io/tapedeck
OPERATOR_IMAGE := $(REGISTRY)/operator:$(VERSION)
BOT_IMAGE := $(REGISTRY)/bot:$(VERSION)
DEMO_IMAGE := $(REGISTRY)/demo:$(VERSION)
CONTAINER_TOOL ?= docker
KIND ?= kind
HELM ?= helm
KIND_CLUSTER := tapedeck
KIND_NAMESPACE := tapedeck
images:
	$(CONTAINER_TOOL) build -f operator/Dockerfile -t $(OPERATOR_IMAGE) .
	$(CONTAINER_TOOL) build -f bot_image/Dockerfile -t $(BOT_IMAGE) .
	$(CONTAINER_TOOL) build -f dev/Dockerfile -t $(DEMO_IMAGE) .

# kind with the chart and its demo (Janus, participants, an S3 server) in one namespace that
# enforces PodSecurity restricted. Record with: kubectl -n tapedeck apply -f examples/recording-kind-demo.yaml
kind-up: images
	$(KIND) get clusters | grep -qx $(KIND_CLUSTER) || $(KIND) create cluster --config kind-config.yaml
	$(CONTAINER_TOOL) save $(OPERATOR_IMAGE) $(BOT_IMAGE) $(DEMO_IMAGE) -o /tmp/tapedeck-images.tar
	$(KIND) load image-archive /tmp/tapedeck-images.tar --name $(KIND_CLUSTER)
	kubectl create namespace $(KIND_NAMESPACE) --dry-run=client -o yaml | kubectl apply -f -
	kubectl label --overwrite namespace $(KIND_NAMESPACE) pod-security.kubernetes.io/enforce=restricted
	$(HELM) upgrade --install tapedeck charts/tapedeck --namespace $(KIND_NAMESPACE) --wait \
	  --set operator.image.repository=$(REGISTRY)/operator --set operator.image.tag=$(VERSION) \
	  --set bot.image=$(BOT_IMAGE) --set demo.image=$(DEMO_IMAGE) --set demo.enabled=true

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)

bench: $(VENV)/.installed binaries
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
