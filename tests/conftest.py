"""Session fixtures for the real local servers (imaging_dev.servers).

Every server is session-scoped and started lazily: only a test that asks for it starts it, so a
unit-test-only run starts nothing. Function-scoped wrappers reset state between tests where the
server keeps state that tests would otherwise see from each other.

- `orthanc` (session): DICOMweb at `.dicomweb_url`; `.reset()` empties it.
- `fhir_server` (session): FHIR R4 at `.base_url`; `.reset()` empties it.
- `pubsub_emulator` (per test, emptied; sets PUBSUB_EMULATOR_HOST): Google's Pub/Sub emulator,
  over `_pubsub_session`.
- `vision_server` (per test, default answers), over `_vision_session`.
- `gcs_emulator` (per test, emptied; sets STORAGE_EMULATOR_HOST), over `_gcs_session`.
- `s3_server` (per test, emptied; sets dummy AWS credentials and AWS_ENDPOINT_URL_S3).
- `fault_proxy` (per test): a factory, `fault_proxy(target_url) -> FaultProxy`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# A suite started with SIGINT ignored (a background job of a non-interactive shell, by POSIX)
# would pass that on to every process it starts, and the tests that press Ctrl-C on the CLI and
# the demo would see it ignored. A handler, unlike SIG_IGN, is reset to the default on exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The Node that scripts/bootstrap.sh installed (when the machine's own is too old) comes first,
# as the Makefile puts it, so `.venv/bin/python -m pytest` runs Node tools as `make test` does.
_PROJECT_NODE_BIN = Path(__file__).resolve().parents[1] / ".tools" / "node" / "bin"
if _PROJECT_NODE_BIN.is_dir() and not os.environ["PATH"].startswith(str(_PROJECT_NODE_BIN)):
    os.environ["PATH"] = f"{_PROJECT_NODE_BIN}{os.pathsep}{os.environ['PATH']}"

# Server modules are imported inside the fixtures: they pull in grpc, moto, the Google clients
# (about 0.6 s), which a unit-test-only run should not pay for.
if TYPE_CHECKING:
    from imaging_dev.servers.fault_proxy import FaultProxy
    from imaging_dev.servers.fhir_server import FhirServer
    from imaging_dev.servers.gcs_emulator import GcsEmulator
    from imaging_dev.servers.orthanc import OrthancServer
    from imaging_dev.servers.pubsub_emulator import PubSubEmulator
    from imaging_dev.servers.s3_server import S3Server
    from imaging_dev.servers.vision_server import VisionServer


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """A running Orthanc with DICOMweb at `.dicomweb_url`; call `.reset()` for an empty store."""
    from imaging_dev.servers.orthanc import OrthancServer

    with OrthancServer() as server:
        yield server


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirServer]:
    """A running FHIR R4 server at `.base_url`; call `.reset()` to clear all resources."""
    from imaging_dev.servers.fhir_server import FhirServer

    with FhirServer() as server:
        yield server


@pytest.fixture(scope="session")
def _pubsub_session() -> Iterator[PubSubEmulator]:
    from imaging_dev.servers.pubsub_emulator import PubSubEmulator

    with PubSubEmulator() as server:
        yield server


@pytest.fixture
def pubsub_emulator(
    _pubsub_session: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PubSubEmulator]:
    """Google's Pub/Sub emulator, emptied, with PUBSUB_EMULATOR_HOST pointing clients at it.

    It has no topics: create those a test publishes to (`create_topic` also records them).
    """
    _pubsub_session.reset()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", _pubsub_session.host)
    yield _pubsub_session
    _pubsub_session.reset()


@pytest.fixture(scope="session")
def _vision_session() -> Iterator[VisionServer]:
    from imaging_dev.servers.vision_server import VisionServer

    with VisionServer() as server:
        yield server


@pytest.fixture
def vision_server(_vision_session: VisionServer) -> Iterator[VisionServer]:
    """The Cloud Vision REST double at `.url`, with default answers and nothing recorded."""
    _vision_session.reset()
    yield _vision_session
    _vision_session.reset()


@pytest.fixture(scope="session")
def _gcs_session() -> Iterator[GcsEmulator]:
    from imaging_dev.servers.gcs_emulator import GcsEmulator

    with GcsEmulator() as server:
        yield server


@pytest.fixture
def gcs_emulator(
    _gcs_session: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GcsEmulator]:
    """An empty Cloud Storage emulator; STORAGE_EMULATOR_HOST points `storage.Client()` at it."""
    _gcs_session.reset()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _gcs_session.url)
    yield _gcs_session


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """Factory: `proxy = fault_proxy(orthanc.url)` starts a FaultProxy; all close at teardown."""
    from imaging_dev.servers.fault_proxy import FaultProxy

    proxies: list[FaultProxy] = []

    def start(target_url: str) -> FaultProxy:
        proxy = FaultProxy(target_url).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def _s3_session() -> Iterator[S3Server]:
    from imaging_dev.servers.s3_server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_server(_s3_session: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """An empty moto S3 at `.endpoint_url`; dummy AWS credentials and AWS_ENDPOINT_URL_S3 set."""
    from imaging_dev.servers.s3_server import DUMMY_CREDENTIALS

    _s3_session.reset()
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", _s3_session.endpoint_url)
    yield _s3_session


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Kills and names any local server process a test or fixture forgot to stop.

    Session fixtures are torn down before this hook runs, so anything still alive leaked.
    """
    base = sys.modules.get("imaging_dev.servers._base")
    if base is None:
        return  # no server was ever started
    leaked = sorted(base._LIVE, key=lambda server: server.name)
    for server in leaked:
        server.stop()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        names = ", ".join(f"{server.name} (workdir {server.workdir})" for server in leaked)
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                f"WARNING: local servers left running, now stopped: {names}", yellow=True
            )
