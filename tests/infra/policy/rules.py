"""Policy rules: each returns the violations it finds in a synthesized stack (empty = passes).

They are plain functions over the JSON so that a test can feed them a deliberately broken stack
and prove each rule can fail.
"""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache
from typing import Any

import modules  # noqa: F401  (lazy provider loading before any provider import)
from tests.infra.synthesized import iam_bindings, of_type, resources

Stack = dict[str, Any]
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PROTECTED_TYPES = (
    "google_healthcare_dataset",
    "google_healthcare_dicom_store",
    "google_healthcare_fhir_store",
)


def public_members(stack: Stack) -> list[str]:
    text = json.dumps(stack)
    return [m for m in PUBLIC_MEMBERS if m in text]


def broad_roles(stack: Stack) -> list[str]:
    """Basic roles anywhere, and any admin role (object admin on one bucket excepted)."""
    return [
        f"{b.path}: {b.role}"
        for b in iam_bindings(stack)
        if b.role in BASIC_ROLES
        or (b.role.lower().endswith("admin") and b.role != "roles/storage.objectAdmin")
    ]


def authoritative_iam(stack: Stack) -> list[str]:
    """`_iam_binding`/`_iam_policy` resources would remove grants made outside this stack."""
    return [r.address for r in resources(stack) if r.type.endswith(("_iam_binding", "_iam_policy"))]


def open_buckets(stack: Stack) -> list[str]:
    return [
        b.path
        for b in of_type(stack, "google_storage_bucket")
        if b.body.get("uniform_bucket_level_access") is not True
        or b.body.get("public_access_prevention") != "enforced"
    ]


def open_functions(stack: Stack) -> list[str]:
    return [
        f.path
        for f in of_type(stack, "google_cloudfunctions2_function")
        if f.body["service_config"].get("ingress_settings") != "ALLOW_INTERNAL_ONLY"
    ]


@cache
def label_field(type_: str) -> str | None:
    """`user_labels` or `labels` if the provider's resource accepts labels, else None."""
    module = importlib.import_module(f"cdktn_provider_google.{type_.removeprefix('google_')}")
    cls = next(
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if getattr(c, "TF_RESOURCE_TYPE", None) == type_
    )
    params = inspect.signature(cls.__init__).parameters
    # Notification channels use `labels` for their settings (the e-mail address).
    for field in ("user_labels", "labels"):
        if field in params:
            return field
    return None


def unlabeled(stack: Stack, expected: dict[str, str]) -> list[str]:
    return [
        r.address
        for r in resources(stack)
        # The environment's labels, at least (functions add their release, pipeline_version).
        if (field := label_field(r.type)) is not None
        and not expected.items() <= (r.body.get(field) or {}).items()
    ]


def unencrypted(stack: Stack) -> list[str]:
    """Datasets, topics and buckets without a customer-managed key."""
    keys = {
        "google_healthcare_dataset": lambda b: b.get("encryption_spec", {}).get("kms_key_name"),
        "google_pubsub_topic": lambda b: b.get("kms_key_name"),
        "google_storage_bucket": lambda b: b.get("encryption", {}).get("default_kms_key_name"),
    }
    return [
        r.path
        for r in resources(stack)
        if r.type in keys
        and not str(keys[r.type](r.body) or "").startswith("${google_kms_crypto_key.")
    ]


def unprotected(stack: Stack) -> list[str]:
    return [
        r.path
        for r in resources(stack)
        if r.type in PROTECTED_TYPES
        and r.body.get("lifecycle", {}).get("prevent_destroy") is not True
    ]
