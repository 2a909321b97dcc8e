# The two commands of the README's quickstart are `make synth` and `make test`;
# each installs what it needs first (scripts/bootstrap.sh, idempotent and cached).
PY := .venv/bin/python
# Node 22 from bootstrap (when the machine's own is older) comes first for every recipe: jsii,
# the cdktn CLI and the local FHIR server then run on a supported Node.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)

.PHONY: setup synth test lint demo bench
setup:
	@bash scripts/bootstrap.sh

synth: setup            ## synthesize every environment into cdktf.out/ (no cloud account needed)
	$(PY) main.py

test: setup             ## the whole test suite (unit, infrastructure, integration against local servers)
	$(PY) -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

demo: setup             ## the pipeline end to end on this machine, with local servers
	.venv/bin/imaging-dev demo

bench: setup
	$(PY) -m bench.synth
