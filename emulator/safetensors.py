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

import numpy as np
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


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"restart file {path} does not exist")
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path} is not a safetensors file (header length {n} past the end)")
    try:
        header = json.loads(data[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path} is not a safetensors file (header is not JSON)") from None
    metadata = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n :]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = _FROM_CODE[info["dtype"]]
        if end > len(body):
            raise ValueError(f"{path}: tensor {name!r} runs past the end of the file (truncated?)")
        raw = np.frombuffer(body[start:end], dtype=np.uint8).copy()
        t = torch.from_numpy(raw).view(dtype) if raw.size else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return tensors, metadata
