"""The README's configuration reference is generated from the schema and must be current."""

from __future__ import annotations

from pydantic import BaseModel

from stacks import docs
from stacks.config import EnvironmentConfig


def _schema_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every dotted key of the pydantic models, found independently of the JSON schema."""
    import typing

    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = field.annotation
        args = typing.get_args(annotation)
        origin = typing.get_origin(annotation)
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _schema_paths(annotation, f"{path}.")
        elif origin in (list, tuple) and models:
            paths |= _schema_paths(models[0], f"{path}[].")
        elif origin is dict and models:  # a mapping of sections: pipeline.routes.<MODALITY>
            paths |= _schema_paths(models[0], f"{path}.{docs.MAPPING_KEYS[path]}.")
        elif models:  # an optional section
            paths |= _schema_paths(models[0], f"{path}.")
    return paths


def test_the_table_lists_every_key_of_the_schema_once() -> None:
    keys = [k.path for k in docs.config_keys()]
    assert len(keys) == len(set(keys))
    assert set(keys) == _schema_paths(EnvironmentConfig)


def test_every_key_has_a_description_and_a_type() -> None:
    missing = [k.path for k in docs.config_keys() if not k.description]
    assert missing == [], f"add `description=` to these fields: {missing}"
    assert all(k.type for k in docs.config_keys())


def test_fallback_descriptions_name_existing_keys_only() -> None:
    generic = {docs._generic(k.path) for k in docs.config_keys()}
    stale = sorted(set(docs.FALLBACK_DESCRIPTIONS) - generic - {k.path for k in docs.config_keys()})
    assert stale == []
    stale_allowed = sorted(set(docs.EXTRA_ALLOWED) - generic)
    assert stale_allowed == []


def test_defaults_allowed_values_and_required_keys_are_rendered() -> None:
    rows = {k.path: k for k in docs.config_keys()}
    assert rows["project_id"].default == "**required**"
    # A nested default comes from its parent's default (the ingest function's own timeout).
    assert rows["functions.ingest.timeout_seconds"].default == "`120`"
    assert rows["functions.processor.timeout_seconds"].default == "`300`"
    assert "`phi`" in rows["labels.data_classification"].allowed
    assert "us-central1" in rows["region"].allowed
    assert "≤ 31" in rows["retention.pubsub_message_days"].allowed
    assert "2048" in rows["functions.processor.memory_mib"].allowed


def test_readme_is_up_to_date() -> None:
    current = docs.README.read_text(encoding="utf-8")
    assert docs.updated_readme(current) == current, (
        "README.md's configuration reference is stale: run `python -m stacks.docs --write`"
    )
    assert docs.render_table() in current


def test_writing_inserts_between_markers_and_adds_them_when_missing() -> None:
    table = docs.render_table()
    text = f"# Title\n\n{docs.START}\nold table\n{docs.END}\n\nAfter.\n"
    updated = docs.updated_readme(text)
    assert updated == f"# Title\n\n{docs.START}\n{table}{docs.END}\n\nAfter.\n"
    assert docs.updated_readme(updated) == updated
    appended = docs.updated_readme("# Only a title\n")
    assert appended.startswith("# Only a title\n\n")
    assert appended.endswith(f"{docs.START}\n{table}{docs.END}\n")
