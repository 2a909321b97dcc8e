# The two commands of the README's quickstart are `make synth` and `make test`;
# each installs what it needs first (scripts/bootstrap.sh PROFILE, idempotent and cached):
# synth needs no root and only the infra packages; test and demo add the local servers.
PY := .venv/bin/python
# Node 22 from bootstrap (when the machine's own is older) comes first for every recipe: jsii,
# the cdktn CLI and the local FHIR server then run on a supported Node.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
# The CDK CLI (`npx cdktn ...` from make or CI) reports usage to a telemetry host: off.
export CHECKPOINT_DISABLE := 1

.PHONY: setup setup-synth setup-demo synth test lint demo bench
setup:                  ## everything (the test profile)
	@bash scripts/bootstrap.sh test

setup-synth:
	@bash scripts/bootstrap.sh synth

setup-demo:
	@bash scripts/bootstrap.sh demo

synth: setup-synth      ## synthesize every environment into cdktf.out/ (no cloud account, no root)
	$(PY) main.py

test: setup             ## the whole test suite (unit, infrastructure, integration against local servers)
	$(PY) -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

demo: setup-demo        ## the pipeline end to end on this machine, with local servers
	.venv/bin/imaging-dev demo

bench: setup
	$(PY) -m bench.synth
