"""Policy rules: each returns the violations it finds in a synthesized stack (empty = passes).

They are plain functions over the JSON so that a test can feed them a deliberately broken stack
and prove each rule can fail.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from functools import cache
from typing import Any

import modules  # noqa: F401  (lazy provider loading before any provider import)
from tests.infra.synthesized import Resource, iam_bindings, of_type, provider_module, resources

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


def iap_fronted_functions(stack: Stack) -> set[str]:
    """Names of functions whose only way in from outside is a load balancer backend with IAP."""
    negs = {
        f"${{google_compute_region_network_endpoint_group.{r.key}.id}}": r.body.get(
            "cloud_function", {}
        ).get("function")
        for r in of_type(stack, "google_compute_region_network_endpoint_group")
    }
    fronted: set[str | None] = set()
    for backend in of_type(stack, "google_compute_backend_service"):
        if backend.body.get("iap", {}).get("enabled") is True:
            fronted.update(negs.get(b.get("group")) for b in backend.body.get("backend", []))
    return {name for name in fronted if name}


def open_functions(stack: Stack) -> list[str]:
    """Functions reachable from outside Google: anything but internal-only ingress, except
    internal + load balancer when that load balancer's backend enforces IAP."""
    fronted = iap_fronted_functions(stack)
    return [
        f.path
        for f in of_type(stack, "google_cloudfunctions2_function")
        if (ingress := f.body["service_config"].get("ingress_settings")) != "ALLOW_INTERNAL_ONLY"
        and not (ingress == "ALLOW_INTERNAL_AND_GCLB" and f.body["name"] in fronted)
    ]


@cache
def label_field(type_: str) -> str | None:
    """`user_labels` or `labels` if the provider's resource accepts labels, else None."""
    module = importlib.import_module(provider_module(type_))
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


# --- first apply on a brand-new project (each rule: what must exist or be waited for) --------

_REF = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_.]+\}")
AGENT_LITERAL = re.compile(r"gcp-sa-|gs-project-accounts|\$\{data\.google_project\.")


def _index(stack: Stack) -> dict[str, Resource]:
    return {r.address: r for r in resources(stack)}


def _refs(value: Any) -> set[str]:
    """Addresses (`type.name`) a value references."""
    return {f"{t}.{n}" for t, n in _REF.findall(json.dumps(value))}


def _depends(resource: Resource) -> set[str]:
    return set(resource.body.get("depends_on", []))


def _waits(stack: Stack, resource: Resource) -> list[Resource]:
    """The time_sleep resources `resource` depends on."""
    index = _index(stack)
    return [index[a] for a in _depends(resource) if a.startswith("time_sleep.") and a in index]


def _waited(stack: Stack, resource: Resource) -> set[str]:
    """Everything `resource` waits for through a propagation wait (time_sleep)."""
    return set().union(*(_depends(w) for w in _waits(stack, resource)))


def agents_not_created(stack: Stack) -> list[str]:
    """Grants to service agents whose address is built from the project number instead of
    coming from the resource that creates the agent (service identity, or the storage data
    source), so the grant would race (or precede) the agent's creation."""
    return [b.path for b in iam_bindings(stack) if AGENT_LITERAL.search(b.member)]


def builds_not_waiting(stack: Stack) -> list[str]:
    """Functions created before their build identity may read the gcf-v2-sources bucket and
    before its grants propagated (a time_sleep after every grant of the build identity)."""
    found = []
    for fn in of_type(stack, "google_cloudfunctions2_function"):
        builder = _refs(fn.body["build_config"].get("service_account", ""))
        grants = {
            r.address
            for r in resources(stack)
            if r.type.endswith("_iam_member") and _refs(r.body["member"]) & builder
        }
        sources = [
            a
            for a in grants
            if "gcf-v2-sources-" in json.dumps(_index(stack)[a].body.get("condition", {}))
        ]
        if not builder or not sources or not grants <= _waited(stack, fn):
            found.append(fn.path)
    return found


def triggers_not_waiting(stack: Stack) -> list[str]:
    """Storage-triggered functions created before the storage agent may publish and the
    trigger identity may receive events (grants plus a propagation wait)."""
    found = []
    index = _index(stack)
    for fn in of_type(stack, "google_cloudfunctions2_function"):
        trigger = fn.body.get("event_trigger")
        if not trigger:
            continue
        identity = _refs(trigger.get("service_account_email", ""))
        waited = [index[a] for a in _waited(stack, fn) if a in index]
        receiver = any(
            w.body.get("role") == "roles/eventarc.eventReceiver"
            and _refs(w.body.get("member", "")) & identity
            for w in waited
        )
        publisher = any(
            w.body.get("role") == "roles/pubsub.publisher"
            and "data.google_storage_project_service_account." in w.body.get("member", "")
            for w in waited
        )
        if not (receiver and publisher):
            found.append(fn.path)
    return found


def alerts_not_waiting_for_metrics(stack: Stack) -> list[str]:
    """Alert policies on log-based metrics of this stack created without waiting for
    Monitoring to know the metric (404 for up to 10 minutes otherwise)."""
    found = []
    for policy in of_type(stack, "google_monitoring_alert_policy"):
        metrics = {a for a in _refs(policy.body["conditions"]) if a.startswith("google_logging_")}
        if metrics and not metrics <= _waited(stack, policy):
            found.append(policy.path)
    return found


