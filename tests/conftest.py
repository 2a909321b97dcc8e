"""Session fixtures for the real local servers (imaging_cli.local).

Every server is session-scoped and started lazily: only a test that asks for it starts it, so a
unit-test-only run starts nothing. Function-scoped wrappers reset state between tests where the
server keeps state that tests would otherwise see from each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imaging_cli.local.fhir_server import FhirServer
from imaging_cli.local.orthanc import OrthancServer


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """A running Orthanc with DICOMweb at `.dicomweb_url`; call `.reset()` for an empty store."""
    with OrthancServer() as server:
        yield server


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirServer]:
    """A running FHIR R4 server at `.base_url`; call `.reset()` to clear all resources."""
    with FhirServer() as server:
        yield server
