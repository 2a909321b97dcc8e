"""Deterministic UIDs for the SR, so that a redelivered event writes the very same instance.

Every UID is a `2.25.` UID of a name-based UUID (PS3.5 B.2) of what identifies the result:
- SR instance: the source SOP Instance UID and the analyzer's name and version. A redelivery
  yields the same UID (the store answers "already exists"); a new analyzer version yields a new
  instance, which lists the earlier versions' SRs as its predecessors.
- SR series: the source study and the analyzer's name (not its version), so each study has one
  series of results per analyzer, where viewers show one entry for all its versions.
- Device observer UID: the analyzer's name and version.
"""

from __future__ import annotations

import uuid

# A name-based (version 5) UUID namespace of our own; PS3.5 B.2 turns a UUID into "2.25.<int>"
# (at most 44 characters). pydicom's generate_uid ignores entropy_srcs when prefix is None.
_NAMESPACE = uuid.UUID("0f9d4b4e-6a55-5a8e-9a52-3c1e6f0c2d71")


def _uid(*parts: str) -> str:
    return f"2.25.{uuid.uuid5(_NAMESPACE, chr(31).join(parts)).int}"


def sr_instance_uid(source_instance_uid: str, analyzer: str, version: str) -> str:
    return _uid("instance", source_instance_uid, analyzer, version)


def sr_series_uid(study_uid: str, analyzer: str) -> str:
    return _uid("series", study_uid, analyzer)


def device_uid(analyzer: str, version: str) -> str:
    return _uid("device", analyzer, version)


def tracking_uid(sr_uid: str, index: int) -> str:
    return _uid("finding", sr_uid, str(index))
