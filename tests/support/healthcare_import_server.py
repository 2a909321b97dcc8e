"""A local server speaking the Cloud Healthcare API's DICOM import surface.

`POST /v1/projects/P/locations/L/datasets/D/dicomStores/S:import` with a `gcsSource.uri`
starts an operation that really copies: it lists the matching objects in the GCS emulator,
STOW-RS's each DICOM object into the DICOMweb server standing in for the store (Orthanc) and
counts successes and failures; `GET /v1/projects/P/locations/L/datasets/D/operations/N` answers
the long-running operation as the API does (`metadata.counter`, `done`, `error`, `logsUrl`).
Unknown stores answer 404; a missing bucket ends the operation with error code 5 (NOT_FOUND).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from imaging_pipeline.adapters.dicomweb_stow import stow_instance
from imaging_pipeline.ingest.validation import ObjectRejectedError, check_dicom

IMPORT = re.compile(
    r"^/v1/(?P<store>projects/[^/]+/locations/[^/]+/datasets/[^/]+/dicomStores/[^/:]+):import$"
)
API_TYPES = "type.googleapis.com/google.cloud.healthcare.v1"
IMPORT_METHOD = "google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData"
OPERATION = re.compile(
    r"^/v1/(?P<name>projects/[^/]+/locations/[^/]+/datasets/[^/]+/operations/\d+)$"
)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Cloud Storage wildcards of the import URI: `**` any characters, `*` none of `/`, `?` one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


class HealthcareImportServer:
    def __init__(self, dicomweb_url: str, stores: set[str], *, delay_s: float = 0.0) -> None:
        self.dicomweb_url = dicomweb_url
        self.stores = stores
        self.delay_s = delay_s  # per object: lets a test see progress while it runs
        self.operations: dict[str, dict[str, Any]] = {}
        self.polls = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(*server.start(self.path, body))

            def do_GET(self) -> None:
                self._send(*server.get(self.path))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> HealthcareImportServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def start(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        match = IMPORT.match(path)
        if not match:
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        store = match["store"]
        if store not in self.stores:
            return 404, {"error": {"code": 404, "message": f"{store} not found"}}
        uri = str((body.get("gcsSource") or {}).get("uri", ""))
        if not uri.startswith("gs://"):
            return 400, {"error": {"code": 400, "message": "gcsSource.uri must be gs://"}}
        dataset = store.rsplit("/dicomStores/", 1)[0]
        with self._lock:
            name = f"{dataset}/operations/{len(self.operations) + 1}"
            self.operations[name] = {
                "name": name,
                "metadata": {
                    "@type": f"{API_TYPES}.OperationMetadata",
                    "apiMethodName": IMPORT_METHOD,
                    "logsUrl": f"https://console.cloud.google.com/logs/query?operation={name}",
                    "counter": {},
                },
            }
        threading.Thread(target=self._run, args=(name, uri), daemon=True).start()
        return 200, {"name": name}

    def get(self, path: str) -> tuple[int, Any]:
        match = OPERATION.match(path)
        with self._lock:
            self.polls += 1
            operation = self.operations.get(match["name"]) if match else None
            if operation is None:
                return 404, {"error": {"code": 404, "message": "operation not found"}}
            return 200, json.loads(json.dumps(operation))

    def _update(self, name: str, **fields: Any) -> None:
        with self._lock:
            operation = self.operations[name]
            for key, value in fields.items():
                if key == "counter":
                    operation["metadata"]["counter"] = {k: str(v) for k, v in value.items() if v}
                else:
                    operation[key] = value

    def _run(self, name: str, uri: str) -> None:
        import time

        from google.cloud import storage
        from google.cloud.exceptions import NotFound

        bucket_name, _, pattern = uri.removeprefix("gs://").partition("/")
        matcher = glob_regex(pattern or "**")
        try:
            blobs = [
                b
                for b in storage.Client().list_blobs(bucket_name)
                if matcher.match(b.name) and not b.name.endswith("/")
            ]
        except NotFound:
            self._update(
                name,
                done=True,
                error={"code": 5, "message": f"bucket {bucket_name} not found"},
            )
            return
        success = failure = 0
        session = requests.Session()
        for index, blob in enumerate(blobs):
            self._update(
                name,
                counter={"success": success, "failure": failure, "pending": len(blobs) - index},
            )
            time.sleep(self.delay_s)
            try:
                stow_instance(session, self.dicomweb_url, check_dicom(blob.download_as_bytes()))
                success += 1
            except (ObjectRejectedError, Exception):  # each failure is only counted and logged
                failure += 1
        self._update(name, counter={"success": success, "failure": failure, "pending": 0})
        result: dict[str, Any] = {"done": True}
        if failure:
            result["error"] = {
                "code": 2,
                "message": f"{failure} of {len(blobs)} objects failed to import; see the logs",
            }
        else:
            result["response"] = {"@type": f"{API_TYPES}.dicom.ImportDicomDataResponse"}
        self._update(name, **result)
