"""Both functions say which release they run (the version defined in imaging_pipeline.version)."""

from __future__ import annotations

from typing import Any

from imaging_pipeline.version import label_value

from tests.infra.synthesized import of_type


def test_functions_carry_the_release_label(stacks: dict[str, dict[str, Any]]) -> None:
    for stack in stacks.values():
        functions = of_type(stack, "google_cloudfunctions2_function")
        assert functions
        for function in functions:
            assert function.body["labels"]["pipeline_version"] == label_value()
