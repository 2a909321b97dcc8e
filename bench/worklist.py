"""The review app's worklist, first page, with 10,000 reports in the local FHIR server.

    .venv/bin/python -m bench.worklist [--reports N] [--runs R] [--check]

Seeds N DiagnosticReports as the processor writes them (about 5% critical, 20% urgent, five
modalities), serves the review app from handlers/main.py under functions-framework (as deployed)
and measures, in the same run:

- app: GET /worklist (page 1: critical, then urgent, then routine, oldest first; counts per
  priority) and a filtered first page, over HTTP, median and p95 of R requests. The first
  request of an app instance loads its worklist index and is reported separately (cold).
- naive FHIR: what a user would write without the app: page through every DiagnosticReport
  (`_count=1000`) and sort by priority and time on the client.
- per-priority FHIR: the strongest plain-FHIR plan: the server filters and sorts
  (`conclusion=<priority>`, `_sort=issued`, `_count=25`, plus a `_summary=count` per priority),
  six searches at once.

Goal: the app's first page under 300 ms, and faster than both baselines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

GOAL_MS = 300.0
PAGE = 25
PRIORITY_SYSTEM = "urn:imaging-pipeline:priority"
RANK = {"critical": 0, "urgent": 1, "routine": 2}


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def naive_first_page(fhir: str) -> list[dict[str, Any]]:
    """Every report, then sort on the client: what the FHIR API alone invites."""
    session = requests.Session()
    reports: list[dict[str, Any]] = []
    offset = 0
    while True:
        bundle = session.get(
            f"{fhir}/DiagnosticReport",
            params={"_count": "1000", "_offset": str(offset)},
            timeout=600,
        ).json()
        found = [e["resource"] for e in bundle.get("entry", [])]
        reports.extend(found)
        if len(found) < 1000:
            break
        offset += len(found)

    def priority(report: dict[str, Any]) -> int:
        for concept in report.get("conclusionCode", []):
            for coding in concept.get("coding", []):
                if coding.get("system") == PRIORITY_SYSTEM:
                    return RANK.get(coding.get("code"), 3)
        return 3

    reports.sort(key=lambda r: (priority(r), r.get("issued", "")))
    return reports[:PAGE]


def per_priority_first_page(fhir: str, pool: ThreadPoolExecutor) -> list[dict[str, Any]]:
    """Counts and the first rows of every priority, filtered and sorted by the server."""

    def search(params: dict[str, str]) -> dict[str, Any]:
        return dict(requests.get(f"{fhir}/DiagnosticReport", params=params, timeout=600).json())

    queries = []
    for priority in RANK:
        token = f"{PRIORITY_SYSTEM}|{priority}"
        queries.append({"conclusion": token, "_summary": "count"})
        queries.append({"conclusion": token, "_sort": "issued", "_count": str(PAGE)})
    bundles = list(pool.map(search, queries))
    rows: list[dict[str, Any]] = []
    for bundle in bundles[1::2]:
        rows.extend(e["resource"] for e in bundle.get("entry", []))
    return rows[:PAGE]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20, help="app requests per measurement")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)

    from imaging_dev.servers.fhir_server import FhirServer
    from imaging_dev.servers.function_server import FunctionServer
    from tests.support.review import seed_reports

    with FhirServer() as fhir:
        started = time.perf_counter()
        totals = seed_reports(fhir.base_url, args.reports, batch=1000)
        print(f"seeded {args.reports} reports {totals} in {time.perf_counter() - started:.0f} s")
        env = {
            "FHIR_BASE_URL": fhir.base_url,
            "DICOMWEB_URL": "http://127.0.0.1:9/dicom-web",  # the worklist reads FHIR only
            "ENVIRONMENT": "bench",
            "LOG_LEVEL": "WARNING",
            "AUTH_MODE": "local",
            "EVENTS_TOPIC": "projects/local-demo/topics/dicom-notifications",
            "DEAD_LETTER_SUBSCRIPTION": "projects/local-demo/subscriptions/dead-letters",
            # The background refresh runs as deployed; each one is a FHIR search.
            "WORKLIST_REFRESH_S": "5",
        }
        with FunctionServer("review_app", env) as app:
            session = requests.Session()
            url = f"{app.url}worklist"

            def first_page() -> None:
                response = session.get(url, timeout=600)
                response.raise_for_status()
                assert response.text.count("data-report=") == PAGE

            cold = _timed(first_page, 1)[0]
            warm = _timed(first_page, args.runs)

            def filtered() -> None:
                session.get(
                    url, params={"modality": "CT", "review": "unreviewed"}, timeout=600
                ).raise_for_status()

            warm_filtered = _timed(filtered, args.runs)
            naive = _timed(lambda: naive_first_page(fhir.base_url), args.baseline_runs)
            with ThreadPoolExecutor(max_workers=6) as pool:
                per_priority = _timed(
                    lambda: per_priority_first_page(fhir.base_url, pool), args.baseline_runs
                )

    app_ms = statistics.median(warm)
    rows = [
        ("app /worklist, page 1", app_ms, _p95(warm)),
        ("app /worklist, CT unreviewed", statistics.median(warm_filtered), _p95(warm_filtered)),
        ("baseline: naive FHIR (all, sort)", statistics.median(naive), max(naive)),
        ("baseline: per-priority FHIR", statistics.median(per_priority), max(per_priority)),
    ]
    print(f"\n{'first page of the worklist':36} {'median ms':>10} {'p95/max ms':>11}")
    for name, median_ms, high in rows:
        print(f"{name:36} {median_ms:10.1f} {high:11.1f}")
    print(f"app cold (index load of {args.reports} reports): {cold:.0f} ms")
    best_baseline = min(statistics.median(naive), statistics.median(per_priority))
    print(f"speed-up over the best baseline: {best_baseline / app_ms:.0f}x; goal < {GOAL_MS} ms")
    ok = app_ms < GOAL_MS and app_ms < best_baseline
    if args.check and not ok:
        print("goal missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
