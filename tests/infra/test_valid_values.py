"""Every enumerated or bounded value we synthesize is one the APIs accept.

Enumerations come from the provider's own docs ("Possible values: [...]" in the docstrings of
hashicorp/google 6.50.0, shipped in the prebuilt package); where the provider does not list
them, the allowed set is written down here with its source.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import modules  # noqa: F401  (lazy provider root: find_spec must not import all 1,470 modules)
from stacks.config import MEMORY_MIB
from tests.infra.conftest import ENVIRONMENTS
from tests.infra.synthesized import of_type, resources

# Cloud Functions gen2 Python runtimes (cloud.google.com/functions/docs/runtime-support).
RUNTIMES = {"python38", "python39", "python310", "python311", "python312", "python313"}
# Direct Cloud Storage events of Eventarc
# (cloud.google.com/eventarc/docs/reference/supported-events).
STORAGE_EVENT_TYPES = {
    "google.cloud.storage.object.v1.finalized",
    "google.cloud.storage.object.v1.archived",
    "google.cloud.storage.object.v1.deleted",
    "google.cloud.storage.object.v1.metadataUpdated",
}
# Kubernetes quantity with the units ServiceConfig.available_memory lists: k, M, G, Mi, Gi.
MEMORY = re.compile(r"^(\d+)(k|M|G|Mi|Gi)?$")
DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
# Predefined IAM roles (cloud.google.com/iam/docs/roles-permissions) of the services we bind.
PREDEFINED_ROLES = {
    "roles/healthcare.dicomViewer",
    "roles/healthcare.dicomEditor",
    "roles/healthcare.fhirResourceReader",
    "roles/healthcare.fhirResourceEditor",
    "roles/pubsub.publisher",
    "roles/pubsub.subscriber",
    "roles/pubsub.viewer",
    "roles/storage.objectViewer",
    "roles/storage.objectCreator",
    "roles/storage.objectAdmin",
    "roles/run.invoker",
    "roles/eventarc.eventReceiver",
    "roles/cloudkms.cryptoKeyEncrypterDecrypter",
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
    "roles/monitoring.viewer",
    "roles/iap.httpsResourceAccessor",
}
AUDIT_LOG_TYPES = {"ADMIN_READ", "DATA_READ", "DATA_WRITE"}
KMS_PURPOSES = {
    "ENCRYPT_DECRYPT",
    "ASYMMETRIC_SIGN",
    "ASYMMETRIC_DECRYPT",
    "MAC",
    "RAW_ENCRYPT_DECRYPT",
}
LIFECYCLE_ACTIONS = {"Delete", "SetStorageClass", "AbortIncompleteMultipartUpload"}
OBJECT_STATES = {"LIVE", "ARCHIVED", "ANY"}
PUBLIC_ACCESS_PREVENTION = {"enforced", "inherited"}


@cache
def possible_values(module: str, param: str) -> frozenset[str]:
    """The "Possible values" the provider documents for `param` of resource `module`."""
    spec = importlib.util.find_spec(f"cdktn_provider_google.{module}")
    assert spec is not None and spec.origin is not None
    text = Path(spec.origin).read_text(encoding="utf-8")
    found: set[str] = set()
    for doc in re.findall(rf":param {param}: (.*)", text):
        match = re.search(r"Possible values: (\[[^\]]*\])", doc)
        if match:
            found |= set(json.loads(match.group(1)))
    assert found, f"the provider documents no values for {module}.{param}"
    return frozenset(found)


def _seconds(duration: str) -> float:
    assert DURATION.fullmatch(duration), duration
    return float(duration[:-1])


@pytest.fixture(params=ENVIRONMENTS)
def stack(request: pytest.FixtureRequest, stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stacks[str(request.param)]


def test_function_settings(stack: dict[str, Any]) -> None:
    functions = of_type(stack, "google_cloudfunctions2_function")
    assert len(functions) == 3  # ingest, processor, review app
    ingress = possible_values("cloudfunctions2_function", "ingress_settings")
    retry = possible_values("cloudfunctions2_function", "retry_policy")
    for fn in functions:
        build, service = fn.body["build_config"], fn.body["service_config"]
        assert build["runtime"] in RUNTIMES
        assert service["ingress_settings"] in ingress
        memory = MEMORY.fullmatch(service["available_memory"])
        assert memory and memory.group(2) == "Mi" and int(memory.group(1)) in MEMORY_MIB
        assert 1 <= service["timeout_seconds"] <= 540  # event-driven maximum (HTTP: 3600)
        assert 0 <= service["min_instance_count"] <= service["max_instance_count"]
        trigger = fn.body.get("event_trigger")
        if trigger:
            assert trigger["event_type"] in STORAGE_EVENT_TYPES
            assert trigger["retry_policy"] in retry
            assert [f["attribute"] for f in trigger["event_filters"]] == ["bucket"]


def test_pubsub_settings(stack: dict[str, Any]) -> None:
    for topic in of_type(stack, "google_pubsub_topic"):
        assert 600 <= _seconds(topic.body["message_retention_duration"]) <= 2678400
    subscriptions = of_type(stack, "google_pubsub_subscription")
    # The processor's and the two declared consumers', and the hold of each dead-letter topic.
    assert len(subscriptions) == 6
    for sub in subscriptions:
        assert 10 <= sub.body["ack_deadline_seconds"] <= 600
        assert 600 <= _seconds(sub.body["message_retention_duration"]) <= 2678400
        if "retry_policy" in sub.body:
            low = _seconds(sub.body["retry_policy"]["minimum_backoff"])
            high = _seconds(sub.body["retry_policy"]["maximum_backoff"])
            assert 0 <= low <= high <= 600
        if "dead_letter_policy" in sub.body:
            assert 5 <= sub.body["dead_letter_policy"]["max_delivery_attempts"] <= 100


def test_healthcare_settings(stack: dict[str, Any]) -> None:
    versions = possible_values("healthcare_fhir_store", "version")
    for store in of_type(stack, "google_healthcare_fhir_store"):
        assert store.body["version"] in versions


def test_role_names_are_predefined_roles(stack: dict[str, Any]) -> None:
    roles = {r.body["role"] for r in resources(stack) if r.type.endswith("_iam_member")}
    assert roles
    # Custom roles (DICOMweb writer, the review app's FHIR reviewer, Vertex AI predictor) are
    # defined in the same stack.
    custom = {r for r in roles if r.startswith("${google_project_iam_custom_role.")}
    defined = {
        f"google_project_iam_custom_role.{r.key}"
        for r in of_type(stack, "google_project_iam_custom_role")
    }
    assert {r.removeprefix("${").rsplit(".", 1)[0] for r in custom} <= defined
    assert roles - custom <= PREDEFINED_ROLES, roles - custom - PREDEFINED_ROLES


def test_storage_and_kms_settings(stack: dict[str, Any]) -> None:
    for bucket in of_type(stack, "google_storage_bucket"):
        assert bucket.body["public_access_prevention"] in PUBLIC_ACCESS_PREVENTION
        for rule in bucket.body["lifecycle_rule"]:
            assert rule["action"]["type"] in LIFECYCLE_ACTIONS
            assert rule["condition"]["with_state"] in OBJECT_STATES
    for key in of_type(stack, "google_kms_crypto_key"):
        assert key.body["purpose"] in KMS_PURPOSES
        assert _seconds(key.body["rotation_period"]) >= 86400  # "greater than a day"
    for audit in of_type(stack, "google_project_iam_audit_config"):
        assert {c["log_type"] for c in audit.body["audit_log_config"]} <= AUDIT_LOG_TYPES


def test_monitoring_settings(stack: dict[str, Any]) -> None:
    severities = possible_values("monitoring_alert_policy", "severity")
    combiners = possible_values("monitoring_alert_policy", "combiner")
    comparisons = possible_values("monitoring_alert_policy", "comparison")
    aligners = possible_values("monitoring_alert_policy", "per_series_aligner")
    reducers = possible_values("monitoring_alert_policy", "cross_series_reducer")
    policies = of_type(stack, "google_monitoring_alert_policy")
    assert len(policies) == 4
    for policy in policies:
        assert policy.body["severity"] in severities
        assert policy.body["combiner"] in combiners
        # Alert policies close by themselves (Monitoring accepts 30 min to 7 days).
        assert 1800 <= _seconds(policy.body["alert_strategy"]["auto_close"]) <= 604800
        for condition in policy.body["conditions"]:
            if "condition_matched_log" in condition:
                # Log-match conditions need a notification rate limit (at least 5 minutes).
                limit = policy.body["alert_strategy"]["notification_rate_limit"]["period"]
                assert _seconds(limit) >= 300
                continue
            threshold = condition["condition_threshold"]
            # The provider notes only COMPARISON_LT and COMPARISON_GT are supported.
            assert threshold["comparison"] in comparisons & {"COMPARISON_LT", "COMPARISON_GT"}
            _seconds(threshold["duration"])
            for agg in threshold["aggregations"] + threshold.get("denominator_aggregations", []):
                assert agg["per_series_aligner"] in aligners
                assert agg.get("cross_series_reducer", "REDUCE_NONE") in reducers
                assert _seconds(agg["alignment_period"]) >= 60
    kinds = possible_values("logging_metric", "metric_kind")
    value_types = possible_values("logging_metric", "value_type")
    for metric in of_type(stack, "google_logging_metric"):
        descriptor = metric.body["metric_descriptor"]
        assert descriptor["metric_kind"] in kinds and descriptor["value_type"] in value_types
        assert set(metric.body.get("label_extractors", {})) == {
            label["key"] for label in descriptor.get("labels", [])
        }
    for channel in of_type(stack, "google_monitoring_notification_channel"):
        assert channel.body["type"] == "email" and "@" in channel.body["labels"]["email_address"]


def test_provider_docs_parsing_finds_real_sets() -> None:
    assert possible_values("cloudfunctions2_function", "ingress_settings") == {
        "ALLOW_ALL",
        "ALLOW_INTERNAL_ONLY",
        "ALLOW_INTERNAL_AND_GCLB",
    }
    assert "RETRY_POLICY_RETRY" in possible_values("cloudfunctions2_function", "retry_policy")
