"""The restart format: safetensors written and read without the library."""

import json
import struct

import pytest
import torch

from landbc.emulator import safetensors


def test_round_trip_all_dtypes(tmp_path):
    tensors = {
        "u8": torch.arange(6, dtype=torch.uint8).reshape(2, 3),
        "f32": torch.randn(4, 5),
        "i64": torch.tensor([2015, 12]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0),
    }
    safetensors.save(tmp_path / "x.safetensors", tensors, {"a": "b"})
    got, meta = safetensors.load(tmp_path / "x.safetensors")
    assert meta == {"a": "b"}
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


def test_layout_is_standard_safetensors(tmp_path):
    safetensors.save(tmp_path / "x.safetensors", {"t": torch.tensor([1.0, 2.0])}, {})
    raw = (tmp_path / "x.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["t"] == {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    assert (8 + n) % 8 == 0
    assert raw[8 + n :] == struct.pack("<2f", 1.0, 2.0)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    p = tmp_path / "x.safetensors"
    safetensors.save(p, {"t": torch.randn(100)}, {})
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        safetensors.load(p)
    p.write_bytes(b"hello")
    with pytest.raises(ValueError, match="shorter than 8 bytes"):
        safetensors.load(p)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """Each writer has its own temporary name (ranks saving one file do not share it);
    a failure before the rename keeps the previous file whole and removes the temporary."""
    import os

    path = tmp_path / "state.safetensors"
    safetensors.save(path, {"a": torch.zeros(3)}, {"v": "1"})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        safetensors.save(path, {"a": torch.ones(3)}, {"v": "2"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.safetensors"]
