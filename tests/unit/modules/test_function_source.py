"""modules/function_source.py alone: a content-addressed zip uploaded as one bucket object."""

from __future__ import annotations

from pathlib import Path

from modules.function_source import FunctionSource
from tests.support.scratch_stack import synth


def test_object_is_named_after_the_content(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text("def entry(request): return 'ok'\n")
    names: list[str] = []

    def build(scope: object) -> dict[str, str]:
        uploaded = FunctionSource(
            scope,  # type: ignore[arg-type]
            "source",
            source_dir=source,
            build_dir=tmp_path / "build",
            bucket="p-1-functions",
        )
        names.append(uploaded.object_name)
        return {"object": uploaded.object.name}

    out = synth(build)
    obj = out.one("google_storage_bucket_object")
    assert obj.body["bucket"] == "p-1-functions"
    assert obj.body["content_type"] == "application/zip"
    [name] = names
    assert obj.body["name"] == name and name.startswith("functions/function-source-")
    assert out.outputs == {"object": out.ref(obj, "name")}
    assert out.bindings() == set()

    (source / "main.py").write_text("def entry(request): return 'changed'\n")
    synth(build)
    assert names[1] != names[0]  # any changed file: a new object, so the function redeploys
