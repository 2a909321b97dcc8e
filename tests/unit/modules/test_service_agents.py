"""modules/service_agents.py alone: agent members from the project number and storage data."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.service_agents import ServiceAgents
from tests.support.scratch_stack import synth


def build(scope: Construct) -> dict[str, Any]:
    agents = ServiceAgents(scope, "agents", project_id="p-1")
    return {"healthcare": agents.healthcare, "pubsub": agents.pubsub, "storage": agents.storage}


def test_agent_members() -> None:
    out = synth(build)
    project = out.data("google_project")
    storage = out.data("google_storage_project_service_account")
    assert project.body["project_id"] == "p-1" and storage.body["project"] == "p-1"
    number = f"${{data.google_project.{project.key}.number}}"
    assert out.outputs == {
        "healthcare": f"serviceAccount:service-{number}@gcp-sa-healthcare.iam.gserviceaccount.com",
        "pubsub": f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com",
        "storage": f"${{data.google_storage_project_service_account.{storage.key}.member}}",
    }
    assert out.types() == []  # data sources only: creates nothing
