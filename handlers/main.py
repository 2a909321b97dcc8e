"""Cloud Functions (gen2) entry points; the logic lives in the `imaging_pipeline` package.

Deployed as is from `handlers/`: `process_dicom_instance` is the processor (DICOM store
notification -> analysis -> FHIR -> alert), `ingest_dicom_object` the ingest function
(staging bucket object -> DICOM store).
"""

from imaging_pipeline.ingest.entry import ingest_dicom_object  # noqa: F401  (entry point)
from imaging_pipeline.process_entry import process_dicom_instance  # noqa: F401  (entry point)
