"""Failure classification, HTTP retry policy and the processor's lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from imaging_pipeline.adapters.http import MAX_BACKOFF_S, backoff_seconds, uses_google_auth
from imaging_pipeline.errors import PermanentError, TransientError, classify_http_status

HANDLERS = Path(__file__).resolve().parents[3] / "handlers"


@pytest.mark.parametrize("status", [401, 403, 408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(status: int) -> None:
    assert isinstance(classify_http_status("fhir", status), TransientError)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, "not_found"),
        (410, "not_found"),
        (400, "rejected_by_server"),
        (406, "rejected_by_server"),
        (422, "rejected_by_server"),
    ],
)
def test_permanent_statuses(status: int, reason: str) -> None:
    error = classify_http_status("dicomweb", status)
    assert isinstance(error, PermanentError) and error.reason == reason


def test_backoff_is_bounded_and_honours_retry_after() -> None:
    assert all(0 <= backoff_seconds(a) <= MAX_BACKOFF_S for a in range(20))
    assert backoff_seconds(0, "3") == 3.0
    assert backoff_seconds(0, "3600") == MAX_BACKOFF_S
    assert backoff_seconds(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= 0.2


@pytest.mark.parametrize(
    ("url", "google"),
    [
        ("https://healthcare.googleapis.com/v1/projects/p", True),
        ("https://vision.googleapis.com", True),
        ("http://127.0.0.1:8042/dicom-web", False),
        ("https://googleapis.com.evil.example", False),
    ],
)
def test_google_auth_only_for_google_hosts(url: str, google: bool) -> None:
    assert uses_google_auth(url) is google


def test_entry_module_imports_no_heavy_library() -> None:
    """Cold start: the processor's module must not import what only an event needs."""
    heavy = [
        "numpy",
        "pydicom",
        "PIL",
        "dicomweb_client",
        "google.cloud.pubsub_v1",
        "google.auth",
        "fhir.resources",
        "pytesseract",
        "grpc",
        "requests",
        "imaging_pipeline.render",
    ]
    code = (
        "import sys, json, imaging_pipeline.process\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=HANDLERS,
        env={"PYTHONPATH": str(HANDLERS)},
    )
    assert json.loads(out.stdout) == []
