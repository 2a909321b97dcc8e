"""Our own policy rules on every synthesized stack: least-privilege IAM, nothing public,
labels everywhere, CMEK and deletion protection where the environment asks for them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.config import load_environments
from tests.infra.conftest import ENVIRONMENTS
from tests.infra.policy import rules
from tests.infra.synthesized import Binding, at, iam_bindings, of_type, ref, resources

# The only project-level grants, each because no narrower resource exists to bind to.
PROJECT_ROLES = {
    ("roles/eventarc.eventReceiver", "ingest"),  # Eventarc delivers storage events to it
    ("roles/pubsub.publisher", "storage_agent"),  # GCS publishes to Eventarc's own topic
    ("roles/logging.logWriter", "build"),  # Cloud Build logs of the function builds
    ("roles/artifactregistry.writer", "build"),  # gcf-artifacts repo is created by GCF
    ("roles/storage.objectViewer", "build"),  # GCF's gcf-v2-sources bucket only (condition)
    ("roles/monitoring.viewer", "review"),  # the operations page reads the outcome metrics
}
CONFIG = {env.name: env.config for env in load_environments(list(ENVIRONMENTS))}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _identity(stack: dict[str, Any], path: str) -> str:
    return ref(at(stack, path), "member")


def _data_ref(stack: dict[str, Any], type_: str, attribute: str) -> str:
    (key,) = stack["data"][type_]
    return f"${{data.{type_}.{key}.{attribute}}}"


def _grants(stack: dict[str, Any], member: str) -> set[tuple[str, str]]:
    return {(b.role, b.path.split("/")[0]) for b in iam_bindings(stack) if b.member == member}


def test_no_basic_roles_no_admin_roles_no_authoritative_iam(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    assert iam_bindings(stack), "no IAM bindings found"
    assert rules.broad_roles(stack) == []
    assert rules.authoritative_iam(stack) == []


def test_nothing_is_public(stacks: dict[str, dict[str, Any]], env: str) -> None:
    assert rules.public_members(stacks[env]) == []
    assert rules.open_buckets(stacks[env]) == []
    assert rules.open_functions(stacks[env]) == []


def test_project_level_grants_are_only_the_documented_ones(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    names = {
        _identity(stack, "ingest/identity"): "ingest",
        _identity(stack, "build/identity"): "build",
        _identity(stack, "review/app/identity"): "review",
        _data_ref(stack, "google_storage_project_service_account", "member"): "storage_agent",
    }
    project = {
        (b.role, names.get(b.member, b.member))
        for b in iam_bindings(stack)
        if b.type == "google_project_iam_member"
    }
    assert project == PROJECT_ROLES


def test_processor_identity_has_exactly_its_resource_grants(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    processor = _identity(stack, "processor/identity")
    # DICOMweb read and write for the STOW-RS of its SRs (a custom role without delete, see
    # modules/healthcare_stores.py), on the DICOM store only.
    writer = ref(at(stack, "healthcare/dicomweb_writer"), "id")
    assert at(stack, "healthcare/dicomweb_writer").body["permissions"] == [
        "healthcare.dicomStores.dicomWebRead",
        "healthcare.dicomStores.dicomWebWrite",
    ]
    assert _grants(stack, processor) == {
        (writer, "healthcare"),
        ("roles/healthcare.fhirResourceEditor", "healthcare"),
        ("roles/pubsub.publisher", "critical_alerts"),
    }
    targets = {b.role: b.target for b in iam_bindings(stack) if b.member == processor}
    assert targets[writer] == ref(at(stack, "healthcare/dicom"), "id")
    assert targets["roles/healthcare.fhirResourceEditor"] == ref(at(stack, "healthcare/fhir"), "id")
    assert targets["roles/pubsub.publisher"] == ref(at(stack, "critical_alerts/topic"), "name")


def test_ingest_identity_has_exactly_its_grants(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    ingest = _identity(stack, "ingest/identity")
    writer = ref(at(stack, "healthcare/dicomweb_writer"), "id")
    assert _grants(stack, ingest) == {
        (writer, "healthcare"),
        ("roles/storage.objectAdmin", "staging"),
        ("roles/run.invoker", "ingest"),  # Eventarc invokes the function as this identity
        ("roles/eventarc.eventReceiver", "ingest"),  # project-level, made by the function
    }
    targets = {b.role: b.target for b in iam_bindings(stack) if b.member == ingest}
    assert targets["roles/storage.objectAdmin"] == ref(at(stack, "staging/bucket"), "name")


def test_only_the_push_identity_may_invoke_the_processor(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    invokers: list[Binding] = [b for b in iam_bindings(stack) if b.role == "roles/run.invoker"]
    by_function = {b.target: b.member for b in invokers}
    processor = ref(at(stack, "processor/function"), "name")
    ingest = ref(at(stack, "ingest/function"), "name")
    review = ref(at(stack, "review/app/function"), "name")
    assert by_function == {
        processor: _identity(stack, "push_identity"),
        ingest: _identity(stack, "ingest/identity"),
        review: ref(at(stack, "agents/iap"), "member"),  # IAP's agent, created before its grant
    }
    assert len(invokers) == 3
    push = at(stack, "processor_subscription/subscription").body["push_config"]
    assert push["oidc_token"]["service_account_email"] == ref(at(stack, "push_identity"), "email")
    assert _grants(stack, _identity(stack, "push_identity")) == {("roles/run.invoker", "processor")}


def test_review_app_identity_has_exactly_its_grants(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    """FHIR read + the review's writes (custom role), DICOM read, dead letters in, events out."""
    stack = stacks[env]
    review = _identity(stack, "review/app/identity")
    role = ref(at(stack, "review/fhir_reviewer"), "name")
    assert _grants(stack, review) == {
        ("roles/healthcare.dicomViewer", "healthcare"),
        (role, "healthcare"),
        ("roles/pubsub.subscriber", "dicom_events_dead_letter"),
        ("roles/pubsub.publisher", "dicom_events"),
        ("roles/monitoring.viewer", "review_monitoring_viewer"),
    }
    targets = {b.role: b.target for b in iam_bindings(stack) if b.member == review}
    assert targets[role] == ref(at(stack, "healthcare/fhir"), "id")
    assert targets["roles/pubsub.subscriber"] == ref(
        at(stack, "dicom_events_dead_letter/hold"), "name"
    )
    permissions = at(stack, "review/fhir_reviewer").body["permissions"]
    assert not [p for p in permissions if p.endswith((".delete", ".purge", ".patch"))]
    # Who may enter: exactly the configured members, through IAP on the app's backend.
    access = {
        b.member
        for b in iam_bindings(stack)
        if b.type == "google_iap_web_backend_service_iam_member"
    }
    assert access == set(CONFIG[env].review_app.access)
    assert at(stack, "review/backend").body["iap"] == {"enabled": True}


