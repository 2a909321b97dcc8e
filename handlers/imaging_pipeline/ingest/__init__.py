"""Ingest: staging-bucket objects -> DICOM check -> STOW-RS -> processed/ or failed/.

`entry.ingest_dicom_object` is the Cloud Function; `validation` and `stow` are reused by the
operator CLI's bulk `imaging ingest`.
"""
