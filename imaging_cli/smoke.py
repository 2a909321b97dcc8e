"""Post-deploy smoke test: one synthetic instance through a deployed environment, then removed.

Stores one synthetic CT instance marked as test data (fictitious identity, PatientIdentityRemoved
YES, a description that says so) with STOW-RS, waits for the DiagnosticReport the processor
writes for it, reports how long each stage took, and deletes what it created (the study in the
DICOM store; the report, its observations and the ImagingStudy in the FHIR store). The same code
runs against Google's stores (Application Default Credentials) and against local DICOMweb/FHIR
servers (tests), since both speak the same protocols.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
from imaging_pipeline.adapters.http import request_with_retries, session_for
from imaging_pipeline.fhir.mapping import DICOM_UID_SYSTEM, study_identifier_value

from imaging_cli.synthetic_instance import ct_series

TIMEOUT_S = 30.0
ATTEMPTS = 4
TEST_DATA_DESCRIPTION = "imaging smoke test: synthetic test data, deleted by the test"


@dataclass(frozen=True)
class SmokeTarget:
    environment: str
    dicomweb_url: str
    fhir_base_url: str


@dataclass
class SmokeResult:
    study_uid: str
    instance_uid: str
    started_at: datetime
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    report: str | None = None  # DiagnosticReport/id
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.problems


def test_instance(run_id: str) -> Any:
    """A one-slice synthetic CT whose identity says it is test data (no PHI)."""
    (instance,) = ct_series(seed=f"smoke-{run_id}", slices=1)
    ds = instance.dataset
    ds.PatientName = "SMOKE^TEST"
    ds.PatientID = f"SMOKE-{run_id}"
    ds.PatientIdentityRemoved = "YES"
    ds.StudyDescription = ds.SeriesDescription = TEST_DATA_DESCRIPTION
    ds.AccessionNumber = f"SMOKE-{run_id[:10]}"
    del ds.PatientBirthDate
    return ds


def _part10(dataset: Any) -> bytes:
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


class Smoke:
    def __init__(
        self,
        target: SmokeTarget,
        *,
        dicom_session: requests.Session | None = None,
        fhir_session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.dicom = dicom_session or session_for(target.dicomweb_url)
        self.fhir = fhir_session or session_for(target.fhir_base_url)
        self.clock = clock
        self.sleep = sleep

    def run(self, *, timeout_s: float = 300.0, poll_s: float = 2.0) -> SmokeResult:
        run_id = uuid.uuid4().hex
        dataset = test_instance(run_id)
        started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        result = SmokeResult(str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID), started_at)
        try:
            start = self.clock()
            self._store(dataset)
            result.stages["store (STOW-RS)"] = self.clock() - start
            start = self.clock()
            found = self._wait_for_report(result.study_uid, started_at, timeout_s, poll_s)
            if found is None:
                result.problems.append(
                    f"no DiagnosticReport for study {result.study_uid} within {timeout_s:g} s"
                )
            else:
                result.report = f"DiagnosticReport/{found['id']}"
                result.stages["processed (until the DiagnosticReport is readable)"] = (
                    self.clock() - start
                )
        finally:
            start = self.clock()
            self._clean_up(result)
            result.stages["clean-up"] = self.clock() - start
        return result

    # --- DICOM store ----------------------------------------------------------------------

    def _store(self, dataset: Any) -> None:
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + _part10(dataset)
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = self._dicom(
            "POST",
            "/studies",
            data=body,
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
        if response.status_code not in (200, 202):
            raise SmokeError(f"STOW-RS answered HTTP {response.status_code}")

    def _dicom(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return request_with_retries(
            self.dicom,
            method,
            f"{self.target.dicomweb_url.rstrip('/')}{path}",
            dependency="dicom-store",
            max_attempts=ATTEMPTS,
            timeout_s=TIMEOUT_S,
            **kwargs,
        )

    # --- FHIR store -----------------------------------------------------------------------

    def _fhir(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return request_with_retries(
            self.fhir,
            method,
            f"{self.target.fhir_base_url.rstrip('/')}/{path}",
            dependency="fhir",
            max_attempts=ATTEMPTS,
            timeout_s=TIMEOUT_S,
            headers={"Accept": "application/fhir+json"},
            **kwargs,
        )

    def _search(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = self._fhir("GET", path, params=params)
        if response.status_code != 200:
            raise SmokeError(f"FHIR search {path} answered HTTP {response.status_code}")
        return [e["resource"] for e in response.json().get("entry", []) if "resource" in e]

    def _study(self, study_uid: str) -> dict[str, Any] | None:
        identifier = f"{DICOM_UID_SYSTEM}|{study_identifier_value(study_uid)}"
        found = self._search("ImagingStudy", {"identifier": identifier})
        return found[0] if found else None

    def _reports_for(self, study_id: str, since: datetime) -> list[dict[str, Any]]:
        # R4 has no DiagnosticReport search parameter on imagingStudy: read the reports written
        # since the test began and match the reference.
        reports = self._search(
            "DiagnosticReport",
            {"_lastUpdated": f"ge{since.isoformat().replace('+00:00', 'Z')}", "_count": "200"},
        )
        wanted = f"ImagingStudy/{study_id}"
        return [
            r
            for r in reports
            if any(str(s.get("reference", "")).endswith(wanted) for s in r.get("imagingStudy", []))
        ]

    def _wait_for_report(
        self, study_uid: str, since: datetime, timeout_s: float, poll_s: float
    ) -> dict[str, Any] | None:
        deadline = self.clock() + timeout_s
        while True:
            study = self._study(study_uid)
            if study is not None:
                reports = self._reports_for(str(study["id"]), since)
                if reports:
                    return reports[0]
            if self.clock() >= deadline:
                return None
            self.sleep(poll_s)

    # --- clean-up -------------------------------------------------------------------------

    def _clean_up(self, result: SmokeResult) -> None:
        """Deletes what the test created; each failure is reported, none stops the others."""
        try:
            study = self._study(result.study_uid)
        except Exception as exc:
            result.problems.append(f"clean-up: FHIR search failed: {exc}")
            study = None
        references: list[str] = []
        if study is not None:
            for report in self._reports_for(str(study["id"]), result.started_at):
                references.append(f"DiagnosticReport/{report['id']}")
                references += [str(r["reference"]) for r in report.get("result", [])]
            references.append(f"ImagingStudy/{study['id']}")
        for reference in references:
            self._delete(result, "FHIR", partial(self._fhir, "DELETE", reference), reference)
        study_path = f"/studies/{result.study_uid}"
        self._delete(result, "DICOM", partial(self._dicom, "DELETE", study_path), study_path)

    def _delete(
        self,
        result: SmokeResult,
        kind: str,
        send: Callable[[], requests.Response],
        what: str,
    ) -> None:
        try:
            status = send().status_code
        except Exception as exc:
            result.problems.append(f"clean-up: {kind} delete {what} failed: {exc}")
            return
        if status in (200, 202, 204, 404, 410):
            result.deleted.append(f"{kind} {what}")
        else:
            result.problems.append(f"clean-up: {kind} delete {what} answered HTTP {status}")


class SmokeError(Exception):
    """A stage failed in a way that makes waiting pointless."""
