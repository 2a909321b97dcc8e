"""Tolerant, cheap reading of the attributes rendering needs: real files carry multi-values
and junk.

`value(ds, keyword)` is `ds.get(keyword)` for everything, except that an element still raw
(as read from the file, never accessed) of a simple VR — US/SS words, DS and IS numbers, CS
and UI strings, the pixel module and display attributes — is parsed here. pydicom's conversion
of a raw element (value classes, validation, a DataElement) costs about 10 µs; parsing a
short string or one word costs about 1 µs, and a render reads some twenty of them. Anything
this parser is not sure of (another VR than the dictionary's, odd lengths, empty or
malformed values, backslashes in strings) goes to pydicom, so the result is always what
pydicom's value would give to the callers here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

_DS = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IS = re.compile(r"[+-]?\d+")
_UNSURE = object()


@cache
def _tag_and_vr(keyword: str) -> tuple[BaseTag, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"unknown keyword {keyword}")
    return Tag(tag), dictionary_VR(tag)


def _numbers(text: str, pattern: re.Pattern[str], kind: type) -> Any:
    parts = [part.strip(" ") for part in text.split("\\")]
    if not all(pattern.fullmatch(part) for part in parts):
        return _UNSURE
    numbers = [kind(part) for part in parts]
    return numbers[0] if len(numbers) == 1 else numbers


def _parse_raw(element: RawDataElement, vr: str) -> Any:
    """The value of a raw element of a simple VR, or _UNSURE."""
    data = element.value
    if vr == "US or SS" and element.VR in ("US", "SS"):
        vr = element.VR  # explicit VR says which (implicit: pydicom resolves it)
    if (element.VR is not None and vr != element.VR) or not isinstance(data, bytes):
        return _UNSURE
    if vr in ("US", "SS"):
        if len(data) != 2:
            return _UNSURE
        order: Literal["little", "big"] = "little" if element.is_little_endian else "big"
        return int.from_bytes(data, order, signed=vr == "SS")
    if vr not in ("DS", "IS", "CS", "UI"):
        return _UNSURE
    try:
        text = data.decode("ascii").strip(" \0")
    except UnicodeDecodeError:
        return _UNSURE
    if not text:
        return _UNSURE
    if vr == "DS":
        return _numbers(text, _DS, float)
    if vr == "IS":
        return _numbers(text, _IS, int)
    return _UNSURE if "\\" in text else text


def value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """`ds.get(keyword, default)`, with raw elements of simple VRs parsed without pydicom's
    conversion (numbers come back as float or int, or a list of them; strings stripped)."""
    tag, vr = _tag_and_vr(keyword)
    element = ds.get_item(tag, keep_deferred=True)
    if element is None:
        return default
    if isinstance(element, RawDataElement):
        parsed = _parse_raw(element, vr)
        return ds.get(keyword, default) if parsed is _UNSURE else parsed
    return element.value


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


def floats(ds: Dataset, keyword: str) -> list[float]:
    """All values of a numeric attribute as floats (none when absent or unparsable)."""
    return as_floats(value(ds, keyword))


def first_float(ds: Dataset, keyword: str, default: float) -> float:
    values = floats(ds, keyword)
    return values[0] if values else default
