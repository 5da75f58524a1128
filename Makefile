# tapedeck: `make demo` runs a recording end to end; `make test` runs every suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test lint unit cluster-tests demo bench crds binaries clean

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

demo: $(VENV)/.installed
	@echo "make demo: not available yet. It needs the bot (composite recording against Janus)"
	@echo "and the operator, which are the next issues; today you can run the control plane:"
	@echo "  $(VENV)/bin/tapedeck-dev cluster up && $(VENV)/bin/tapedeck-dev kubelet"
	@exit 2

bench: $(VENV)/.installed binaries
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
