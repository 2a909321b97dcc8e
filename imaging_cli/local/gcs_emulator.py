"""Cloud Storage for tests: PyPI `gcp-storage-emulator`, in memory, on a free loopback port.

A test double of Google Cloud Storage's JSON API (buckets, objects, upload, download, copy,
metadata), run in-process in a background thread so it starts instantly. The real
`google-cloud-storage` client talks to it through STORAGE_EMULATOR_HOST or an explicit
`api_endpoint` (see `.client()`).
"""

from __future__ import annotations

import logging
from typing import Any

import google.cloud.storage as storage
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials

from imaging_cli.local._base import LOOPBACK, LocalServer, tcp_accepts


class GcsEmulator(LocalServer):
    """`with GcsEmulator() as gcs: gcs.client().create_bucket("staging")`."""

    name = "gcs"

    def __init__(self, *, project: str = "test", default_bucket: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.default_bucket = default_bucket
        self._server: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        """The value for STORAGE_EMULATOR_HOST (the client wants the scheme included)."""
        return f"http://{LOOPBACK}:{self.port}"

    def _start(self) -> None:
        # The emulator logs every request at INFO; that is noise in test output.
        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        server = create_server(LOOPBACK, 0, in_memory=True, default_bucket=self.default_bucket)
        server._api.daemon = True  # never keep the interpreter alive if stop() is skipped
        server.start()
        self._server = server
        self.port = server._api._httpd.server_address[1]
        if not tcp_accepts(self.port):
            raise RuntimeError(f"GCS emulator is not accepting connections on {self.url}")

    def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def client(self) -> storage.Client:
        """A real storage client pointed at this emulator, with no credentials."""
        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def reset(self) -> None:
        """Deletes all buckets and objects."""
        if self._server is not None:
            self._server.wipe()
            if self.default_bucket:
                self.client().create_bucket(self.default_bucket)
