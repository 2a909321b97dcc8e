"""Policy gate: checkov (pinned, offline) on every synthesized stack.

Prod must pass every applicable check except the skips written next to the code that causes
them (`CHECKOV_SKIPS` in modules/); each skip must still be needed. Environments without
CMEK may fail only the CMEK checks.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from modules.encryption_keys import CHECKOV_CMEK_CHECKS
from modules.private_bucket import CHECKOV_SKIPS
from stacks.config import load_environments
from tests.infra.conftest import ENVIRONMENTS, ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_VERSION = "3.3.30"
CMEK = {env.name: env.config.security.cmek for env in load_environments(list(ENVIRONMENTS))}
# Checks that must be among the passed ones in every environment: proof checkov really
# evaluated our resources (not an empty scan that "passes").
MUST_PASS = {
    "CKV_GCP_29",  # uniform bucket-level access
    "CKV_GCP_78",  # bucket versioning
    "CKV_GCP_114",  # public access prevention enforced
}


@pytest.fixture(scope="module")
def checkov_results(synth_dir: Path) -> dict[str, dict[str, Any]]:
    """{env: {"passed": {check ids}, "failed": [(check id, resource)], "version": str}}."""
    assert CHECKOV.exists(), "checkov is installed by scripts/bootstrap.sh into .venv-checkov"
    files = [str(synth_dir / "stacks" / env / "cdk.tf.json") for env in ENVIRONMENTS]
    args = [
        str(CHECKOV),
        "--skip-download",
        "--framework",
        "terraform_json",
        "--compact",
        "-o",
        "json",
    ]
    for f in files:
        args += ["-f", f]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode in (0, 1), run.stderr  # 1 = some check failed
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    results: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"passed": set(), "failed": [], "version": ""}
    )
    for report in reports:
        for kind in ("passed_checks", "failed_checks"):
            for check in report["results"].get(kind, []):
                env = Path(check["file_path"]).parent.name
                entry = results[env]
                entry["version"] = report["summary"]["checkov_version"]
                if kind == "passed_checks":
                    entry["passed"].add(check["check_id"])
                else:
                    entry["failed"].append((check["check_id"], check["resource"]))
    return dict(results)


def test_checkov_is_the_pinned_version(checkov_results: dict[str, dict[str, Any]]) -> None:
    assert {r["version"] for r in checkov_results.values()} == {CHECKOV_VERSION}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_evaluated_the_stack(checkov_results: dict[str, dict[str, Any]], env: str) -> None:
    assert checkov_results[env]["passed"] >= MUST_PASS
    assert len(checkov_results[env]["passed"]) >= 10


def test_prod_passes_every_check_but_the_documented_skips(
    checkov_results: dict[str, dict[str, Any]],
) -> None:
    failed = {check for check, _ in checkov_results["prod"]["failed"]}
    assert failed - set(CHECKOV_SKIPS) == set(), checkov_results["prod"]["failed"]
    # A skip that no longer fires is stale: delete it.
    assert set(CHECKOV_SKIPS) <= failed
    assert all(len(reason) > 40 for reason in CHECKOV_SKIPS.values())


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if not CMEK[e]])
def test_environments_without_cmek_fail_only_the_cmek_checks(
    checkov_results: dict[str, dict[str, Any]], env: str
) -> None:
    failed = {check for check, _ in checkov_results[env]["failed"]}
    assert failed - set(CHECKOV_SKIPS) - set(CHECKOV_CMEK_CHECKS) == set()
    assert set(CHECKOV_CMEK_CHECKS) <= failed
