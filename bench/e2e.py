"""End to end at the deployed concurrency: DICOM store events through one functions-framework
process serving the real processor with the Cloud Vision analyzer.

    .venv/bin/python -m bench.e2e [--events N] [--concurrency C] [--rounds R] [--check]

Orthanc (DICOMweb), the FHIR R4 server, the Pub/Sub server and the local Vision server stand in
for Google's services, each behind a proxy that adds the latency measured in Google Cloud (a
warm event spent ~220 ms waiting: DICOM store 60 ms, Vision 120 ms, FHIR 2 x 20 ms), so waiting
and CPU keep their real proportions. The same instances (CT, MR, CR, DX, US, colour, JPEG 2000;
some with burned-in text) are pushed twice: once one at a time (concurrency 1, the old
deployment) and once with C in flight (C: prod's `functions.processor.concurrency`), each event
once more after (Pub/Sub is at least once). Both modes run R times (`--rounds`, 3), on fresh
instances each time, the order of the modes alternating between rounds; every round is printed
and the goals are checked on the medians over the rounds, so that a minute in which this
machine runs slow (its speed varies by a third within an hour) does not decide the verdict
alone. Reported per mode:

- process CPU ms per warm event (user + system time of the function's process tree);
- wall p50/p95 per event, as the pusher sees it;
- events/s per instance;
- instance-seconds per 1,000 events: the time at least one request was in flight (what
  request-based billing charges), per event x 1,000.

CPU: the deployed instance has `functions.processor.cpu` vCPUs of its own and Google's services
run elsewhere. Where this machine has more cores than that, the function's process tree is
pinned to that many cores and everything else (this process, the local servers, the proxies)
to the rest, in both modes, so the stand-ins do not take CPU from the function or the reverse;
on a smaller machine nothing is pinned and the report says so. When pinned, the share of
each side's cores that was busy in each mode is printed, and the stand-ins' median answer
time per kind as the latency proxies see it (request in to response headers out, the added
latency included). On 2 cores the stand-ins (Orthanc, the FHIR server, the proxies, the Vision
double, the pusher) need about twice the function's CPU per event, so at 12 in flight their
core can saturate; the report says when. Their answer times show how much of the latency is
their queueing; relaying the bodies through the proxies is not in them.

Cold start: from spawning functions-framework to the first event processed (200), for
handlers/main.py as shipped (lazy imports) and for the same entry point behind eager imports
of every heavy dependency.

Goals (issue 14): <= 15 ms CPU per warm event; >= 8x fewer instance-seconds per 1,000 events
than concurrency 1, with p95 within 1.5x of concurrency 1; no errors or duplicates.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench._measure import median

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "handlers"
CPU_GOAL_MS = 15.0
# Busy share of the stand-ins' cores above which their own queueing shows in the latencies.
STAND_INS_SATURATED = 0.85
INSTANCE_SECONDS_GOAL = 8.0
P95_GOAL = 1.5
# Latency added in front of each local server (seconds per request), from Google Cloud.
LATENCY_S = {"dicomweb": 0.060, "vision": 0.120, "fhir": 0.020}
# Everything the processor imports on its first event; main.py imports none of it.
EAGER_IMPORTS = (
    "numpy",
    "pydicom",
    "PIL.Image",
    "pylibjpeg",
    "dicomweb_client.api",
    "google.auth",
    "google.auth.transport.requests",
    "google.cloud.pubsub_v1",
    "fhir.resources.R4B.bundle",
    "fhir.resources.R4B.imagingstudy",
    "fhir.resources.R4B.diagnosticreport",
    "fhir.resources.R4B.observation",
    "fhir.resources.R4B.device",
    "requests",
    "imaging_pipeline.render",
    "imaging_pipeline.adapters.vision",
    "imaging_pipeline.adapters.dicomweb",
)
VISION_SETTINGS: dict[str, Any] = {
    "analyzer": "vision",
    "rules": [
        {
            "name": "burned-in-text",
            "finding": "burned_in_text",
            "min_score": 0.6,
            "priority": "urgent",
        },
        {
            "name": "critical",
            "finding": "text",
            "terms": ["pneumothorax"],
            "min_score": 0.5,
            "priority": "critical",
        },
    ],
}


def _processor_sizing(environment: str) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "environments" / f"{environment}.yaml").read_text())
    return dict(config["functions"]["processor"])


def deployed_concurrency(environment: str = "prod") -> int:
    return int(_processor_sizing(environment).get("concurrency", 1))


@dataclass(frozen=True)
class CpuSplit:
    """Cores for the function's process tree and for everything else (None: not pinned)."""

    function: set[int] | None
    rest: set[int] | None

    def roles(self) -> dict[str, set[int]]:
        return {"function": self.function or set(), "stand-ins": self.rest or set()}

    def describe(self) -> str:
        if self.function is None:
            return "not pinned (this machine has no core to spare beside the function's)"
        rest = sorted(self.rest or ())
        return f"function on cores {sorted(self.function)}, servers and load on {rest}"


