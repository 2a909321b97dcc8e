"""Environment files: the shipped ones are valid, and every kind of mistake gets a clear error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.config import (
    ENVIRONMENTS_DIR,
    ConfigError,
    discover,
    load_environment,
    load_environments,
)
from tests.infra.conftest import run_synth

BASE: dict[str, Any] = yaml.safe_load((ENVIRONMENTS_DIR / "dev.yaml").read_text())


def write_env(directory: Path, name: str, data: Any) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def with_change(dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return data


_DELETE = object()


def test_shipped_environments_are_valid() -> None:
    envs = load_environments()
    assert [e.name for e in envs] == [p.stem for p in discover()]  # every file, a fork's too
    assert {"dev", "prod", "staging"} <= {e.name for e in envs}
    prod = next(e for e in envs if e.name == "prod").config
    assert prod.security.cmek and prod.security.deletion_protection
    assert prod.state_backend.type == "gcs"


# (change, expected fragments of the one error line: the key path and what is wrong/allowed)
CASES = [
    pytest.param("surprise", 1, ["surprise: unknown key"], id="unknown-top-level-key"),
    pytest.param(
        "functions.processor.memroy_mib",
        512,
        ["functions.processor.memroy_mib: unknown key"],
        id="unknown-nested-key",
    ),
    pytest.param(
        "functions.processor.timeout_seconds",
        "slow",
        ["functions.processor.timeout_seconds", "whole number"],
        id="wrong-type",
    ),
    pytest.param(
        "project_id",
        "My_Project",
        ["project_id", "not a valid project id"],
        id="invalid-project-id",
    ),
    pytest.param(
        "region",
        "mars-north1",
        ["region", "not a supported region", "us-central1"],
        id="invalid-region",
    ),
    pytest.param(
        "alert_emails",
        ["oncall-at-example.org"],
        ["alert_emails[0]", "not a valid e-mail address"],
        id="invalid-email",
    ),
    pytest.param("alert_emails", [], ["alert_emails", "at least 1"], id="no-email"),
    pytest.param(
        "functions.processor.min_instances",
        9,
        ["functions.processor", "max_instances (5) is below min_instances (9)"],
        id="max-below-min",
    ),
    pytest.param(
        "functions.ingest.memory_mib",
        300,
        ["functions.ingest.memory_mib", "300 is not one of 128, 256, 512"],
        id="memory-not-allowed",
    ),
    pytest.param(
        "labels.data_classification",
        "secret",
        ["labels.data_classification", "'phi'", "'synthetic'"],
        id="not-in-enum",
    ),
    pytest.param("project_id", _DELETE, ["project_id: required key is missing"], id="missing-key"),
    pytest.param(
        "state_backend",
        {"type": "gcs"},
        ["state_backend", "a 'gcs' state backend needs 'bucket'"],
        id="gcs-no-bucket",
    ),
    pytest.param(
        "retention.pubsub_message_days",
        60,
        ["retention.pubsub_message_days", "at most 31"],
        id="out-of-range",
    ),
    pytest.param(
        "pipeline.rules",
        [{"name": "x", "finding": "label", "priority": "panic"}],
        ["pipeline.rules[0].priority", "'critical'"],
        id="bad-rule-priority",
    ),
    pytest.param(
        "pipeline.modalities",
        ["CT", "SR"],
        ["pipeline.modalities", "non-image modalities cannot be analyzed: SR"],
        id="non-image-modality",
    ),
    pytest.param(
        "labels.environment",
        "prod",
        ["labels.environment: must equal the file's name 'dev'"],
        id="environment-label-mismatch",
    ),
]


@pytest.mark.parametrize(("key", "value", "fragments"), CASES)
def test_each_kind_of_error_names_file_key_and_rule(
    tmp_path: Path, key: str, value: Any, fragments: list[str]
) -> None:
    path = write_env(tmp_path, "dev", with_change(key, value))
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("project_id: [unclosed\n", "not valid YAML"), ("- a\n- b\n", "expected a mapping")],
    ids=["yaml-syntax", "not-a-mapping"],
)
def test_unreadable_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_env(tmp_path, "dev", text)
    with pytest.raises(ConfigError, match=fragment):
        load_environment(path)


def test_unknown_environment_is_named_with_the_available_ones(tmp_path: Path) -> None:
    write_env(tmp_path, "dev", BASE)
    with pytest.raises(ConfigError, match=r"unknown environment\(s\): qa; available: dev"):
        load_environments(["qa"], tmp_path)


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    data = with_change("region", "nowhere")
    data["project_id"] = "X"
    path = write_env(tmp_path, "dev", data)
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert any("project_id" in line for line in lines)
    assert any("region" in line for line in lines)


def test_synth_with_a_bad_file_exits_2_with_a_short_message(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    write_env(env_dir, "dev", with_change("functions.processor.min_instances", 9))
    result = run_synth(tmp_path / "out", env_dir=env_dir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"{env_dir / 'dev.yaml'}: functions.processor: max_instances (5) is below" in result.stderr
    )
    assert len(result.stderr.splitlines()) <= 3
    assert not (tmp_path / "out").exists()


def test_synth_selects_environments_by_argument(tmp_path: Path) -> None:
    result = run_synth(tmp_path / "out", environments=("dev", "prod"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == ["dev", "prod"]


# Valid field by field, but fails later (at apply time or silently at run time): refused at
# synth time, one test per case, each naming the file, the key and what is allowed.
REFUSALS = [
    pytest.param(
        {"labels.data_classification": "phi", "security.deletion_protection": True},
        ["security.cmek: must be true", "'phi'"],
        id="phi-without-cmek",
    ),
    pytest.param(
        {"labels.data_classification": "phi", "security.cmek": True},
        ["security.deletion_protection: must be true", "'phi'"],
        id="phi-without-deletion-protection",
    ),
    pytest.param(
        {
            "labels.data_classification": "phi",
            "security.cmek": True,
            "security.deletion_protection": True,
        },
        ["ci.smoke_test: must be false", "'phi'"],
        id="phi-with-smoke-test",
    ),
    pytest.param(
        {"time_zone": "Europe/Londn"},
        ["time_zone: 'Europe/Londn' is not an IANA time zone", "did you mean 'Europe/London'"],
        id="unknown-time-zone",
    ),
    pytest.param(
        {"pipeline.modalities": ["CT", "XRAY", "MRI"]},
        ["pipeline.modalities: not DICOM modality codes: XRAY, MRI", "(0008,0060)"],
        id="modality-not-a-dicom-term",
    ),
    pytest.param(
        {"functions.processor.memory_mib": 8192, "functions.processor.cpu": "1"},
        ["functions.processor: memory_mib 8192 needs cpu of at least 2"],
        id="memory-needs-more-cpu",
    ),
    pytest.param(
        {"functions.ingest.memory_mib": 1024, "functions.ingest.cpu": "0.4"},
        ["functions.ingest: memory_mib 1024 needs cpu of at least 0.583"],
        id="fractional-cpu-too-much-memory",
    ),
    pytest.param(
        {"functions.processor.cpu": "3"},
        ["functions.processor.cpu: Cloud Run accepts 3 vCPU only", "1, 2, 4, 6, 8"],
        id="cpu-not-a-cloud-run-value",
    ),
    pytest.param(
        {"functions.processor.cpu": "8", "functions.processor.memory_mib": 2048},
        ["functions.processor: cpu 8 needs memory_mib of at least 4096"],
        id="cpu-needs-more-memory",
    ),
    pytest.param(
        {"alert_emails": ["oncall@example.org", "OnCall@example.org"]},
        ["alert_emails: listed more than once: oncall@example.org"],
        id="duplicate-alert-email",
    ),
    pytest.param(
        {
            "pipeline.analyzer": "vision",
            "pipeline.rules": [
                {"name": "blank", "finding": "blank_image", "priority": "urgent"},
            ],
        },
        ["pipeline.rules.0.finding", "'vision' analyzer never reports 'blank_image'", "label"],
        id="rule-the-analyzer-never-fires",
    ),
    pytest.param(
        {
            "pipeline.analyzer": "none",
            "pipeline.routes": {"DX": {"analyzer": "local"}},
            "pipeline.rules": [
                {"name": "labels", "finding": "label", "terms": ["mass"], "priority": "urgent"},
            ],
        },
        ["pipeline.rules.0.finding", "'local' analyzer never reports 'label'", "blank_image"],
        id="rule-no-routed-analyzer-fires",
    ),
    pytest.param(
        {"state_backend": {"type": "local"}},
        ["state_backend.type: 'local' state is lost", "CI deploys 'dev'", "'gcs'"],
        id="local-state-for-a-ci-deployed-environment",
    ),
]


@pytest.mark.parametrize(("changes", "fragments"), REFUSALS)
def test_refused_before_it_fails_later(
    tmp_path: Path, changes: dict[str, Any], fragments: list[str]
) -> None:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = write_env(tmp_path, "dev", data)
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_each_refusal_case_is_otherwise_valid(tmp_path: Path) -> None:
    """The cases above fail only for the reason they name: the base they change loads."""
    assert load_environment(write_env(tmp_path, "dev", BASE)).config.time_zone == "UTC"
    phi = with_change("labels.data_classification", "phi")
    phi["security"] = {"cmek": True, "deletion_protection": True}
    phi["ci"]["smoke_test"] = False
    assert load_environment(write_env(tmp_path, "dev", phi)).config.security.cmek


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False) + "region: europe-west4\n"
    path = write_env(tmp_path, "dev", text)
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: region: written twice (lines 2 and "), message


def test_a_nested_key_written_twice_names_its_path(tmp_path: Path) -> None:
    text = "security:\n  cmek: true\n  cmek: false\n"
    with pytest.raises(ConfigError, match=r": security\.cmek: written twice \(lines 2 and 3\)"):
        load_environment(write_env(tmp_path, "dev", text))


def test_local_state_is_refused_in_ci_for_any_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = with_change("labels.environment", "sandbox")
    data["state_backend"] = {"type": "local"}
    path = write_env(tmp_path, "sandbox", data)
    monkeypatch.delenv("IMAGING_REQUIRE_REMOTE_STATE", raising=False)
    assert load_environment(path).config.state_backend.type == "local"
    monkeypatch.setenv("IMAGING_REQUIRE_REMOTE_STATE", "1")
    with pytest.raises(ConfigError, match=r"sandbox.yaml: state_backend.type: 'local' state"):
        load_environment(path)


def test_every_environment_ci_deploys_keeps_its_state_in_gcs() -> None:
    from stacks.validations import ci_deployed_environments

    deployed = ci_deployed_environments()
    assert deployed == {"dev", "staging", "prod"}
    for env in load_environments(sorted(deployed)):
        assert env.config.state_backend.type == "gcs", env.name


def test_synth_refusal_exits_2_naming_file_key_and_allowed(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    write_env(env_dir, "dev", with_change("time_zone", "Europe/Londn"))
    result = run_synth(tmp_path / "out", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{env_dir / 'dev.yaml'}: time_zone: 'Europe/Londn' is not an IANA" in result.stderr
    assert not (tmp_path / "out").exists()
