"""The synthetic study set: deterministic, readable by pydicom, and the cases it promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_rescale

from imaging_dev.synthetic import (
    SAMPLE_FILES,
    burned_in_text_image,
    ct_series,
    sample_files,
    study_set,
    write_instances,
)


def test_same_seed_same_uids_other_seed_other_uids() -> None:
    uids = [i.dataset.SOPInstanceUID for i in study_set("a")]
    assert uids == [i.dataset.SOPInstanceUID for i in study_set("a")]
    assert not set(uids) & {i.dataset.SOPInstanceUID for i in study_set("b")}
    assert len(set(uids)) == len(uids) == 8


def test_files_round_trip_through_pydicom(tmp_path: Path) -> None:
    instances = study_set()
    paths = write_instances(instances, tmp_path)
    modalities = []
    for instance, path in zip(instances, paths, strict=True):
        ds = pydicom.dcmread(path)
        assert ds.SOPInstanceUID == instance.dataset.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.pixel_array.shape[:2] == (ds.Rows, ds.Columns)
        modalities.append(ds.Modality)
    assert modalities == ["CT", "CT", "CT", "MR", "CR", "OT", "US", "DX"]


def test_ct_is_in_hounsfield_units() -> None:
    ds = ct_series(slices=1)[0].dataset
    hu = apply_rescale(ds.pixel_array, ds)
    assert hu.min() == -1000 and hu.max() == 700  # air and the bone insert
    assert np.count_nonzero(hu == 40) > hu.size // 3  # soft tissue fills the body


def test_photometric_cases() -> None:
    by_modality = {i.modality: i.dataset for i in study_set()}
    assert by_modality["CR"].PhotometricInterpretation == "MONOCHROME1"
    assert by_modality["US"].PhotometricInterpretation == "RGB"
    assert by_modality["US"].pixel_array.shape[-1] == 3
    assert len(np.unique(by_modality["DX"].pixel_array)) == 1  # the blank exposure


def test_burned_in_text_is_in_the_pixels() -> None:
    ds = burned_in_text_image().dataset
    pixels = ds.pixel_array
    assert ds.BurnedInAnnotation == "YES"
    assert 0.01 < np.count_nonzero(pixels > 128) / pixels.size < 0.3  # strokes, not a block


def test_synthetic_identity_is_fictitious() -> None:
    for instance in study_set():
        assert str(instance.dataset.PatientName) == "Synthetic^Demo"


def test_sample_files_are_bundled_with_distinct_instances() -> None:
    paths = sample_files()
    assert [p.name for p in paths] == list(SAMPLE_FILES)
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths}
    assert len(uids) == len(paths)  # no two samples are the same instance
