"""Resolve the type hints of jsii's type-checking stubs without compiling each annotation anew.

Before a binding passes arguments to the kernel it checks their types against the annotations of
a generated stub function (`_typecheckingstub__...`), resolved once per stub by
`jsii._type_checking.cached_type_hints`, that is `typing.get_type_hints(stub)`. The annotations
are strings (the bindings use `from __future__ import annotations`), and get_type_hints makes a
new `typing.ForwardRef` of each, compiling and evaluating it every time: about 4,000 for the
124 stubs a synth uses, though a module's stubs share most of their annotation strings (654
distinct ones). Here a stub's string annotations are replaced, before its first resolution, by
one ForwardRef per module and string, which typing evaluates once in that module's globals and
then answers from what it evaluated (a function's hints are evaluated with its module's globals
as both namespaces, the case in which ForwardRef keeps its value); get_type_hints then returns
the same types it would have from the strings, in half the time.

Only main.py installs it, in the synth process; the bindings bind `cached_type_hints` when they
are imported, so it must come before them.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

# (id of a module's globals, annotation) -> (those globals, kept so the id stays theirs; the ref)
_refs: dict[tuple[int, str], tuple[dict[str, Any], typing.ForwardRef]] = {}


def _share_forward_refs(stub: Callable[..., Any]) -> None:
    annotations = getattr(stub, "__annotations__", None)
    namespace = getattr(stub, "__globals__", None)
    if not isinstance(annotations, dict) or not isinstance(namespace, dict):
        return
    for name, value in annotations.items():
        if isinstance(value, str):
            key = (id(namespace), value)
            found = _refs.get(key)
            if found is None:
                # What get_type_hints makes of a function's string annotation.
                found = (namespace, typing.ForwardRef(value, is_argument=True, is_class=False))
                _refs[key] = found
            annotations[name] = found[1]


def install() -> bool:
    """Wraps jsii's cached_type_hints; False when this jsii has none (then nothing changes)."""
    from jsii import _type_checking

    resolve = getattr(_type_checking, "cached_type_hints", None)
    cache = getattr(_type_checking, "_type_hints_cache", None)
    if resolve is None or not isinstance(cache, dict) or getattr(resolve, "_shares_refs", False):
        return False

    def cached_type_hints(stub: Callable[..., Any]) -> dict[str, Any]:
        if stub not in cache:
            _share_forward_refs(stub)
        hints: dict[str, Any] = resolve(stub)
        return hints

    cached_type_hints._shares_refs = True  # type: ignore[attr-defined]
    _type_checking.cached_type_hints = cached_type_hints
    return True
