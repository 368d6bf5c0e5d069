"""Valid and malformed safetensors files, generated (no committed binaries), for
tests/test_safetensors_malformed.py and the fuzzer tests/fuzz_safetensors.py."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import torch

from landbc.emulator import safetensors


def valid_files() -> dict[str, bytes]:
    """A restart-like file (several dtypes, a scalar, an empty tensor, JSON metadata)
    and a remap-like one (CSR weights), as the writer produces them."""
    g = torch.Generator().manual_seed(0)
    restart = {
        "state.soil": torch.randn(3, 4, 5, generator=g),
        "state.lai": torch.randn(4, 5, generator=g).to(torch.bfloat16),
        "state.mask": torch.rand(4, 5, generator=g) > 0.5,
        "state.class": torch.randint(0, 17, (4, 5), generator=g, dtype=torch.uint8),
        "time": torch.tensor([2015, 12]),
        "scale": torch.tensor(0.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
    }
    restart_meta = {
        "format": "landbc-restart",
        "version": "1",
        "direction": "forward",
        "grid": json.dumps({"lat": [45.0, 50.0], "lon": [5.0, 12.0], "res": 0.05}),
    }
    remap = {
        "indptr": torch.tensor([0, 2, 3, 5]),
        "indices": torch.tensor([0, 1, 1, 0, 2], dtype=torch.int64),
        "weights": torch.tensor([0.25, 0.75, 1.0, 0.5, 0.5], dtype=torch.float64),
    }
    remap_meta = {"format": "landbc-remap", "method": "conservative", "source_shape": "[3, 3]"}
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, (tensors, meta) in {
            "restart": (restart, restart_meta),
            "remap": (remap, remap_meta),
        }.items():
            path = Path(d) / f"{name}.safetensors"
            safetensors.save(path, tensors, meta)
            out[name] = path.read_bytes()
    return out


def build(header: object, body: bytes = b"", n: int | None = None) -> bytes:
    """A file from a header (a JSON-able object, or the header's raw bytes), a body,
    and optionally a header length that lies."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if n is None else n) + raw + body


def _t(dtype: object = "F32", shape: object = (2,), offsets: object = (0, 8)) -> dict:
    return {
        "dtype": dtype,
        "shape": list(shape) if isinstance(shape, tuple) else shape,
        "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets,
    }


# (name, file bytes, what the message must match: a regex for both readers)
def malformed() -> list[tuple[str, bytes, str]]:
    good = valid_files()["restart"]
    cap = safetensors.MAX_HEADER_BYTES
    b8 = bytes(8)
    return [
        ("empty_file", b"", "shorter than 8 bytes"),
        ("truncated_header_length", b"\x10\x00\x00", "shorter than 8 bytes"),
        ("header_length_past_eof", build(b"{}", n=1000), "header length 1000 past the end"),
        ("header_length_2e63", build(b"{}", n=2**63), f"exceeds the cap of {cap}"),
        ("header_length_max_u64", build(b"{}", n=2**64 - 1), "exceeds the cap"),
        ("header_length_cap_plus_1", build(b"{}", n=cap + 1), f"header length {cap + 1} exceeds"),
        ("header_not_json", build(b"hello wo"), "header is not JSON"),
        ("header_not_utf8", build(b'{"\xff\xfe":1}'), "header is not JSON"),
        ("header_truncated_json", build(b'{"a":{"dtype"'), "header is not JSON"),
        (
            "header_nan",
            build(b'{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,0]}}'),
            "not JSON|non-negative integers",
        ),  # fmt: skip
        ("header_json_array", build([]), "expected a JSON object"),
        ("header_json_number", build(3), "expected a JSON object"),
        ("header_json_null", build(None), "expected a JSON object"),
        ("header_deeply_nested", build(b"[" * 100_000 + b"]" * 100_000), "not JSON|nests deeper"),
        (
            "header_nested_entry",
            build({"a": {"x": [[[[[[[[[[1]]]]]]]]]]}}),
            "nests deeper|has no dtype",
        ),  # fmt: skip
        (
            "duplicate_tensor",
            build(
                b'{"a":' + json.dumps(_t()).encode() + b',"a":' + json.dumps(_t()).encode() + b"}",
                b8,
            ),
            "key 'a' twice",
        ),  # fmt: skip
        ("duplicate_metadata_key", build(b'{"__metadata__":{"k":"1","k":"2"}}'), "key 'k' twice"),
        ("entry_not_object", build({"a": 3}), r"'a' expected \{dtype, shape, data_offsets\}"),
        (
            "entry_missing_shape",
            build({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, b8),
            "'a' has no shape",
        ),  # fmt: skip
        ("unknown_dtype", build({"a": _t("F128")}, b8), "unknown safetensors dtype 'F128'"),
        ("dtype_not_string", build({"a": _t(5)}, b8), "dtype expected a string"),
        ("empty_name", build({"": _t()}, b8), "empty name"),
        ("shape_not_list", build({"a": _t(shape=2)}, b8), "shape expected a list"),
        ("shape_negative", build({"a": _t(shape=(-2,))}, b8), "shape expected"),
        ("shape_float", build({"a": _t(shape=(2.0,))}, b8), "shape expected"),
        ("shape_bool", build({"a": _t(shape=(True, True))}, b8), "shape expected"),
        (
            "shape_overflows_int64",
            build({"a": _t(shape=(2**32, 2**32), offsets=(0, 0))}, b8),
            "overflows 2",
        ),  # fmt: skip
        (
            "shape_zero_dim_overflow",  # no bytes, but 2^124 elements for torch's numel
            build({"a": _t(shape=(0, 2**62, 2**62), offsets=(0, 0))}),
            "overflows 2",
        ),
        (
            "shape_past_uint64",
            build({"a": _t("U8", shape=(2**64,), offsets=(0, 0))}, b8),
            "shape expected|overflows 2",
        ),  # fmt: skip
        (
            "tensor_of_2e60_bytes",
            build({"a": _t("U8", shape=(2**60,), offsets=(0, 2**60))}, b8),
            r"'a': data_offsets .* run past the 8-byte body",
        ),  # fmt: skip
        ("offsets_past_end", build({"a": _t(shape=(100,), offsets=(0, 400))}, b8), "run past"),
        ("offsets_max_u64", build({"a": _t(offsets=(2**64 - 9, 2**64 - 1))}, b8), "run past"),
        ("offsets_reversed", build({"a": _t(offsets=(8, 0))}, b8), "end before they begin"),
        ("offsets_one_number", build({"a": _t(offsets=[0])}, b8), "data_offsets expected"),
        ("offsets_negative", build({"a": _t(offsets=(-8, 0))}, b8), "data_offsets expected"),
        (
            "offsets_inconsistent_with_shape",
            build({"a": _t(shape=(3,))}, b8),
            "needs 12 bytes, data_offsets \\[0, ?8\\] give 8",
        ),  # fmt: skip
        (
            "overlapping_tensors",
            build({"a": _t(), "b": _t(offsets=(4, 12))}, bytes(12)),
            "'b' .*overlaps",
        ),  # fmt: skip
        ("same_offsets_twice", build({"a": _t(), "b": _t()}, b8), "overlaps"),  # fmt: skip
        (
            "gap_between_tensors",
            build(
                {"a": _t(shape=(1,), offsets=(0, 4)), "b": _t(shape=(1,), offsets=(8, 12))},
                bytes(12),
            ),
            "a gap before it",
        ),  # fmt: skip
        ("trailing_bytes", build({"a": _t()}, bytes(16)), "trailing bytes"),
        ("truncated_body", good[:-10], "truncated"),
        (
            "bool_not_0_or_1",
            build({"a": _t("BOOL", shape=(2,), offsets=(0, 2))}, b"\x01\x02"),
            "BOOL expected bytes 0 or 1",
        ),  # fmt: skip
        (
            "metadata_not_string",
            build({"__metadata__": {"a": 1}}),
            "metadata 'a' expected a string",
        ),
        ("metadata_nested", build({"__metadata__": {"a": {"b": "c"}}}), "expected a string"),
        ("metadata_not_object", build({"__metadata__": ["a"]}), "__metadata__ expected an object"),
    ]
