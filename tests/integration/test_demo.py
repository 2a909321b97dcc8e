"""`imaging-dev demo` as a developer runs it: a child process, real servers and functions, and
afterwards not a single process left (every child inherits a marker we look for in /proc)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
IMAGING_DEV = Path(sys.executable).with_name("imaging-dev")
MARKER = "IMAGING_DEMO_TEST_MARKER"


def _processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries our marker: the demo and anything it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if f"{MARKER}={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    value = uuid.uuid4().hex
    yield value
    for pid in _processes_with(value):  # only if a test failed: never leave strays behind
        os.kill(pid, signal.SIGKILL)


def _demo(marker: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(IMAGING_DEV), "demo", *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, MARKER: marker},
    )


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 4 and cells[0].endswith(".dcm"):
            rows[cells[0]] = cells
    return rows


def test_demo_runs_to_completion_and_leaves_no_process(marker: str) -> None:
    demo = _demo(marker)
    out, err = demo.communicate(timeout=240)

    assert demo.returncode == 0, f"{out}\n{err}"
    rows = _rows(out)
    assert len(rows) == 16  # 8 synthetic + 3 realistic-size or critical extras + 5 samples
    assert rows["sc-burned-in-text.dcm"][3] == "urgent"
    assert "burned_in_text" in rows["sc-burned-in-text.dcm"][4]
    assert rows["dx-blank-01.dcm"][3] == "urgent" and "blank_image" in rows["dx-blank-01.dcm"][4]
    assert rows["rtplan.dcm"][2] == "skipped (unsupported_sop_class)"
    for name in ("ct-01.dcm", "mr-01.dcm", "cr-01.dcm", "us-color-01.dcm", "CT_small.dcm"):
        assert rows[name][2:4] == ["processed", "routine"], rows[name]
    processed = [r for r in rows.values() if r[2] == "processed"]
    assert len(processed) == 15  # every row but the RT plan
    assert all(r[-1].startswith("DiagnosticReport/") for r in processed)
    assert "failed: 0  unfinished: 0  staged objects not stored: 0" in out
    # One SR per processed instance, stored back into Orthanc (visible in its explorer).
    assert "DICOM SRs (TID 1500) stored in Orthanc next to the images: 15" in out
    assert _processes_with(marker) == []


def test_demo_keep_serves_until_ctrl_c(marker: str) -> None:
    demo = _demo(marker, "--keep", "--no-samples")
    assert demo.stdout is not None
    urls: dict[str, str] = {}
    for line in demo.stdout:
        if ":" in line and "http://" in line:
            key, url = line.split(":", 1)
            urls[key.strip()] = url.strip()
        if "press Ctrl-C" in line:
            break
    try:
        explorer = requests.get(urls["Orthanc explorer"], timeout=10)
        assert explorer.status_code == 200 and "<html" in explorer.text.lower()
        reports = requests.get(f"{urls['FHIR base']}/DiagnosticReport", timeout=10).json()
        assert reports["resourceType"] == "Bundle"
        assert len(reports.get("entry", [])) == 11  # one per synthetic instance and extra
        # The review app, local mode: no authentication, and the page says so.
        worklist = requests.get(urls["Review app"].split()[0] + "worklist", timeout=60)
        assert worklist.status_code == 200
        assert "Local mode, no authentication" in worklist.text
        assert worklist.text.count("data-report=") == 11
        assert _processes_with(marker)  # still serving
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    assert demo.returncode == 0
    assert _processes_with(marker) == []


def test_sigterm_mid_run_stops_every_server(marker: str) -> None:
    demo = _demo(marker, "--no-samples")
    assert demo.stderr is not None
    for line in demo.stderr:
        # Every server and function is up, and the ingest has not begun: mid-run for certain.
        # (After "instances in the DICOM store" the rest can finish before the signal lands.)
        if "store path:" in line:
            break
    demo.send_signal(signal.SIGTERM)
    demo.communicate(timeout=60)

    assert demo.returncode != 0
    assert _processes_with(marker) == []


def test_pipeline_reports_dead_lettered_instances_as_failed(tmp_path: Path) -> None:
    """A processor whose FHIR store is unreachable: Pub/Sub retries, then dead-letters; the
    demo's wait ends there with a failure instead of waiting out its timeout."""
    from imaging_dev.local_pipeline import LocalPipeline
    from imaging_dev.synthetic import mr_image, write_instances

    files = write_instances([mr_image(seed="dead-letter")], tmp_path)
    unreachable = {"FHIR_BASE_URL": "http://127.0.0.1:9/fhir/R4"}  # discard port: refused
    with LocalPipeline(processor_env=unreachable) as pipeline:
        assert [s.outcome for s in pipeline.stage(files)] == ["processed"]
        results = pipeline.wait_for_results(pipeline.notify(), timeout=120)

    assert len(results) == 1
    assert results[0].outcome == "failed"
    assert results[0].reason is not None and results[0].reason.startswith("dead-lettered")
