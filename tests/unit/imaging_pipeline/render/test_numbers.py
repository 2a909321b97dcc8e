"""Attributes read without pydicom's element conversion give what pydicom's values give."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from imaging_pipeline.render.numbers import as_floats, floats, value
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from tests.support.render_fixtures import PYDICOM_TEST_FILES

# Every attribute the renderer reads through `value`.
KEYWORDS = (
    "SOPClassUID",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "PhotometricInterpretation",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "PresentationLUTShape",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "PixelAspectRatio",
    "PixelPaddingValue",
)
FILES = sorted(p for p in PYDICOM_TEST_FILES.rglob("*") if p.is_file())


def _read(path: Path) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=True, defer_size=1 << 20)
        except Exception:
            return None


def _as_used(keyword: str, result: Any) -> Any:
    """What the renderer derives from a value: numbers, an int, or a stripped string."""
    vr = dictionary_VR(keyword)
    if vr in ("DS", "IS"):
        return as_floats(result)
    if vr in ("US", "US or SS"):
        try:
            return int(result)
        except (TypeError, ValueError):
            return "not an int"
    return str(result or "").strip().upper()


def _pydicom_value(path: Path, keyword: str) -> tuple[bool, Any]:
    ds = _read(path)
    assert ds is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return True, ds.get(keyword)
        except Exception:
            return False, None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PYDICOM_TEST_FILES)))
def test_bundled_attributes_read_as_pydicom_reads_them(path: Path) -> None:
    ds = _read(path)
    if ds is None:
        pytest.skip("not parsable")
    for keyword in KEYWORDS:
        converted, expected = _pydicom_value(path, keyword)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                got = value(ds, keyword)
            except Exception:
                assert not converted, keyword  # only where pydicom's own conversion fails
                continue
        assert converted, keyword
        assert _as_used(keyword, got) == _as_used(keyword, expected), keyword


def _raw(keyword: str, data: bytes, *, explicit: bool = True, little: bool = True) -> Dataset:
    tag = Tag(keyword)
    vr = dictionary_VR(tag) if explicit else None
    ds = Dataset()
    ds.set_original_encoding(not explicit, little)
    ds[tag] = RawDataElement(tag, vr, len(data), data, 0, not explicit, little)
    return ds


@pytest.mark.parametrize(
    ("keyword", "data", "expected"),
    [
        ("WindowCenter", b"40\\400 ", [40.0, 400.0]),
        ("WindowWidth", b" 1.5e2", [150.0]),
        ("RescaleIntercept", b"-1024 ", [-1024.0]),
        ("RescaleSlope", b".5", [0.5]),
        ("WindowCenter", b"4O  ", []),  # junk: pydicom decides, and nothing numeric is used
        ("WindowCenter", b"40\\", [40.0]),  # an empty value among others
        ("NumberOfFrames", b"30", [30.0]),
        ("NumberOfFrames", b"+2 ", [2.0]),
        ("PixelAspectRatio", b"4\\3 ", [4.0, 3.0]),
        ("PixelSpacing", b"0.3125\\0.3125 ", [0.3125, 0.3125]),
    ],
)
def test_numbers(keyword: str, data: bytes, expected: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert floats(_raw(keyword, data), keyword) == expected
        assert floats(_raw(keyword, data, explicit=False), keyword) == expected


@pytest.mark.parametrize("little", [True, False])
def test_words_in_either_byte_order(little: bool) -> None:
    data = (512).to_bytes(2, "little" if little else "big")
    assert value(_raw("Rows", data, little=little), "Rows") == 512
    assert value(_raw("Rows", data, explicit=False, little=little), "Rows") == 512


def test_strings_are_stripped_and_odd_ones_left_to_pydicom() -> None:
    assert (
        value(_raw("PhotometricInterpretation", b"MONOCHROME2 "), "PhotometricInterpretation")
        == "MONOCHROME2"
    )
    assert value(_raw("SOPClassUID", b"1.2.840.10008.5.1.4.1.1.2\0"), "SOPClassUID") == (
        "1.2.840.10008.5.1.4.1.1.2"
    )
    two = value(_raw("PhotometricInterpretation", b"RGB\\RGB "), "PhotometricInterpretation")
    assert list(two) == ["RGB", "RGB"]  # pydicom's multi-value, as before


def test_missing_and_converted_elements() -> None:
    ds = Dataset()
    assert value(ds, "WindowCenter") is None and value(ds, "Rows", 7) == 7
    ds.WindowCenter = [40, 400]
    assert floats(ds, "WindowCenter") == [40.0, 400.0]  # set in code: pydicom's value


def test_padding_value_takes_the_explicit_vr() -> None:
    """Pixel Padding Value is US or SS by the dictionary; an explicit VR file says which."""
    tag = Tag("PixelPaddingValue")
    for vr, expected in (("SS", -2000), ("US", 63536)):
        ds = Dataset()
        data = (-2000).to_bytes(2, "little", signed=True)
        ds[tag] = RawDataElement(tag, vr, 2, data, 0, False, True)
        assert value(ds, "PixelPaddingValue") == expected