CMEK_FIELDS = {
    "google_healthcare_dataset": ("encryption_spec", "kms_key_name"),
    "google_pubsub_topic": ("kms_key_name",),
    "google_storage_bucket": ("encryption", "default_kms_key_name"),
}
CMEK_AGENTS = {  # who uses the key on the resource's behalf
    "google_healthcare_dataset": "healthcare.googleapis.com",
    "google_pubsub_topic": "pubsub.googleapis.com",
    "google_storage_bucket": "data.google_storage_project_service_account",
}


def _key_of(resource: Resource) -> str | None:
    value: Any = resource.body
    for field in CMEK_FIELDS.get(resource.type, ("-",)):
        value = value.get(field) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _agent_matches(stack: Stack, member: str, agent: str) -> bool:
    if agent.startswith("data."):
        return agent + "." in member
    index = _index(stack)
    return any(
        index[a].body.get("service") == agent
        for a in _refs(member)
        if a.startswith("google_project_service_identity.") and a in index
    )


def cmek_not_waiting(stack: Stack) -> list[str]:
    """CMEK-encrypted resources created before their service agent may use the key: they must
    wait for that key's encrypter grant to the right agent plus IAM propagation."""
    found = []
    index = _index(stack)
    for resource in resources(stack):
        key = _key_of(resource)
        if not key:
            continue
        grants = [index[a] for a in _waited(stack, resource) if a in index]
        if not any(
            g.type == "google_kms_crypto_key_iam_member"
            and g.body.get("crypto_key_id") == key
            and _agent_matches(stack, g.body.get("member", ""), CMEK_AGENTS[resource.type])
            for g in grants
        ):
            found.append(resource.path)
    return found


def regional_pubsub_keys(stack: Stack) -> list[str]:
    """Topics encrypted with a key whose ring is not global (Pub/Sub recommends global)."""
    index = _index(stack)
    found = []
    for topic in of_type(stack, "google_pubsub_topic"):
        keys = [index[a] for a in _refs(topic.body.get("kms_key_name", "")) if a in index]
        rings = [index[a] for k in keys for a in _refs(k.body.get("key_ring", "")) if a in index]
        if any(r.body.get("location") != "global" for r in rings):
            found.append(topic.path)
    return found


def unpinned_topics(stack: Stack, region: str) -> list[str]:
    """Topics whose messages may be stored outside the environment's region."""
    return [
        t.path
        for t in of_type(stack, "google_pubsub_topic")
        if t.body.get("message_storage_policy", {}).get("allowed_persistence_regions") != [region]
    ]


def topics_without_subscription(stack: Stack) -> list[str]:
    """A topic nobody subscribes to delivers nothing (critical findings would reach nobody)."""
    subscribed = {
        a for s in of_type(stack, "google_pubsub_subscription") for a in _refs(s.body["topic"])
    }
    return [t.path for t in of_type(stack, "google_pubsub_topic") if t.address not in subscribed]


def subscriptions_without_dead_letter(stack: Stack) -> list[str]:
    """Subscriptions (other than the holds on dead-letter topics) without retries into a
    dead-letter topic, or that expire when idle."""
    dead_letter_topics = {
        a
        for s in of_type(stack, "google_pubsub_subscription")
        for a in _refs(s.body.get("dead_letter_policy", {}).get("dead_letter_topic", ""))
    }
    found = []
    for sub in of_type(stack, "google_pubsub_subscription"):
        if _refs(sub.body["topic"]) & dead_letter_topics:
            ok = sub.body.get("expiration_policy", {}).get("ttl") == ""
        else:
            policy = sub.body.get("dead_letter_policy", {})
            ok = (
                bool(policy.get("dead_letter_topic"))
                and policy.get("max_delivery_attempts", 0) >= 5
                and "retry_policy" in sub.body
                and sub.body.get("expiration_policy", {}).get("ttl") == ""
            )
        if not ok:
            found.append(sub.path)
    return found


def alerts_that_stay_open(stack: Stack) -> list[str]:
    """Alert policies without auto_close (an open incident swallows later notifications) and
    log-match policies without a notification rate limit."""
    found = []
    for policy in of_type(stack, "google_monitoring_alert_policy"):
        strategy = policy.body.get("alert_strategy", {})
        log_match = any("condition_matched_log" in c for c in policy.body["conditions"])
        if not strategy.get("auto_close") or (
            log_match and not strategy.get("notification_rate_limit", {}).get("period")
        ):
            found.append(policy.path)
    return found


ORDER_DERIVED = re.compile(r"(^|_)(grant|invoker|predict|email)_\d+$")


def order_derived_grant_names(stack: Stack) -> list[str]:
    """IAM resources and notification channels named by a counter: their address would change
    when calls are reordered."""
    names = [b.path for b in iam_bindings(stack)]
    names += [r.path for r in of_type(stack, "google_monitoring_notification_channel")]
    return [n for n in names if ORDER_DERIVED.search(n.rsplit("/", 1)[-1])]


def local_state(stack: Stack) -> list[str]:
    """A local backend: state dies with the CI runner and the next apply recreates everything."""
    return sorted(k for k in stack.get("terraform", {}).get("backend", {}) if k == "local")
