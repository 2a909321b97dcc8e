"""Store one SR back into the DICOM store with STOW-RS (the ingest's STOW client, reused).

Storing an SR the store already has is success: UIDs are deterministic (imaging_pipeline.sr.
uids), so a redelivered event sends the same instance again and the store answers "already
exists" (Cloud Healthcare API: 409, confirmed with QIDO-RS; a Failure Reason 0x0111 "Duplicate
SOP Instance") or overwrites it with identical content (Orthanc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imaging_pipeline.adapters.dicomweb_stow import StowOutcome, stow_instance
from imaging_pipeline.adapters.http import HttpResponse, HttpSession
from imaging_pipeline.errors import PermanentError
from imaging_pipeline.ingest.validation import CheckedInstance, ObjectRejectedError
from imaging_pipeline.sr.encode import part10_bytes

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def store_sr(session: HttpSession[HttpResponse], dicomweb_url: str, sr: Dataset) -> StowOutcome:
    """STOW-RS the SR; raises TransientError (retry) or PermanentError (the store rejects it:
    a bug of ours that retrying cannot fix)."""
    instance = CheckedInstance(
        study_uid=str(sr.StudyInstanceUID),
        series_uid=str(sr.SeriesInstanceUID),
        sop_instance_uid=str(sr.SOPInstanceUID),
        sop_class_uid=str(sr.SOPClassUID),
        part10=part10_bytes(sr),
        header=sr,
    )
    try:
        return stow_instance(session, dicomweb_url, instance)
    except ObjectRejectedError as exc:
        raise PermanentError("rejected_by_server", f"SR not stored: {exc.detail}") from None
