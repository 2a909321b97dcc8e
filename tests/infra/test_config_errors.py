"""Configuration errors speak the language of the person editing the YAML file, not pydantic's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stacks.config import ConfigError, EnvironmentConfig, load_environment
from stacks.config_errors import PATTERN_WORDS, model_at
from tests.infra.test_config import BASE, with_change, write_env

# Vocabulary of pydantic and regular expressions that must never reach the person.
JARGON = re.compile(
    r"Input should|valid tuple|valid dictionary|instance of|String should|pattern|"
    r"\^|\$'|\[a-z|type=|For further information|errors\.pydantic|<unicode string>"
)


def error_of(tmp_path: Path, data: Any) -> str:
    path = write_env(tmp_path, "dev", data)
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    return str(caught.value)


PLAIN = [
    pytest.param("alert_emails", "oncall@example.org", ["alert_emails: must be a list"], id="list"),
    pytest.param("functions", "big", ["functions: must be a mapping of keys"], id="mapping"),
    pytest.param(
        "name_prefix", "Imaging!", ["name_prefix: 'Imaging!' is not allowed: use 2-15"], id="regex"
    ),
    pytest.param(
        "functions.processor.cpu", "9", ["a whole number of vCPUs from 1 to 8"], id="cpu-pattern"
    ),
    pytest.param(
        "functions.processor.timeout_seconds",
        "slow",
        ["must be a whole number, not 'slow'"],
        id="not-a-number",
    ),
    pytest.param("retention.pubsub_message_days", 60, ["must be at most 31, not 60"], id="bound"),
    pytest.param("security.cmek", "sometimes", ["security.cmek: must be true or false"], id="bool"),
    pytest.param(
        "state_backend.type", "s3", ["'s3' is not allowed; allowed: 'local', 'gcs'"], id="enum"
    ),
    pytest.param(
        "pipeline.rules",
        [{"name": "x", "finding": "label", "priority": "panic"}],
        ["pipeline.rules[0].priority: 'panic' is not allowed"],
        id="list-item",
    ),
]


@pytest.mark.parametrize(("key", "value", "fragments"), PLAIN)
def test_messages_are_plain_words(
    tmp_path: Path, key: str, value: Any, fragments: list[str]
) -> None:
    message = error_of(tmp_path, with_change(key, value))
    for fragment in fragments:
        assert fragment in message, message
    assert not JARGON.search(message), message


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("functions.processor.memroy_mib", "memory_mib"),
        ("alert_email", "alert_emails"),
        ("retention.log_day", "log_days"),
        ("pipeline.render.max_sise", "max_size"),
    ],
)
def test_unknown_key_close_to_a_known_one_gets_did_you_mean(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    message = error_of(tmp_path, with_change(key, 1))
    assert f"{key}: unknown key; did you mean '{suggestion}'?" in message, message


def test_unknown_key_far_from_any_lists_the_allowed_ones(tmp_path: Path) -> None:
    message = error_of(tmp_path, with_change("security.zebra", 1))
    assert "security.zebra: unknown key; allowed here: cmek, deletion_protection" in message


def test_missing_sub_keys_are_listed_by_name(tmp_path: Path) -> None:
    data = with_change("labels", {"environment": "dev"})
    message = error_of(tmp_path, data)
    assert "labels: required keys are missing: cost_centre, data_classification" in message


def test_a_missing_mapping_names_what_it_needs(tmp_path: Path) -> None:
    data = {k: v for k, v in BASE.items() if k != "labels"}
    message = error_of(tmp_path, data)
    assert (
        "labels: required key is missing (with environment, cost_centre, data_classification)"
        in message
    )


def test_errors_name_the_line(tmp_path: Path) -> None:
    text = (
        "project_id: imaging-dev-1234\nregion: us-central1\n"
        "labels: {environment: dev, cost_centre: r, data_classification: synthetic}\n"
        "alert_emails: [a@example.org]\n"
        "functions:\n  processor:\n    memroy_mib: 1024\n"
    )
    message = error_of(tmp_path, text)
    assert message.endswith("(line 7)"), message


def test_yaml_syntax_errors_name_file_and_line(tmp_path: Path) -> None:
    text = "project_id: imaging-dev-1234\nregion: [us-central1\nlabels: {}\n"
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'dev.yaml'}:"), message
    assert re.match(rf"{re.escape(str(tmp_path / 'dev.yaml'))}:\d+:\d+: not valid YAML", message)
    assert "<unicode string>" not in message


def _patterns(model: type[BaseModel]) -> set[str]:
    found = set()
    for field in model.model_fields.values():
        for meta in field.metadata:
            pattern = getattr(meta, "pattern", None)
            if pattern:
                found.add(str(pattern))
    return found


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name in model.model_fields:
            child = model_at(model, (name,))
            if child is not None:
                todo.append(child)
    return seen


def test_every_pattern_of_the_schema_has_words() -> None:
    patterns = set().union(*(_patterns(m) for m in _models(EnvironmentConfig)))
    assert patterns
    assert patterns - set(PATTERN_WORDS) == set()
