"""A first apply on a brand-new project succeeds by construction: each ordering constraint the
provider's docs, examples and issues impose holds in every synthesized stack, and each rule
(tests/infra/policy/rules.py) is shown to catch a planted violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.config import load_environments
from tests.infra.conftest import ENVIRONMENTS
from tests.infra.policy import rules
from tests.infra.synthesized import at, of_type

Stack = dict[str, Any]
CONFIG = {env.name: env.config for env in load_environments(list(ENVIRONMENTS))}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_service_agents_exist_before_anything_grants_them(
    stacks: dict[str, Stack], env: str
) -> None:
    stack = stacks[env]
    assert rules.agents_not_created(stack) == []
    services = {r.body["service"] for r in of_type(stack, "google_project_service_identity")}
    review = {"iap.googleapis.com"} if CONFIG[env].review_app.enabled else set()
    assert services == {"healthcare.googleapis.com", "pubsub.googleapis.com"} | review


def test_function_builds_wait_for_the_build_identity(stacks: dict[str, Stack], env: str) -> None:
    assert rules.builds_not_waiting(stacks[env]) == []
    functions = 3 if CONFIG[env].review_app.enabled else 2  # processor, ingest, review app
    assert len(of_type(stacks[env], "google_cloudfunctions2_function")) == functions


def test_the_storage_trigger_waits_for_its_grants(stacks: dict[str, Stack], env: str) -> None:
    assert rules.triggers_not_waiting(stacks[env]) == []
    assert at(stacks[env], "ingest/function").body["event_trigger"]


def test_alert_policies_wait_for_their_metrics(stacks: dict[str, Stack], env: str) -> None:
    stack = stacks[env]
    assert rules.alerts_not_waiting_for_metrics(stack) == []
    wait = at(stack, "observability/metric_wait").body
    assert wait["create_duration"] == "600s"


def test_encrypted_resources_wait_for_their_key_grant(stacks: dict[str, Stack], env: str) -> None:
    stack = stacks[env]
    assert rules.cmek_not_waiting(stack) == []
    encrypted = [r for r in rules.resources(stack) if rules._key_of(r)]
    assert bool(encrypted) is CONFIG[env].security.cmek


def test_pubsub_keys_are_global_and_messages_stay_in_region(
    stacks: dict[str, Stack], env: str
) -> None:
    assert rules.regional_pubsub_keys(stacks[env]) == []
    assert rules.unpinned_topics(stacks[env], CONFIG[env].region) == []


def test_every_topic_has_a_consumer_with_dead_lettering(stacks: dict[str, Stack], env: str) -> None:
    stack = stacks[env]
    assert rules.topics_without_subscription(stack) == []
    assert rules.subscriptions_without_dead_letter(stack) == []
    for key in ("critical_findings", "fhir_changes"):
        subscription = at(stack, f"consumers/{key}/subscription").body
        assert subscription["dead_letter_policy"]["max_delivery_attempts"] == (
            CONFIG[env].delivery.max_attempts
        )


def test_alerts_close_and_notify_again(stacks: dict[str, Stack], env: str) -> None:
    stack = stacks[env]
    assert rules.alerts_that_stay_open(stack) == []
    critical = at(stack, "observability/alert_critical_finding").body
    minutes = CONFIG[env].alerting.notification_rate_limit_minutes
    assert critical["alert_strategy"]["notification_rate_limit"]["period"] == f"{minutes * 60}s"


def test_grant_names_come_from_keys_and_state_is_remote(stacks: dict[str, Stack], env: str) -> None:
    assert rules.order_derived_grant_names(stacks[env]) == []
    assert rules.local_state(stacks[env]) == []


def test_each_first_apply_rule_catches_a_planted_violation(stacks: dict[str, Stack]) -> None:
    broken = copy.deepcopy(stacks["prod"])
    res = broken["resource"]
    meta = {"//": {"metadata": {"path": "prod/planted"}}}
    # 1. an agent address built from the project number
    res["google_pubsub_topic_iam_member"]["planted"] = {
        **meta,
        "topic": "t",
        "role": "roles/pubsub.publisher",
        "member": "serviceAccount:service-${data.google_project.agents_project_X.number}"
        "@gcp-sa-healthcare.iam.gserviceaccount.com",
    }
    # 2. the processor no longer waits for its build identity
    at(broken, "processor/function").body["depends_on"] = []
    # 3. the ingest function no longer waits for its trigger grants (but still for its build)
    ingest = at(broken, "ingest/function").body
    ingest["depends_on"] = [d for d in ingest["depends_on"] if "trigger" not in d]
    # 4. an alert policy on a metric without the wait
    ratio = at(broken, "observability/alert_failure_ratio").body
    del ratio["depends_on"]
    # 5. an encrypted bucket that does not wait for its key grant
    del at(broken, "staging/bucket").body["depends_on"]
    # 6. a regional key for a topic, 7. a topic storing messages anywhere
    (global_ring,) = [
        r for r in of_type(broken, "google_kms_key_ring") if r.body["location"] == "global"
    ]
    global_ring.body["location"] = "us-central1"
    del at(broken, "fhir_changes/topic").body["message_storage_policy"]
    # 8. a topic without consumer, 9. a subscription without dead-lettering
    res["google_pubsub_topic"]["planted_orphan"] = {**meta, "name": "orphan"}
    at(broken, "consumers/fhir_changes/subscription").body["expiration_policy"] = {"ttl": "86400s"}
    del at(broken, "consumers/critical_findings/subscription").body["retry_policy"]
    # 10. an alert that stays open, 11. a log-match alert without rate limit
    del at(broken, "observability/alert_dead_letter_backlog").body["alert_strategy"]
    critical = at(broken, "observability/alert_critical_finding").body
    del critical["alert_strategy"]["notification_rate_limit"]
    # 12. a grant named by a counter, 13. local state
    res["google_storage_bucket_iam_member"]["planted_counter"] = {
        "//": {"metadata": {"path": "prod/staging/grant_3"}},
        "bucket": "b",
        "role": "roles/storage.objectViewer",
        "member": "user:x@example.org",
    }
    broken["terraform"]["backend"] = {"local": {"path": "x"}}

    assert rules.agents_not_created(broken) == ["planted"]
    assert rules.builds_not_waiting(broken) == ["processor/function"]
    assert rules.triggers_not_waiting(broken) == ["ingest/function"]
    assert rules.alerts_not_waiting_for_metrics(broken) == ["observability/alert_failure_ratio"]
    assert rules.cmek_not_waiting(broken) == ["staging/bucket"]
    assert (
        len(rules.regional_pubsub_keys(broken)) == len(of_type(broken, "google_pubsub_topic")) - 1
    )
    assert rules.unpinned_topics(broken, "us-central1") == ["fhir_changes/topic", "planted"]
    assert rules.topics_without_subscription(broken) == ["planted"]
    assert sorted(rules.subscriptions_without_dead_letter(broken)) == [
        "consumers/critical_findings/subscription",
        "consumers/fhir_changes/subscription",
    ]
    assert sorted(rules.alerts_that_stay_open(broken)) == [
        "observability/alert_critical_finding",
        "observability/alert_dead_letter_backlog",
    ]
    assert rules.order_derived_grant_names(broken) == ["staging/grant_3"]
    assert rules.local_state(broken) == ["local"]


def test_cmek_rule_checks_the_agent_not_just_the_key(stacks: dict[str, Stack]) -> None:
    """A dataset waiting for the Pub/Sub agent's grant on its key is still a violation."""
    broken = copy.deepcopy(stacks["prod"])
    dataset = at(broken, "healthcare/dataset").body
    pubsub_key = at(broken, "cmek/key_pubsub/key")
    dataset["encryption_spec"]["kms_key_name"] = f"${{{pubsub_key.address}.id}}"
    assert rules.cmek_not_waiting(broken) == ["healthcare/dataset"]
