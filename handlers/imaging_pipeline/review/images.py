"""Images and DICOM headers for the study page, over DICOMweb (WADO-RS, QIDO-RS).

The image is the project's renderer applied to the retrieved instance, so the reviewer sees
exactly what the analyzer saw; for CT a window preset replaces the stored VOI the way a viewer's
preset does (LINEAR window in Hounsfield units, after the modality transform).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from imaging_pipeline.adapters.dicomweb import MEDIA_TYPES, make_client
from imaging_pipeline.errors import PermanentError, TransientError, classify_http_status

# name -> (centre, width) in HU; None keeps what the object declares (or the robust window).
CT_PRESETS: dict[str, tuple[float, float] | None] = {
    "default": None,
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
IMAGE_SIZE = 768
_CACHE_ENTRIES = 48
_FRAME_VOI_MACROS = ("FrameVOILUTSequence",)


@dataclass(frozen=True)
class PatientHeader:
    """What a radiologist checks before reading: shown to authenticated users, never logged."""

    name: str
    patient_id: str
    birth_date: str
    sex: str
    accession: str
    study_date: str
    study_description: str
    body_part: str


def with_window(dataset: Any, centre: float, width: float) -> Any:
    """A copy of the dataset whose only VOI is this LINEAR window (functional groups too)."""
    ds = copy_dataset(dataset)
    for keyword in ("VOILUTSequence", "WindowCenterWidthExplanation"):
        if keyword in ds:
            del ds[keyword]
    ds.WindowCenter = centre
    ds.WindowWidth = width
    ds.VOILUTFunction = "LINEAR"
    for groups_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(groups_keyword) or []:
            for macro in _FRAME_VOI_MACROS:
                if macro in group:
                    del group[macro]
    return ds


def copy_dataset(dataset: Any) -> Any:
    import copy

    return copy.deepcopy(dataset)


def _person_name(value: Any) -> str:
    if isinstance(value, dict):  # DICOM JSON PN: {"Alphabetic": "Family^Given"}
        value = value.get("Alphabetic", "")
    return " ".join(part for part in str(value or "").split("^") if part).strip()


def header_from_json(metadata: dict[str, Any]) -> PatientHeader:
    """PatientHeader from WADO-RS metadata (DICOM JSON, tags as keys)."""

    def value(tag: str) -> Any:
        values = metadata.get(tag, {}).get("Value") or [""]
        return values[0]

    return PatientHeader(
        name=_person_name(value("00100010")),
        patient_id=str(value("00100020")),
        birth_date=str(value("00100030")),
        sex=str(value("00100040")),
        accession=str(value("00080050")),
        study_date=str(value("00080020")),
        study_description=str(value("00081030")),
        body_part=str(value("00180015")),
    )


class DicomSource:
    """WADO-RS/QIDO-RS reads for the app, with a small cache of rendered images."""

    def __init__(self, dicomweb_url: str) -> None:
        self.dicomweb_url = dicomweb_url
        self._lock = threading.Lock()
        self._rendered: OrderedDict[tuple[str, ...], tuple[bytes, str]] = OrderedDict()

    @functools.cached_property
    def client(self) -> Any:
        return make_client(self.dicomweb_url)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import requests
        from retrying import RetryError  # type: ignore[import-untyped]

        try:
            return getattr(self.client, method)(*args, **kwargs)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 502
            raise classify_http_status("dicomweb", status) from None
        except (RetryError, requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError("dicomweb", type(exc).__name__) from None

    def retrieve(self, study: str, series: str, instance: str) -> Any:
        return self._call("retrieve_instance", study, series, instance, media_types=MEDIA_TYPES)

    def header(self, study: str, series: str, instance: str) -> PatientHeader:
        metadata = self._call("retrieve_instance_metadata", study, series, instance)
        return header_from_json(metadata)

    def structured_reports(self, study: str) -> list[tuple[str, str]]:
        """(series, instance) UIDs of the SR objects in the study (our TID 1500 reports)."""
        found = []
        for series in self._call("search_for_series", study, search_filters={"Modality": "SR"}):
            series_uid = series.get("0020000E", {}).get("Value", [""])[0]
            for item in self._call("search_for_instances", study, series_uid):
                found.append((series_uid, item.get("00080018", {}).get("Value", [""])[0]))
        return found

    def retrieve_part10(self, study: str, series: str, instance: str) -> bytes:
        from io import BytesIO

        dataset = self.retrieve(study, series, instance)
        buffer = BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()

    def rendered(self, study: str, series: str, instance: str, preset: str) -> tuple[bytes, str]:
        key = (study, series, instance, preset)
        with self._lock:
            if key in self._rendered:
                self._rendered.move_to_end(key)
                return self._rendered[key]
        result = self._render(self.retrieve(study, series, instance), preset)
        with self._lock:
            self._rendered[key] = result
            while len(self._rendered) > _CACHE_ENTRIES:
                self._rendered.popitem(last=False)
        return result

    @staticmethod
    def _render(dataset: Any, preset: str) -> tuple[bytes, str]:
        from imaging_pipeline.render import RenderOptions, RenderRejected, render_dataset

        window = CT_PRESETS.get(preset)
        if window is not None and str(dataset.get("Modality", "")).upper() == "CT":
            dataset = with_window(dataset, *window)
        try:
            image = render_dataset(dataset, RenderOptions(max_size=IMAGE_SIZE, format="jpeg"))
        except RenderRejected as exc:
            raise PermanentError("unrenderable", exc.reason.value) from None
        return image.data, image.media_type
