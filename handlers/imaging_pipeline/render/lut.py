"""Lookup tables stored in DICOM (Modality LUT and VOI LUT sequences, PS3.3 C.11.1 / C.11.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class StoredLut:
    first_mapped: int  # input value mapped to the first entry
    table: np.ndarray  # float32 entries
    bits: int  # nominal bits per entry (output range 0 .. 2**bits - 1)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Inputs below the first entry take the first value, above the last take the last."""
        index = np.rint(values - np.float32(self.first_mapped))
        np.clip(index, 0, len(self.table) - 1, out=index)
        result: np.ndarray = self.table[index.astype(np.intp)]
        return result


def read_lut(item: Dataset, little_endian: bool, signed_input: bool) -> StoredLut:
    """Parse one LUT item; raises ValueError when the descriptor and the data disagree."""
    descriptor = [int(v) for v in item.LUTDescriptor]
    if len(descriptor) != 3:
        raise ValueError("LUTDescriptor must have three values")
    entries, first, bits = descriptor[0] or 65536, descriptor[1], descriptor[2]
    if signed_input and first >= 32768:  # SS input range stored in a US-typed descriptor
        first -= 65536
    data = item.LUTData
    if isinstance(data, bytes):
        if bits <= 8 and len(data) == entries:  # 8-bit entries packed one per byte
            table = np.frombuffer(data, dtype=np.uint8)
        else:
            words = data[: len(data) // 2 * 2]
            table = np.frombuffer(words, dtype="<u2" if little_endian else ">u2")
    else:
        values = list(data) if isinstance(data, Iterable) else [data]  # US: one value or many
        table = np.asarray(values, dtype=np.int64)
    if len(table) < entries or not 1 <= bits <= 16:
        raise ValueError("LUT data shorter than its descriptor or bad bit depth")
    table = table[:entries].astype(np.float32)
    # Some writers declare 16 bits but store 8-bit values; trust the data's range.
    if bits == 16 and table.max(initial=0) <= 255:
        bits = 8
    return StoredLut(first, table, bits)
