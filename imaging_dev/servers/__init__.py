"""Real local servers that tests and `imaging-dev demo` run against, all on 127.0.0.1, free ports.

Each module holds one server class with start()/stop(), context-manager support and its own
temp dir; none depends on pytest (the fixtures are in tests/conftest.py). Modules are imported
one by one, on purpose: this package imports nothing, so using one server does not load the
dependencies of all the others.

Real implementations of the protocol Google serves:
- orthanc.OrthancServer: DICOMweb (Debian's Orthanc + DICOMweb plugin) for the DICOM store.
- fhir_server.FhirServer: FHIR R4 REST (@medplum/fhir-router under Node) for the FHIR store.
- pubsub_emulator.PubSubEmulator: Google's Pub/Sub emulator (gRPC and REST, push, dead letters).
- function_server.FunctionServer: functions-framework serving handlers/main.py.
Test doubles of Google services, speaking the real wire protocol to the real client libraries:
- vision_server.VisionServer: Cloud Vision REST `images:annotate`.
- gcs_emulator.GcsEmulator: Cloud Storage JSON API (PyPI gcp-storage-emulator).
Other:
- fault_proxy.FaultProxy: HTTP reverse proxy that injects failures in front of any of these.
- s3_server.S3Server: Amazon S3 (moto) for the S3 ingest source; never for a Google service.
"""
