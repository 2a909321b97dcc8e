"""Contract tests: each local server speaks its protocol to the real client library.

These are what other tests and `imaging demo` rely on; if one fails, the server is wrong, not
the code under test elsewhere.
"""

from __future__ import annotations

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.data import get_testdata_file

from imaging_cli.local.orthanc import OrthancServer

pytestmark = pytest.mark.integration


def _testdata(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path)


# --- Orthanc (DICOMweb) -----------------------------------------------------------------------

def test_orthanc_store_search_retrieve_through_dicomweb_client(orthanc: OrthancServer) -> None:
    orthanc.reset()
    client = DICOMwebClient(url=orthanc.dicomweb_url)
    ct = _testdata("CT_small.dcm")

    client.store_instances([ct])

    found = client.search_for_instances(search_filters={"StudyInstanceUID": ct.StudyInstanceUID})
    assert [f["00080018"]["Value"][0] for f in found] == [ct.SOPInstanceUID]
    back = client.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert back.SOPInstanceUID == ct.SOPInstanceUID
    assert back.pixel_array.shape == ct.pixel_array.shape
    assert (back.pixel_array == ct.pixel_array).all()


def test_orthanc_store_is_idempotent_and_reset_empties_it(orthanc: OrthancServer) -> None:
    orthanc.reset()
    client = DICOMwebClient(url=orthanc.dicomweb_url)
    mr = _testdata("MR_small.dcm")
    client.store_instances([mr])
    client.store_instances([mr])  # a retried STOW-RS of the same instance must not fail
    assert orthanc.study_count() == 1

    orthanc.reset()
    assert orthanc.study_count() == 0
    assert client.search_for_studies() == []
