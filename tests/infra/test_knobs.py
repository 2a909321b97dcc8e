"""One test per configuration knob: changing it in an environment file changes the synthesized
JSON as expected. All variants are synthesized in ONE run (one file per knob in a temp dir),
each compared with an unchanged `base` environment synthesized alongside."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks import docs
from tests.infra.conftest import ROOT, load_stacks, run_synth
from tests.infra.synthesized import at, of_type

Stack = dict[str, Any]
BASE = "base"


@dataclass(frozen=True)
class Knob:
    key: str  # dotted config key (as in the README table)
    value: Any  # new value (a mapping merges into the section)
    check: Callable[[Stack, Stack], None]  # (base, changed) -> assertions


def _service(stack: Stack, fn: str) -> dict[str, Any]:
    body: dict[str, Any] = at(stack, f"{fn}/function").body["service_config"]
    return body


def _lifecycle(stack: Stack, path: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = at(stack, path).body["lifecycle_rule"]
    return rules


def _pipeline(stack: Stack) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(
        _service(stack, "processor")["environment_variables"]["PIPELINE_SETTINGS"]
    )
    return settings


def _policy(stack: Stack, key: str) -> dict[str, Any]:
    threshold: dict[str, Any] = at(stack, f"observability/alert_{key}").body["conditions"][0][
        "condition_threshold"
    ]
    return threshold


def _sizing(fn: str, field: str, tf_field: str, value: Any, expected: Any) -> Knob:
    def check(base: Stack, changed: Stack) -> None:
        assert _service(changed, fn)[tf_field] == expected != _service(base, fn)[tf_field]

    return Knob(f"functions.{fn}.{field}", value, check)


def _review_sizing(field: str, tf_field: str, value: Any, expected: Any) -> Knob:
    def check(base: Stack, changed: Stack) -> None:
        fn = "review/app"
        assert _service(changed, fn)[tf_field] == expected != _service(base, fn)[tf_field]

    return Knob(f"review_app.sizing.{field}", value, check)


def _check_review_enabled(base: Stack, changed: Stack) -> None:
    assert len(of_type(base, "google_compute_backend_service")) == 1
    assert of_type(changed, "google_compute_backend_service") == []
    assert len(of_type(changed, "google_cloudfunctions2_function")) == 2
    assert "review_app_address" not in json.dumps(changed["output"])


def _check_review_domain(base: Stack, changed: Stack) -> None:
    domains = at(changed, "review/certificate").body["managed"]["domains"]
    assert (
        domains
        == ["review.knob.example.org"]
        != at(base, "review/certificate").body["managed"]["domains"]
    )


def _check_review_access(base: Stack, changed: Stack) -> None:
    members = [
        b.body["member"] for b in of_type(changed, "google_iap_web_backend_service_iam_member")
    ]
    assert members == ["user:dr.knob@example.org"]
    assert len(of_type(base, "google_iap_web_backend_service_iam_member")) == 2


def _check_review_viewer(base: Stack, changed: Stack) -> None:
    env = _service(changed, "review/app")["environment_variables"]
    assert env["VIEWER_URL"] == "https://viewer.example.org/?study={study_uid}"
    assert "VIEWER_URL" not in _service(base, "review/app")["environment_variables"]


def _pipeline_knob(key: str, value: Any, expected: Any = None) -> Knob:
    def check(base: Stack, changed: Stack) -> None:
        node_base, node_changed = _pipeline(base), _pipeline(changed)
        for part in key.split(".")[1:]:
            node_base, node_changed = node_base[part], node_changed[part]
        assert node_changed == (value if expected is None else expected) != node_base

    return Knob(key, value, check)


def _check_project(base: Stack, changed: Stack) -> None:
    assert changed["provider"]["google"][0]["project"] == "imaging-knob-project"
    assert at(changed, "staging/bucket").body["name"] == "imaging-knob-project-imaging-staging"
    assert at(base, "staging/bucket").body["name"] != at(changed, "staging/bucket").body["name"]


def _check_region(base: Stack, changed: Stack) -> None:
    assert changed["provider"]["google"][0]["region"] == "europe-west4"
    assert at(changed, "processor/function").body["location"] == "europe-west4"
    assert at(changed, "healthcare/dataset").body["location"] == "europe-west4"
    assert at(changed, "staging/bucket").body["location"] == "europe-west4"
    assert at(base, "healthcare/dataset").body["location"] == "us-central1"


def _check_prefix(base: Stack, changed: Stack) -> None:
    assert at(changed, "processor/function").body["name"] == "radiol-process"
    assert at(changed, "dicom_events/topic").body["name"] == "radiol-dicom-events"
    assert at(changed, "observability/metric_failed").body["name"] == "radiol_failed"
    assert at(base, "processor/function").body["name"] == "imaging-process"


def _labels(key: str, value: str) -> Knob:
    def check(base: Stack, changed: Stack) -> None:
        assert changed["provider"]["google"][0]["default_labels"][key] == value
        assert at(changed, "dicom_events/topic").body["labels"][key] == value
        assert at(changed, "processor/function").body["labels"][key] == value
        assert at(base, "dicom_events/topic").body["labels"][key] != value

    return Knob(f"labels.{key}", value, check)


def _check_label_environment(base: Stack, changed: Stack) -> None:
    # The environment label is the file's name (enforced), here `knob-<n>`.
    env = changed["provider"]["google"][0]["default_labels"]["environment"]
    assert env.startswith("knob-")
    assert at(changed, "staging/bucket").body["labels"]["environment"] == env
    assert _service(changed, "processor")["environment_variables"]["ENVIRONMENT"] == env
    assert at(changed, "healthcare/dataset").body["name"] == f"imaging-{env}"
    assert at(base, "healthcare/dataset").body["name"] == "imaging-base"


def _check_backend_type(base: Stack, changed: Stack) -> None:
    # Local state lives next to the output directory, never inside it (rm -rf cdktf.out).
    assert base["terraform"]["backend"]["local"] == {"path": "../../../state/base.tfstate"}
    assert changed["terraform"]["backend"] == {
        "gcs": {"bucket": "knob-state-bucket", "prefix": "cdktf/knob"}
    }


def _check_backend_bucket(base: Stack, changed: Stack) -> None:
    assert changed["terraform"]["backend"]["gcs"]["bucket"] == "other-state-bucket"


def _check_backend_prefix(base: Stack, changed: Stack) -> None:
    assert changed["terraform"]["backend"]["gcs"]["prefix"] == "elsewhere/state"


def _check_emails(base: Stack, changed: Stack) -> None:
    channels = of_type(changed, "google_monitoring_notification_channel")
    assert sorted(c.body["labels"]["email_address"] for c in channels) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert len(of_type(base, "google_monitoring_notification_channel")) == 1
    assert (
        len(at(changed, "observability/alert_critical_finding").body["notification_channels"]) == 3
    )


def _check_time_zone(base: Stack, changed: Stack) -> None:
    assert at(changed, "healthcare/dataset").body["time_zone"] == "Europe/Amsterdam"
    assert at(base, "healthcare/dataset").body["time_zone"] == "UTC"


def _check_processor_timeout(base: Stack, changed: Stack) -> None:
    assert _service(changed, "processor")["timeout_seconds"] == 420
    # The push subscription's ack deadline follows the processor's timeout.
    assert at(changed, "processor_subscription/subscription").body["ack_deadline_seconds"] == 420
    assert at(base, "processor_subscription/subscription").body["ack_deadline_seconds"] == 300


def _staging_rule(prefix: str, days: int) -> Callable[[Stack, Stack], None]:
    def check(base: Stack, changed: Stack) -> None:
        def age(stack: Stack) -> int:
            (rule,) = [
                r
                for r in _lifecycle(stack, "staging/bucket")
                if r["condition"].get("matches_prefix") == [prefix]
            ]
            return int(rule["condition"]["age"])

        assert age(changed) == days != age(base)

    return check


def _check_noncurrent(base: Stack, changed: Stack) -> None:
    for path in ("staging/bucket", "function_source/bucket"):
        noncurrent = [
            r["condition"]["days_since_noncurrent_time"]
            for r in _lifecycle(changed, path)
            if "days_since_noncurrent_time" in r["condition"]
        ]
        assert noncurrent == [12]


def _check_pubsub_days(base: Stack, changed: Stack) -> None:
    for topic in of_type(changed, "google_pubsub_topic"):
        assert topic.body["message_retention_duration"] == "1209600s"
    for sub in of_type(changed, "google_pubsub_subscription"):
        assert sub.body["message_retention_duration"] == "1209600s"
    assert at(base, "dicom_events/topic").body["message_retention_duration"] == "259200s"


def _check_log_days(base: Stack, changed: Stack) -> None:
    assert at(changed, "audit/default_bucket").body["retention_days"] == 365
    assert at(base, "audit/default_bucket").body["retention_days"] == 30


def _check_cmek(base: Stack, changed: Stack) -> None:
    assert of_type(base, "google_kms_crypto_key") == []
    assert len(of_type(changed, "google_kms_crypto_key")) == 3
    assert '"cloudkms.googleapis.com"' in at(changed, "services").body["for_each"]
    assert "cloudkms" not in at(base, "services").body["for_each"]
    assert (
        at(changed, "dicom_events/topic")
        .body["kms_key_name"]
        .startswith("${google_kms_crypto_key.")
    )
    assert "encryption_spec" in at(changed, "healthcare/dataset").body
    assert "encryption" in at(changed, "staging/bucket").body


def _check_rotation(base: Stack, changed: Stack) -> None:
    keys = of_type(changed, "google_kms_crypto_key")
    assert keys and {k.body["rotation_period"] for k in keys} == {"2592000s"}


def _check_deletion_protection(base: Stack, changed: Stack) -> None:
    for path in ("healthcare/dataset", "healthcare/dicom", "healthcare/fhir"):
        assert at(changed, path).body["lifecycle"] == {"prevent_destroy": True}
        assert at(base, path).body.get("lifecycle", {}).get("prevent_destroy") is not True


def _delivery(field: str, value: int, where: Callable[[Stack], Any]) -> Knob:
    def check(base: Stack, changed: Stack) -> None:
        assert where(changed) != where(base)
        assert where(changed) in (value, f"{value}s")

    return Knob(f"delivery.{field}", value, check)


def _push(stack: Stack) -> dict[str, Any]:
    body: dict[str, Any] = at(stack, "processor_subscription/subscription").body
    return body


def _check_failure_ratio(base: Stack, changed: Stack) -> None:
    assert _policy(changed, "failure_ratio")["threshold_value"] == 0.2
    assert _policy(base, "failure_ratio")["threshold_value"] == 0.05


def _check_auto_close(base: Stack, changed: Stack) -> None:
    for policy in of_type(changed, "google_monitoring_alert_policy"):
        assert policy.body["alert_strategy"]["auto_close"] == "3600s"
    for policy in of_type(base, "google_monitoring_alert_policy"):
        assert policy.body["alert_strategy"]["auto_close"] == "1800s"


def _check_rate_limit(base: Stack, changed: Stack) -> None:
    def period(stack: Stack) -> str:
        strategy = at(stack, "observability/alert_critical_finding").body["alert_strategy"]
        return str(strategy["notification_rate_limit"]["period"])

    assert (period(base), period(changed)) == ("300s", "900s")


def _consumer_knobs(topic: str) -> list[Knob]:
    path = f"consumers/{topic}/subscription"

    def check_push(base: Stack, changed: Stack) -> None:
        body = at(changed, path).body
        assert body["push_config"]["push_endpoint"] == "https://hooks.example.org/imaging"
        assert body["name"].endswith("-push") and at(base, path).body["name"].endswith("-inbox")
        assert "push_config" not in at(base, path).body
        assert at(changed, "consumers/push_identity").body["account_id"] == "imaging-notify"

    def check_subscribers(base: Stack, changed: Stack) -> None:
        members = {
            b.body["member"]
            for b in of_type(changed, "google_pubsub_subscription_iam_member")
            if b.path.startswith(f"consumers/{topic}/")
        }
        assert "group:oncall@example.org" in members
        assert len(of_type(changed, "google_pubsub_subscription_iam_member")) == (
            len(of_type(base, "google_pubsub_subscription_iam_member")) + 1
        )

    def check_ack(base: Stack, changed: Stack) -> None:
        assert at(changed, path).body["ack_deadline_seconds"] == 120
        assert at(base, path).body["ack_deadline_seconds"] == 60

    push = {"type": "push", "push_endpoint": "https://hooks.example.org/imaging"}
    return [
        Knob(f"consumers.{topic}.type", push, check_push),
        Knob(f"consumers.{topic}.push_endpoint", push, check_push),
        Knob(f"consumers.{topic}.subscribers", ["group:oncall@example.org"], check_subscribers),
        Knob(f"consumers.{topic}.ack_deadline_seconds", 120, check_ack),
    ]


def _check_window(base: Stack, changed: Stack) -> None:
    for key in ("failure_ratio", "function_errors", "dead_letter_backlog"):
        assert _policy(changed, key)["aggregations"][0]["alignment_period"] == "900s"
        assert _policy(base, key)["aggregations"][0]["alignment_period"] == "300s"


VERTEX_ENDPOINT = "projects/imaging-knob-models/locations/us-central1/endpoints/4242"
ROUTES = {
    "CT": {"analyzer": "none"},
    "US": {"analyzer": "vision", "vision_features": ["text"]},
    "DX": {"analyzer": "vertex", "vertex": {"endpoint": VERTEX_ENDPOINT, "input": "dicomweb"}},
}


def _check_routes(base: Stack, changed: Stack) -> None:
    """Routes reach the processor; a Vertex route enables the API and grants the processor
    prediction on that endpoint only; a `none` route is filtered out of the subscription."""
    routes = _pipeline(changed)["routes"]
    assert routes["CT"]["analyzer"] == "none" and routes["US"]["vision_features"] == ["text"]
    assert routes["DX"]["vertex"]["endpoint"] == VERTEX_ENDPOINT and not _pipeline(base)["routes"]
    [grant] = of_type(changed, "google_vertex_ai_endpoint_iam_member")
    assert not of_type(base, "google_vertex_ai_endpoint_iam_member")
    processor = at(changed, "processor/identity").body
    assert (grant.body["project"], grant.body["location"], grant.body["endpoint"]) == (
        "imaging-knob-models",
        "us-central1",
        "4242",
    )
    account = _key(changed, processor)
    assert grant.body["member"] == f"${{google_service_account.{account}.member}}"
    base_roles = {r.key for r in of_type(base, "google_project_iam_custom_role")}
    [role] = [
        r for r in of_type(changed, "google_project_iam_custom_role") if r.key not in base_roles
    ]
    assert role.body["permissions"] == ["aiplatform.endpoints.predict"]
    assert grant.body["role"] == f"${{google_project_iam_custom_role.{role.key}.id}}"
    # Endpoint IAM is a google-beta resource, pinned like the google provider.
    assert grant.body["provider"] == "google-beta"
    assert changed["provider"]["google-beta"][0]["project"] == "imaging-pipeline-dev"
    required = changed["terraform"]["required_providers"]
    assert required["google-beta"]["source"] == "hashicorp/google-beta"
    assert "aiplatform.googleapis.com" in json.dumps(changed["resource"]["google_project_service"])
    assert "aiplatform.googleapis.com" not in json.dumps(base["resource"]["google_project_service"])
    assert 'NOT attributes.modality = "CT"' in _push(changed)["filter"]


def _key(stack: Stack, body: dict[str, Any]) -> str:
    return next(k for k, v in stack["resource"]["google_service_account"].items() if v is body)


KNOBS = [
    Knob("project_id", "imaging-knob-project", _check_project),
    Knob("region", "europe-west4", _check_region),
    Knob("name_prefix", "radiol", _check_prefix),
    Knob("labels.environment", None, _check_label_environment),
    _labels("cost_centre", "oncology"),
    _labels("data_classification", "confidential"),
    Knob(
        "state_backend.type",
        {"type": "gcs", "bucket": "knob-state-bucket", "prefix": "cdktf/knob"},
        _check_backend_type,
    ),
    Knob(
        "state_backend.bucket",
        {"type": "gcs", "bucket": "other-state-bucket"},
        _check_backend_bucket,
    ),
    Knob(
        "state_backend.prefix",
        {"type": "gcs", "bucket": "b-state", "prefix": "elsewhere/state"},
        _check_backend_prefix,
    ),
    Knob("alert_emails", ["a@example.org", "b@example.org", "c@example.org"], _check_emails),
    Knob("time_zone", "Europe/Amsterdam", _check_time_zone),
    _sizing("processor", "memory_mib", "available_memory", 4096, "4096Mi"),
    _sizing("processor", "cpu", "available_cpu", "2", "2"),
    Knob("functions.processor.timeout_seconds", 420, _check_processor_timeout),
    _sizing("processor", "min_instances", "min_instance_count", 2, 2),
    _sizing("processor", "max_instances", "max_instance_count", 50, 50),
    _sizing("processor", "concurrency", "max_instance_request_concurrency", 4, 4),
    _sizing("ingest", "memory_mib", "available_memory", 2048, "2048Mi"),
    _sizing("ingest", "cpu", "available_cpu", "2", "2"),
    _sizing("ingest", "timeout_seconds", "timeout_seconds", 240, 240),
    _sizing("ingest", "min_instances", "min_instance_count", 1, 1),
    _sizing("ingest", "max_instances", "max_instance_count", 30, 30),
    _sizing("ingest", "concurrency", "max_instance_request_concurrency", 8, 8),
    Knob("review_app.enabled", False, _check_review_enabled),
    Knob("review_app.domain", "review.knob.example.org", _check_review_domain),
    Knob("review_app.access", ["user:dr.knob@example.org"], _check_review_access),
    Knob(
        "review_app.viewer_url",
        "https://viewer.example.org/?study={study_uid}",
        _check_review_viewer,
    ),
    _review_sizing("memory_mib", "available_memory", 2048, "2048Mi"),
    _review_sizing("cpu", "available_cpu", "2", "2"),
    _review_sizing("timeout_seconds", "timeout_seconds", 90, 90),
    _review_sizing("min_instances", "min_instance_count", 1, 1),
    _review_sizing("max_instances", "max_instance_count", 9, 9),
    _review_sizing("concurrency", "max_instance_request_concurrency", 4, 4),
    Knob("retention.staging_processed_days", 14, _staging_rule("processed/", 14)),
    Knob("retention.staging_failed_days", 60, _staging_rule("failed/", 60)),
    Knob("retention.noncurrent_versions_days", 12, _check_noncurrent),
    Knob("retention.pubsub_message_days", 14, _check_pubsub_days),
    Knob("retention.log_days", 365, _check_log_days),
    Knob("security.cmek", True, _check_cmek),
    Knob("security.key_rotation_days", {"cmek": True, "key_rotation_days": 30}, _check_rotation),
    Knob("security.deletion_protection", True, _check_deletion_protection),
    _delivery(
        "max_attempts", 12, lambda s: _push(s)["dead_letter_policy"]["max_delivery_attempts"]
    ),
    _delivery("min_backoff_seconds", 30, lambda s: _push(s)["retry_policy"]["minimum_backoff"]),
    _delivery("max_backoff_seconds", 300, lambda s: _push(s)["retry_policy"]["maximum_backoff"]),
    Knob("alerting.failure_ratio", 0.2, _check_failure_ratio),
    Knob("alerting.window_minutes", 15, _check_window),
    Knob("alerting.auto_close_minutes", 60, _check_auto_close),
    Knob("alerting.notification_rate_limit_minutes", 15, _check_rate_limit),
    *_consumer_knobs("critical_findings"),
    *_consumer_knobs("fhir_changes"),
    _pipeline_knob("pipeline.analyzer", "local"),
    _pipeline_knob("pipeline.modalities", ["CT", "MR"]),
    _pipeline_knob("pipeline.render.max_size", 512),
    _pipeline_knob("pipeline.render.format", "png"),
    _pipeline_knob("pipeline.vision.timeout_seconds", 10.0),
    _pipeline_knob("pipeline.vision.max_attempts", 2),
    _pipeline_knob("pipeline.vision.max_results", 5),
    _pipeline_knob("pipeline.vision.features", ["text"]),
    Knob("pipeline.routes", {"routes": ROUTES}, _check_routes),
    _pipeline_knob("pipeline.local_analyzer.ocr_min_confidence", 50),
    _pipeline_knob("pipeline.local_analyzer.ocr_timeout_seconds", 12.0),
    _pipeline_knob("pipeline.fhir.patient_identifier_system", "urn:knob:patient"),
    _pipeline_knob("pipeline.structured_report", False),
    _pipeline_knob(
        "pipeline.rules",
        [
            {
                "name": "only-text",
                "finding": "text",
                "terms": ["left"],
                "min_score": 0.7,
                "priority": "routine",
            }
        ],
        [
            {
                "name": "only-text",
                "finding": "text",
                "terms": ["left"],
                "min_score": 0.7,
                "priority": "routine",
            }
        ],
    ),
]


def _base_config() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "environments" / "dev.yaml").read_text())
    raw["labels"]["environment"] = BASE
    raw["state_backend"] = {"type": "local"}  # allowed: CI does not deploy `base` or `knob-*`
    return raw


def _apply(raw: dict[str, Any], key: str, value: Any) -> None:
    """Sets `key` to `value`; a mapping value is merged into the key's section instead, for
    fields that must change together (a gcs backend needs a bucket, rotation needs CMEK)."""
    if value is None:  # labels.environment: the file's name is the change
        return
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if isinstance(value, dict):
        node.update(value)
    else:
        node[last] = value


def _name(index: int) -> str:
    return f"knob-{index:02d}"


@pytest.fixture(scope="module")
def knob_stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    env_dir = tmp_path_factory.mktemp("knob-environments")
    (env_dir / f"{BASE}.yaml").write_text(yaml.safe_dump(_base_config()))
    for index, knob in enumerate(KNOBS):
        raw = copy.deepcopy(_base_config())
        raw["labels"]["environment"] = _name(index)
        _apply(raw, knob.key, knob.value)
        (env_dir / f"{_name(index)}.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path_factory.mktemp("knob-synth")
    result = run_synth(out, env_dir=env_dir)
    assert result.returncode == 0, result.stderr
    return load_stacks(out)


@pytest.mark.parametrize("index", range(len(KNOBS)), ids=[k.key for k in KNOBS])
def test_knob_changes_the_synthesized_json(knob_stacks: dict[str, Stack], index: int) -> None:
    KNOBS[index].check(knob_stacks[BASE], knob_stacks[_name(index)])


def test_every_config_key_has_a_knob_test() -> None:
    covered = {k.key for k in KNOBS}
    leaves = [k.path for k in docs.config_keys() if k.type != "mapping"]
    # List items (`pipeline.rules[].x`) and mapping entries (`pipeline.routes.<MODALITY>.x`)
    # are covered by the list's or mapping's own knob.
    # `ci.*` changes only the setup stack: tests/infra/test_setup_stack.py covers it.
    missing = [
        p
        for p in leaves
        if "[]" not in p and ".<" not in p and p not in covered and not p.startswith("ci.")
    ]
    assert missing == [], f"add a knob test for: {missing}"


def test_unknown_knob_values_would_be_rejected(tmp_path: Path) -> None:
    # The fixture's variants are only meaningful if the schema validates them; an invalid one
    # must fail the synth with a message naming the key.
    raw = _base_config()
    raw["functions"]["processor"]["memory_mib"] = 1000
    (tmp_path / f"{BASE}.yaml").write_text(yaml.safe_dump(raw))
    result = run_synth(tmp_path / "out", env_dir=tmp_path)
    assert result.returncode == 2
    assert "functions.processor.memory_mib" in result.stderr
