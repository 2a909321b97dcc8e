"""Parsing DICOM store notifications: valid shapes, actions, and every malformed input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.events import check_store, parse_event, parse_instance_path

STORE = "projects/p-1/locations/us-central1/datasets/d1/dicomStores/s1"
PATH = f"{STORE}/dicomWeb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"


def message(data: str | bytes, **attributes: str) -> dict[str, Any]:
    raw = data.encode() if isinstance(data, str) else data
    return {
        "message": {
            "data": base64.b64encode(raw).decode(),
            "messageId": "42",
            "attributes": attributes,
        },
        "subscription": "projects/p-1/subscriptions/s",
    }


def test_parses_the_plain_instance_path() -> None:
    event = parse_event(message(PATH))
    assert (event.store, event.study_uid, event.series_uid, event.instance_uid) == (
        STORE,
        "1.2.3",
        "1.2.3.4",
        "1.2.3.4.5",
    )
    assert event.message_id == "42"
    assert event.action is None and event.is_new_instance
    assert event.path == PATH


@pytest.mark.parametrize(
    ("action", "new"),
    [
        ("StoreInstances", True),
        ("ImportDicomData", True),
        ("DeleteInstances", False),
        ("SetBlobSettings", False),
    ],
)
def test_only_store_and_import_actions_are_new_instances(action: str, new: bool) -> None:
    assert parse_event(message(PATH, action=action)).is_new_instance is new


def test_modality_attribute_is_a_hint() -> None:
    assert parse_event(message(PATH, modality="ct ")).modality_hint == "CT"
    assert parse_event(message(PATH)).modality_hint is None


def test_message_without_envelope_is_accepted() -> None:
    assert parse_event(message(PATH)["message"]).instance_uid == "1.2.3.4.5"


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        42,
        "not base64!!",
        [],
    ],
)
def test_bad_data_field_is_malformed(data: Any) -> None:
    with pytest.raises(PermanentError) as err:
        parse_event({"message": {"data": data, "messageId": "1"}})
    assert err.value.reason == "malformed_event"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe not utf-8",
        b"hello",
        f"{STORE}/dicomWeb/studies/1.2.3/series/1.2.3.4".encode(),
        f"{STORE}/dicomWeb/studies/1.2.x/series/1.2/instances/1.3".encode(),
        f"{PATH}/frames/1".encode(),
        b"projects/p/locations/l/datasets/d/fhirStores/f/dicomWeb/studies/1/series/2/instances/3",
        f"{STORE}/dicomWeb/studies/{'1.' * 40}1/series/1/instances/1".encode(),
    ],
)
def test_malformed_paths_are_permanent(raw: bytes) -> None:
    with pytest.raises(PermanentError) as err:
        parse_event(message(raw))
    assert err.value.reason == "malformed_event"


@pytest.mark.parametrize("data", [None, "text", {"message": "x"}])
def test_event_data_without_message_is_malformed(data: Any) -> None:
    with pytest.raises(PermanentError) as err:
        parse_event(data)
    assert err.value.reason == "malformed_event"


def test_attributes_must_be_an_object() -> None:
    body = message(PATH)
    body["message"]["attributes"] = ["a"]
    with pytest.raises(PermanentError, match="attributes"):
        parse_event(body)


def test_event_from_another_store_is_permanent() -> None:
    event = parse_event(message(PATH))
    check_store(event, STORE)
    with pytest.raises(PermanentError) as err:
        check_store(event, STORE.replace("s1", "s2"))
    assert err.value.reason == "foreign_store"


def test_parse_instance_path_strips_whitespace() -> None:
    assert parse_instance_path(f" {PATH}\n")[3] == "1.2.3.4.5"
