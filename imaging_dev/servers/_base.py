"""Shared plumbing for the local servers: free ports, readiness waits, process-group cleanup.

Kept free of pytest so that `imaging demo` can reuse every server class as-is.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages; empty if there is no log yet."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ServerStartError(RuntimeError):
    """A local server did not become ready; the message carries its log tail."""


class LocalServer:
    """Start/stop lifecycle with context-manager support; subclasses implement _start/_stop."""

    name = "server"

    def __init__(self) -> None:
        self._started = False

    def start(self) -> Self:
        if not self._started:
            try:
                self._start()
            except BaseException:
                self._stop()
                raise
            self._started = True
        return self

    def stop(self) -> None:
        # Always safe to call, including after a failed start.
        self._stop()
        self._cleanup()
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Removes data left by the server; skipped after a failed start so its log survives."""

    def __repr__(self) -> str:
        where = getattr(self, "url", None) or getattr(self, "host", "")
        state = "running" if self._started else "stopped"
        return "<" + " ".join(p for p in (type(self).__name__, self.name, state, where) if p) + ">"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# The orphan watch: a second child in the server's process group that polls whether we are
# still its parent and, once we are gone (re-parented), ends the whole group. Python rather than
# a shell loop, so that it forks nothing: both children are ours to reap, no zombie is left.
_ORPHAN_WATCH = """
import os, signal, sys, time
parent, group = os.getppid(), int(sys.argv[1])
while os.getppid() == parent:
    time.sleep(1)
os.killpg(group, signal.SIGTERM)
"""

# Servers with a live child process. At interpreter exit (also after an unhandled exception or
# Ctrl-C) any that nobody stopped are killed, so a crashed test run or demo leaves no orphans.
_LIVE: set[SubprocessServer] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server._kill(grace=2.0)


class SubprocessServer(LocalServer):
    """A server run as a child process in its own process group, with its own temp dir.

    The process group is what makes cleanup reliable: killing the group also ends anything
    the server spawned, so no process outlives a test session, even one that failed. With
    `orphan_watch`, a small watcher process also ends the server if this Python process is
    killed outright (SIGKILL, OOM), when neither stop() nor the atexit hook can run.
    """

    orphan_watch = False

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"local-{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._watch: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _spawn(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            list(argv),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or self.workdir,
            env={**os.environ, **(env or {})},
            # Own process group (see the class docstring), in our session so that the orphan
            # watch may join it; a terminal's Ctrl-C goes to our group, not to the server's.
            process_group=0,
        )
        _LIVE.add(self)
        if self.orphan_watch:
            self._watch = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _ORPHAN_WATCH, str(self._proc.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log_file,
                process_group=self._proc.pid,
            )

    def _wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Polls `probe` until it is true; fails fast with the log tail if the process died."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self._proc.returncode} before it was ready;"
                    f" log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            with contextlib.suppress(OSError):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _kill(self, grace: float = 5.0, sig: signal.Signals = signal.SIGTERM) -> None:
        proc, self._proc = self._proc, None
        watch, self._watch = self._watch, None
        _LIVE.discard(self)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
            # The leader is gone; make sure no straggler of the group is left either.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if watch is not None:
            with contextlib.suppress(ProcessLookupError):
                watch.kill()
            watch.wait(timeout=grace)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _stop(self) -> None:
        self._kill()

    def _cleanup(self) -> None:
        # Deletes the temp dir (data and logs) only if this object created it.
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def tcp_accepts(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True
