"""The evaluation cache: an entry is reused when whole and recomputed when damaged, never a traceback."""
from __future__ import annotations

import io

import numpy as np
import pytest

from evaluation.cache import cached_arrays


def counting(value: float):
    calls = []

    def compute():
        calls.append(1)
        return {"mu": np.full(3, value)}

    return compute, calls


def test_an_entry_is_computed_once_then_reused(tmp_path):
    path = tmp_path / "entry.npz"
    compute, calls = counting(1.5)
    assert cached_arrays(path, compute)["mu"].tolist() == [1.5] * 3
    assert cached_arrays(path, counting(9.0)[0])["mu"].tolist() == [1.5] * 3  # read back, not recomputed
    assert len(calls) == 1


def compressed_with_a_broken_stream() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mu=np.arange(4096.0))
    data = bytearray(buffer.getvalue())
    data[100:116] = bytes(range(16))  # the start of the deflate stream: zlib.error, not a CRC mismatch
    return bytes(data)


@pytest.mark.parametrize("damage", [
    lambda whole: whole[: len(whole) // 2],  # a crash mid-write
    lambda whole: b"not a zip at all",
    lambda whole: compressed_with_a_broken_stream(),
])
def test_a_damaged_entry_is_recomputed_and_replaced(tmp_path, damage):
    path = tmp_path / "entry.npz"
    cached_arrays(path, counting(1.0)[0])
    path.write_bytes(damage(path.read_bytes()))
    compute, calls = counting(2.0)
    assert cached_arrays(path, compute)["mu"].tolist() == [2.0] * 3
    assert len(calls) == 1
    assert cached_arrays(path, counting(3.0)[0])["mu"].tolist() == [2.0] * 3  # the replacement is whole
