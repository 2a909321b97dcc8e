"""The README's configuration reference, generated from the schema so that it cannot drift.

`python -m stacks.docs` prints the table; `python -m stacks.docs --write` puts it into README.md
between the config-reference markers; `--check` exits 1 when README.md is out of date.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.config import MEMORY_MIB, REGIONS, EnvironmentConfig

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

# Keys whose field has no `description=` in the schema yet. A test fails if an entry here goes
# stale (the key no longer exists) or if any key has neither.
FALLBACK_DESCRIPTIONS = {
    "project_id": "Google Cloud project the environment deploys into.",
    "region": "Region of every regional resource (datasets, functions, buckets, keys).",
    "labels": "Labels put on every labelable resource (and the provider's default labels).",
    "labels.environment": "Environment name; must equal the file's name.",
    "labels.cost_centre": "Cost centre for billing reports.",
    "labels.data_classification": "Highest class of data the environment holds.",
    "state_backend.type": "`local` file or `gcs` bucket.",
    "state_backend.bucket": "State bucket (only and required for type `gcs`).",
    "state_backend.prefix": "Object prefix of the state in the bucket (default: the environment).",
    "alert_emails": "E-mail addresses that receive every alert (one notification channel each).",
    "time_zone": "Time zone of the Healthcare dataset (parsing DICOM/FHIR times without one).",
    "functions": "Sizing of the two Cloud Functions.",
    "functions.processor": "The process function (one DICOM instance per request).",
    "functions.ingest": "The ingest function (one staging object per event).",
    "functions.*.timeout_seconds": "Request timeout; the push subscription's ack deadline too.",
    "functions.*.min_instances": "Instances kept warm.",
    "functions.*.max_instances": "Upper bound on instances (and on cost).",
    "retention": "How long data and logs are kept.",
    "retention.noncurrent_versions_days": "Days before overwritten or deleted object versions "
    "are removed from the buckets.",
    "retention.log_days": "Retention of the project's `_Default` log bucket.",
    "security": "Encryption and deletion protection.",
    "security.key_rotation_days": "Rotation period of the CMEK keys (when `cmek` is on).",
    "delivery": "Retries of the push subscription to the processor.",
    "alerting": "Alert policy thresholds.",
    "pipeline": "What the processor does; passed to it as JSON in PIPELINE_SETTINGS.",
    "pipeline.render": "How an instance is rendered to an image for analysis.",
    "pipeline.render.format": "Image encoding sent to the analyzer.",
    "pipeline.local_analyzer.ocr_timeout_seconds": "Time limit of one Tesseract run.",
    "pipeline.fhir": "How results are written as FHIR R4 resources.",
    "pipeline.rules": "Rules that turn findings into priorities; the highest matching wins.",
    "pipeline.rules[].name": "Rule name (shown in logs and FHIR results).",
    "pipeline.rules[].finding": "Kind of finding the rule matches.",
    "pipeline.rules[].min_score": "Lowest finding score (0-1) that matches.",
    "pipeline.rules[].priority": "Priority of a match; `critical` also publishes an alert.",
}
# The placeholder of a mapping's keys in the table.
MAPPING_KEYS = {"pipeline.routes": "<MODALITY>"}
# Allowed values enforced by validators that the JSON schema cannot express.
EXTRA_ALLOWED = {
    "region": ", ".join(sorted(REGIONS)),
    "functions.*.memory_mib": ", ".join(map(str, MEMORY_MIB)),
    "project_id": "6-30 chars: lowercase letters, digits, hyphens; starts with a letter",
    "labels.environment": "up to 63 lowercase letters, digits, `_` or `-`",
    "labels.cost_centre": "up to 63 lowercase letters, digits, `_` or `-`",
    "alert_emails": "e-mail addresses",
    "state_backend.bucket": "a bucket name",
}


@dataclass(frozen=True)
class Key:
    path: str
    type: str
    default: str
    description: str
    allowed: str


def _generic(path: str) -> str:
    """`functions.processor.cpu` (or `review_app.sizing.cpu`) -> `functions.*.cpu`, the key
    the tables above use: every function's sizing means the same."""
    parts = path.split(".")
    if len(parts) == 3 and (parts[0] == "functions" or parts[:2] == ["review_app", "sizing"]):
        return f"functions.*.{parts[2]}"
    return path


