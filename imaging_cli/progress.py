"""Progress of a long operator command: a bar on a terminal, plain periodic lines otherwise.

On a terminal, tqdm draws a bar with the rate and the time left. Redirected to a file or a CI
log, a bar is noise (carriage returns, hundreds of redraws); instead one plain line is written
every `every_s` seconds and at the end, so a log shows that the run is alive and how far it is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(
    label: str, done: int, total: int | None, elapsed_s: float, counts: Counter[str], unit: str
) -> str:
    """`ingest: 40/100 files (40%), 12.5 files/s, 0:05 left; stored 38, failed 2`."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    line = f"{label}: {done}"
    if total is not None:
        line += f"/{total} {unit}s ({done * 100 // total if total else 100}%)"
    else:
        line += f" {unit}s"
    line += f", {rate:.1f} {unit}s/s"
    if total is not None and rate > 0 and done < total:
        line += f", {format_duration((total - done) / rate)} left"
    if counts:
        line += "; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return line


class Progress:
    """Counts outcomes; shows them as a bar (tty) or as a line every `every_s` seconds."""

    def __init__(
        self,
        *,
        label: str,
        total: int | None,
        unit: str,
        stream: TextIO,
        tty: bool,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream, self.every_s, self.clock = stream, every_s, clock
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.started = self._last = clock()
        self._bar: Any = None
        if tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit=unit, desc=label, file=stream, dynamic_ncols=True, leave=True
            )

    def update(self, outcome: str) -> None:
        self.done += 1
        self.counts[outcome] += 1
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(dict(sorted(self.counts.items())), refresh=False)
            return
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._print_line(now)

    def write(self, line: str, file: TextIO) -> None:
        """A line of output that must not be torn by the bar."""
        if self._bar is not None:
            self._bar.write(line, file=file)
        else:
            print(line, file=file, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.done:
            self._print_line(self.clock())

    def _print_line(self, now: float) -> None:
        line = progress_line(
            self.label, self.done, self.total, now - self.started, self.counts, self.unit
        )
        print(line, file=self.stream, flush=True)
