# tapedeck: `make demo` runs a recording end to end; `make test` runs every suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test lint demo bench crds binaries clean

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

bench: $(VENV)/.installed binaries
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
