"""Zarr stores as landbc writes them: the cube layout and the run output share this.

landbc writes **Zarr format 2** with zarr-python 3. Why not format 3: the stores
are exchange files for climate tooling, and format 2 is the one every reader of
ours opens — zarr-python 2 and 3, xarray, netCDF-C's NCZarr (which Fortran and C
models read through), Julia's Zarr.jl — while format 3 readers are still few.
Format 3's main gain, sharding, does not matter at our chunk sizes (512 × 512
pixels × one step). Stores written by landbc 0.1 (zarr-python 2) are the same
format, so they open unchanged. Dimensions are the `_ARRAY_DIMENSIONS`
attribute that xarray reads from format 2, and metadata is consolidated
(`.zmetadata`) so that a reader opens a store with one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr

ZARR_FORMAT = 2
SPACE_CHUNK = 512
COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)


def create_group(path: str | Path, attrs: Mapping[str, Any]) -> zarr.Group:
    """A new store at `path` (refused if it exists) with root attributes `attrs`."""
    root = zarr.open_group(str(path), mode="w-", zarr_format=ZARR_FORMAT)
    root.attrs.update(dict(attrs))
    return root


def open_group(path: str | Path, mode: str = "r+") -> zarr.Group:
    """An existing landbc store, opened from its own metadata (not the consolidated
    copy, which a writer re-consolidates after changing attributes)."""
    return zarr.open_group(str(path), mode=mode, zarr_format=ZARR_FORMAT)


def add_coordinate(root: zarr.Group, name: str, values: np.ndarray, cf: Mapping) -> None:
    """A one-dimensional coordinate array `name` (one chunk), with CF attributes."""
    values = np.asarray(values)
    a = root.create_array(name, data=values, chunks=(max(len(values), 1),))
    a.attrs.update({"_ARRAY_DIMENSIONS": [name], **cf})


def add_variable(
    root: zarr.Group,
    name: str,
    dims: Sequence[str],
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: str,
    fill_value: Any,
    cf: Mapping,
) -> None:
    """An empty compressed array `name` on `dims`, with CF attributes."""
    a = root.create_array(
        name,
        shape=tuple(shape),
        chunks=tuple(chunks),
        dtype=dtype,
        compressors=COMPRESSOR,
        fill_value=fill_value,
    )
    a.attrs.update({"_ARRAY_DIMENSIONS": list(dims), **cf})


def consolidate(path: str | Path) -> None:
    """Write `.zmetadata`, the one file a reader needs to open the store."""
    zarr.consolidate_metadata(str(path))


def open_consolidated(path: str | Path, what: str, remedy: str) -> zarr.Group:
    """Open a finished store read-only through its consolidated metadata.

    `what` names the kind of store in errors ("cube", "output store"); `remedy`
    says how to make a good one. A store without `.zmetadata` was never
    finished (its writer failed) or was not written by landbc.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist ({remedy})")
    if not (path / ".zmetadata").is_file():
        found = "Zarr format 3 metadata" if (path / "zarr.json").is_file() else "no .zmetadata"
        raise ValueError(
            f"{path} is not a finished landbc {what}: expected a consolidated Zarr format 2 "
            f"store, found {found} ({remedy})"
        )
    return zarr.open_consolidated(str(path), mode="r", zarr_format=ZARR_FORMAT)
