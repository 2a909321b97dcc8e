"""Reports for the review app's tests and benchmark, built by the processor's own FHIR mapping,
and IAP assertions minted with local test keys.

`store_report` writes one instance's full transaction (Device, ImagingStudy, Observations,
DiagnosticReport) exactly as the processor would; `seed_reports` bulk-creates many
DiagnosticReports (the worklist's resource) in large transactions, for the 10,000-report
benchmark, where conditional writes would only slow the seeding down.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from imaging_pipeline.adapters.fhir_client import FhirClient
from imaging_pipeline.analysis.base import Finding
from imaging_pipeline.fhir.mapping import (
    AnalyzerIdentity,
    InstanceInfo,
    build_transaction,
    validate_bundle,
)
from imaging_pipeline.rules import assess
from imaging_pipeline.settings import Rule

RULES = (
    Rule(name="fracture-terms", finding="label", terms=("fracture",), priority="critical"),
    Rule(name="mass-terms", finding="object", terms=("mass",), min_score=0.3, priority="urgent"),
)
ANALYZER = AnalyzerIdentity("local-analyzer", "1.0")
PATIENTS = "urn:test:patients"
# Findings that make each priority under RULES.
FINDINGS: dict[str, list[Finding]] = {
    "critical": [
        Finding("label", "fracture", 0.91),
        Finding("object", "mass", 0.42, (0.2, 0.3, 0.5, 0.6)),
    ],
    "urgent": [Finding("object", "mass", 0.55, box=(0.25, 0.25, 0.6, 0.7))],
    "routine": [Finding("label", "bone", 0.7)],
}


def info_for(study: str, series: str, instance: str, modality: str = "CT") -> InstanceInfo:
    return InstanceInfo(
        study_uid=study,
        series_uid=series,
        instance_uid=instance,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        modality=modality,
        patient_id="TEST-PATIENT-1",
    )


def store_report(fhir_base_url: str, info: InstanceInfo, priority: str, issued: str) -> str:
    """One processor transaction; returns the DiagnosticReport id."""
    findings = FINDINGS[priority]
    bundle = build_transaction(
        info, findings, assess(findings, RULES), ANALYZER, patient_system=PATIENTS, issued=issued
    )
    validate_bundle(bundle)
    outcomes = FhirClient(fhir_base_url).transaction(bundle)
    return outcomes[-1].reference.split("/", 1)[1]


def worklist_report(index: int, priority: str, modality: str, issued: str) -> dict[str, Any]:
    """The DiagnosticReport the processor writes, standalone (no references to resolve)."""
    info = info_for(f"2.25.{index}", f"2.25.{index}.1", f"2.25.{index}.1.1", modality)
    findings = FINDINGS[priority]
    bundle = build_transaction(
        info, findings, assess(findings, RULES), ANALYZER, patient_system=PATIENTS, issued=issued
    )
    report = dict(bundle["entry"][-1]["resource"])
    report.pop("result", None)
    report.pop("imagingStudy", None)
    return report


def seed_reports(
    fhir_base_url: str,
    count: int,
    *,
    batch: int = 500,
    seed: int = 7,
    modalities: Sequence[str] = ("CT", "MR", "CR", "DX", "US"),
) -> dict[str, int]:
    """Creates `count` reports, about 5% critical and 20% urgent; returns counts by priority."""
    rng = random.Random(seed)  # noqa: S311  (test data, not cryptography)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    totals = {"critical": 0, "urgent": 0, "routine": 0}
    session = requests.Session()
    for first in range(0, count, batch):
        entries = []
        for index in range(first, min(first + batch, count)):
            roll = rng.random()
            priority = "critical" if roll < 0.05 else "urgent" if roll < 0.25 else "routine"
            totals[priority] += 1
            issued = (start + timedelta(seconds=index * 97)).isoformat(timespec="seconds")
            report = worklist_report(index, priority, rng.choice(list(modalities)), issued)
            entries.append(
                {"resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}}
            )
        response = session.post(
            fhir_base_url,
            json={"resourceType": "Bundle", "type": "batch", "entry": entries},
            headers={"Content-Type": "application/fhir+json"},
            timeout=300,
        )
        response.raise_for_status()
    return totals


# --- IAP ----------------------------------------------------------------------------------------
AUDIENCE = "/projects/123456789/global/backendServices/987654321"
KID = "test-key-1"


def ec_key() -> Any:
    """A P-256 key, the kind IAP signs its assertions with (ES256)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: Any, private: bool) -> str:
    from cryptography.hazmat.primitives import serialization

    if private:
        return str(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def mint(
    key: Any,
    *,
    audience: str = AUDIENCE,
    expires_in: int = 600,
    kid: str = KID,
    email: str = "dr.reviewer@example.org",
) -> str:
    """An assertion shaped like IAP's (`x-goog-iap-jwt-assertion`), signed with `key`."""
    from google.auth import crypt, jwt

    now = int(time.time())
    signer = crypt.ES256Signer.from_string(_pem(key, private=True), key_id=kid)
    payload = {
        "iss": "https://cloud.google.com/iap",
        "aud": audience,
        "sub": "accounts.google.com:1234",
        "email": f"accounts.google.com:{email}",
        "iat": now - 60,
        "exp": now + expires_in,
    }
    return str(jwt.encode(signer, payload).decode())


@contextmanager
def iap_keys_server(key: Any, kid: str = KID) -> Iterator[str]:
    """Serves the public key as IAP publishes its own (JSON: key id -> PEM); yields the URL."""
    body = json.dumps({kid: _pem(key, private=False)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/iap/verify/public_key"
    finally:
        server.shutdown()
        server.server_close()
