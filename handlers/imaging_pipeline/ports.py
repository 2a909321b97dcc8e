"""The ports of the processor: what the pipeline needs from the outside, as Protocols.

The adapters in `imaging_pipeline.adapters` implement them against Google's services (and, in
tests and the demo, against local servers speaking the same protocols); a test may pass any
object with these methods. The analyzer port is `analysis.base.Analyzer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from imaging_pipeline.adapters.fhir_client import EntryOutcome

JsonObject = dict[str, Any]  # a parsed JSON object (FHIR resources and bundles)
MediaTypes = tuple[tuple[str, str], ...]  # (media type, transfer syntax UID or "*")


class DicomwebReader(Protocol):
    """WADO-RS retrieve of one instance (`adapters.dicomweb.WadoReader`; dicomweb-client's
    `DICOMwebClient` has the same method)."""

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: MediaTypes | None = None,
    ) -> Dataset: ...


class FhirStore(Protocol):
    """Search by identifier and transaction bundles (`adapters.fhir_client.FhirClient`)."""

    def search_by_identifier(
        self, resource_type: str, system: str, value: str
    ) -> list[JsonObject]: ...

    def transaction(self, bundle: JsonObject) -> list[EntryOutcome]: ...
