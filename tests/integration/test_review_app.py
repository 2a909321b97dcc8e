"""The review app over HTTP (Flask test client) against the real FHIR server and Orthanc:
IAP verification with locally minted keys, worklist order, review writes, idempotency,
concurrent reviews, and no PHI in the access log."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from imaging_pipeline import logs
from imaging_pipeline.review.app import create_app
from imaging_pipeline.review.config import load_review_config

from tests.support.review import (
    AUDIENCE,
    ec_key,
    iap_keys_server,
    info_for,
    mint,
    store_report,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def iap_keys() -> Iterator[tuple[Any, str]]:
    """A signing key and the URL serving its public half, as IAP publishes its own."""
    key = ec_key()
    with iap_keys_server(key) as url:
        yield key, url


def _config(fhir_url: str, dicomweb_url: str, **extra: str) -> Any:
    return load_review_config(
        {
            "FHIR_BASE_URL": fhir_url,
            "DICOMWEB_URL": dicomweb_url,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            "EVENTS_TOPIC": "projects/local-demo/topics/dicom-notifications",
            "DEAD_LETTER_SUBSCRIPTION": "projects/local-demo/subscriptions/dead-letters",
            **extra,
        }
    )


@pytest.fixture
def seeded(fhir_server: Any, orthanc: Any) -> dict[str, str]:
    """Three reports of different priorities, the critical one for pydicom's CT in Orthanc."""
    from pydicom import examples

    fhir_server.reset()
    orthanc.reset()
    ct = examples.ct
    buffer = io.BytesIO()
    ct.save_as(buffer, enforce_file_format=True)
    requests.post(f"{orthanc.url}/instances", data=buffer.getvalue(), timeout=30).raise_for_status()
    ids = {
        "routine": store_report(
            fhir_server.base_url,
            info_for("2.25.1", "2.25.1.1", "2.25.1.1.1"),
            "routine",
            "2026-12-01T08:00:00+00:00",
        ),
        "critical": store_report(
            fhir_server.base_url,
            info_for(str(ct.StudyInstanceUID), str(ct.SeriesInstanceUID), str(ct.SOPInstanceUID)),
            "critical",
            "2026-12-01T09:00:00+00:00",
        ),
        "urgent": store_report(
            fhir_server.base_url,
            info_for("2.25.2", "2.25.2.1", "2.25.2.1.1"),
            "urgent",
            "2026-12-01T07:00:00+00:00",
        ),
    }
    ids["patient_name"] = str(ct.PatientName).split("^")[0]
    ids["patient_id"] = str(ct.PatientID)
    return ids


def _client(fhir_server: Any, orthanc: Any, **extra: str) -> Any:
    app = create_app(_config(fhir_server.base_url, orthanc.dicomweb_url, **extra))
    return app.test_client()


def test_iap_mode_rejects_missing_expired_and_forged_tokens(
    fhir_server: Any, orthanc: Any, iap_keys: tuple[Any, str], seeded: dict[str, str]
) -> None:
    key, certs_url = iap_keys
    client = _client(fhir_server, orthanc, IAP_AUDIENCE=AUDIENCE, IAP_CERTS_URL=certs_url)
    header = "x-goog-iap-jwt-assertion"
    for path in ("/worklist", f"/reports/{seeded['critical']}", "/assets/htmx.min.js"):
        assert client.get(path).status_code == 401, path
    bad = {
        "expired": mint(key, expires_in=-600),
        "wrong key": mint(ec_key()),
        "wrong audience": mint(key, audience="/projects/1/global/backendServices/2"),
        "garbage": "not-a-jwt",
    }
    for name, token in bad.items():
        response = client.get("/worklist", headers={header: token})
        assert response.status_code == 401, name
    good = client.get("/worklist", headers={header: mint(key)})
    assert good.status_code == 200
    assert b"dr.reviewer@example.org" in good.data
    assert b"Local mode" not in good.data
    # A forged POST is refused before it can touch FHIR.
    post = client.post(
        f"/reports/{seeded['critical']}/review",
        data={"decision": "accept", "version": "1"},
        headers={header: mint(ec_key()), "HX-Request": "true"},
    )
    assert post.status_code == 401


def test_worklist_is_by_priority_then_time_with_counts(
    fhir_server: Any, orthanc: Any, seeded: dict[str, str]
) -> None:
    client = _client(fhir_server, orthanc, AUTH_MODE="local")
    page = client.get("/worklist").data.decode()
    assert "Local mode, no authentication" in page
    order = [page.index(f'data-report="{seeded[p]}"') for p in ("critical", "urgent", "routine")]
    assert order == sorted(order)
    for priority in ("critical", "urgent", "routine"):
        assert f'data-priority="{priority}">1<' in page
    only_urgent = client.get("/worklist?priority=urgent").data.decode()
    assert seeded["urgent"] in only_urgent and seeded["critical"] not in only_urgent
    none_accepted = client.get("/worklist?review=accepted").data.decode()
    assert "No reports match." in none_accepted
    only_mr = client.get("/worklist?modality=MR").data.decode()
    assert "No reports match." in only_mr


