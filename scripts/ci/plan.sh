#!/usr/bin/env bash
# CI: synthesize ENV and save its Terraform plan without taking the state lock (a plan only reads
# state, so a read-only identity can make it; apply takes the lock and refuses a stale plan).
# Writes into cdktf.out/stacks/ENV/: tfplan, plan.txt (human), plan.json, plan.md (summary),
# tfplan.sha256 (what the apply job checks before applying exactly this file).
set -euo pipefail
env="${1:?usage: scripts/ci/plan.sh ENVIRONMENT}"
python="${PYTHON:-.venv/bin/python}"
# Refuses a local state backend for any environment synthesized here (stacks/validations.py).
IMAGING_REQUIRE_REMOTE_STATE=1 "$python" main.py "$env"
dir="cdktf.out/stacks/$env"
(
  cd "$dir"
  terraform init -input=false -no-color
  terraform plan -input=false -no-color -lock=false -out=tfplan
  terraform show -no-color tfplan >plan.txt
  terraform show -json tfplan >plan.json
  sha256sum tfplan >tfplan.sha256
)
"$python" scripts/ci/plan_summary.py "$env" "$dir/plan.json" >"$dir/plan.md"
