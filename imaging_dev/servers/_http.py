"""A threaded stdlib HTTP server on 127.0.0.1:0 in a background thread, for in-process doubles."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from imaging_dev.servers._base import LOOPBACK, LocalServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client connection must not keep the process alive
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, dropped connection) is normal in fault tests.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ThreadedHttpServer(LocalServer):
    """Serves `handler_class` (whose `server.owner` is this object) until stopped."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        super().__init__()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _start(self) -> None:
        httpd = _Server((LOOPBACK, 0), self.handler_class)
        httpd.owner = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name=f"{self.name}-http",
        )
        self._thread.start()

    def _stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
