#!/usr/bin/env bash
# CI: apply exactly the plan the plan job saved (downloaded into cdktf.out/stacks/ENV/) after
# checking it is byte for byte the file whose checksum the plan job reported. Never plans again:
# if the state moved since the plan, Terraform refuses the stale plan and nothing is applied.
set -euo pipefail
env="${1:?usage: scripts/ci/apply.sh ENVIRONMENT}"
expected="${PLAN_SHA256:?PLAN_SHA256 (output of the plan job) is required}"
cd "cdktf.out/stacks/$env"
echo "$expected  tfplan" | sha256sum --check --strict
terraform init -input=false -no-color
terraform apply -input=false -no-color tfplan
