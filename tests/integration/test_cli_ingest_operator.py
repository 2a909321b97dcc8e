"""`imaging ingest` from an operator's chair: progress, Ctrl-C, a store that is down, reports,
credentials, and the store's server-side bulk import from gs://."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from imaging_cli.main import main
from imaging_dev.servers.fault_proxy import FaultProxy
from imaging_dev.servers.gcs_emulator import GcsEmulator
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.synthetic import ct_series, study_set, write_instances
from tests.support.healthcare_import_server import HealthcareImportServer

pytestmark = pytest.mark.integration
IMAGING = Path(sys.executable).with_name("imaging")
STORE = "projects/local-project/locations/local/datasets/archive/dicomStores/main"
CLOSED_PORT_URL = "http://127.0.0.1:9/dicom-web"  # discard port: nothing listens


@pytest.fixture
def store(orthanc: OrthancServer) -> OrthancServer:
    orthanc.reset()
    return orthanc


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    write_instances(study_set(seed="operator"), root)
    (root / "notes.txt").write_text("not an image\n")
    return root


def _instances(store: OrthancServer) -> int:
    return len(requests.get(f"{store.url}/instances", timeout=10).json())


def _imaging(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_GCE_CHECK": "True"}
    return subprocess.run(
        [str(IMAGING), *argv], capture_output=True, text=True, timeout=180, env=env, check=False
    )


def test_report_lists_every_file_with_its_outcome(store, files, tmp_path, capsys) -> None:
    csv_report, json_report = tmp_path / "report.csv", tmp_path / "report.jsonl"
    assert (
        main(["ingest", str(files), "--store", store.dicomweb_url, "--report", str(csv_report)])
        == 0
    )
    rows = list(csv.DictReader(csv_report.open()))
    assert len(rows) == len(list(files.rglob("*")))
    by_outcome = {r["uri"]: r["outcome"] for r in rows}
    assert by_outcome[str(files / "notes.txt")] == "not_dicom"
    assert sum(o == "stored" for o in by_outcome.values()) == _instances(store) == 8
    assert all(r["sop_instance_uid"] for r in rows if r["outcome"] == "stored")

    assert (
        main(["ingest", str(files), "--store", store.dicomweb_url, "--report", str(json_report)])
        == 0
    )
    lines = [json.loads(line) for line in json_report.read_text().splitlines()]
    assert {line["outcome"] for line in lines} == {"skipped_existing", "not_dicom"}


def test_unreachable_store_stops_before_any_upload(files, tmp_path) -> None:
    report = tmp_path / "r.jsonl"
    started = time.monotonic()
    result = _imaging("ingest", str(files), "--store", CLOSED_PORT_URL, "--report", str(report))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"imaging ingest: cannot reach the store at {CLOSED_PORT_URL} (ConnectionError); "
        "nothing was uploaded"
    ]
    assert time.monotonic() - started < 30
    outcomes = {json.loads(line)["outcome"] for line in report.read_text().splitlines()}
    assert outcomes == {"not_attempted"}


def test_a_store_that_goes_down_stops_the_run_early(store, tmp_path, fault_proxy, capsys) -> None:
    write_instances(ct_series(seed="down", slices=12), tmp_path / "ct")
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.fail_next(1, status=200)  # the probe passes (200 without reaching the store) ...
    proxy.fail_next(10_000, status=None)  # ... then every request is dropped

    status = main(
        [
            "ingest",
            str(tmp_path / "ct"),
            "--store",
            f"{proxy.url}/dicom-web",
            "--workers",
            "1",
            "--no-resume",
        ]
    )

    captured = capsys.readouterr()
    assert status == 1
    assert "stopped early, the store is unreachable" in captured.err
    summary = captured.out.strip().splitlines()[-1]
    assert "failed: 3" in summary and "not attempted: 9" in summary
    assert proxy.request_count <= 1 + 3 * 5  # the probe, then 3 files x 5 attempts, no more


def test_plain_progress_lines_when_not_a_terminal(store, files) -> None:
    result = _imaging("ingest", str(files), "--store", store.dicomweb_url, "--progress-every", "0")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ingest: ")]
    assert len(lines) >= 9  # one per file with --progress-every 0, and the final one
    assert lines[-1].startswith("ingest: 9/9 files (100%), ")
    assert "files/s" in lines[-1] and "stored 8" in lines[-1]
    assert "\r" not in result.stderr


def test_ctrl_c_prints_the_counts_so_far(store, tmp_path, fault_proxy) -> None:
    write_instances(ct_series(seed="sigint", slices=20), tmp_path / "ct")
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.delay_next(100, seconds=2.0)  # about 40 s in all: Ctrl-C lands long before the end
    process = subprocess.Popen(
        [
            str(IMAGING),
            "ingest",
            str(tmp_path / "ct"),
            "--store",
            f"{proxy.url}/dicom-web",
            "--workers",
            "1",
            "--no-resume",
            "--progress-every",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while sum(r.method == "POST" for r in proxy.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "imaging ingest: interrupted after" in err and "of 20 files" in err
    assert "Traceback" not in err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("files: 20  stored: ") and "not attempted: " in summary


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "gs://bucket/x/", "--store", STORE],
        ["ingest", "./x", "--store", STORE],
        ["backfill", "--store", STORE, "--topic", "projects/p/topics/t", "--dry-run"],
        ["ingest", "gs://b/x/", "--store", STORE, "--bulk-import"],
    ],
    ids=["ingest-gcs", "ingest-store-path", "backfill", "bulk-import"],
)
@pytest.mark.parametrize("credentials", ["none", "unreadable"])
def test_missing_credentials_are_one_line_exit_2(tmp_path, argv, credentials) -> None:
    (tmp_path / "x").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "STORAGE_EMU"))}
    env.update(NO_GCE_CHECK="True", HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    if credentials == "unreadable":
        (tmp_path / "key.json").write_text("{not json")
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "key.json")
    result = subprocess.run(
        [str(IMAGING), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"imaging {argv[0]}: ")
    assert "gcloud auth application-default login" in lines[0]
    assert "Traceback" not in result.stderr


# One of pydicom's files says implicit VR and is explicit: pydicom warns while it is checked.
@pytest.mark.filterwarnings("ignore:Expected implicit VR, but found explicit VR:UserWarning")
def test_bulk_import_follows_the_operation_to_the_end(
    store, gcs_emulator: GcsEmulator, tmp_path, capsys
) -> None:
    bucket = gcs_emulator.client().create_bucket("archive")
    paths = write_instances(study_set(seed="bulk")[:5], tmp_path)
    for path in paths:
        bucket.blob(f"2019/ct/{path.name}").upload_from_filename(str(path))
    bucket.blob("2019/readme.txt").upload_from_string(b"not DICOM")
    bucket.blob("2020/other.dcm").upload_from_filename(str(paths[0]))

    with HealthcareImportServer(store.dicomweb_url, {STORE}, delay_s=0.2) as api:
        status = main(
            [
                "ingest",
                "gs://archive/2019/",
                "--store",
                STORE,
                "--bulk-import",
                "--healthcare-api",
                api.url,
                "--poll-every",
                "0.1",
                "--progress-every",
                "0",
            ]
        )
        polls = api.polls

    captured = capsys.readouterr()
    assert status == 1  # readme.txt could not be imported
    assert "gs://archive/2019/**: imported: 5  failed: 1" in captured.out
    assert "1 of 6 objects failed to import" in captured.err
    assert "per-object errors: https://console.cloud.google.com/logs/" in captured.err
    progress = [line for line in captured.err.splitlines() if "pending" in line]
    assert any("pending 0" not in line for line in progress)  # progress seen while running
    assert polls >= 3
    assert _instances(store) == 5


def test_bulk_import_errors_are_explained(store, gcs_emulator: GcsEmulator, capsys) -> None:
    with HealthcareImportServer(store.dicomweb_url, {STORE}) as api:
        unknown = STORE.replace("/main", "/nope")
        assert (
            main(
                [
                    "ingest",
                    "gs://a/",
                    "--store",
                    unknown,
                    "--bulk-import",
                    "--healthcare-api",
                    api.url,
                ]
            )
            == 1
        )
        assert (
            main(
                [
                    "ingest",
                    "gs://no-such-bucket/",
                    "--store",
                    STORE,
                    "--bulk-import",
                    "--healthcare-api",
                    api.url,
                    "--poll-every",
                    "0.05",
                ]
            )
            == 1
        )
        assert (
            main(
                [
                    "ingest",
                    "./local",
                    "--store",
                    STORE,
                    "--bulk-import",
                    "--healthcare-api",
                    api.url,
                ]
            )
            == 2
        )
    err = capsys.readouterr().err
    assert "import refused: HTTP 404" in err and "(no such DICOM store)" in err
    assert "bucket no-such-bucket not found (code 5)" in err
    assert "--bulk-import reads gs:// sources only" in err
