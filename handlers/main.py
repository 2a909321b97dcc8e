"""Cloud Functions (gen2) entry points; the logic lives in the `imaging_pipeline` package.

Deployed as is from `handlers/`: `process_dicom_instance` is the processor (DICOM store
notification -> analysis -> FHIR -> alert), `ingest_dicom_object` the ingest function
(staging bucket object -> DICOM store), `review_app` the review web app (HTTP, behind IAP).
"""

import gc

from imaging_pipeline.ingest.entry import ingest_dicom_object  # noqa: F401  (entry point)
from imaging_pipeline.process_entry import process_dicom_instance  # noqa: F401  (entry point)
from imaging_pipeline.review.entry import review_app  # noqa: F401  (entry point)

# The cyclic GC's first generation runs every 20,000 net container allocations, not CPython's
# 700. A warm event leaves about a dozen objects in cycles, yet with twelve events in flight
# the default ran ~2.7 young and ~0.25 middle collections an event and a full one every ~100
# events, which walks the whole heap (~370,000 objects, pydicom's and highdicom's tables
# included): 1.4 ms of GC per event, 0.04 ms at 20,000 (measured in-process with 12 threads;
# bench.e2e's CPU per warm event drops by about 1 ms, README "Many events per instance"). The
# older generations keep their ratios, so cycles are still freed.
GC_THRESHOLD = (20_000, 10, 10)
gc.set_threshold(*GC_THRESHOLD)