def _lookup(table: dict[str, str], path: str) -> str:
    return table.get(path) or table.get(_generic(path)) or ""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return {**schema["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = _resolve(schema, node)
    if "enum" in node or "const" in node:
        return (
            "string"
            if all(isinstance(v, str) for v in node.get("enum", [node.get("const")]))
            else "enum"
        )
    if "anyOf" in node:
        kinds = [_type(schema, n) for n in node["anyOf"] if n.get("type") != "null"]
        return " or ".join(kinds) + " (optional)"
    if node.get("type") == "array":
        return f"list of {_type(schema, node.get('items', {}))}"
    if node.get("type") == "object" or "properties" in node:
        return "mapping"
    return str(node.get("type", "any"))


def _allowed(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = _resolve(schema, node)
    if "anyOf" in node:
        return "; ".join(a for a in (_allowed(schema, n) for n in node["anyOf"]) if a)
    parts = []
    if "enum" in node:
        parts.append(", ".join(f"`{v}`" for v in node["enum"]))
    if "const" in node:
        parts.append(f"`{node['const']}`")
    for word, key in (
        ("≥", "minimum"),
        ("≤", "maximum"),
        (">", "exclusiveMinimum"),
        ("<", "exclusiveMaximum"),
    ):
        if key in node:
            parts.append(f"{word} {node[key]}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for word, key in (
        ("at least", "minItems"),
        ("at most", "maxItems"),
        ("length ≥", "minLength"),
        ("length ≤", "maxLength"),
    ):
        if key in node:
            parts.append(f"{word} {node[key]}")
    if node.get("type") == "array" and "items" in node:
        inner = _allowed(schema, node["items"])
        if inner:
            parts.append(f"each: {inner}")
    return "; ".join(parts)


def _default(value: Any) -> str:
    if value is _REQUIRED:
        return "**required**"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


_REQUIRED = object()


def config_keys() -> Iterator[Key]:
    """Every key of the schema, depth first in the schema's order; `[]` marks list items."""
    schema = EnvironmentConfig.model_json_schema()
    yield from _walk(schema, schema, "", _REQUIRED)


def _walk(
    schema: dict[str, Any], node: dict[str, Any], prefix: str, inherited: Any
) -> Iterator[Key]:
    node = _resolve(schema, node)
    required = set(node.get("required", []))
    for name, prop in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        if isinstance(inherited, dict) and name in inherited:
            default = inherited[name]
        elif "default" in prop:
            default = prop["default"]
        else:
            default = _REQUIRED if name in required or inherited is _REQUIRED else None
        resolved = _resolve(schema, prop)
        description = (
            prop.get("description")
            or resolved.get("description")
            or _lookup(FALLBACK_DESCRIPTIONS, path)
        )
        allowed = "; ".join(a for a in (_allowed(schema, prop), _lookup(EXTRA_ALLOWED, path)) if a)
        # An optional section (`X | None`) is documented like a section.
        optional = [_resolve(schema, n) for n in resolved.get("anyOf", []) if "$ref" in n]
        if len(optional) == 1 and "properties" in optional[0]:
            resolved = optional[0]
        is_model = "properties" in resolved
        yield Key(
            path,
            "mapping (optional)" if is_model and optional else _type(schema, prop),
            "" if is_model else _default(default),
            description.strip(),
            allowed,
        )
        if is_model:
            yield from _walk(schema, resolved, f"{path}.", default if not optional else None)
        # A mapping of sections keyed by a name (pipeline.routes.<MODALITY>).
        values = _resolve(schema, resolved.get("additionalProperties") or {})
        if "properties" in values:
            yield from _walk(schema, values, f"{path}.{MAPPING_KEYS.get(path, '<KEY>')}.", None)
        items = (
            _resolve(schema, resolved.get("items", {})) if resolved.get("type") == "array" else {}
        )
        if "properties" in items:
            yield from _walk(schema, items, f"{path}[].", None)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(keys: Sequence[Key] | None = None) -> str:
    rows = [
        "| Key | Type | Default | Allowed values | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key in keys if keys is not None else list(config_keys()):
        rows.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (f"`{key.path}`", key.type, key.default, key.allowed, key.description)
            )
            + " |"
        )
    return "\n".join(rows) + "\n"


def updated_readme(text: str) -> str:
    """`text` with the table between the markers (markers appended at the end if missing)."""
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{render_table()}{END}{tail}"


def main(argv: Sequence[str]) -> int:
    if "--write" in argv:
        current = README.read_text(encoding="utf-8")
        new = updated_readme(current)
        if new != current:
            README.write_text(new, encoding="utf-8")
        print(f"{README}: configuration reference {'updated' if new != current else 'current'}")
        return 0
    if "--check" in argv:
        if updated_readme(README.read_text(encoding="utf-8")) != README.read_text(encoding="utf-8"):
            print(f"{README} is out of date: run `python -m stacks.docs --write`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
