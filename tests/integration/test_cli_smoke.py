"""`imaging smoke ENV` against the local pipeline: the same code path as against Google's
stores, with Orthanc standing in for the DICOM store and the FHIR server for the FHIR store,
and the real processor between them.

Two gaps of the local stand-ins are bridged here, each doing what the Cloud Healthcare API
does: Orthanc cannot publish store notifications (a notifier thread publishes the store's
message for each new instance, as `imaging backfill` would), and Orthanc's DICOMweb plugin has
no DELETE (the Healthcare API's DICOMweb extension); a small proxy turns
`DELETE /studies/{uid}` into Orthanc's own REST delete and forwards everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from imaging_pipeline.sr.build import SR_SOP_CLASS_UID

from imaging_cli.main import main
from imaging_cli.store_notifications import (
    StoredInstance,
    list_instances,
    publish_notifications,
    publisher_client,
)
from imaging_dev.local_pipeline import NOTIFICATION_TOPIC, STORE, LocalPipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class _Notifier(threading.Thread):
    """Publishes the store's notification for every instance that appears in Orthanc."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.stop = threading.Event()
        self.published: list[StoredInstance] = []

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.wait(0.2):
            instances = list(list_instances(session, self.pipeline.orthanc.dicomweb_url))
            new = [i for i in instances if i not in self.published]
            if new:
                # A publisher per batch: publish_notifications stops the one it is given.
                publisher = publisher_client(emulator_host=self.pipeline.pubsub.host)
                publish_notifications(new, STORE, NOTIFICATION_TOPIC, publisher=publisher)
                self.published += new


def _delete_proxy(orthanc_url: str) -> ThreadingHTTPServer:
    upstream = f"{orthanc_url}/dicom-web"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, response: requests.Response) -> None:
            self.send_response(response.status_code)
            for name in ("Content-Type",):
                if name in response.headers:
                    self.send_header(name, response.headers[name])
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            self._reply(requests.post(upstream + self.path, data=body, headers=headers, timeout=60))

        def do_DELETE(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "studies":
                self.send_response(405)
                self.end_headers()
                return
            found = requests.post(f"{orthanc_url}/tools/lookup", data=parts[1], timeout=30).json()
            studies = [f for f in found if f.get("Type") == "Study"]
            if not studies:
                self.send_response(404)
                self.end_headers()
                return
            deleted = requests.delete(f"{orthanc_url}/studies/{studies[0]['ID']}", timeout=30)
            self._reply(deleted)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def pipeline() -> Iterator[LocalPipeline]:
    with LocalPipeline() as running:
        yield running


def test_smoke_passes_reports_each_stage_and_leaves_nothing_behind(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    notifier = _Notifier(pipeline)
    notifier.start()
    proxy = _delete_proxy(pipeline.orthanc.url)
    try:
        status = main(
            [
                "smoke",
                "dev",
                "--dicomweb-url",
                f"http://127.0.0.1:{proxy.server_port}",
                "--fhir-url",
                pipeline.fhir.base_url,
                "--timeout",
                "120",
            ]
        )
    finally:
        notifier.stop.set()
        proxy.shutdown()
    out = capsys.readouterr()
    assert status == 0, out.err + out.out
    lines = out.out.splitlines()
    assert lines[0].startswith("smoke test of dev: http://127.0.0.1:")
    for stage in ("store (STOW-RS)", "processed (until the DiagnosticReport is readable)"):
        assert any(line.endswith(f" s  {stage}") for line in lines), out.out
    assert lines[-1] == "passed"
    deleted = next(line for line in lines if line.startswith("deleted: "))
    assert "FHIR DiagnosticReport/" in deleted and "FHIR ImagingStudy/" in deleted
    assert "DICOM /studies/" in deleted

    # It went through the processor, and nothing it created is left. The store also notifies
    # for the SR the processor wrote (if it appeared before the notifier stopped): skipped.
    images = [i for i in notifier.published if i.modality != "SR"]
    assert len(images) == 1, notifier.published
    assert all(i.sop_class_uid == SR_SOP_CLASS_UID for i in notifier.published if i not in images)
    assert pipeline.orthanc.study_count() == 0
    fhir = pipeline.fhir.base_url
    for kind in ("DiagnosticReport", "ImagingStudy"):
        bundle = requests.get(f"{fhir}/{kind}", timeout=30).json()
        assert not bundle.get("entry"), bundle


def test_smoke_fails_when_no_report_appears_and_still_cleans_up(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    """No notification is published: the processor never runs, the smoke test times out,
    exits 1, and still deletes the instance it stored."""
    proxy = _delete_proxy(pipeline.orthanc.url)
    try:
        status = main(
            [
                "smoke",
                "dev",
                "--dicomweb-url",
                f"http://127.0.0.1:{proxy.server_port}",
                "--fhir-url",
                pipeline.fhir.base_url,
                "--timeout",
                "3",
            ]
        )
    finally:
        proxy.shutdown()
    out = capsys.readouterr()
    assert status == 1
    assert "FAILED: no DiagnosticReport for study" in out.err
    assert out.out.splitlines()[-1] == "failed"
    assert pipeline.orthanc.study_count() == 0


def test_the_test_instance_is_marked_as_test_data() -> None:
    from imaging_cli.smoke import TEST_DATA_DESCRIPTION, test_instance

    ds = test_instance("abc123")
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.PatientName == "SMOKE^TEST" and ds.PatientID == "SMOKE-abc123"
    assert ds.StudyDescription == TEST_DATA_DESCRIPTION
    assert "PatientBirthDate" not in ds
