"""Tolerant reading of numeric attributes: real files carry multi-values and junk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset


def as_floats(value: Any) -> list[float]:
    """All values of a DS/IS/US/FL element as floats; unparsable values are dropped."""
    items = value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else [value]
    result = []
    for item in items:
        try:
            result.append(float(item))
        except (TypeError, ValueError):
            continue
    return result


def first_float(ds: Dataset, keyword: str, default: float) -> float:
    values = as_floats(ds.get(keyword)) if keyword in ds else []
    return values[0] if values else default
