"""DICOM Structured Reports (TID 1500) of the analyzer's findings: pure logic, no I/O."""
