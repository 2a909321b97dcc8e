"""Synth of every environment: the fast provider path against the naive package-root import.

    .venv/bin/python -m bench.synth [--runs N] [--check]

Runs both ways alternately in one run (so machine noise hits both), each in a fresh process as
`cdktn synth` would, and prints median wall time and peak RSS of the process tree (Python +
Node). Goals (issue 9, on cdktn with the google 8.7.0 bindings): the fast path synthesizes all
three environments at least 5x faster than the naive import, at most 350 MB peak RSS. `--check`
exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

from bench._measure import Measurement, measure, median

ROOT = Path(__file__).resolve().parent.parent
SPEEDUP_GOAL = 5.0
RSS_GOAL_MB = 350.0


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synth_once(naive: bool) -> tuple[Measurement, float]:
    """One synth in a fresh process: its measurement and its CPU seconds (Python + Node), which
    say more than wall time when other work shares the machine's cores."""
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as out:
        env = {**os.environ, "CDKTF_OUTDIR": out}
        env.pop("ENVIRONMENTS", None)
        if naive:
            env["IMAGING_SYNTH_NAIVE"] = "1"
        else:
            env.pop("IMAGING_SYNTH_NAIVE", None)
        before = children_cpu_s()
        m = measure([sys.executable, str(ROOT / "main.py")], env=env, cwd=ROOT)
        return m, children_cpu_s() - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)

    synth_once(naive=False)  # warm the bytecode and page caches for both modes alike
    results: dict[str, list[Measurement]] = {"naive": [], "fast": []}
    cpu_s: dict[str, list[float]] = {"naive": [], "fast": []}
    for i in range(args.runs):
        for mode in ("naive", "fast"):
            m, cpu_used = synth_once(naive=mode == "naive")
            results[mode].append(m)
            cpu_s[mode].append(cpu_used)
            print(
                f"run {i + 1}/{args.runs} {mode:5}: {m.wall_s:6.2f} s  {cpu_used:6.2f} s CPU  "
                f"{m.peak_rss_mb:6.0f} MB",
                file=sys.stderr,
            )

    wall = {k: median([m.wall_s for m in v]) for k, v in results.items()}
    cpu = {k: median(v) for k, v in cpu_s.items()}
    rss = {k: median([m.peak_rss_mb for m in v]) for k, v in results.items()}
    speedup = wall["naive"] / wall["fast"]
    print("synth of dev, staging, prod (median of", args.runs, "runs each, same machine, same run)")
    print(f"{'mode':8}{'wall s':>10}{'CPU s':>10}{'peak RSS MB':>14}")
    for mode in ("naive", "fast"):
        print(f"{mode:8}{wall[mode]:10.2f}{cpu[mode]:10.2f}{rss[mode]:14.0f}")
    print(
        f"speed-up {speedup:.1f}x wall, {cpu['naive'] / cpu['fast']:.1f}x CPU "
        f"(goal >= {SPEEDUP_GOAL:.0f}x wall); "
        f"fast peak RSS {rss['fast']:.0f} MB (goal <= {RSS_GOAL_MB:.0f} MB); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    ok = speedup >= SPEEDUP_GOAL and rss["fast"] <= RSS_GOAL_MB
    if args.check and not ok:
        print("goal missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
