"""modules/audit_logging.py alone: Data Access logs per service and the log retention."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.audit_logging import AUDITED_LOG_TYPES, AuditLogging
from tests.support.scratch_stack import synth

SERVICES = ("healthcare.googleapis.com", "storage.googleapis.com")


def build(scope: Construct) -> dict[str, Any]:
    AuditLogging(scope, "audit", project_id="p-1", services=SERVICES, log_retention_days=400)
    return {}


def test_every_log_type_for_every_service_and_retention() -> None:
    out = synth(build)
    configs = out.of_type("google_project_iam_audit_config")
    assert sorted(c.body["service"] for c in configs) == sorted(SERVICES)
    for config in configs:
        assert config.body["project"] == "p-1"
        assert [c["log_type"] for c in config.body["audit_log_config"]] == list(AUDITED_LOG_TYPES)
        assert all("exempted_members" not in c for c in config.body["audit_log_config"])
    bucket = out.one("google_logging_project_bucket_config")
    assert (bucket.body["bucket_id"], bucket.body["retention_days"]) == ("_Default", 400)
    assert out.bindings() == set()  # grants nothing to anyone
