"""The first-time setup stack of each environment: state bucket, Workload Identity Federation
restricted to the repository, a deploy identity with exactly what the pipeline stack needs,
and a read-only plan identity."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks import deployer_access
from stacks.config import load_environments
from tests.infra.conftest import ENVIRONMENTS, ROOT, load_stacks
from tests.infra.policy import rules
from tests.infra.synthesized import at, iam_bindings, of_type, ref, resources

Stack = dict[str, Any]
CONFIG = {env.name: env.config for env in load_environments(list(ENVIRONMENTS))}


@pytest.fixture(scope="module")
def setup_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stack]]:
    out = tmp_path_factory.mktemp("setup.out")
    result = subprocess.run(
        [sys.executable, "-m", "stacks.setup_app", *ENVIRONMENTS],
        cwd=ROOT,
        env={**os.environ, "CDKTF_OUTDIR": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = load_stacks(out)
    assert sorted(loaded) == sorted(f"{e}-setup" for e in ENVIRONMENTS)
    yield {name.removesuffix("-setup"): stack for name, stack in loaded.items()}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _types(stack: Stack) -> set[str]:
    found = {r.type for r in resources(stack)}
    return found | {f"data.{r.type}" for r in resources(stack, "data")}


def _roles_of(stack: Stack, member: str) -> set[str]:
    return {b.role for b in iam_bindings(stack) if b.member == member}


def test_every_pipeline_type_has_declared_deployer_access(stacks: dict[str, Stack]) -> None:
    for stack in stacks.values():
        deployer_access.needed(_types(stack))  # raises on a type without an entry
    with pytest.raises(KeyError, match="google_sql_database_instance"):
        deployer_access.needed({"google_sql_database_instance"})


def test_state_bucket_is_versioned_private_and_protected(
    setup_stacks: dict[str, Stack], env: str
) -> None:
    stack = setup_stacks[env]
    bucket = at(stack, "state/bucket").body
    assert bucket["name"] == CONFIG[env].state_backend.bucket
    assert bucket["versioning"] == {"enabled": True}
    assert rules.open_buckets(stack) == []
    assert bucket["lifecycle"]["prevent_destroy"] is True
    assert bool(bucket.get("encryption")) is CONFIG[env].security.cmek
    assert rules.cmek_not_waiting(stack) == []


def test_workload_identity_accepts_only_the_repository(
    setup_stacks: dict[str, Stack], env: str
) -> None:
    provider = at(setup_stacks[env], "github").body
    repository = CONFIG[env].ci.github_repository
    assert provider["attribute_condition"] == f'assertion.repository == "{repository}"'
    assert provider["oidc"]["issuer_uri"] == "https://token.actions.githubusercontent.com"
    assert provider["attribute_mapping"]["attribute.environment"] == "assertion.environment"


def test_identities_are_usable_only_from_their_github_environment(
    setup_stacks: dict[str, Stack], env: str
) -> None:
    stack = setup_stacks[env]
    users = {
        b.target: b.member
        for b in iam_bindings(stack)
        if b.role == "roles/iam.workloadIdentityUser"
    }
    pool = ref(at(stack, "pool"), "name")
    assert users == {
        ref(at(stack, "deployer"), "name"): (
            f"principalSet://iam.googleapis.com/{pool}/attribute.environment/{env}"
        ),
        ref(at(stack, "planner"), "name"): (
            f"principalSet://iam.googleapis.com/{pool}/attribute.environment/{env}-plan"
        ),
    }


def test_the_deployer_gets_exactly_what_the_pipeline_stack_needs(
    stacks: dict[str, Stack], setup_stacks: dict[str, Stack], env: str
) -> None:
    setup, pipeline = setup_stacks[env], stacks[env]
    needed = deployer_access.needed(_types(pipeline))
    deployer = ref(at(setup, "deployer"), "member")
    custom = ref(at(setup, "deployer_role"), "id")
    expected = set(needed.roles) | {custom, "roles/resourcemanager.projectIamAdmin"}
    expected |= {"roles/storage.objectAdmin"}  # source bucket (conditioned) and state bucket
    if CONFIG[env].ci.smoke_test:
        expected |= set(deployer_access.SMOKE_ROLES)
    assert _roles_of(setup, deployer) == expected
    assert set(at(setup, "deployer_role").body["permissions"]) == set(needed.permissions)
    assert not _roles_of(setup, deployer) & rules.BASIC_ROLES


def test_the_deployer_may_grant_only_the_pipeline_project_roles(
    stacks: dict[str, Stack], setup_stacks: dict[str, Stack], env: str
) -> None:
    project_roles = {
        b.role for b in iam_bindings(stacks[env]) if b.type == "google_project_iam_member"
    }
    condition = at(setup_stacks[env], "deployer_project_iam").body["condition"]["expression"]
    allowed = condition.split(".hasOnly([", 1)[1].rstrip("])")
    assert {r.strip(" '") for r in allowed.split(",")} == project_roles
    source = at(setup_stacks[env], "deployer_source_objects").body["condition"]["expression"]
    assert f"-{CONFIG[env].name_prefix}-source/" in source


def test_the_planner_reads_and_writes_nothing(setup_stacks: dict[str, Stack], env: str) -> None:
    stack = setup_stacks[env]
    planner = ref(at(stack, "planner"), "member")
    assert _roles_of(stack, planner) == {
        ref(at(stack, "planner_role"), "id"),
        "roles/storage.objectViewer",
    }
    permissions = at(stack, "planner_role").body["permissions"]
    assert permissions
    verbs = {p.rsplit(".", 1)[1] for p in permissions}
    assert verbs <= {"get", "list", "getIamPolicy"}


def test_smoke_roles_follow_the_config_and_the_deploy_workflow() -> None:
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    smoked = {
        job["with"]["environment"] for job in deploy["jobs"].values() if job["with"].get("smoke")
    }
    assert smoked == {name for name, cfg in CONFIG.items() if cfg.ci.smoke_test}


def test_readme_lists_the_deployer_access() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert deployer_access.readme_with_table(text) == text, (
        "README.md is out of date: run .venv/bin/python -m stacks.deployer_access --write"
    )


def test_setup_refuses_an_environment_without_repository(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    data = yaml.safe_load((ROOT / "environments" / "staging.yaml").read_text())
    del data["ci"]
    (env_dir / "staging.yaml").write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "stacks.setup_app", "staging"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDKTF_OUTDIR": str(tmp_path / "out"),
            "IMAGING_ENVIRONMENTS_DIR": str(env_dir),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 2
    assert "staging.yaml: ci.github_repository: required by the setup stack" in result.stderr
    assert "Traceback" not in result.stderr


def test_local_state_is_outside_the_output_directory(setup_stacks: dict[str, Stack]) -> None:
    """The setup stack keeps its state locally: next to the output, never inside it, so
    `rm -rf cdktf.out` keeps it (a local pipeline stack uses the same path, tests/infra/
    test_knobs.py `state_backend.type`)."""
    out = Path("/outdir")  # the path is relative to <outdir>/stacks/<stack>, whatever the outdir
    for env, stack in setup_stacks.items():
        name = f"{env}-setup"
        relative = stack["terraform"]["backend"]["local"]["path"]
        where = Path(os.path.normpath(out / "stacks" / name / relative))
        assert where == out.parent / "state" / f"{name}.tfstate"
        assert out not in where.parents


def _created_before_their_apis(stack: Stack) -> list[str]:
    """Resources that wait for not every API of the stack, directly or through a reference."""
    apis = {f"google_project_service.{r.key}" for r in of_type(stack, "google_project_service")}
    assert apis
    by_address = {f"{r.type}.{r.key}": r for r in resources(stack)}

    def waits_for(address: str, seen: frozenset[str]) -> set[str]:
        body = by_address[address].body
        text = json.dumps(body)
        direct = {a for a in by_address if a != address and f"${{{a}." in text}
        direct |= set(body.get("depends_on", []))
        found = set(direct)
        for other in direct - seen - apis:
            if other in by_address:
                found |= waits_for(other, seen | {address})
        return found

    return [a for a in by_address if a not in apis and not apis <= waits_for(a, frozenset())]


def test_nothing_is_created_before_the_apis_it_needs(setup_stacks: dict[str, Stack]) -> None:
    """A brand-new project has no API on: every resource waits for all of them."""
    for stack in setup_stacks.values():
        assert _created_before_their_apis(stack) == []
    # Planted violation: the rule catches a root resource that no longer waits.
    planted = copy.deepcopy(next(iter(setup_stacks.values())))
    [account, *_] = planted["resource"]["google_service_account"].values()
    account.pop("depends_on")
    assert _created_before_their_apis(planted)
