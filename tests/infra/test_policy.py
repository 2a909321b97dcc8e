"""Our own policy rules on every synthesized stack: least-privilege IAM, nothing public,
labels everywhere, CMEK and deletion protection where the environment asks for them."""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import pytest

import modules  # noqa: F401  (lazy provider loading before any provider import)
from stacks.config import load_environments
from tests.infra.conftest import ENVIRONMENTS
from tests.infra.synthesized import Binding, Resource, at, iam_bindings, of_type, ref, resources

BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# The only project-level grants, each because no narrower resource exists to bind to.
PROJECT_ROLES = {
    ("roles/eventarc.eventReceiver", "ingest"),   # Eventarc delivers storage events to it
    ("roles/pubsub.publisher", "storage_agent"),  # GCS publishes to Eventarc's own topic
    ("roles/logging.logWriter", "build"),         # Cloud Build logs of the function builds
    ("roles/artifactregistry.writer", "build"),   # gcf-artifacts repo is created by GCF
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
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    roles = [b.role for b in iam_bindings(stack)]
    assert roles, "no IAM bindings found"
    assert not set(roles) & BASIC_ROLES
    assert not [r for r in roles if r.lower().endswith("admin") and "objectAdmin" not in r]
    authoritative = [r.type for r in resources(stack)
                     if r.type.endswith(("_iam_binding", "_iam_policy"))]
    assert authoritative == []


def test_nothing_is_public(stacks: dict[str, dict[str, Any]], env: str) -> None:
    text = json.dumps(stacks[env])
    assert "allUsers" not in text
    assert "allAuthenticatedUsers" not in text
    for bucket in of_type(stacks[env], "google_storage_bucket"):
        assert bucket.body["uniform_bucket_level_access"] is True
        assert bucket.body["public_access_prevention"] == "enforced"
    for function in of_type(stacks[env], "google_cloudfunctions2_function"):
        assert function.body["service_config"]["ingress_settings"] == "ALLOW_INTERNAL_ONLY"


def test_project_level_grants_are_only_the_documented_ones(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    names = {
        _identity(stack, "ingest/identity"): "ingest",
        _identity(stack, "build/identity"): "build",
        _data_ref(stack, "google_storage_project_service_account", "member"): "storage_agent",
    }
    project = {(b.role, names.get(b.member, b.member))
               for b in iam_bindings(stack) if b.type == "google_project_iam_member"}
    assert project == PROJECT_ROLES


def test_processor_identity_has_exactly_its_resource_grants(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    processor = _identity(stack, "processor/identity")
    assert _grants(stack, processor) == {
        ("roles/healthcare.dicomViewer", "healthcare"),
        ("roles/healthcare.fhirResourceEditor", "healthcare"),
        ("roles/pubsub.publisher", "critical_alerts"),
    }
    targets = {b.role: b.target for b in iam_bindings(stack) if b.member == processor}
    assert targets["roles/healthcare.dicomViewer"] == ref(at(stack, "healthcare/dicom"), "id")
    assert targets["roles/healthcare.fhirResourceEditor"] == ref(at(stack, "healthcare/fhir"), "id")
    assert targets["roles/pubsub.publisher"] == ref(at(stack, "critical_alerts/topic"), "name")


def test_ingest_identity_has_exactly_its_grants(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    ingest = _identity(stack, "ingest/identity")
    assert _grants(stack, ingest) == {
        ("roles/healthcare.dicomEditor", "healthcare"),
        ("roles/storage.objectAdmin", "staging"),
        ("roles/run.invoker", "ingest"),  # Eventarc invokes the function as this identity
        ("roles/eventarc.eventReceiver", "ingest_event_receiver"),  # project-level
    }
    targets = {b.role: b.target for b in iam_bindings(stack) if b.member == ingest}
    assert targets["roles/storage.objectAdmin"] == ref(at(stack, "staging/bucket"), "name")


def test_only_the_push_identity_may_invoke_the_processor(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    invokers: list[Binding] = [b for b in iam_bindings(stack) if b.role == "roles/run.invoker"]
    by_function = {b.target: b.member for b in invokers}
    processor = ref(at(stack, "processor/function"), "name")
    ingest = ref(at(stack, "ingest/function"), "name")
    assert by_function == {processor: _identity(stack, "push_identity"),
                           ingest: _identity(stack, "ingest/identity")}
    assert len(invokers) == 2
    push = at(stack, "processor_subscription/push").body["push_config"]
    assert push["oidc_token"]["service_account_email"] == ref(at(stack, "push_identity"), "email")
    assert _grants(stack, _identity(stack, "push_identity")) == {("roles/run.invoker", "processor")}


def test_service_agents_get_what_notifications_and_dead_lettering_need(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    number = _data_ref(stack, "google_project", "number")
    healthcare = f"serviceAccount:service-{number}@gcp-sa-healthcare.iam.gserviceaccount.com"
    pubsub = f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    expected_healthcare = {("roles/pubsub.publisher", "dicom_events"),
                           ("roles/pubsub.publisher", "fhir_changes")}
    expected_pubsub = {("roles/pubsub.publisher", "dicom_events_dead_letter"),
                       ("roles/pubsub.subscriber", "processor_subscription")}
    if CONFIG[env].security.cmek:
        expected_healthcare.add(("roles/cloudkms.cryptoKeyEncrypterDecrypter", "cmek"))
        expected_pubsub.add(("roles/cloudkms.cryptoKeyEncrypterDecrypter", "cmek"))
    assert _grants(stack, healthcare) == expected_healthcare
    assert _grants(stack, pubsub) == expected_pubsub


def _label_field(type_: str) -> str | None:
    """`labels` or `user_labels` if the provider's resource accepts labels, else None."""
    module = importlib.import_module(f"cdktf_cdktf_provider_google.{type_.removeprefix('google_')}")
    cls = next(c for _, c in inspect.getmembers(module, inspect.isclass)
               if getattr(c, "TF_RESOURCE_TYPE", None) == type_)
    params = inspect.signature(cls.__init__).parameters
    # Notification channels use `labels` for their settings (the e-mail address).
    for field in ("user_labels", "labels"):
        if field in params:
            return field
    return None


def test_every_labelable_resource_carries_the_environment_labels(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    expected = CONFIG[env].labels.model_dump()
    labelable: list[Resource] = []
    for resource in resources(stacks[env]):
        field = _label_field(resource.type)
        if field is not None:
            labelable.append(resource)
            assert resource.body.get(field) == expected, resource.address
    types = {r.type for r in labelable}
    assert {"google_pubsub_topic", "google_storage_bucket", "google_cloudfunctions2_function",
            "google_healthcare_dicom_store", "google_monitoring_alert_policy"} <= types


def test_cmek_where_configured(stacks: dict[str, dict[str, Any]], env: str) -> None:
    stack = stacks[env]
    cmek = CONFIG[env].security.cmek
    datasets = of_type(stack, "google_healthcare_dataset")
    topics = of_type(stack, "google_pubsub_topic")
    buckets = of_type(stack, "google_storage_bucket")
    keyed = ([d.body.get("encryption_spec", {}).get("kms_key_name") for d in datasets]
             + [t.body.get("kms_key_name") for t in topics]
             + [b.body.get("encryption", {}).get("default_kms_key_name") for b in buckets])
    if cmek:
        assert all(k and k.startswith("${google_kms_crypto_key.") for k in keyed), keyed
        rotation = f"{CONFIG[env].security.key_rotation_days * 86400}s"
        for key in of_type(stack, "google_kms_crypto_key"):
            assert key.body["rotation_period"] == rotation
    else:
        assert keyed == [None] * len(keyed)
        assert of_type(stack, "google_kms_crypto_key") == []


def test_prod_is_encrypted_and_protected(stacks: dict[str, dict[str, Any]]) -> None:
    stack = stacks["prod"]
    assert CONFIG["prod"].security.cmek and CONFIG["prod"].security.deletion_protection
    for path in ("healthcare/dataset", "healthcare/dicom", "healthcare/fhir"):
        assert at(stack, path).body["lifecycle"] == {"prevent_destroy": True}
    assert len(of_type(stack, "google_kms_crypto_key")) == 3


def test_deletion_protection_follows_the_config(
        stacks: dict[str, dict[str, Any]], env: str) -> None:
    protect = CONFIG[env].security.deletion_protection
    for path in ("healthcare/dataset", "healthcare/dicom", "healthcare/fhir"):
        assert at(stacks[env], path).body.get("lifecycle", {}).get("prevent_destroy",
                                                                   False) is protect


def test_healthcare_data_access_is_audited(stacks: dict[str, dict[str, Any]], env: str) -> None:
    configs = {r.body["service"]: {c["log_type"] for c in r.body["audit_log_config"]}
               for r in of_type(stacks[env], "google_project_iam_audit_config")}
    assert configs["healthcare.googleapis.com"] == {"DATA_READ", "DATA_WRITE", "ADMIN_READ"}
