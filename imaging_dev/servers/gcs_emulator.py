"""Cloud Storage for tests: PyPI `gcp-storage-emulator`, in memory, on a free loopback port.

A test double of Google Cloud Storage's JSON API (buckets, objects, upload, download, copy,
metadata), run in-process in a background thread so it starts instantly. The emulator ignores
generation preconditions (ifGenerationMatch...); we serve it through a handler that enforces
them (_gcs_preconditions), since safe moves depend on them. The real
`google-cloud-storage` client talks to it through STORAGE_EMULATOR_HOST or an explicit
`api_endpoint` (see `.client()`).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from http.server import HTTPServer
from typing import Any

import google.cloud.storage as storage
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials

from imaging_dev.servers._base import LOOPBACK, LocalServer, tcp_accepts
from imaging_dev.servers._gcs_preconditions import PreconditionRequestHandler


class GcsEmulator(LocalServer):
    """`with GcsEmulator() as gcs: gcs.client().create_bucket("staging")`."""

    name = "gcs"

    def __init__(self, *, project: str = "test", default_bucket: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.default_bucket = default_bucket
        self._server: Any = None
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The value for STORAGE_EMULATOR_HOST (the client wants the scheme included)."""
        return f"http://{LOOPBACK}:{self.port}"

    def _start(self) -> None:
        # The emulator logs every request at INFO; that is noise in test output.
        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        # The emulator's storage, served by our handler that also enforces generation
        # preconditions (see _gcs_preconditions); one request at a time, as the emulator does,
        # because its storage is not thread-safe.
        server = create_server(LOOPBACK, 0, in_memory=True, default_bucket=self.default_bucket)
        httpd = HTTPServer((LOOPBACK, 0), partial(PreconditionRequestHandler, server._storage))
        self._server, self._httpd = server, httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="gcs-emulator",
        )
        self._thread.start()
        if not tcp_accepts(self.port):
            raise RuntimeError(f"GCS emulator is not accepting connections on {self.url}")

    def _stop(self) -> None:
        httpd, self._httpd, self._server = self._httpd, None, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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
