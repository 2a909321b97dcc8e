"""The functions' source zip is deterministic: same source, same bytes, same object name."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from modules.function_source import build_zip, source_files, write_source_zip

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def _copy_handlers(dest: Path) -> Path:
    shutil.copytree(HANDLERS, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_same_source_gives_the_same_bytes_and_name(tmp_path: Path) -> None:
    first = write_source_zip(HANDLERS, tmp_path / "a")
    second = write_source_zip(HANDLERS, tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert first.name == f"function-source-{digest[:20]}.zip"


def test_mtimes_permissions_and_listing_order_do_not_matter(tmp_path: Path) -> None:
    original = build_zip(_copy_handlers(tmp_path / "one"))
    copy = _copy_handlers(tmp_path / "two")
    for i, path in enumerate(sorted(copy.rglob("*.py"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
        path.chmod(0o600 if i % 2 else 0o755)
    assert build_zip(copy) == original


def test_a_changed_file_changes_the_object_name(tmp_path: Path) -> None:
    src = _copy_handlers(tmp_path / "src")
    before = write_source_zip(src, tmp_path / "out")
    main = src / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    after = write_source_zip(src, tmp_path / "out")
    assert after.name != before.name
    (src / "imaging_pipeline" / "new_module.py").write_text("X = 1\n", encoding="utf-8")
    assert write_source_zip(src, tmp_path / "out").name not in (before.name, after.name)


def test_build_debris_is_excluded_and_does_not_change_the_hash(tmp_path: Path) -> None:
    src = _copy_handlers(tmp_path / "src")
    clean = build_zip(src)
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0compiled")
    (src / "tests").mkdir()
    (src / "tests" / "test_x.py").write_text("def test(): pass\n", encoding="utf-8")
    (src / ".mypy_cache").mkdir()
    (src / ".mypy_cache" / "x.json").write_text("{}", encoding="utf-8")
    (src / "imaging_pipeline" / "stale.pyc").write_bytes(b"\0")
    assert build_zip(src) == clean
    names = [name for name, _ in source_files(src)]
    assert names == sorted(names)
    assert "main.py" in names and "requirements.txt" in names
    assert not any(
        "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/") for n in names
    )


def test_zip_entries_have_fixed_timestamps_and_modes() -> None:
    with zipfile.ZipFile(io.BytesIO(build_zip(HANDLERS))) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_stacks_upload_the_zip_under_its_hash_and_both_functions_use_it(
    stacks: dict[str, dict[str, Any]], synth_dir: Path
) -> None:
    # (Not compared with a fresh build of handlers/: others edit it while the suite runs.)
    names = set()
    for name, stack in stacks.items():
        ((key, obj),) = stack["resource"]["google_storage_bucket_object"].items()
        names.add(obj["name"])
        asset = synth_dir / "stacks" / name / obj["source"]
        data = asset.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:20]
        assert obj["name"] == f"functions/function-source-{digest}.zip"
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = set(archive.namelist())
        assert {"main.py", "requirements.txt", "imaging_pipeline/__init__.py"} <= entries
        assert not [e for e in entries if "__pycache__" in e or e.endswith(".pyc")]
        functions = stack["resource"]["google_cloudfunctions2_function"].values()
        objects = {f["build_config"]["source"]["storage_source"]["object"] for f in functions}
        assert len(functions) == 3  # ingest, processor, review app: one source for all
        assert objects == {f"${{google_storage_bucket_object.{key}.name}}"}
    assert len(names) == 1  # every environment deploys the same bytes
