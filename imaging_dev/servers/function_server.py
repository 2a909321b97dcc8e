"""A Cloud Function served locally: functions-framework running handlers/main.py's real entry
point in a child process (own process group, own log), configured through its environment.

Used by `imaging demo` and the tests; the processor's and ingest function's code run exactly
as deployed, only their environment points at local servers.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from imaging_dev.servers._base import LOOPBACK, SubprocessServer, free_port, tcp_accepts

HANDLERS_DIR = Path(__file__).resolve().parents[2] / "handlers"
STARTUP_TIMEOUT_S = 60.0


def functions_framework_binary() -> str:
    """The functions-framework next to this interpreter (the venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("functions-framework")
    if beside.exists():
        return str(beside)
    found = shutil.which("functions-framework")
    if found is None:
        raise FileNotFoundError(
            "functions-framework is not installed (pip install -r handlers/requirements.txt)"
        )
    return found


class FunctionServer(SubprocessServer):
    """`with FunctionServer("ingest_dicom_object", env) as fn: requests.post(fn.url, ...)`."""

    def __init__(
        self, target: str, env: Mapping[str, str], *, source: Path = HANDLERS_DIR / "main.py"
    ) -> None:
        self.name = target.replace("_", "-")
        super().__init__()
        self.target = target
        self.env = dict(env)
        self.source = source
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def _start(self) -> None:
        self.port = free_port()
        self._spawn(
            [
                functions_framework_binary(),
                "--target",
                self.target,
                "--source",
                str(self.source),
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
            ],
            env={"PYTHONUNBUFFERED": "1", **self.env},
            cwd=self.source.parent,
        )
        self._wait_ready(lambda: tcp_accepts(self.port), STARTUP_TIMEOUT_S)

    def json_logs(self) -> list[dict[str, Any]]:
        """The structured log lines the function wrote so far (what Cloud Logging would get)."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def post_cloud_event(
        self,
        event_type: str,
        source: str,
        data: Mapping[str, Any],
        *,
        event_id: str,
        subject: str | None = None,
        timeout: float = 120,
    ) -> requests.Response:
        """Delivers one binary-mode CloudEvent, as Eventarc does."""
        headers = {
            "ce-id": event_id,
            "ce-specversion": "1.0",
            "ce-type": event_type,
            "ce-source": source,
            "Content-Type": "application/json",
        }
        if subject:
            headers["ce-subject"] = subject
        return requests.post(self.url, json=dict(data), headers=headers, timeout=timeout)
