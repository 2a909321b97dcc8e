"""The demo as an operator's sandbox: realistic sizes and a critical outcome, endpoints printed,
and `imaging ingest` + `imaging backfill` run against it with exactly what it printed."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from imaging_dev.synthetic import mr_image, write_instances

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
IMAGING = Path(sys.executable).with_name("imaging")


def _reader(stream: object, lines: queue.Queue[tuple[str, str]], name: str) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put((name, line.rstrip("\n")))


def _reports(fhir_base: str) -> int:
    answer = requests.get(f"{fhir_base}/DiagnosticReport", params={"_count": "1000"}, timeout=30)
    answer.raise_for_status()
    return len(answer.json().get("entry", []))


def test_keep_prints_endpoints_that_ingest_and_backfill_use(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "imaging_dev.demo", "--keep", "--timeout", "400"],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[tuple[str, str]] = queue.Queue()
    for name, stream in (("out", demo.stdout), ("err", demo.stderr)):
        threading.Thread(target=_reader, args=(stream, lines, name), daemon=True).start()
    seen: dict[str, str] = {}
    rows: dict[str, list[str]] = {}
    try:
        deadline = time.monotonic() + 600
        while "running" not in seen and time.monotonic() < deadline:
            try:
                source, line = lines.get(timeout=5)
            except queue.Empty:
                assert demo.poll() is None, "the demo ended early"
                continue
            if match := re.match(r"imaging demo: ([A-Za-z/ ]+):\s+(\S+)$", line):
                seen[match[1].strip()] = match[2]
            cells = re.split(r"\s{2,}", line.strip())
            if source == "out" and cells[0].endswith(".dcm"):
                rows[cells[0]] = cells
            if "servers are running" in line:
                seen["running"] = "yes"
        assert seen.get("running"), seen
        assert rows["sc-critical-finding.dcm"][3] == "critical", rows
        assert rows["ct-512.dcm"][2] == "processed" and rows["cr-2048.dcm"][2] == "processed"

        dicomweb, fhir = seen["DICOMweb URL"], seen["FHIR base"]
        before = _reports(fhir)
        [mine] = write_instances([mr_image(seed="operator-own")], tmp_path)
        ingest = subprocess.run(
            [str(IMAGING), "ingest", str(mine), "--store", dicomweb],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ingest.returncode == 0, ingest.stderr
        backfill = subprocess.run(
            [
                str(IMAGING),
                "backfill",
                "--store",
                seen["store path"],
                "--topic",
                seen["Pub/Sub topic"],
                "--dicomweb-url",
                dicomweb,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PUBSUB_EMULATOR_HOST": seen["Pub/Sub host"]},
        )
        assert backfill.returncode == 0, backfill.stderr
        deadline = time.monotonic() + 120
        while _reports(fhir) <= before and time.monotonic() < deadline:
            time.sleep(1)
        assert _reports(fhir) > before  # the operator's own file reached the processor
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=120)
