"""`imaging ingest` end to end: local, gs:// (GCS emulator), s3:// (moto) sources into Orthanc."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from imaging_cli.main import main
from imaging_dev.servers.fault_proxy import FaultProxy
from imaging_dev.servers.gcs_emulator import GcsEmulator
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.s3_server import S3Server
from imaging_dev.synthetic import ct_series, mr_image, sample_files, study_set, write_instances

pytestmark = pytest.mark.integration


@pytest.fixture
def store(orthanc: OrthancServer) -> OrthancServer:
    orthanc.reset()
    return orthanc


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """8 synthetic instances and 2 pydicom samples in nested folders, plus two problem files."""
    root = tmp_path / "archive"
    write_instances(study_set(seed="cli"), root / "synthetic" / "2026")
    for sample in sample_files(["CT_small.dcm", "MR_small.dcm"]):
        shutil.copy(sample, root / sample.name)
    (root / "README.txt").write_text("exported from the old PACS\n")
    shutil.copy(sample_files(["MR_truncated.dcm"])[0], root / "broken.dcm")
    return root


def _instances(store: OrthancServer) -> int:
    response = requests.get(f"{store.url}/instances", timeout=10)
    response.raise_for_status()
    return len(response.json())


def _summary(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_local_directory_then_resume(store, archive, capsys, fault_proxy) -> None:
    proxy: FaultProxy = fault_proxy(store.url)
    url = f"{proxy.url}/dicom-web"

    status = main(["ingest", str(archive), "--store", url, "--workers", "3"])

    out = capsys.readouterr().out
    assert status == 1  # the corrupt file is a failure
    assert _summary(out) == ("files: 12  stored: 10  already in store: 0  not DICOM: 1  failed: 1")
    assert "not_dicom" in out and "README.txt" in out
    assert "failed" in out and "broken.dcm" in out and "corrupt" in out
    assert _instances(store) == 10
    stows = sum(1 for r in proxy.requests if r.method == "POST")
    assert stows == 10

    # Second run: everything is already there, nothing is uploaded again.
    status = main(["ingest", str(archive), "--store", url, "--workers", "3"])

    out = capsys.readouterr().out
    assert status == 1
    assert _summary(out) == ("files: 12  stored: 0  already in store: 10  not DICOM: 1  failed: 1")
    assert sum(1 for r in proxy.requests if r.method == "POST") == stows


def test_single_file_and_clean_run_exit_zero(store, tmp_path, capsys) -> None:
    path = write_instances([mr_image(seed="single")], tmp_path)[0]

    status = main(["ingest", str(path), "--store", store.dicomweb_url, "--verbose"])

    out = capsys.readouterr().out
    assert status == 0
    assert f"stored           {path}" in out
    assert _instances(store) == 1


def test_transient_store_errors_are_retried(store, tmp_path, capsys, fault_proxy) -> None:
    paths = write_instances(ct_series(seed="retry", slices=2), tmp_path)
    proxy: FaultProxy = fault_proxy(store.url)
    proxy.fail_next(3, status=503)

    status = main(
        [
            "ingest",
            str(tmp_path),
            "--store",
            f"{proxy.url}/dicom-web",
            "--workers",
            "1",
            "--no-resume",
        ]
    )

    assert status == 0, capsys.readouterr().out
    assert _instances(store) == len(paths)


def test_gcs_source(store, gcs_emulator: GcsEmulator, tmp_path, capsys) -> None:
    bucket = gcs_emulator.client().create_bucket("migration")
    for path in write_instances(study_set(seed="gcs")[:4], tmp_path):
        bucket.blob(f"exports/{path.name}").upload_from_filename(str(path))
    bucket.blob("other/ignored.dcm").upload_from_string(b"outside the prefix")

    status = main(["ingest", "gs://migration/exports/", "--store", store.dicomweb_url])

    out = capsys.readouterr().out
    assert status == 0, out
    assert _summary(out).startswith("files: 4  stored: 4 ")
    assert _instances(store) == 4


def test_s3_source_with_endpoint_override(
    store, s3_server: S3Server, monkeypatch, tmp_path, capsys
) -> None:
    # The flag alone must be enough: drop the fixture's endpoint variable.
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    s3 = s3_server.client()
    s3.create_bucket(Bucket="old-pacs")
    for path in write_instances(study_set(seed="s3")[:3], tmp_path):
        s3.upload_file(str(path), "old-pacs", f"2019/{path.name}")
    s3.put_object(Bucket="old-pacs", Key="2019/manifest.csv", Body=b"uid,file\n")

    status = main(
        [
            "ingest",
            "s3://old-pacs/2019/",
            "--store",
            store.dicomweb_url,
            "--s3-endpoint-url",
            s3_server.endpoint_url,
            "--workers",
            "2",
        ]
    )

    out = capsys.readouterr().out
    assert status == 0, out
    assert _summary(out) == ("files: 4  stored: 3  already in store: 0  not DICOM: 1  failed: 0")
    assert "s3://old-pacs/2019/manifest.csv" in out
    assert _instances(store) == 3


def test_bad_arguments_exit_2(capsys, tmp_path) -> None:
    assert main(["ingest", str(tmp_path / "missing"), "--store", "http://127.0.0.1:9"]) == 2
    assert main(["ingest", str(tmp_path), "--store", "not-a-store"]) == 2
    assert main(["ingest", "ftp://host/x", "--store", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "not a DICOMweb URL" in err
    assert "unsupported source" in err
