"""Where an event's wall time goes at 1 and at N in flight: the processor's five requests
against the rest of `Processor.handle`.

    .venv/bin/python -m bench.request_wall [--events N] [--concurrency C]

bench.e2e's stand-ins (servers, latency proxies, Vision double) run in a child process on the
cores bench.e2e gives them; the processor runs in this process on the function's cores, called
directly from C threads (no functions-framework: the handler's own logged duration is within a
few ms of what bench.e2e's pusher sees). Per mode: `handle`'s wall p50/p95, and per request
kind the mean wall and thread CPU per call. What the requests' wall adds up to, against
`handle`'s, says whether a latency rise at C in flight is waiting on the stand-ins (their
answers, and the proxies reading and relaying bodies on a busy core) or the processor's own
work and its threads sharing one GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.cpu_breakdown import http_calls_by_kind
from bench.e2e import ROOT, cpu_split, deployed_concurrency, start_servers, uploaded_messages


def serve(path: Path) -> None:
    """Child: start the stand-ins, write their environment to `path`, serve until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ExitStack() as stack:
        servers = start_servers(stack)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"env": servers.env, "orthanc": servers.orthanc_url}))
        tmp.rename(path)
        while True:
            time.sleep(1)


@contextlib.contextmanager
def stand_ins(cores: set[int] | None) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-wall-") as tmp:
        path = Path(tmp) / "servers.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.request_wall", "--serve", str(path)],
            cwd=ROOT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
        try:
            deadline = time.monotonic() + 120
            while not path.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stand-ins did not start")
                time.sleep(0.2)
            yield json.loads(path.read_text())
        finally:
            child.terminate()
            child.wait(timeout=60)


def _timed_event(processor: Any, message: dict[str, Any]) -> float:
    from imaging_pipeline.process import handle_event_data

    started = time.perf_counter()
    handle_event_data(processor, {"message": message})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=64, help="events per mode (default 64)")
    parser.add_argument("--concurrency", type=int, default=None, help="default: prod's")
    parser.add_argument("--serve", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve))
        return 0
    concurrency = args.concurrency or deployed_concurrency()
    split = cpu_split()
    if split.function is not None:
        os.sched_setaffinity(0, split.function)
    gc.set_threshold(20_000, 10, 10)  # as handlers/main.py sets it

    from imaging_pipeline.process import Processor, handle_event_data
    from imaging_pipeline.runtime_env import load_config

    with stand_ins(split.rest) as servers:
        processor = Processor(load_config(servers["env"]))

        warm = uploaded_messages(servers["orthanc"], 8)
        batches = [uploaded_messages(servers["orthanc"], args.events) for _ in range(2)]
        for message in warm:
            handle_event_data(processor, {"message": message})
        print(
            f"stand-ins on cores {sorted(split.rest or [])}, processor on "
            f"{sorted(split.function or [])}"
            if split.function
            else "not pinned"
        )
        for batch, in_flight in ((batches[0], 1), (batches[1], concurrency)):
            with http_calls_by_kind() as calls, ThreadPoolExecutor(in_flight) as pool:
                walls = sorted(pool.map(lambda m: _timed_event(processor, m), batch))
            p95 = walls[round(0.95 * (len(walls) - 1))]
            print(
                f"{in_flight} in flight: handle wall p50 {1000 * statistics.median(walls):.0f} "
                f"ms, p95 {1000 * p95:.0f} ms"
            )
            total = 0.0
            for kind, timings in sorted(calls.items()):
                wall = 1000 * statistics.fmean(t[0] for t in timings)
                cpu = 1000 * statistics.fmean(t[1] for t in timings)
                total += wall * len(timings) / len(batch)
                print(f"  {kind:18} wall {wall:6.1f} ms, thread CPU {cpu:5.2f} ms a call")
            print(
                f"  the requests' wall, per event: {total:.0f} ms of handle's mean "
                f"{1000 * statistics.fmean(walls):.0f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
