"""Parse the DICOM store notification that triggers the processor.

The Cloud Healthcare API publishes one Pub/Sub message per stored instance: `data` is the plain
UTF-8 instance path, `projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb/studies/X/series/Y/
instances/Z`. Newer stores add attributes (`action`, `storeName`, `modality`, ...); none are
required. functions-framework hands the function a CloudEvent whose data is
`{"message": {...}, "subscription": ...}` both for Eventarc CloudEvents (binary or structured)
and for a Pub/Sub push envelope (converted in `functions_framework.event_conversion`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imaging_pipeline.errors import PermanentError

# Actions that mean "a new instance exists"; everything else (deletes, blob settings, storage
# class changes, ...) is ignored. A missing action is what older stores send for new instances.
NEW_INSTANCE_ACTIONS = frozenset({"StoreInstances", "ImportDicomData"})

_UID = r"[0-9]+(?:\.[0-9]+)*"
_SEGMENT = r"[A-Za-z0-9_.-]+"
STORE_PATH = re.compile(
    rf"projects/{_SEGMENT}/locations/{_SEGMENT}/datasets/{_SEGMENT}/dicomStores/{_SEGMENT}"
)
INSTANCE_PATH = re.compile(
    rf"(?P<store>{STORE_PATH.pattern})/dicomWeb"
    rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/instances/(?P<instance>{_UID})"
)
MAX_UID_LENGTH = 64  # DICOM PS3.5 9.1


@dataclass(frozen=True)
class InstanceEvent:
    """One notification about one DICOM instance; every field is free of PHI."""

    store: str
    study_uid: str
    series_uid: str
    instance_uid: str
    message_id: str = ""
    action: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_new_instance(self) -> bool:
        return self.action is None or self.action in NEW_INSTANCE_ACTIONS

    @property
    def modality_hint(self) -> str | None:
        """The `modality` attribute newer stores send: lets us skip before fetching."""
        value = self.attributes.get("modality")
        return value.strip().upper() if value else None

    @property
    def path(self) -> str:
        return instance_path(self.store, self.study_uid, self.series_uid, self.instance_uid)


def instance_path(store: str, study_uid: str, series_uid: str, instance_uid: str) -> str:
    """The message `data` a DICOM store publishes per instance (the inverse of the parser)."""
    return f"{store}/dicomWeb/studies/{study_uid}/series/{series_uid}/instances/{instance_uid}"


def parse_instance_path(path: str) -> tuple[str, str, str, str]:
    """Split an instance path into (store, study UID, series UID, instance UID)."""
    match = INSTANCE_PATH.fullmatch(path.strip())
    if not match:
        raise PermanentError("malformed_event", "data is not a DICOM store instance path")
    uids = match.group("study", "series", "instance")
    if any(len(uid) > MAX_UID_LENGTH for uid in uids):
        raise PermanentError("malformed_event", "UID longer than 64 characters")
    return match.group("store"), uids[0], uids[1], uids[2]


def _message(event_data: Any) -> Mapping[str, Any]:
    if isinstance(event_data, Mapping):
        message = event_data.get("message", event_data)
        if isinstance(message, Mapping):
            return message
    raise PermanentError("malformed_event", "event data carries no Pub/Sub message")


def message_id(event_data: Any) -> str:
    """The Pub/Sub message id, if the data has one (for logs about unparseable events too)."""
    try:
        return str(_message(event_data).get("messageId") or "")
    except PermanentError:
        return ""


def parse_event(event_data: Any) -> InstanceEvent:
    """Build an `InstanceEvent` from CloudEvent data (the Pub/Sub `messagePublished` shape)."""
    message = _message(event_data)
    raw = message.get("data")
    if not isinstance(raw, str) or not raw:
        raise PermanentError("malformed_event", "message has no data")
    try:
        path = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise PermanentError("malformed_event", "data is not base64 UTF-8") from exc
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise PermanentError("malformed_event", "attributes is not an object")
    attrs = {str(k): str(v) for k, v in attributes.items()}
    store, study, series, instance = parse_instance_path(path)
    return InstanceEvent(
        store=store,
        study_uid=study,
        series_uid=series,
        instance_uid=instance,
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        action=attrs.get("action"),
        attributes=attrs,
    )


def check_store(event: InstanceEvent, expected_store: str) -> None:
    """Events from any other store are permanent failures: this processor must not read them."""
    if event.store != expected_store:
        raise PermanentError("foreign_store", "instance is not in the configured DICOM store")
