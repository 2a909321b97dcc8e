"""modules/service_agents.py alone: the Healthcare and Pub/Sub agents created (google-beta), the
Cloud Storage agent and the project number read."""

from __future__ import annotations

from typing import Any

from cdktn_provider_google_beta.provider import GoogleBetaProvider
from constructs import Construct

from modules.service_agents import AGENT_SERVICES, ServiceAgents
from tests.support.scratch_stack import synth


def build(scope: Construct) -> dict[str, Any]:
    beta = GoogleBetaProvider(scope, "google-beta", project="p-1")
    agents = ServiceAgents(scope, "agents", project_id="p-1", beta_provider=beta)
    return {
        "healthcare": agents.healthcare,
        "pubsub": agents.pubsub,
        "storage": agents.storage,
        "project_number": agents.project_number,
    }


def test_agents_are_created_before_anyone_grants_them_a_role() -> None:
    out = synth(build)
    identities = {r.body["service"]: r for r in out.of_type("google_project_service_identity")}
    assert set(identities) == {f"{s}.googleapis.com" for s in AGENT_SERVICES}
    for identity in identities.values():
        assert identity.body["project"] == "p-1"
        assert identity.body["provider"] == "google-beta"
    project = out.data("google_project")
    storage = out.data("google_storage_project_service_account")
    assert project.body["project_id"] == "p-1" and storage.body["project"] == "p-1"
    # Members are the created identities' (never built from the project number).
    assert out.outputs == {
        "healthcare": out.ref(identities["healthcare.googleapis.com"], "member"),
        "pubsub": out.ref(identities["pubsub.googleapis.com"], "member"),
        "storage": f"${{data.google_storage_project_service_account.{storage.key}.member}}",
        "project_number": f"${{data.google_project.{project.key}.number}}",
    }
    assert out.types() == ["google_project_service_identity"] * 2
    assert out.bindings() == set()
