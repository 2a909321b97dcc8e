"""Adapters: the I/O ports of the pipeline (DICOMweb, HTTP, FHIR REST, Vision, Pub/Sub, GCS)."""
