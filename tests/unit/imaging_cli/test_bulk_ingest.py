"""Bulk ingest scheduling: bounded read-ahead, at most `workers` uploads, every file reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from imaging_cli.bulk_ingest import FileResult, _bounded_map
from imaging_cli.ingest_sources import SourceObject

ITEMS = 20


def test_bounded_map_reads_ahead_at_most_limit_and_returns_every_item() -> None:
    workers, limit = 3, 6
    lock = threading.Lock()
    running = peak = completed = 0
    gaps: list[int] = []
    gate = threading.Semaphore(0)

    def work(item: SourceObject) -> FileResult:
        nonlocal running, peak, completed
        with lock:
            running += 1
            peak = max(peak, running)
        gate.acquire()  # held until the releaser lets one upload finish
        with lock:
            running -= 1
            completed += 1
        return FileResult(item.uri, "stored")

    def items() -> Iterator[SourceObject]:
        for i in range(ITEMS):
            with lock:
                gaps.append(i - completed)  # files read but not finished when file i is read
            yield SourceObject(str(i), 0, bytes)

    stop = threading.Event()

    def releaser() -> None:
        while not stop.wait(0.002):  # paces completions; nothing below depends on time
            gate.release()

    thread = threading.Thread(target=releaser)
    thread.start()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(_bounded_map(pool, work, items(), limit=limit))
    finally:
        stop.set()
        thread.join()

    assert sorted(int(r.uri) for r in results) == list(range(ITEMS))
    assert max(gaps) <= limit  # an unbounded map would read all 20 files up front
    assert peak <= workers
