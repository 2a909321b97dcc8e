"""A real FHIR R4 server on loopback: @medplum/fhir-router's in-memory repository under Node.

Stands in for the Cloud Healthcare FHIR store in tests and in `imaging demo`. It is a real
implementation of FHIR R4 REST (read, search, create, update, delete, transaction Bundles with
conditional create/update and urn:uuid reference rewriting), not a double of our code; see the
header of fhir_server.mjs for how it differs from Google's store. Data lives in memory only.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import requests

from imaging_dev.servers._base import SubprocessServer

SCRIPT = Path(__file__).with_name("fhir_server.mjs")
FHIR_JSON = "application/fhir+json"
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+)/fhir/R4)")


class FhirServer(SubprocessServer):
    """`with FhirServer() as f: requests.get(f.base_url + "/Patient")`."""

    name = "fhir"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        node: str = "node",
        startup_timeout: float = 30.0,
        validate: bool = True,
        referential_integrity: bool = True,
    ) -> None:
        super().__init__(workdir)
        self.node = node
        # Both as Google's store is configured here: structure validation, no dangling references.
        self.validate = validate
        self.referential_integrity = referential_integrity
        self.startup_timeout = startup_timeout
        self.port = 0
        self.base_url = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        if shutil.which(self.node) is None:
            raise FileNotFoundError(f"Node.js not found: {self.node} (Node >= 20 is required)")
        # Port 0: Node binds a free port itself and prints it, so there is no probe-then-bind race.
        flags = ([] if self.validate else ["--no-validate"]) + (
            [] if self.referential_integrity else ["--no-referential-integrity"]
        )
        self._spawn([self.node, str(SCRIPT), "0", *flags], cwd=SCRIPT.parent)
        self._wait_ready(self._ready, self.startup_timeout)

    def _ready(self) -> bool:
        match = _LISTENING.search(self.log_path.read_text(errors="replace"))
        if match is None:
            return False
        self.base_url, self.port = match.group(1), int(match.group(2))
        return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def reset(self) -> None:
        """Clears all resources via our test-only `POST $reset` route (see fhir_server.mjs)."""
        response = requests.post(f"{self.base_url}/$reset", timeout=10)
        response.raise_for_status()
