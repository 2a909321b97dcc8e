"""Start jsii's Node process and load the assemblies while Python imports the rest of the app.

jsii starts its Node process at the first import of a binding and loads each assembly (constructs,
cdktn, the providers) when that binding's `_jsii` module is imported, and Python waits each time:
starting Node and the kernel, and requiring cdktn and the provider indexes, is about a third of
a fast synth's wall time on a quiet machine, spent while Python, which then imports pydantic, the
settings schema and the stacks, does nothing. `start()` sends the same load requests, in the same
order, from a thread as soon as jsii is imported, so Node works while Python imports. A load the
main thread sends afterwards finds the assembly loaded (the kernel answers it from what it has),
so the kernel ends up holding the same assemblies and the synthesized JSON is the same
(tests/infra/test_fast_synth.py).

jsii's kernel client is one pipe and not thread-safe: while the thread runs, every request (of
either thread) goes through a lock, one request and its response at a time, including the first,
which starts Node; when the thread is done, the kernel gets its own provider back. Only main.py
calls this, in the synth process, and stops and joins the thread before the process exits.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The bindings whose assemblies a synth loads, in the order importing the stacks loads them
# (each `_jsii` module imports those it depends on first). One a fork has removed is skipped.
PACKAGES = (
    "constructs",
    "cdktn",
    "cdktn_provider_google",
    "cdktn_provider_google_beta",
    "cdktn_provider_time",
)
# The call jsii-pacmak writes in each binding's `_jsii/__init__.py`: name, version, tarball.
LOAD = re.compile(
    r'JSIIAssembly\.load\(\s*"([^"]+)",\s*"([^"]+)",\s*__name__\[0:-6\],\s*"([^"/\\]+)",?\s*\)'
)


def assembly(package: str) -> tuple[str, str, str] | None:
    """(name, version, tarball path) that importing PACKAGE's `_jsii` would load, without
    importing it; None when the package or its call is not where expected."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        init = Path(location) / "_jsii" / "__init__.py"
        try:
            text = init.read_text(encoding="utf-8")
        except OSError:
            continue
        match = LOAD.search(text, max(0, text.rfind("JSIIAssembly.load(")))
        if match and (init.parent / match[3]).is_file():
            return match[1], match[2], str(init.parent / match[3])
    return None


class _OneAtATime:
    """The kernel's provider, with each call (one request and its response) under a lock."""

    def __init__(self, provider: Any, lock: threading.Lock) -> None:
        self._provider = provider
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._provider, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class Preload:
    """The thread loading the assemblies; `stop()` lets the load in flight finish and no more."""

    def __init__(self, kernel: Any, loads: list[tuple[str, str, str]]) -> None:
        self._kernel = kernel
        self._provider = kernel.provider
        self._loads = loads
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        kernel.provider = _OneAtATime(self._provider, threading.Lock())
        self._thread = threading.Thread(target=self._run, name="jsii-preload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        load: Callable[[str, str, str], None] = self._kernel.load
        try:
            for name, version, tarball in self._loads:
                if self._stopping.is_set():
                    break
                load(name, version, tarball)
        except BaseException as exc:  # the main thread's own load of it reports the problem
            self.error = exc
        finally:
            self._kernel.provider = self._provider

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def start() -> Preload | None:
    """Imports jsii and starts loading the assemblies in a thread (before any binding is
    imported); None when there is nothing to load or jsii is already in use."""
    import sys

    if any(f"{package}._jsii" in sys.modules for package in PACKAGES):
        return None
    loads = [found for found in map(assembly, PACKAGES) if found is not None]
    if len(loads) < 2 or loads[0][0] != "constructs" or loads[1][0] != "cdktn":
        return None
    from jsii._runtime import kernel

    return Preload(kernel, loads)