def test_study_page_header_only_for_signed_in_users_and_never_logged(
    fhir_server: Any, orthanc: Any, iap_keys: tuple[Any, str], seeded: dict[str, str]
) -> None:
    key, certs_url = iap_keys
    stream = io.StringIO()
    logs.configure_logging("INFO")
    handler = logs.logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logs.logging.getLogger().addHandler(handler)
    try:
        iap = _client(fhir_server, orthanc, IAP_AUDIENCE=AUDIENCE, IAP_CERTS_URL=certs_url)
        page = iap.get(
            f"/reports/{seeded['critical']}",
            headers={"x-goog-iap-jwt-assertion": mint(key)},
        ).data.decode()
        assert seeded["patient_name"] in page and seeded["patient_id"] in page
        assert "fracture-terms" in page and 'class="region' in page
        local = _client(fhir_server, orthanc, AUTH_MODE="local")
        anonymous = local.get(f"/reports/{seeded['critical']}").data.decode()
        assert seeded["patient_name"] not in anonymous and 'id="no-header"' in anonymous
        image = local.get(page.split('id="image" src="')[1].split('"')[0].replace("&amp;", "&"))
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
    finally:
        logs.logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    access = [line for line in lines if line.get("event") == "http_request"]
    assert len(access) >= 3
    text = stream.getvalue()
    assert seeded["patient_name"] not in text and seeded["patient_id"] not in text


def test_accept_writes_final_and_provenance_once_and_conflicts_are_explained(
    fhir_server: Any, orthanc: Any, seeded: dict[str, str]
) -> None:
    client = _client(fhir_server, orthanc, AUTH_MODE="local")
    report_id = seeded["urgent"]
    fhir = fhir_server.base_url
    version = requests.get(f"{fhir}/DiagnosticReport/{report_id}", timeout=10).json()["meta"][
        "versionId"
    ]
    htmx = {"HX-Request": "true"}

    refused = client.post(
        f"/reports/{report_id}/review", data={"decision": "accept", "version": version}
    )
    assert refused.status_code == 403  # no htmx header: a cross-site form cannot post

    first = client.post(
        f"/reports/{report_id}/review",
        data={"decision": "accept", "version": version},
        headers=htmx,
    )
    assert first.status_code == 200 and b"Saved" in first.data
    after = requests.get(f"{fhir}/DiagnosticReport/{report_id}", timeout=10).json()
    assert after["status"] == "final"
    provenance = requests.get(
        f"{fhir}/Provenance", params={"target": f"DiagnosticReport/{report_id}"}, timeout=10
    ).json()
    assert provenance.get("total", len(provenance.get("entry", []))) == 1

    again = client.post(
        f"/reports/{report_id}/review",
        data={"decision": "accept", "version": version},
        headers=htmx,
    )
    assert again.status_code == 200 and b"nothing changed" in again.data
    unchanged = requests.get(f"{fhir}/DiagnosticReport/{report_id}", timeout=10).json()
    assert unchanged["meta"]["versionId"] == after["meta"]["versionId"]

    # A second reviewer who opened the page before the accept now rejects: refused, explained.
    conflict = client.post(
        f"/reports/{report_id}/review",
        data={"decision": "reject", "version": version, "comment": "my careful note"},
        headers=htmx,
    )
    assert conflict.status_code == 409
    text = conflict.data.decode()
    assert "Someone else reviewed this report" in text and "my careful note" in text
    assert (
        requests.get(f"{fhir}/DiagnosticReport/{report_id}", timeout=10).json()["status"] == "final"
    )


def test_worklist_picks_up_reports_written_after_it_loaded(
    fhir_server: Any, orthanc: Any, seeded: dict[str, str]
) -> None:
    client = _client(fhir_server, orthanc, AUTH_MODE="local", WORKLIST_REFRESH_S="0")
    assert seeded["critical"] in client.get("/worklist").data.decode()
    new = store_report(
        fhir_server.base_url,
        info_for("2.25.9", "2.25.9.1", "2.25.9.1.1"),
        "critical",
        "2026-12-01T06:00:00+00:00",
    )
    deadline = time.monotonic() + 30
    while True:  # the index refreshes in the background; a later request sees the new report
        page = client.get("/worklist").data.decode()
        if f'data-report="{new}"' in page:
            break
        assert time.monotonic() < deadline, "the new report never reached the worklist"
        time.sleep(0.2)
    # Oldest critical first: the new one (06:00) comes before the seeded one (09:00).
    assert page.index(f'data-report="{new}"') < page.index(f'data-report="{seeded["critical"]}"')
