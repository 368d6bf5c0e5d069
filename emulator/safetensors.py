"""A minimal safetensors reader/writer, the restart format of both fronts.

safetensors is an 8-byte little-endian header length N, N bytes of JSON
({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then the
raw little-endian buffers. Simple enough to write from C++ without a library,
so Python and C++ share restart files; and it is data, never a pickle.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from pathlib import Path

import torch

_DTYPES = {
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.bool: "BOOL",
}
_FROM_CODE = {v: k for k, v in _DTYPES.items()}


def save(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    # sorted metadata, as the C++ writer does, so both fronts write identical bytes
    header: dict = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    buffers = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"tensor {name!r} has unsupported dtype {t.dtype}")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        buffers.append(raw)
        offset += len(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # align the data to 8 bytes, as the reference writer does
    # A temporary name of its own per writer: two processes (MPI ranks) saving the same
    # file must not write into one temporary file; a failure leaves no stray file.
    # (not mkstemp: its files are private, 0600, and a restart should get the umask's mode)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for raw in buffers:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# The reader trusts nothing in the file (as cpp/src/safetensors.cpp, its C++ twin):
# the header length is capped (MAX_HEADER_BYTES, the reference implementation's
# 100 MB), the header must be a JSON object with no duplicate keys, and every tensor
# entry is checked before anything is allocated for it: a known dtype, a shape of
# non-negative integers whose byte size equals data_offsets[1] - data_offsets[0],
# offsets inside the body, and (as the reference implementation requires) the
# buffers tiling the body in order, with neither gap, overlap nor trailing bytes.
# Only then is each buffer read, so the memory taken is bounded by the file's size.
MAX_HEADER_BYTES = 100_000_000
_ITEMSIZE = {code: torch.empty(0, dtype=t).element_size() for t, code in _DTYPES.items()}


def _shown(value: object) -> str:
    """A name or a JSON value for a message: at most 80 characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _no_duplicates(path: Path, pairs: list[tuple[str, object]]) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(
                f"{path} is not a safetensors file (header has the key {_shown(k)!r} twice)"
            )
        out[k] = v
    return out


def _is_count(x: object) -> bool:
    return type(x) is int and x >= 0  # not bool, not float


def _parse_header(path: Path, text: bytes, body_size: int) -> tuple[list, dict[str, str]]:
    what = f"{path} is not a safetensors file"
    try:
        header = json.loads(
            text.decode("utf-8"), object_pairs_hook=lambda p: _no_duplicates(path, p)
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValueError(f"{what} (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{what} (header expected a JSON object, found {type(header).__name__})")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{what} (__metadata__ expected an object of strings, found {_shown(metadata)})"
        )
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise ValueError(f"{path}: metadata {_shown(k)!r} expected a string, found {_shown(v)}")
    entries = []
    for name, info in header.items():
        where = f"{path}: tensor {_shown(name)!r}"
        if not name:
            raise ValueError(f"{path}: a tensor has an empty name")
        if not isinstance(info, dict):
            raise ValueError(
                f"{where} expected {{dtype, shape, data_offsets}}, found {_shown(info)}"
            )
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                raise ValueError(f"{where} has no {key}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str):
            raise ValueError(f"{where}: dtype expected a string, found {_shown(code)}")
        if code not in _FROM_CODE:
            raise ValueError(f"{where}: unknown safetensors dtype {_shown(code)!r}")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise ValueError(
                f"{where}: shape expected a list of non-negative integers, found {_shown(shape)}"
            )
        # the span with zero dimensions counted as 1 must fit too (torch checks it)
        nbytes, span = _ITEMSIZE[code], _ITEMSIZE[code]
        for d in shape:
            nbytes, span = nbytes * d, span * max(d, 1)
        if span >= 2**63:
            raise ValueError(f"{where}: shape {_shown(shape)} overflows 2^63 bytes")
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
        ):
            raise ValueError(
                f"{where}: data_offsets expected [begin, end] of non-negative integers, "
                f"found {_shown(offsets)}"
            )
        begin, end = offsets
        if end < begin:
            raise ValueError(f"{where}: data_offsets {offsets} end before they begin")
        if end > body_size:
            raise ValueError(
                f"{where}: data_offsets {_shown(offsets)} run past the {body_size}-byte body, "
                "the end of the file (truncated?)"
            )
        if end - begin != nbytes:
            raise ValueError(
                f"{where}: shape {_shown(shape)} of {code} needs {nbytes} bytes, "
                f"data_offsets {offsets} give {end - begin}"
            )
        entries.append((begin, end, name, code, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    at = 0
    for begin, end, name, _, _ in entries:
        if begin != at:
            why = "overlaps the previous tensor" if begin < at else "a gap before it"
            raise ValueError(
                f"{path}: tensor {_shown(name)!r} expected to start at byte {at} of the body, "
                f"found {begin} ({why})"
            )
        at = end
    if at != body_size:
        raise ValueError(
            f"{path}: the tensors cover {at} bytes, the body has {body_size} (trailing bytes)"
        )
    return entries, metadata


def _read_header(path: Path, f) -> tuple[list, dict[str, str]]:
    size = os.fstat(f.fileno()).st_size
    what = f"{path} is not a safetensors file"
    if size < 8:
        raise ValueError(f"{what} (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"{what} (header length {n} exceeds the cap of {MAX_HEADER_BYTES} bytes)")
    if n > size - 8:
        raise ValueError(f"{what} (header length {n} past the end of the {size}-byte file)")
    text = f.read(n)
    if len(text) != n:
        raise OSError(f"cannot read {path} (changed while being read?)")
    return _parse_header(path, text, size - 8 - n)


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"restart file {path} does not exist")
    with open(path, "rb") as f:
        entries, metadata = _read_header(path, f)
        tensors = {}
        for begin, end, name, code, shape in entries:  # validated: they tile the body in order
            raw = bytearray(end - begin)
            if f.readinto(raw) != len(raw):
                raise OSError(
                    f"cannot read {path} (tensor {_shown(name)!r}; changed while being read?)"
                )
            dtype = _FROM_CODE[code]
            if code == "BOOL" and raw.translate(None, b"\x00\x01"):
                raise ValueError(f"{path}: tensor {_shown(name)!r} of BOOL expected bytes 0 or 1")
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            tensors[name] = t.reshape(shape)
    return tensors, metadata


def load_metadata(path: str | Path) -> dict[str, str]:
    """The "__metadata__" of a safetensors file, reading and checking only its header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, "rb") as f:
        return _read_header(path, f)[1]