def cpu_split(environment: str = "prod") -> CpuSplit:
    cores = sorted(os.sched_getaffinity(0))
    wanted = max(1, math.ceil(float(_processor_sizing(environment).get("cpu", 1))))
    if len(cores) <= wanted:
        return CpuSplit(None, None)
    return CpuSplit(set(cores[-wanted:]), set(cores[:-wanted]))


def pin_tree(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` and its descendants onto `cores` (affinity is per thread on Linux;
    threads and processes created later inherit it from their creator)."""
    from bench._measure import _children

    stack = [pid]
    while stack:
        p = stack.pop()
        for task in Path(f"/proc/{p}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                os.sched_setaffinity(int(task.name), cores)
        stack.extend(_children(p))


def make_instances(n: int) -> list[Any]:
    from tests.support.process import projection, sample

    makers: list[Callable[[int], Any]] = [
        lambda i: sample("CT_small.dcm"),
        lambda i: sample("MR_small.dcm"),
        lambda i: projection("CR", size=1024, seed=i),
        lambda i: projection("DX", text="PORTABLE AP CHEST", size=1024, seed=i),
        lambda i: sample("examples_rgb_color.dcm"),
        lambda i: sample("SC_rgb_rle.dcm"),
        lambda i: projection("DX", text="STAT PNEUMOTHORAX", size=512, seed=i),
        lambda i: sample("693_J2KI.dcm"),
    ]
    return [makers[i % len(makers)](i) for i in range(n)]


def uploaded_messages(orthanc_url: str, n: int) -> list[dict[str, Any]]:
    """`n` instances of the mix stored in Orthanc, as the Pub/Sub messages announcing them."""
    from tests.support.process import instance_path, pubsub_message, upload

    messages = []
    for ds in make_instances(n):
        upload(orthanc_url, ds)
        messages.append(pubsub_message(instance_path(ds)))
    return messages


def _ticks(pid: int) -> int:
    """utime + stime of `pid` and its descendants, in clock ticks."""
    from bench._measure import _children

    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(p))
    return total


def cpu_seconds(pid: int) -> float:
    return _ticks(pid) / os.sysconf("SC_CLK_TCK")


@dataclass
class Mode:
    concurrency: int
    events: int
    elapsed_s: float
    latencies: list[float]
    busy_s: float  # time with at least one request in flight
    cpu_s: float
    errors: int
    busy_cores: dict[str, float] = field(default_factory=dict)  # share busy, by role
    stand_in_ms: dict[str, float] = field(default_factory=dict)  # see `stand_in_times`

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.cpu_s / self.events

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies)

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s

    @property
    def instance_s_per_1000(self) -> float:
        return 1000 * self.busy_s / self.events


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals."""
    total, current_end, current_start = 0.0, None, 0.0
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def core_ticks(cores: set[int]) -> tuple[int, int]:
    """(busy, total) clock ticks of these cores since boot, from /proc/stat."""
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(v) for v in values]
            total += sum(ticks[:8])  # guest time is already counted in user
            busy += sum(ticks[:8]) - ticks[3] - ticks[4]  # minus idle and iowait
    return busy, total


def push_all(
    function: Any, messages: list[dict[str, Any]], concurrency: int, split: CpuSplit | None = None
) -> Mode:
    assert function.pid is not None
    roles = {} if split is None or split.function is None else split.roles()
    ticks_before = {role: core_ticks(cores) for role, cores in roles.items()}
    intervals: list[tuple[float, float]] = []
    statuses: list[int] = []

    def deliver(message: dict[str, Any]) -> None:
        start = time.perf_counter()
        status = function.push(message).status_code
        intervals.append((start, time.perf_counter()))
        statuses.append(status)

    cpu_before = cpu_seconds(function.pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(deliver, messages))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(function.pid) - cpu_before
    busy_cores = {}
    for role, cores in roles.items():
        busy, total = (a - b for a, b in zip(core_ticks(cores), ticks_before[role], strict=True))
        busy_cores[role] = busy / total if total else 0.0
    return Mode(
        concurrency=concurrency,
        events=len(messages),
        elapsed_s=elapsed,
        latencies=[end - start for start, end in intervals],
        busy_s=busy_time(intervals),
        cpu_s=cpu,
        errors=sum(1 for s in statuses if s != 200),
        busy_cores=busy_cores,
    )


@dataclass
class Servers:
    env: dict[str, str]
    fhir_url: str
    orthanc_url: str
    proxies: dict[str, Any]  # name -> FaultProxy in front of that stand-in


def stand_in_times(proxies: dict[str, Any], since: dict[str, int]) -> dict[str, float]:
    """Median ms from each request reaching a proxy to its stand-in's answer (the added latency
    included), over the requests after `since` (request counts per proxy)."""
    times = {}
    for name, proxy in proxies.items():
        durations = [r.duration for r in proxy.requests[since[name] :]]
        if durations:
            times[name] = 1000 * statistics.median(durations)
    return times


def start_servers(stack: ExitStack) -> Servers:
    from imaging_dev.servers.fault_proxy import FaultProxy
    from imaging_dev.servers.fhir_server import FhirServer
    from imaging_dev.servers.orthanc import OrthancServer
    from imaging_dev.servers.pubsub_emulator import PubSubEmulator
    from imaging_dev.servers.vision_server import VisionServer
    from tests.support.process import ALERTS_TOPIC, function_env

    orthanc = stack.enter_context(OrthancServer())
    fhir = stack.enter_context(FhirServer())
    pubsub = stack.enter_context(PubSubEmulator())
    pubsub.create_topic(ALERTS_TOPIC)
    vision = stack.enter_context(VisionServer())
    proxies = {
        "dicomweb": stack.enter_context(FaultProxy(orthanc.dicomweb_url)),
        "fhir": stack.enter_context(FaultProxy(fhir.base_url)),
        "vision": stack.enter_context(FaultProxy(vision.url)),
    }
    for name, proxy in proxies.items():
        proxy.delay_next(100_000, LATENCY_S[name])
    env = function_env(
        dicomweb_url=proxies["dicomweb"].url,
        fhir_base_url=proxies["fhir"].url,
        pubsub_host=pubsub.host,
        settings=VISION_SETTINGS,
        vision_url=proxies["vision"].url,
    )
    return Servers(env=env, fhir_url=fhir.base_url, orthanc_url=orthanc.url, proxies=proxies)


def duplicates(fhir_url: str) -> int:
    from tests.support.process import fhir_search

    total = 0
    for resource_type in ("DiagnosticReport", "ImagingStudy", "Observation", "Device"):
        found = fhir_search(fhir_url, resource_type, _count="10000")
        keys = Counter(r["identifier"][0]["value"] for r in found if r.get("identifier"))
        total += sum(n - 1 for n in keys.values())
    return total


@dataclass
class Round:
    """Both modes, one after the other, on fresh instances."""

    one: Mode
    many: Mode

    @property
    def saving(self) -> float:
        return self.one.instance_s_per_1000 / self.many.instance_s_per_1000

    @property
    def p95_ratio(self) -> float:
        return self.many.p95_ms / self.one.p95_ms


def run_modes(
    events: int, concurrency: int, split: CpuSplit, rounds: int = 1
) -> tuple[list[Round], int, int]:
    """`rounds` rounds of both modes through one function process, the order of the modes
    alternating between rounds (so a drift in the machine's speed favours neither); then every
    event is delivered once more. Returns the rounds, the redelivery's errors and the FHIR
    duplicates."""
    from tests.support.process import ProcessFunction

    with ExitStack() as stack:
        servers = start_servers(stack)
        env = {**servers.env, "THREADS": str(concurrency)}
        function = stack.enter_context(ProcessFunction(env))
        if split.function is not None:
            assert function.pid is not None
            pin_tree(function.pid, split.function)
        push_all(function, uploaded_messages(servers.orthanc_url, 8), 1)  # warm up
        results, delivered = [], []
        for number in range(rounds):
            order = (1, concurrency) if number % 2 == 0 else (concurrency, 1)
            modes = {}
            for in_flight in order:
                # Fresh instances for each mode: each mode creates its own resources.
                batch = uploaded_messages(servers.orthanc_url, events)
                since = {name: proxy.request_count for name, proxy in servers.proxies.items()}
                mode = push_all(function, batch, in_flight, split)
                mode.stand_in_ms = stand_in_times(servers.proxies, since)
                modes[in_flight] = mode
                delivered += batch
            results.append(Round(modes[1], modes[concurrency]))
        redelivered = push_all(function, delivered, concurrency)
        return results, redelivered.errors, duplicates(servers.fhir_url)


def first_event_seconds(eager: bool, runs: int) -> float:
    """Median seconds from spawning functions-framework to the first event's 200."""
    from tests.support.process import (
        ProcessFunction,
        instance_path,
        pubsub_message,
        upload,
    )

    times = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        servers = start_servers(stack)
        source = HANDLERS / "main.py"
        if eager:
            source = Path(tmp) / "eager_main.py"
            source.write_text(
                f"import sys\nsys.path.insert(0, {str(HANDLERS)!r})\n"
                + "".join(f"import {m}\n" for m in EAGER_IMPORTS)
                + "from main import process_dicom_instance  # noqa: F401\n"
            )
        for _ in range(runs):
            ds = make_instances(1)[0]
            upload(servers.orthanc_url, ds)
            message = pubsub_message(instance_path(ds))
            function = ProcessFunction({**servers.env, "PYTHONPATH": str(HANDLERS)})
            function.source = source
            started = time.perf_counter()
            with function:
                response = function.push(message)
                elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"first event failed: {response.status_code}")
            times.append(elapsed)
    return median(times)


SR_CPU_GOAL_MS = 10.0


def sr_cpu_ms(events: int) -> dict[str, float]:
    """CPU of the processor's own work per event (this process: retrieve, render, analyze,
    rules, FHIR; Tesseract runs in a child and is not counted) without and with the SR (build,
    encode, STOW-RS), in one run: the same instance mix, alternating, fresh UIDs for each
    event so that both sides do a first analysis. Each processor first handles one unmeasured
    event (the same instance for both): one-time costs (imports such as highdicom's ~0.35 s,
    first connections) are cold start, not per-event CPU."""
    import copy

    from imaging_pipeline.events import parse_event
    from imaging_pipeline.process import Processor
    from imaging_pipeline.runtime_env import load_config
    from pydicom.uid import generate_uid

    from imaging_dev.servers.fhir_server import FhirServer
    from imaging_dev.servers.orthanc import OrthancServer
    from tests.support.process import (
        function_env,
        instance_path,
        pubsub_message,
        upload,
    )

    cpu: dict[bool, list[float]] = {False: [], True: []}
    with OrthancServer() as orthanc, FhirServer() as fhir:
        processors = {}
        for with_sr in (False, True):
            env = function_env(
                dicomweb_url=orthanc.dicomweb_url,
                fhir_base_url=fhir.base_url,
                pubsub_host="127.0.0.1:1",  # the default rules have no critical one: no alert
                settings={"analyzer": "local", "structured_report": with_sr},
            )
            processors[with_sr] = Processor(load_config(env))
        warm_up = [(source, with_sr, False) for source in make_instances(1) for with_sr in cpu]
        measured = itertools.product(make_instances(events), (False, True), (True,))
        for source, with_sr, timed in itertools.chain(warm_up, measured):
            ds = copy.deepcopy(source)
            ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            upload(orthanc.url, ds)
            event = parse_event({"message": pubsub_message(instance_path(ds))})
            started = time.process_time()
            outcome = processors[with_sr].handle(event)
            if timed:
                cpu[with_sr].append(1000 * (time.process_time() - started))
            assert outcome.status == "processed", outcome
    without, with_ = statistics.mean(cpu[False]), statistics.mean(cpu[True])
    return {"without_ms": without, "with_ms": with_, "added_ms": with_ - without}


def _print_round(number: int, result: Round, concurrency: int) -> None:
    """One round's two rows, then what its cores, stand-ins and ratios say."""
    modes = (("concurrency 1", result.one), (f"concurrency {concurrency}", result.many))
    for name, mode in modes:
        print(
            f"{number:<6} {name:16} {mode.cpu_ms_per_event:12.1f} {mode.p50_ms:8.0f} "
            f"{mode.p95_ms:8.0f} {mode.events_per_s:9.1f} {mode.instance_s_per_1000:12.1f} "
            f"{mode.errors:7d}"
        )
    for name, mode in modes:
        if mode.busy_cores:
            shares = ", ".join(f"{role} {share:.0%}" for role, share in mode.busy_cores.items())
            print(f"       cores busy at {name}: {shares}")
    one, many = result.one, result.many
    if one.stand_in_ms and many.stand_in_ms:
        times = ", ".join(
            f"{name} {one.stand_in_ms[name]:.0f} -> {many.stand_in_ms.get(name, 0.0):.0f}"
            for name in one.stand_in_ms
        )
        print(
            f"       stand-ins' median answer, ms (added latency included), 1 -> "
            f"{concurrency} in flight: {times}"
        )
    if many.busy_cores.get("stand-ins", 0.0) > STAND_INS_SATURATED:
        print(
            "       the stand-ins' cores were saturated: the latencies include their "
            "queueing, which Google's services, scaled apart from the function, would not add"
        )
    print(
        f"       {result.saving:.1f}x fewer instance-seconds per 1,000 events at concurrency "
        f"{concurrency}; p95 {result.p95_ratio:.2f}x of concurrency 1"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=64, help="events per mode (default 64)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="requests in flight (default: prod's functions.processor.concurrency)",
    )
    parser.add_argument("--runs", type=int, default=3, help="cold starts per variant")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of both modes, alternating their order; the goals use the medians (default 3)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    concurrency = args.concurrency or deployed_concurrency()

    lazy = first_event_seconds(eager=False, runs=args.runs)
    eager = first_event_seconds(eager=True, runs=args.runs)
    print(
        f"cold start, process spawn to first event processed: {lazy * 1000:.0f} ms as shipped "
        f"vs {eager * 1000:.0f} ms with eager imports ({eager / lazy:.2f}x)"
    )

    split = cpu_split()
    if split.rest is not None:
        os.sched_setaffinity(0, split.rest)  # before any thread or server starts: they inherit it
    rounds, redelivery_errors, dupes = run_modes(args.events, concurrency, split, args.rounds)
    print(f"added latency per request: {LATENCY_S}; CPU: {split.describe()}")
    print(
        f"{'round':6} {'mode':16} {'CPU ms/event':>12} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'events/s':>9} {'inst-s/1000':>12} {'errors':>7}"
    )
    for number, result in enumerate(rounds, 1):
        _print_round(number, result, concurrency)
    cpu = statistics.median(r.many.cpu_ms_per_event for r in rounds)
    saving = statistics.median(r.saving for r in rounds)
    p95_ratio = statistics.median(r.p95_ratio for r in rounds)
    errors = sum(r.one.errors + r.many.errors for r in rounds) + redelivery_errors
    print(
        f"median of {len(rounds)} round(s): CPU {cpu:.1f} ms per warm event at concurrency "
        f"{concurrency}; {saving:.2f}x fewer instance-seconds; p95 {p95_ratio:.2f}x of "
        f"concurrency 1; errors {errors} (redelivery {redelivery_errors}); FHIR duplicates {dupes}"
    )
    sr = sr_cpu_ms(min(args.events, 32))
    print(
        f"SR CPU per event (processor's own process, mean of {min(args.events, 32)} events "
        f"each): {sr['without_ms']:.1f} ms without SR, {sr['with_ms']:.1f} ms with SR: "
        f"+{sr['added_ms']:.1f} ms"
    )
    goals = {
        f"CPU per warm event <= {CPU_GOAL_MS:.0f} ms": cpu <= CPU_GOAL_MS,
        f"SR adds <= {SR_CPU_GOAL_MS:.0f} ms CPU per event": sr["added_ms"] <= SR_CPU_GOAL_MS,
        f">= {INSTANCE_SECONDS_GOAL:.0f}x fewer instance-seconds": saving >= INSTANCE_SECONDS_GOAL,
        f"p95 within {P95_GOAL}x of concurrency 1": p95_ratio <= P95_GOAL,
        "no errors, no duplicates": not (errors or dupes),
    }
    for goal, met in goals.items():
        print(f"{'PASS' if met else 'FAIL'}  {goal}")
    return 1 if args.check and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
