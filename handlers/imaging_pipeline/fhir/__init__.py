"""FHIR R4: pure mapping of one analyzed instance to a transaction bundle, and the REST client."""
