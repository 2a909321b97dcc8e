"""Where `imaging ingest` reads files from: a local path, gs://bucket/prefix or s3://bucket/prefix.

Listing returns lightweight handles (name, size, a reader); bytes are read only by the worker
that uploads them, so memory stays bounded by the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class SourceObject:
    uri: str  # what the operator sees in reports: a path, gs://b/o or s3://b/k
    size: int | None
    read: Callable[[], bytes]


class SourceError(Exception):
    """The source cannot be listed (missing path, unknown scheme, no such bucket...)."""


def list_source(spec: str, *, s3_endpoint_url: str | None = None) -> Iterator[SourceObject]:
    scheme = urlsplit(spec).scheme if "://" in spec else ""
    if scheme == "gs":
        return _list_gcs(spec)
    if scheme == "s3":
        return _list_s3(spec, s3_endpoint_url)
    if scheme:
        raise SourceError(f"unsupported source {spec!r}: use a local path, gs://... or s3://...")
    return _list_local(Path(spec))


def _bucket_and_prefix(spec: str) -> tuple[str, str]:
    parts = urlsplit(spec)
    if not parts.netloc:
        raise SourceError(f"{spec!r} names no bucket")
    return parts.netloc, parts.path.lstrip("/")


def _list_local(root: Path) -> Iterator[SourceObject]:
    if not root.exists():
        raise SourceError(f"no such file or directory: {root}")
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        yield SourceObject(str(path), path.stat().st_size, path.read_bytes)


def _list_gcs(spec: str) -> Iterator[SourceObject]:
    # google-cloud-storage honours STORAGE_EMULATOR_HOST (no credentials needed then).
    from google.cloud import storage

    bucket_name, prefix = _bucket_and_prefix(spec)
    client = storage.Client()
    for blob in client.list_blobs(bucket_name, prefix=prefix or None):
        if blob.name.endswith("/"):
            continue  # folder placeholders
        yield SourceObject(
            f"gs://{bucket_name}/{blob.name}",
            blob.size,
            _gcs_reader(client, bucket_name, blob.name, blob.generation),
        )


def _gcs_reader(client: Any, bucket: str, name: str, generation: int | None) -> Callable[[], bytes]:
    def read() -> bytes:
        data: bytes = client.bucket(bucket).blob(name, generation=generation).download_as_bytes()
        return data

    return read


def _list_s3(spec: str, endpoint_url: str | None) -> Iterator[SourceObject]:
    try:
        import boto3
    except ImportError as exc:
        raise SourceError("s3:// sources need boto3 (pip install boto3)") from exc

    bucket, prefix = _bucket_and_prefix(spec)
    # Credentials and region come from the usual AWS chain (env, profile, instance role);
    # the endpoint override serves moto and S3-compatible stores.
    client = boto3.client("s3", endpoint_url=endpoint_url)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            yield SourceObject(
                f"s3://{bucket}/{key}", int(item["Size"]), _s3_reader(client, bucket, key)
            )


def _s3_reader(client: Any, bucket: str, key: str) -> Callable[[], bytes]:
    def read() -> bytes:
        data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    return read
