"""Per-file STOW-RS ingest throughput: one upload at a time (the baseline) vs --workers N.

    .venv/bin/python -m bench.ingest [--files 200] [--workers 4] [--check]

Writes N synthetic 512x512 CT slices (about 0.5 MB each, the size of a real CT slice), starts a
local Orthanc and runs `imaging ingest` twice into an emptied store: --workers 1, then
--workers N. Prints files/s and MB/s of each. These are this machine's numbers (the uploads,
the checks and the store share its cores); they say when a machine-bound upload is enough and
when to prefer the store's server-side bulk import (README, "Moving an archive"). `--check`
exits 1 unless N workers are at least 1.3x faster than one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imaging_dev.servers.orthanc import OrthancServer
from imaging_dev.synthetic import ct_series, write_instances

IMAGING = Path(sys.executable).with_name("imaging")


def run(store: OrthancServer, folder: Path, workers: int) -> float:
    store.reset()
    started = time.perf_counter()
    subprocess.run(
        [
            str(IMAGING),
            "ingest",
            str(folder),
            "--store",
            store.dicomweb_url,
            "--workers",
            str(workers),
            "--no-resume",
            "--progress-every",
            "3600",
        ],
        check=True,
        capture_output=True,
        timeout=3600,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, OrthancServer() as store:
        folder = Path(tmp) / "ct"
        paths = write_instances(ct_series(seed="bench", slices=args.files, size=512), folder)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        baseline = run(store, folder, 1)
        ours = run(store, folder, args.workers)
    for label, seconds in (("--workers 1", baseline), (f"--workers {args.workers}", ours)):
        print(
            f"{label:12} {args.files} files, {megabytes:.0f} MB: {seconds:6.1f} s  "
            f"{args.files / seconds:6.1f} files/s  {megabytes / seconds:6.1f} MB/s"
        )
    speedup = baseline / ours
    print(f"speed-up: {speedup:.2f}x")
    return 1 if args.check and speedup < 1.3 else 0


if __name__ == "__main__":
    sys.exit(main())