def test_service_agents_get_what_notifications_and_dead_lettering_need(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    # Created by google_project_service_identity before anything is granted to them.
    healthcare = ref(at(stack, "agents/healthcare"), "member")
    pubsub = ref(at(stack, "agents/pubsub"), "member")
    expected_healthcare = {
        ("roles/pubsub.publisher", "dicom_events"),
        ("roles/pubsub.publisher", "fhir_changes"),
    }
    expected_pubsub = {
        ("roles/pubsub.publisher", "dicom_events_dead_letter"),
        ("roles/pubsub.publisher", "critical_findings_dead_letter"),
        ("roles/pubsub.publisher", "fhir_changes_dead_letter"),
        ("roles/pubsub.subscriber", "processor_subscription"),
        ("roles/pubsub.subscriber", "consumers"),
    }
    if CONFIG[env].security.cmek:
        expected_healthcare.add(("roles/cloudkms.cryptoKeyEncrypterDecrypter", "cmek"))
        expected_pubsub.add(("roles/cloudkms.cryptoKeyEncrypterDecrypter", "cmek"))
    assert _grants(stack, healthcare) == expected_healthcare
    assert _grants(stack, pubsub) == expected_pubsub


def test_every_labelable_resource_carries_the_environment_labels(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    assert rules.unlabeled(stacks[env], CONFIG[env].labels.model_dump()) == []
    types = {r.type for r in resources(stacks[env]) if rules.label_field(r.type)}
    assert {
        "google_pubsub_topic",
        "google_storage_bucket",
        "google_cloudfunctions2_function",
        "google_healthcare_dicom_store",
        "google_monitoring_alert_policy",
    } <= types


def test_cmek_where_configured(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    encrypted = [
        "healthcare/dataset",
        "dicom_events/topic",
        "dicom_events_dead_letter/topic",
        "fhir_changes/topic",
        "critical_alerts/topic",
        "critical_findings_dead_letter/topic",
        "fhir_changes_dead_letter/topic",
        "staging/bucket",
        "function_source/bucket",
    ]
    if CONFIG[env].security.cmek:
        assert rules.unencrypted(stack) == []
        rotation = f"{CONFIG[env].security.key_rotation_days * 86400}s"
        for key in of_type(stack, "google_kms_crypto_key"):
            assert key.body["rotation_period"] == rotation
    else:
        assert sorted(rules.unencrypted(stack)) == sorted(encrypted)
        assert of_type(stack, "google_kms_crypto_key") == []


def test_prod_is_encrypted_and_protected(stacks: dict[str, dict[str, Any]]) -> None:
    stack = stacks["prod"]
    assert CONFIG["prod"].security.cmek and CONFIG["prod"].security.deletion_protection
    assert rules.unencrypted(stack) == []
    assert rules.unprotected(stack) == []
    assert len(of_type(stack, "google_kms_crypto_key")) == 3


def test_deletion_protection_follows_the_config(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    protect = CONFIG[env].security.deletion_protection
    for path in ("healthcare/dataset", "healthcare/dicom", "healthcare/fhir"):
        assert (
            at(stacks[env], path).body.get("lifecycle", {}).get("prevent_destroy", False) is protect
        )


def test_healthcare_data_access_is_audited(stacks: dict[str, dict[str, Any]], env: str) -> None:
    configs = {
        r.body["service"]: {c["log_type"] for c in r.body["audit_log_config"]}
        for r in of_type(stacks[env], "google_project_iam_audit_config")
    }
    assert configs["healthcare.googleapis.com"] == {"DATA_READ", "DATA_WRITE", "ADMIN_READ"}


def test_the_rules_catch_each_kind_of_violation(stacks: dict[str, dict[str, Any]]) -> None:
    """Each rule reports a violation planted in a copy of the prod stack (the gate can fail)."""
    broken = copy.deepcopy(stacks["prod"])
    res = broken["resource"]
    meta = {"//": {"metadata": {"path": "prod/planted"}}}
    res["google_storage_bucket_iam_member"]["planted_public"] = {
        **meta,
        "bucket": "b",
        "role": "roles/storage.objectViewer",
        "member": "allUsers",
    }
    res["google_project_iam_member"]["planted_editor"] = {
        **meta,
        "project": "p",
        "role": "roles/editor",
        "member": "user:x@example.org",
    }
    res["google_pubsub_topic_iam_binding"] = {"planted": {**meta, "topic": "t"}}
    topic = at(broken, "dicom_events/topic").body
    del topic["labels"]
    del topic["kms_key_name"]
    at(broken, "staging/bucket").body["public_access_prevention"] = "inherited"
    at(broken, "ingest/function").body["service_config"]["ingress_settings"] = "ALLOW_ALL"
    at(broken, "review/backend").body["iap"] = {"enabled": False}
    del at(broken, "healthcare/fhir").body["lifecycle"]

    assert rules.public_members(broken) == ["allUsers"]
    assert rules.broad_roles(broken) == ["planted: roles/editor"]
    assert rules.authoritative_iam(broken) == ["google_pubsub_topic_iam_binding.planted"]
    assert rules.open_buckets(broken) == ["staging/bucket"]
    assert rules.open_functions(broken) == ["ingest/function", "review/app/function"]
    assert rules.unlabeled(broken, CONFIG["prod"].labels.model_dump()) == [
        at(broken, "dicom_events/topic").address
    ]
    assert rules.unencrypted(broken) == ["dicom_events/topic"]
    assert rules.unprotected(broken) == ["healthcare/fhir"]
