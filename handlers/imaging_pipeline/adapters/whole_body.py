"""A requests transport adapter that reads a response body in one read.

requests reads a body it preloads (every request here but a streamed one) in 10 KiB chunks,
each through urllib3's decoding machinery: for a 600 KB DICOM instance retrieved over WADO-RS
that is about 60 reads and, on bench/e2e's mix, more CPU than the request itself. Reading with
`iter_content(chunk_size=None)` takes what has arrived in one read; requests' own error
translation (ChunkedEncodingError, ContentDecodingError, ConnectionError) still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, HTTPAdapter
from requests.models import PreparedRequest, Response


class WholeBodyAdapter(HTTPAdapter):
    @classmethod
    def like(cls, adapter: HTTPAdapter) -> WholeBodyAdapter:
        """One with `adapter`'s pool and retry settings."""
        return cls(
            pool_connections=getattr(adapter, "_pool_connections", DEFAULT_POOLSIZE),
            pool_maxsize=getattr(adapter, "_pool_maxsize", DEFAULT_POOLSIZE),
            max_retries=adapter.max_retries,
            pool_block=getattr(adapter, "_pool_block", DEFAULT_POOLBLOCK),
        )

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        response = super().send(request, stream, timeout, verify, cert, proxies)
        if not stream:
            # What `Response.content` would hold, read whole: requests' Session.send then
            # finds the body already read (the attribute it fills is private, stable since
            # requests 1.0, and tested in tests/unit/imaging_pipeline/adapters/test_http.py).
            response._content = b"".join(response.iter_content(chunk_size=None))
        return response
