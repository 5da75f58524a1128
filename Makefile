# tapedeck: `make demo` runs a recording end to end; `make test` runs every suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test lint demo bench crds binaries clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The control-plane binaries are built from the Go module proxy on first use (cached under
# ~/.cache/tapedeck/<version>/); doing it up front makes the wait visible.
binaries: $(VENV)/.installed
	$(VENV)/bin/tapedeck-dev binaries

# The CRD and the API reference are generated from tapedeck_bot.contract; tests catch drift.
crds: $(VENV)/.installed
	$(PY) -m tapedeck_bot.contract.crd > crds/recording.yaml
	$(PY) -m tapedeck_bot.contract.reference > docs/recording-api.md

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint binaries
	$(PY) -m pytest -p no:cacheprovider

# Until the operator lands, the demo records a local Janus meeting with the bot alone:
# three synthetic participants (a fourth joins late), a composite and per-participant tracks.
DEMO_OUT ?= demo-out
demo: $(VENV)/.installed
	@command -v janus >/dev/null || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	  chmod +x /usr/sbin/policy-rc.d; apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus gcc; rm -f /usr/sbin/policy-rc.d; }
	$(VENV)/bin/tapedeck-dev janus up
	rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)/tracks
	$(VENV)/bin/tapedeck-dev meeting --room 4242 --participants 4 --join-at 0,0,0,8 \
	  --seconds 30 > $(DEMO_OUT)/meeting.log 2>&1 & sleep 4; \
	TAPEDECK_ICE_HOST_ADDRESSES=127.0.0.1 $(VENV)/bin/tapedeck-bot record \
	  --janus http://127.0.0.1:8088/janus --room 4242 --seconds 20 \
	  --out $(DEMO_OUT)/composite.mp4 --tracks $(DEMO_OUT)/tracks 2> $(DEMO_OUT)/bot.log; \
	status=$$?; wait; $(VENV)/bin/tapedeck-dev janus down; exit $$status
	@echo "demo: $(DEMO_OUT)/composite.mp4 and $(DEMO_OUT)/tracks/ (logs in $(DEMO_OUT)/)."
	@echo "The Kubernetes part (a Recording applied to the local control plane) lands with the operator."

bench: $(VENV)/.installed binaries
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
