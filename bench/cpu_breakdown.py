"""Where a warm event's CPU goes: bench.e2e's events through the processor in this process.

    .venv/bin/python -m bench.cpu_breakdown [--events N]

The same local servers, latency and instance mix as bench.e2e (Vision analyzer), the processor
called directly (no functions-framework: its share is about 1 ms a request), one event at a
time after 8 warm-up events. The steps of `Processor.handle` that cost CPU are wrapped with
`time.thread_time`, so each row is the CPU of this thread inside that step, waiting excluded;
rows nest (a step's row includes the steps it calls); the "HTTP" rows are every request through
`LeanSession` (all the processor's) and through requests (none now), wherever made, and the
last table splits the LeanSession requests by kind (WADO-RS, Vision, FHIR search and
transaction, STOW-RS), CPU per call. A guide for where to cut next, not a goal: the goal is
bench.e2e's CPU per warm event, which also counts the framework and the process's other
threads.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

# (module, attribute path, label): patched where callers look them up at call time.
STEPS = (
    ("imaging_pipeline.process", "Processor.handle", "Processor.handle (the whole event)"),
    ("imaging_pipeline.adapters.dicomweb", "retrieve_instance", "  retrieve (WADO-RS, parse)"),
    ("imaging_pipeline.process", "analyze_dataset", "  analyze_dataset"),
    ("imaging_pipeline.render", "render_dataset", "    render"),
    ("imaging_pipeline.adapters.vision", "VisionAnalyzer.analyze", "    Vision client"),
    ("imaging_pipeline.adapters.fhir_client", "FhirClient.search_by_identifier", "  FHIR search"),
    ("imaging_pipeline.process", "Processor._store_sr", "  SR"),
    ("imaging_pipeline.sr.build", "build_sr", "    build (highdicom)"),
    ("imaging_pipeline.sr.build", "_group", "      one finding's group"),
    ("imaging_pipeline.sr.build", "_filled_sr", "      the SR's header"),
    ("imaging_pipeline.adapters.sr_store", "part10_bytes", "    encode (Part 10)"),
    ("imaging_pipeline.adapters.sr_store", "stow_instance", "    STOW-RS"),
    ("imaging_pipeline.process", "build_transaction", "  FHIR Bundle"),
    ("imaging_pipeline.process", "validate_bundle", "  FHIR validation"),
    ("imaging_pipeline.adapters.fhir_client", "FhirClient.transaction", "  FHIR transaction"),
    ("requests.sessions", "Session.request", "HTTP through requests"),
    ("imaging_pipeline.adapters.lean_http", "LeanSession.request", "HTTP through LeanSession"),
    # Smaller steps, each called from one of the above.
    ("imaging_pipeline.process", "instance_info", "instance_info (header to FHIR fields)"),
    ("imaging_pipeline.logs", "register_dataset_phi", "register_dataset_phi"),
    ("imaging_pipeline.render.api", "decode_frame", "render: decode the frame"),
    ("imaging_pipeline.render.api", "render_greyscale", "render: greyscale LUTs"),
    ("imaging_pipeline.render.api", "encode", "render: JPEG encode"),
    ("imaging_pipeline.sr.build", "_evidence", "SR: evidence from the source"),
)


def request_kind(method: str, url: str, params: Any = None) -> str:
    """Which of the processor's five requests this is (bench.e2e's servers' URLs)."""
    if method == "GET" and "/instances/" in url:
        return "WADO-RS retrieve"
    if method == "POST" and url.endswith("/studies"):
        return "STOW-RS store"
    if "images:annotate" in url:
        return "Vision annotate"
    if method == "GET" and "identifier" in (params or {}):
        return "FHIR search"
    if method == "POST":
        return "FHIR transaction"
    return f"other {method}"


@contextmanager
def http_calls_by_kind() -> Iterator[dict[str, list[tuple[float, float]]]]:
    """(wall, thread CPU) seconds of each LeanSession request, by `request_kind`."""
    from imaging_pipeline.adapters.lean_http import LeanSession

    calls: dict[str, list[tuple[float, float]]] = {}
    original = LeanSession.request

    def request(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        kind = request_kind(method, url, kwargs.get("params"))
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(self, method, url, **kwargs)
        finally:
            timing = (time.perf_counter() - wall, time.thread_time() - cpu)
            calls.setdefault(kind, []).append(timing)

    LeanSession.request = request  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        LeanSession.request = original  # type: ignore[method-assign]


@contextmanager
def thread_cpu_of(steps: tuple[tuple[str, str, str], ...]) -> Iterator[dict[str, list[float]]]:
    """Patch each step to add its thread CPU seconds and calls to the yielded totals."""
    totals: dict[str, list[float]] = {label: [0.0, 0] for _, _, label in steps}
    patched: list[tuple[Any, str, Any]] = []
    for module_name, path, label in steps:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)
        setattr(owner, name, _timed(original, totals[label]))
        patched.append((owner, name, original))
    try:
        yield totals
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def _timed(function: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += time.thread_time() - started
            total[1] += 1

    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=48, help="events measured (default 48)")
    args = parser.parse_args(argv)

    from imaging_pipeline.process import Processor, handle_event_data
    from imaging_pipeline.runtime_env import load_config

    from bench.e2e import start_servers, uploaded_messages

    with ExitStack() as stack:
        servers = start_servers(stack)
        processor = Processor(load_config(servers.env))

        warm = uploaded_messages(servers.orthanc_url, 8)
        measured = uploaded_messages(servers.orthanc_url, args.events)
        for message in warm:
            handle_event_data(processor, {"message": message})
        with thread_cpu_of(STEPS) as totals, http_calls_by_kind() as by_kind:
            for message in measured:
                outcome = handle_event_data(processor, {"message": message})
                assert outcome.status == "processed", outcome
    print(f"thread CPU per event, mean of {args.events} events (rows nest):")
    print(f"{'step':42} {'ms/event':>9} {'calls/event':>12}")
    for label, (seconds, calls) in totals.items():
        print(f"{label:42} {seconds * 1000 / args.events:9.2f} {calls / args.events:12.2f}")
    print("\nHTTP through LeanSession by request, thread CPU per call:")
    print(f"{'request':42} {'ms/call':>9} {'calls/event':>12}")
    for kind, timings in sorted(by_kind.items()):
        cpu_ms = 1000 * sum(cpu for _, cpu in timings) / len(timings)
        print(f"{kind:42} {cpu_ms:9.2f} {len(timings) / args.events:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
