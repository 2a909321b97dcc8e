"""Many events per instance: one functions-framework process serving concurrent requests on
threads (Cloud Run functions with `concurrency` > 1), against Orthanc, the FHIR R4 server, the
Pub/Sub server and the local Vision server.

Each event belongs to its own synthetic patient and carries its own trace id. Every log line
that names an event (by UID or by trace) names no other event's UIDs, no patient value reaches
any line, and after every event was delivered twice at once (Pub/Sub is at least once), no FHIR
resource exists twice.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from pydicom.uid import generate_uid

from imaging_dev.servers.fhir_server import FhirServer
from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.servers.pubsub_emulator import PubSubEmulator
from imaging_dev.servers.vision_server import VisionServer
from tests.support.process import (
    LOCAL_STORE,
    ProcessFunction,
    fhir_search,
    function_env,
    instance_path,
    projection,
    pubsub_message,
    push_envelope,
    sample,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 12
THREADS = 8  # the function's request threads (Cloud Run's concurrency setting)
VISION_SETTINGS = {
    "analyzer": "vision",
    "rules": [
        {
            "name": "burned-in-text",
            "finding": "burned_in_text",
            "min_score": 0.6,
            "priority": "urgent",
        }
    ],
}


def _instance(i: int) -> Any:
    """Alternating modalities; two instances per study, so writers race on one ImagingStudy."""
    ds = [lambda: sample("CT_small.dcm"), lambda: projection("DX", size=256, seed=i)][i % 2]()
    ds.PatientName = f"Concurrent^Patient{i:02d}xq"
    ds.PatientID = f"CONC-{secrets.token_hex(4)}"
    return ds


@pytest.fixture(scope="module")
def instances(orthanc: OrthancServer) -> list[Any]:
    datasets = [_instance(i) for i in range(EVENTS)]
    for first, second in zip(datasets[::2], datasets[1::2], strict=True):
        second.StudyInstanceUID = first.StudyInstanceUID
        second.PatientName, second.PatientID = first.PatientName, first.PatientID
        second.SeriesInstanceUID = generate_uid()
    for ds in datasets:
        upload(orthanc.url, ds)
    return datasets


@pytest.fixture(scope="module")
def function(
    orthanc: OrthancServer,
    fhir_server: FhirServer,
    _pubsub_session: PubSubEmulator,
    _vision_session: VisionServer,
) -> Iterator[ProcessFunction]:
    env = function_env(
        dicomweb_url=orthanc.dicomweb_url,
        fhir_base_url=fhir_server.base_url,
        pubsub_host=_pubsub_session.host,
        settings=VISION_SETTINGS,
        vision_url=_vision_session.url,
    )
    with ProcessFunction({**env, "THREADS": str(THREADS)}) as server:
        yield server


def _deliver(function: ProcessFunction, message: dict[str, Any], trace: str) -> int:
    """Push until acknowledged (2xx), as Pub/Sub redelivers after a 5xx."""
    import requests

    headers = {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}
    for _ in range(6):
        response = requests.post(
            function.url, json=push_envelope(message), headers=headers, timeout=120
        )
        if response.status_code < 300:
            return response.status_code
    return response.status_code


def test_concurrent_events_keep_their_own_uids_and_write_no_duplicates(
    function: ProcessFunction,
    instances: list[Any],
    fhir_server: FhirServer,
    vision_server: VisionServer,
) -> None:
    fhir_server.reset()  # the FHIR server is shared by the session: count only this test
    messages = [
        pubsub_message(instance_path(ds), {"action": "StoreInstances", "storeName": LOCAL_STORE})
        for ds in instances
    ]
    traces = [secrets.token_hex(16) for _ in instances]
    work = [(m, t) for m, t in zip(messages, traces, strict=True)] * 2  # each delivered twice
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda mt: _deliver(function, *mt), work))
    assert statuses == [200] * len(work), function.log_lines()[-30:]

    uids = [{ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID} for ds in instances]
    own_by_trace = {f"projects/local-project/traces/{t}": i for i, t in enumerate(traces)}
    lines = [line for line in function.log_lines() if line.startswith("{")]
    checked = 0
    for line in lines:
        entry = json.loads(line)  # every line is valid JSON
        owner = own_by_trace.get(entry.get("logging.googleapis.com/trace", ""))
        if owner is None and entry.get("instance_uid"):
            owner = next(i for i, u in enumerate(uids) if entry["instance_uid"] in u)
        for ds in instances:
            assert str(ds.PatientName).split("^")[1] not in line
            assert ds.PatientID not in line
        if owner is None:
            continue
        checked += 1
        # A study is shared by two events: its UID may appear in both events' lines.
        shared_study = {instances[owner].StudyInstanceUID}
        foreign = set().union(*(u for i, u in enumerate(uids) if i != owner)) - shared_study
        assert not [uid for uid in foreign if uid in line], line
    assert checked >= 2 * EVENTS

    # The events really overlapped inside the one process.
    outcomes = [json.loads(line) for line in lines if '"instance_processed"' in line]
    spans = sorted(
        (end - o["duration_ms"] / 1000, end)
        for o in outcomes
        for end in [datetime.fromisoformat(o["time"].replace("Z", "+00:00")).timestamp()]
    )
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlapping >= 1, spans

    # No FHIR resource twice, whatever the interleaving of the 2 x N deliveries.
    for resource_type in ("ImagingStudy", "DiagnosticReport", "Observation", "Device"):
        found = fhir_search(fhir_server.base_url, resource_type, _count="1000")
        keys = Counter(r["identifier"][0]["value"] for r in found if r.get("identifier"))
        assert [k for k, n in keys.items() if n > 1] == [], resource_type
    studies = fhir_search(fhir_server.base_url, "ImagingStudy", _count="1000")
    ours = [
        s
        for s in studies
        if any(
            s.get("identifier", [{}])[0].get("value", "").endswith(ds.StudyInstanceUID)
            for ds in instances
        )
    ]
    assert len(ours) == EVENTS // 2
    # Each study: its two image series and the analyzer's SR series (one, whatever the
    # interleaving: the SRs of both instances go into the same series).
    assert sorted(len(s["series"]) for s in ours) == [3] * (EVENTS // 2)
    sr_series = [x for s in ours for x in s["series"] if x["modality"]["code"] == "SR"]
    assert len(sr_series) == EVENTS // 2 and all(len(x["instance"]) == 2 for x in sr_series)
    assert vision_server.calls >= EVENTS
