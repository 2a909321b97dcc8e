"""Configuration errors in plain words: what is wrong, with which key, and what is allowed.

Pydantic's messages are written for programmers ("Input should be a valid tuple", "String should
match pattern '^[a-z]...$'"); the people who edit `environments/*.yaml` need "must be a list",
"did you mean 'memory_mib'?" and the line to look at. This module turns validation errors and
YAML syntax errors into such lines; `stacks.config` decides when to raise them.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

# Every `pattern=` of the schema, in words. tests/infra/test_config_errors.py fails when a
# pattern has no entry, so a new one cannot fall back to the generic sentence unnoticed.
PATTERN_WORDS = {
    r"^[a-z][a-z0-9-]{1,14}$": "2-15 lowercase letters, digits or hyphens, starting with a letter",
    r"^[A-Za-z0-9._/-]*$": "letters, digits, '.', '_', '/' or '-' only",
    r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$": "a time zone name such as UTC or Europe/Zurich",
    r"^(0\.(0[8-9]|[1-9][0-9]?)|[1-8])$": "a whole number of vCPUs from 1 to 8, or a fraction "
    "from 0.08 to 0.99 (as text, e.g. '0.5')",
    r"^[a-z][a-z0-9_-]*$": "lowercase letters, digits, '_' or '-', starting with a letter",
    r"^(urn|https?):\S+$": "a URI starting with urn:, http: or https:, without spaces",
    r"^https://\S+$": "an https:// URL without spaces",
    r"^https://\S*\{study_uid\}\S*$": "an https:// URL without spaces containing {study_uid}",
    r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$": "a GitHub repository as owner/name",
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$": "a lowercase DNS name such as "
    "review.example.org",
}
_GENERIC_FORM = "is not in the allowed form (see the configuration reference in README.md)"

_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "dict": "a mapping of keys",
    "list": "a list",
    "tuple": "a list",
    "NoneType": "empty",
}


def _kind(value: Any) -> str:
    return _TYPE_WORDS.get(type(value).__name__, type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def key_path(loc: Sequence[int | str]) -> str:
    """`("pipeline", "rules", 0, "name")` -> `pipeline.rules[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Models an annotation can hold: `X`, `X | None`, `tuple[X, ...]`, `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, Sequence):
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found


def model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (list indices are skipped)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        candidates = _models_in(model.model_fields[part].annotation)
        model = candidates[0] if candidates else None
    return model


def _allowed_keys(model: type[BaseModel] | None) -> list[str]:
    return sorted(model.model_fields) if model else []


def _required_keys(model: type[BaseModel] | None) -> list[str]:
    return [k for k, f in model.model_fields.items() if f.is_required()] if model else []


def _unknown_key(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    known = _allowed_keys(model_at(root, loc[:-1]))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return "unknown key; allowed here: " + ", ".join(known) if known else "unknown key"


def _sentence(error: Any, root: type[BaseModel]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    loc = error["loc"]
    if kind == "extra_forbidden":
        return _unknown_key(root, loc)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        keys = _allowed_keys(model_at(root, loc))
        allowed = f" with keys such as {', '.join(keys[:6])}" if keys else ""
        return f"must be a mapping of keys{allowed}, not {_kind(value)} {_shown(value)}"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type"):
        return f"must be a list (one '- item' per line), not {_kind(value)} {_shown(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, not {_shown(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, not {_shown(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {_shown(value)}"
    if kind == "string_type":
        return f"must be text, not {_kind(value)} {_shown(value)}"
    if kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace(" or ", ", ")
        return f"{_shown(value)} is not allowed; allowed: {allowed}"
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str(ctx.get("pattern")))
        return f"{_shown(value)} " + (f"is not allowed: use {words}" if words else _GENERIC_FORM)
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("above", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("below", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, not {_shown(value)}"
    if kind in ("too_short", "too_long"):
        what = "items" if isinstance(value, list | tuple | dict) else "characters"
        if kind == "too_short":
            return f"needs at least {ctx.get('min_length')} {what}"
        return f"allows at most {ctx.get('max_length')} {what}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    # Anything else: pydantic's sentence, with its vocabulary made plainer.
    return str(error["msg"]).replace("Input should be", "must be").replace("Value error, ", "")


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest YAML node along `loc` (the parent, for a missing key)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, _ in node.value if k.value == str(part)), None)
            if key is not None:
                line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
            if child is not None:
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def describe_validation(
    path: Path, errors: Sequence[Any], root: type[BaseModel], text: str = ""
) -> list[str]:
    """One line per problem: `FILE: KEY: what is wrong (line N)`; missing keys of one mapping
    are listed together by name."""
    try:
        document = yaml.compose(text) if text else None
    except yaml.YAMLError:
        document = None
    missing: dict[tuple[int | str, ...], list[str]] = {}
    lines: list[str] = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "missing":
            missing.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        line = _line_of(document, loc)
        where = f" (line {line})" if line else ""
        lines.append(f"{path}: {key_path(loc)}: {_sentence(error, root)}{where}")
    for parent, names in missing.items():
        line = _line_of(document, parent)
        where = f" (line {line})" if line and parent else ""
        if len(names) == 1:
            needs = _required_keys(model_at(root, (*parent, names[0])))
            also = f" (with {', '.join(needs)})" if needs else ""
            lines.append(
                f"{path}: {key_path((*parent, names[0]))}: required key is missing{also}{where}"
            )
        else:
            inside = f"{key_path(parent)}: " if parent else ""
            lines.append(f"{path}: {inside}required keys are missing: {', '.join(names)}{where}")
    return lines


def describe_yaml_error(path: Path, error: yaml.YAMLError) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: <problem>` (PyYAML says `<unicode string>`)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else str(problem)
    return f"{where}: not valid YAML: {detail}"
