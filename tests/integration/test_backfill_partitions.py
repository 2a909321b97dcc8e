"""Backfill listing against a store that enforces the Cloud Healthcare API's QIDO-RS caps.

The caps are scaled down (offset 100 instead of 1,000,000) so the partitioning paths run in a
second; the code is the same, only `QidoCaps` differs. A second test runs at the real caps.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

import pytest
import requests

from imaging_cli.qido_listing import GOOGLE_CAPS, ListingError, QidoCaps, QidoLister
from imaging_cli.store_notifications import list_instances
from tests.support.capped_qido_store import CappedStore, Caps, VirtualArchive

pytestmark = pytest.mark.integration
SMALL = QidoCaps(
    max_offset=100, max_study_limit=50, max_instance_limit=80, study_page=20, instance_page=40
)
SMALL_STORE = Caps(max_offset=100, max_study_limit=50, max_instance_limit=80)
START = date(2024, 3, 1)


def _days(count: int, per_day: int) -> dict[date, int]:
    return {START + timedelta(days=i): per_day for i in range(count)}


def test_more_studies_than_the_offset_cap_are_listed_once_each_within_the_caps() -> None:
    big = f"2.25.{START.toordinal()}.3"
    archive = VirtualArchive(
        _days(12, 30),
        undated=4,
        big_studies={big: (3, 70)},  # 360 dated studies; 210 in one
    )
    notes: list[str] = []
    with CappedStore(archive, SMALL_STORE) as store:
        listed = Counter(
            i.sop_instance_uid
            for i in list_instances(
                requests.Session(), store.dicomweb_url, caps=SMALL, on_note=notes.append
            )
        )
    assert store.violations == []
    expected = Counter(archive.every_instance(dated_only=True))
    assert listed == expected  # every dated instance exactly once, the big study included
    assert len(expected) == 359 * 2 + 210
    assert notes and "studies without a StudyDate cannot be listed" in notes[0]


def test_a_date_range_under_the_cap_is_paged_without_partitioning() -> None:
    archive = VirtualArchive(_days(12, 30), undated=4)
    with CappedStore(archive, SMALL_STORE) as store:
        found = list(
            list_instances(
                requests.Session(),
                store.dicomweb_url,
                since=START + timedelta(days=2),
                until=START + timedelta(days=3),
                caps=SMALL,
            )
        )
        study_queries = [r for r in store.requests if r.startswith("/dicomWeb/studies?")]
    assert len(found) == 60 * 2
    assert store.violations == []
    # One range, never split: pages at 0, 20, 40 (60 is empty) and one probe at the cap.
    assert {q.split("StudyDate=")[1].split("&")[0] for q in study_queries} == {"20240303-20240304"}
    offsets = sorted(int(q.rsplit("offset=", 1)[1]) for q in study_queries)
    assert offsets == [0, 20, 40, 60, 100]


def test_one_day_over_the_cap_is_reported_not_truncated() -> None:
    archive = VirtualArchive({START: 150})
    with CappedStore(archive, SMALL_STORE) as store, pytest.raises(ListingError, match="StudyDate"):
        list(list_instances(requests.Session(), store.dicomweb_url, caps=SMALL))
    assert store.violations == []


def test_listing_streams_page_by_page() -> None:
    archive = VirtualArchive(_days(5, 20))
    with CappedStore(archive, SMALL_STORE) as store:
        stream = list_instances(requests.Session(), store.dicomweb_url, caps=SMALL)
        first = list(itertools.islice(stream, 3))
        asked = len(store.requests)
        rest = list(stream)
    assert len(first) == 3
    # one page of studies, its probe, and the instances of the first two studies: not everything
    assert asked <= 4 < len(store.requests)
    assert len(first) + len(rest) == 200


def test_google_caps_hold_at_their_real_values() -> None:
    # 1,003,500 studies (4,500 a day over 223 days): more than the real offset cap can page.
    archive = VirtualArchive(_days(223, 4_500), instances_per_series=1)
    end = START + timedelta(days=222)
    with CappedStore(archive) as store:
        lister = QidoLister(requests.Session(), store.dicomweb_url, GOOGLE_CAPS, today=START)
        first = list(itertools.islice(lister.studies(since=START, until=end), 1_500))
    assert store.violations == []
    assert len(first) == 1_500 and len({s["0020000D"]["Value"][0] for s in first}) == 1_500
    ranges = [
        (q.split("StudyDate=")[1].split("&")[0], q.rsplit("offset=", 1)[1]) for q in store.requests
    ]
    half = (START + timedelta(days=111)).strftime("%Y%m%d")
    assert ranges[:4] == [
        (f"20240301-{end:%Y%m%d}", "0"),  # the whole range: a full first page ...
        (f"20240301-{end:%Y%m%d}", "1000000"),  # ... and a match at the cap: split it
        (f"20240301-{half}", "0"),  # the first half (499,500 studies) fits: paged
        (f"20240301-{half}", "1000000"),
    ]
    assert ranges[4:] == [(f"20240301-{half}", "1000")]  # streamed: only what was consumed
