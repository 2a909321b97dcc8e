"""Data Access audit logs: who read, wrote or administered which health data, and when."""

from __future__ import annotations

from cdktn_provider_google.logging_project_bucket_config import LoggingProjectBucketConfig
from cdktn_provider_google.project_iam_audit_config import (
    ProjectIamAuditConfig,
    ProjectIamAuditConfigAuditLogConfig,
)
from constructs import Construct

AUDITED_LOG_TYPES = ("ADMIN_READ", "DATA_READ", "DATA_WRITE")


class AuditLogging(Construct):
    """Turns on every Data Access log type for the audited services and sets how long the
    project's `_Default` log bucket keeps logs (HIPAA asks for an audit trail you can show)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project_id: str,
        services: tuple[str, ...],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        for service in services:
            ProjectIamAuditConfig(
                self,
                f"audit_{service.split('.')[0]}",
                project=project_id,
                service=service,
                audit_log_config=[
                    ProjectIamAuditConfigAuditLogConfig(log_type=t) for t in AUDITED_LOG_TYPES
                ],
            )
        LoggingProjectBucketConfig(
            self,
            "default_bucket",
            project=project_id,
            location="global",
            bucket_id="_Default",
            retention_days=log_retention_days,
        )
