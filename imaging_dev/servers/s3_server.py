"""Amazon S3 for tests: moto's ThreadedMotoServer on a free loopback port.

Only for the S3 ingest source (sites that stage files in AWS). moto mocks AWS and nothing else;
it never stands in for a Google service here. The credentials below are moto's documented
dummy values, not secrets.
"""

from __future__ import annotations

from typing import Any

import requests
from moto.server import ThreadedMotoServer

from imaging_dev.servers._base import LOOPBACK, LocalServer

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server(LocalServer):
    """`with S3Server() as s3: boto3.client("s3", endpoint_url=s3.endpoint_url, ...)`."""

    name = "s3"

    def __init__(self) -> None:
        super().__init__()
        self._server: ThreadedMotoServer | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _start(self) -> None:
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]

    def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def client(self, service: str = "s3") -> Any:
        """A boto3 client for this server with moto's dummy credentials."""
        import boto3  # dev-only dependency; imported here so the module imports without it

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def reset(self) -> None:
        """Deletes every bucket and object (moto's reset endpoint)."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
