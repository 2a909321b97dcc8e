"""modules/python_function.py alone: a gen2 function, its own identity, internal ingress, keyed
IAM invocation only, created after its builder is ready; a storage trigger that invokes as that
identity once Eventarc's grants have propagated."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from cdktn_provider_time.sleep import Sleep
from constructs import Construct

from modules.python_function import (
    EVENT_RECEIVER,
    INGRESS,
    INVOKER,
    PROPAGATION,
    PUBLISHER,
    PythonFunction,
    Sizing,
    StorageTrigger,
)
from tests.support.scratch_stack import synth

PUSHER = "serviceAccount:pusher@p-1.iam.gserviceaccount.com"
STORAGE_AGENT = "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
BUILDER = "projects/p-1/serviceAccounts/builder@p-1.iam.gserviceaccount.com"
SIZING = Sizing(
    memory_mib=1024, cpu="1", timeout_seconds=300, min_instances=0, max_instances=5, concurrency=1
)
SOURCE = cast(Any, SimpleNamespace(bucket="p-1-functions", object=SimpleNamespace(name="f.zip")))


class Builder:
    """The Builder protocol: a resource name, and a resource standing for `ready`."""

    resource_name = BUILDER

    def __init__(self, scope: Construct) -> None:
        self.ready = Sleep(scope, "builder_ready", create_duration="1s")


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
        builder=Builder(scope),
        trigger=trigger,
    )
    if trigger is None:
        function.grant_invoke("push", PUSHER)
    return {"uri": function.uri, "service_name": function.service_name}


def _wait(out: Any, key_prefix: str) -> Any:
    [found] = [w for w in out.of_type("time_sleep") if w.key.startswith(key_prefix)]
    return found


def test_http_function_is_internal_and_invoked_only_by_whom_we_name() -> None:
    out = synth(lambda scope: build(scope, None))
    function = out.one("google_cloudfunctions2_function")
    account = out.one("google_service_account")
    service = function.body["service_config"]
    assert service["ingress_settings"] == INGRESS
    assert service["service_account_email"] == out.ref(account, "email")
    assert service["environment_variables"] == {"LOG_LEVEL": "INFO"}
    assert function.body["build_config"]["service_account"] == BUILDER
    assert function.body["build_config"]["source"]["storage_source"] == {
        "bucket": "p-1-functions",
        "object": "f.zip",
    }
    assert "event_trigger" not in function.body
    assert function.body["depends_on"] == [_wait(out, "builder_ready").address]
    assert out.bindings() == {(out.ref(function, "name"), INVOKER, PUSHER)}
    [invoker] = out.of_type("google_cloud_run_v2_service_iam_member")
    assert invoker.key.rsplit("_", 1)[0] == "process_invoker_push"
    assert invoker.body["location"] == out.ref(function, "location")
    assert out.outputs == {
        "uri": out.ref(function, "service_config[0].uri"),
        "service_name": out.ref(function, "name"),
    }


def test_storage_trigger_waits_for_eventarcs_grants_and_invokes_as_its_own_identity() -> None:
    trigger = StorageTrigger(
        bucket="staging", region="eu", project_id="p-1", storage_agent=STORAGE_AGENT
    )
    out = synth(lambda scope: build(scope, trigger))
    function = out.one("google_cloudfunctions2_function")
    member = out.ref(out.one("google_service_account"), "member")
    event = function.body["event_trigger"]
    assert event["event_filters"] == [{"attribute": "bucket", "value": "staging"}]
    assert event["retry_policy"] == "RETRY_POLICY_RETRY"
    assert event["service_account_email"] == out.ref(out.one("google_service_account"), "email")
    assert out.bindings() == {
        (out.ref(function, "name"), INVOKER, member),
        ("p-1", EVENT_RECEIVER, member),
        ("p-1", PUBLISHER, STORAGE_AGENT),
    }
    trigger_wait = _wait(out, "process_trigger_propagation_")
    assert trigger_wait.body["create_duration"] == PROPAGATION
    assert sorted(trigger_wait.body["depends_on"]) == sorted(
        g.address for g in out.of_type("google_project_iam_member")
    )
    assert function.body["depends_on"] == [
        _wait(out, "builder_ready").address,
        trigger_wait.address,
    ]
