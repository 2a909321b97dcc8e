"""The functions' source: `handlers/` as one deterministic zip, uploaded under its content hash.

Same source -> same bytes -> same object name, so Terraform sees no change and does not
redeploy an unchanged function; any changed file changes the name and redeploys both.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from cdktn import AssetType, TerraformAsset
from cdktn_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

# Build and editor debris that must not change the hash nor reach the function.
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        "tests",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".venv",
        "venv",
        ".git",
        "node_modules",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".DS_Store", "~", ".swp")
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
FILE_MODE = 0o100644  # regular file, rw-r--r--


def source_files(source_dir: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file to ship, sorted by archive name."""
    found = []
    for path in source_dir.rglob("*"):
        relative = path.relative_to(source_dir)
        if not path.is_file() or any(part in EXCLUDED_DIRS for part in relative.parts):
            continue
        if any(part.endswith(EXCLUDED_SUFFIXES) for part in relative.parts):
            continue
        found.append((relative.as_posix(), path))
    yield from sorted(found)


# Contents -> zip bytes: every environment's stack ships the same source, so one synth of
# dev, staging and prod compresses it once instead of three times.
_ZIPS: dict[bytes, bytes] = {}


def build_zip(source_dir: Path) -> bytes:
    """The zip's bytes depend only on the files' names and contents (not on mtimes, umask or
    the order the file system lists them in)."""
    files = [(name, path.read_bytes()) for name, path in source_files(source_dir)]
    key = hashlib.sha256()
    for name, data in files:
        key.update(b"%d:%s\0%d:" % (len(name), name.encode(), len(data)))
        key.update(data)
    cached = _ZIPS.get(key.digest())
    if cached is not None:
        return cached
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever system builds it
            archive.writestr(info, data, compresslevel=9)
    _ZIPS[key.digest()] = buffer.getvalue()
    return _ZIPS[key.digest()]


def write_source_zip(source_dir: Path, dest_dir: Path) -> Path:
    """Writes the zip to `dest_dir/function-source-<sha256 prefix>.zip` (once) and returns it."""
    data = build_zip(source_dir)
    digest = hashlib.sha256(data).hexdigest()[:20]
    target = dest_dir / f"function-source-{digest}.zip"
    if not target.exists() or target.read_bytes() != data:
        dest_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target


class FunctionSource(Construct):
    """Uploads the zip of `source_dir` to `bucket` as `functions/<zip name>`."""

    def __init__(
        self, scope: Construct, id_: str, *, source_dir: Path, build_dir: Path, bucket: str
    ) -> None:
        super().__init__(scope, id_)
        archive = write_source_zip(source_dir, build_dir)
        asset = TerraformAsset(self, "zip", path=str(archive), type=AssetType.FILE)
        self.object_name = f"functions/{archive.name}"
        self.object = StorageBucketObject(
            self,
            "object",
            bucket=bucket,
            name=self.object_name,
            source=asset.path,
            content_type="application/zip",
        )
        self.bucket = bucket
