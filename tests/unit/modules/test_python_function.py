"""modules/python_function.py alone: a gen2 function, its own identity, internal ingress, IAM
invocation only, and a storage trigger that invokes as that identity."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from constructs import Construct

from modules.python_function import INGRESS, INVOKER, PythonFunction, Sizing, StorageTrigger
from tests.support.scratch_stack import synth

PUSHER = "serviceAccount:pusher@p-1.iam.gserviceaccount.com"
SIZING = Sizing(
    memory_mib=1024, cpu="1", timeout_seconds=300, min_instances=0, max_instances=5, concurrency=1
)
SOURCE = cast(Any, SimpleNamespace(bucket="p-1-functions", object=SimpleNamespace(name="f.zip")))


def build(scope: Construct, trigger: StorageTrigger | None) -> dict[str, Any]:
    function = PythonFunction(
        scope,
        "process",
        name="imaging-process",
        location="europe-west4",
        description="test",
        entry_point="process_dicom_instance",
        source=SOURCE,
        sizing=SIZING,
        environment={"LOG_LEVEL": "INFO"},
        labels={"environment": "dev"},
        build_service_account="projects/p-1/serviceAccounts/builder@p-1.iam.gserviceaccount.com",
        trigger=trigger,
    )
    if trigger is None:
        function.grant_invoke(PUSHER)
    return {"uri": function.uri, "service_name": function.service_name}


def test_http_function_is_internal_and_invoked_only_by_whom_we_name() -> None:
    out = synth(lambda scope: build(scope, None))
    function = out.one("google_cloudfunctions2_function")
    account = out.one("google_service_account")
    service = function.body["service_config"]
    assert service["ingress_settings"] == INGRESS
    assert service["service_account_email"] == out.ref(account, "email")
    assert service["environment_variables"] == {"LOG_LEVEL": "INFO"}
    assert function.body["build_config"]["source"]["storage_source"] == {
        "bucket": "p-1-functions",
        "object": "f.zip",
    }
    assert "event_trigger" not in function.body
    assert out.bindings() == {(out.ref(function, "name"), INVOKER, PUSHER)}
    assert out.outputs == {
        "uri": out.ref(function, "service_config[0].uri"),
        "service_name": out.ref(function, "name"),
    }


def test_storage_trigger_invokes_as_the_functions_own_identity() -> None:
    out = synth(lambda scope: build(scope, StorageTrigger(bucket="staging", region="eu")))
    function = out.one("google_cloudfunctions2_function")
    account = out.one("google_service_account")
    trigger = function.body["event_trigger"]
    assert trigger["event_filters"] == [{"attribute": "bucket", "value": "staging"}]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["service_account_email"] == out.ref(account, "email")
    assert out.bindings() == {(out.ref(function, "name"), INVOKER, out.ref(account, "member"))}
