"""Remapping weights between the emulator's grid and the grids climate models run on.

A remap is a sparse matrix W (target points × source points): a target value
is Σ_s W[t, s] · field[s]. It is computed once per pair of grids and method,
cached on disk, and applied at every coupling step, with numpy on the host or
torch on the emulator's device.

Methods
-------
- ``"conservative"`` (first order): W[t, s] is the area of the overlap of
  target cell t and source cell s divided by the area of t that valid source
  cells cover. Cells of both grids are bounded by parallels and meridians
  (`landbc.coupler.grids`), so an overlap is exactly Δλ · Δ(sin φ) and no
  polygon clipping is needed. Both grids are made of rows, so the overlaps
  factor: per target row × source row the latitude overlap, times the 1-D
  intersections of the two rows' longitude intervals, computed once per pair
  of row *structures* (every row of a regular grid has the same one). From the
  emulator's high-resolution grid to a coarse ESM grid this is ECMWF's
  "grid-box average" (MIR's ``interpolation="grid-box-average"``).
- ``"bilinear"``: for each target point, linear in longitude along the two
  source rows that bracket it in latitude, then linear in latitude. That works
  for regular and reduced Gaussian rows alike. Above the last row of a global
  grid without pole rows (Gaussian grids), the pole's value is the mean of
  that last row.

Missing data
------------
A source mask (True = valid, e.g. land) drops the masked source points and
renormalises each target over what is valid, so a land-only field averages
over land. Targets that no valid source reaches have no entries: `apply`
gives NaN there. Per target, `coverage` is the fraction of the target cell
the source grid covers (conservative; 1 or 0 for bilinear: inside or not)
and `valid_fraction` the fraction covered by valid source cells (the land
fraction of the cell when the mask is a land mask; for bilinear the share of
the stencil's weight that was valid). A regional source covers some target
cells only partly: their weights are normalised over the covered part, and
`coverage` tells by how much, for the caller to use or drop.

ECLand's rules for fields sent to an ESM grid (REFERENCES.md, "Coupling to
IFS-like models") are the helpers `grid_box_average` (continuous fields: land
fraction, vegetation cover, LAI), `land_fraction`, `dominant_type` (the type
with the largest overlap area in a cell) and `class_fractions`.

The weight file
---------------
`cached_weights` stores a remap as a safetensors file (written with
`landbc.emulator.safetensors`: an 8-byte little-endian header length N, N
bytes of JSON padded with spaces to a multiple of 8, then the raw
little-endian buffers in the order of the names), so that the C++ core can
read the same file without a library. It is named
``remap-<method>-<S>-<T>[-mask-<M>]-v<FORMAT_VERSION>.safetensors``, where S, T
and M are the first 16 hex digits of the source and target grids' `key()` and
of `mask_sha256` (no mask part without a mask). Tensors (CSR; rows are target
points and columns source points, both flat in GRIB scanning order, i.e. the C
order of the grids' `shape`):

==================  =====  =================  ==============================================
name                dtype  shape              meaning
==================  =====  =================  ==============================================
``indptr``          I64    [n_target + 1]     row t's entries are indptr[t] .. indptr[t+1]-1
``indices``         I64    [nnz]              source point of each entry, sorted within a row
``weights``         F64    [nnz]              weight of each entry; a row sums to 1 or is empty
``coverage``        F64    [n_target]         fraction of the target cell the source covers
``valid_fraction``  F64    [n_target]         fraction covered by valid (unmasked) source
==================  =====  =================  ==============================================

``__metadata__`` (all strings): ``format`` = "landbc.remap", ``format_version``,
``method``, ``source_key`` / ``target_key`` (`ModelGrid.key()`), ``source_grid``
/ ``target_grid`` (the grids' canonical JSON), ``source_shape`` /
``target_shape`` (JSON lists), ``mask_sha256`` ("" without a mask), ``nnz``.
A file is used only if all of these match what is asked for; otherwise the
weights are recomputed, the reason logged, and the file replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landbc.coupler.grids import ModelGrid, RegularLatLonGrid
from landbc.emulator.grid import Grid

if TYPE_CHECKING:  # torch is imported only when a torch tensor is remapped
    import torch

logger = logging.getLogger(__name__)

METHODS = ("conservative", "bilinear")
FORMAT = "landbc.remap"
FORMAT_VERSION = 1

# Overlaps thinner than this are rounding slivers where two grids share an edge
# (computed differently on each side): dropping them changes areas by < 1e-12.
_SIN_EPS = 1e-13  # in sin(latitude)
_LON_EPS = 1e-9  # in degrees
_PERIODIC_TOL = 1e-6  # degrees: a row whose points span 360° within this wraps around
_LON_TOL = 1e-9  # degrees: a bilinear target this close to a regional row's end is inside

GridLike = ModelGrid | Grid


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# ---------------------------------------------------------------------------
# The weights
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RemapWeights:
    """A sparse remap matrix in CSR form (target rows × source columns), plus per-target
    coverage. Arrays are read-only: the same weights are shared by every step."""

    method: str
    source_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    coverage: np.ndarray
    valid_fraction: np.ndarray
    masked: bool = False
    _on_device: dict[str, tuple[Any, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("indptr", "indices", "weights", "coverage", "valid_fraction"):
            _readonly(getattr(self, name))

    @property
    def n_source(self) -> int:
        return math.prod(self.source_shape)

    @property
    def n_target(self) -> int:
        return math.prod(self.target_shape)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @cached_property
    def empty_rows(self) -> np.ndarray:
        """Targets that no valid source reaches: NaN after `apply`."""
        return _readonly(self.indptr[1:] == self.indptr[:-1])

    @cached_property
    def row_of_entry(self) -> np.ndarray:
        """The target row of each entry (COO row indices), made once for every `apply`."""
        return _readonly(np.repeat(np.arange(self.n_target), np.diff(self.indptr)))

    def check(self) -> None:
        """Raise ValueError if the arrays are not a consistent CSR matrix of these shapes
        (a truncated or foreign cache file must never be applied)."""
        p = self.indptr
        problems = []
        if p.shape != (self.n_target + 1,) or p[0] != 0 or np.any(np.diff(p) < 0):
            problems.append(f"indptr of shape {p.shape} is not 0..nnz, non-decreasing")
        elif p[-1] != self.nnz or self.weights.shape != (self.nnz,):
            problems.append(f"indptr ends at {p[-1]}, {self.nnz} indices, "
                            f"{self.weights.size} weights")  # fmt: skip
        if self.nnz and (self.indices.min() < 0 or self.indices.max() >= self.n_source):
            problems.append(f"column indices outside 0..{self.n_source - 1}")
        for name in ("coverage", "valid_fraction"):
            if getattr(self, name).shape != (self.n_target,):
                problems.append(f"{name} of shape {getattr(self, name).shape}")
        if problems:
            raise ValueError(f"inconsistent {self.method} remap weights: {'; '.join(problems)}")

    def to_torch(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix as a float64 `torch.sparse_csr_tensor` on `device`, and the empty rows
        as a bool tensor there; made once per device, so a step moves only the field."""
        import torch

        dev = torch.device(device)
        if str(dev) not in self._on_device:
            with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we use
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
                matrix = torch.sparse_csr_tensor(
                    torch.from_numpy(np.array(self.indptr)),
                    torch.from_numpy(np.array(self.indices)),
                    torch.from_numpy(np.array(self.weights)),
                    size=(self.n_target, self.n_source),
                    dtype=torch.float64,
                    device=dev,
                    check_invariants=False,  # `check()` has validated the arrays
                )
            empty = torch.from_numpy(np.array(self.empty_rows)).to(dev)
            self._on_device[str(dev)] = (matrix, empty)
        return self._on_device[str(dev)]


def _csr_from_coo(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort entries by (row, column), sum duplicates, and build the CSR arrays.

    Sorted columns make `apply` gather memory in order and the file identical
    however the entries were produced."""
    key = rows.astype(np.int64) * n_cols + cols
    order = np.argsort(key, kind="stable")
    key, vals = key[order], vals[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    vals = np.add.reduceat(vals, starts) if starts.size else vals[:0]
    key = key[starts]
    r, c = np.divmod(key, n_cols)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n_rows), out=indptr[1:])
    return indptr, c.astype(np.int64), vals.astype(np.float64)


def _finish(
    method: str,
    source: ModelGrid,
    target: ModelGrid,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    coverage: np.ndarray,
    mask: np.ndarray | None,
) -> RemapWeights:
    """Drop masked sources, normalise each target row over what is left, and pack.

    Shared by both methods: `vals` are the raw stencil contributions (overlap
    areas, or bilinear weights), and a row's valid share is their sum."""
    n_t = target.npoints
    total = np.bincount(rows, weights=vals, minlength=n_t)
    if mask is not None:
        keep = mask[cols]
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    valid = np.bincount(rows, weights=vals, minlength=n_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = vals / valid[rows]
        valid_fraction = np.where(total > 0, coverage * valid / total, 0.0)
    indptr, indices, weights = _csr_from_coo(rows, cols, vals, n_t, source.npoints)
    w = RemapWeights(
        method=method,
        source_shape=tuple(source.shape),
        target_shape=tuple(target.shape),
        indptr=indptr,
        indices=indices,
        weights=weights,
        coverage=np.asarray(coverage, dtype=np.float64),
        valid_fraction=np.asarray(valid_fraction, dtype=np.float64),
        masked=mask is not None,
    )
    w.check()
    return w


# ---------------------------------------------------------------------------
# Grids as rows
# ---------------------------------------------------------------------------


def as_model_grid(grid: GridLike) -> ModelGrid:
    """A `ModelGrid`; the emulator's `Grid` becomes its high-resolution `RegularLatLonGrid`
    (pixel edges as cell bounds), so the emulator's fields remap like any model field."""
    if isinstance(grid, ModelGrid):
        return grid
    if isinstance(grid, Grid):
        return RegularLatLonGrid.from_emulator_grid(grid)
    raise TypeError(f"expected a landbc ModelGrid or emulator Grid, found {type(grid).__name__}")


@dataclass(frozen=True)
class _Rows:
    """What both methods need of a grid, per row: where its points start in the flat
    field, how many there are, the first longitude and spacing, the latitude band."""

    start: np.ndarray
    n: np.ndarray
    lon0: np.ndarray
    dlon: np.ndarray
    lat: np.ndarray
    sin_lo: np.ndarray
    sin_hi: np.ndarray
    periodic: np.ndarray
    structure: np.ndarray  # rows with the same (n, lon0, dlon) share an id

    @classmethod
    def of(cls, grid: ModelGrid) -> _Rows:
        n = np.asarray(grid.points_per_row, dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
        lon0 = np.asarray(grid.longitudes)[start].astype(np.float64)
        dlon = np.asarray(grid.row_dlon, dtype=np.float64)
        e = np.asarray(grid.row_sin_edges, dtype=np.float64)
        structures = np.stack([n.astype(np.float64), np.mod(lon0, 360.0), dlon], axis=1)
        _, structure = np.unique(structures, axis=0, return_inverse=True)
        return cls(
            start=start,
            n=n,
            lon0=lon0,
            dlon=dlon,
            lat=np.asarray(grid.row_latitudes, dtype=np.float64),
            sin_lo=np.minimum(e[:-1], e[1:]),
            sin_hi=np.maximum(e[:-1], e[1:]),
            periodic=np.abs(n * dlon - 360.0) <= _PERIODIC_TOL,
            structure=structure.reshape(-1),
        )


def _check_mask(mask: Any, grid: ModelGrid) -> np.ndarray | None:
    """The source mask as a flat bool array (True = valid), or None."""
    if mask is None:
        return None
    m = _to_numpy(mask)
    if m.shape not in (tuple(grid.shape), (grid.npoints,)):
        raise ValueError(f"source_mask has shape {m.shape}; the source grid {grid.describe()} "
                         f"needs {tuple(grid.shape)}")  # fmt: skip
    if m.dtype != bool:
        raise ValueError(f"source_mask must be boolean (True = valid), found dtype {m.dtype}")
    return np.ascontiguousarray(m).reshape(-1)


def mask_sha256(mask: Any) -> str:
    """sha256 (hex) of a boolean mask's size and bits (flat, C order): part of the cache file's
    name."""
    m = np.ascontiguousarray(_to_numpy(mask), dtype=bool).reshape(-1)  # 2-D or flat: the same
    h = hashlib.sha256(f"{m.size}:".encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Conservative (grid-box average)
# ---------------------------------------------------------------------------


def _lon_overlaps(
    t_n: int, t_lon0: float, t_dlon: float, s_n: int, s_lon0: float, s_dlon: float, s_periodic: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 1-D intersections of a target row's cells with a source row's cells.

    Returns (target cell, source cell, overlap length in degrees), both cell
    indices within their rows. Target cells are placed in the source row's
    frame (x = west edge − source west edge, modulo 360); a periodic source row
    wraps its cell indices, a regional one is also tried one turn west so a
    target cell straddling the 360° seam meets both ends."""
    west = t_lon0 - 0.5 * t_dlon + np.arange(t_n) * t_dlon
    x = np.mod(west - (s_lon0 - 0.5 * s_dlon), 360.0)
    shifts = (x,) if s_periodic else (x, x - 360.0)
    out_t, out_s, out_len = [], [], []
    for y in shifts:
        k_lo = np.floor(y / s_dlon).astype(np.int64)
        k_hi = np.ceil((y + t_dlon) / s_dlon).astype(np.int64)
        if not s_periodic:
            k_lo, k_hi = np.clip(k_lo, 0, s_n), np.clip(k_hi, 0, s_n)
        count = np.maximum(k_hi - k_lo, 0)
        t = np.repeat(np.arange(t_n), count)
        k = np.repeat(k_lo - np.cumsum(count) + count, count) + np.arange(t.size)
        yt = y[t]
        length = np.minimum(yt + t_dlon, (k + 1) * s_dlon) - np.maximum(yt, k * s_dlon)
        keep = length > _LON_EPS
        out_t.append(t[keep])
        out_s.append(np.mod(k[keep], s_n))
        out_len.append(length[keep])
    return np.concatenate(out_t), np.concatenate(out_s), np.concatenate(out_len)


def conservative_weights(
    source: GridLike, target: GridLike, *, source_mask: Any = None
) -> RemapWeights:
    """First-order conservative weights from `source` to `target` (exact overlap areas).

    From the emulator's high-resolution grid to an ESM grid this is the
    grid-box average. Area-weighted means are preserved where the source
    covers the target; see the module docstring for masks and coverage.
    Vectorised per (target row, source-row structure): for 0.05° Europe
    (1.4 M cells) to O96 a few hundred numpy passes, no loop over cells."""
    src, tgt = as_model_grid(source), as_model_grid(target)
    mask = _check_mask(source_mask, src)
    t0 = time.perf_counter()
    s_rows, t_rows = _Rows.of(src), _Rows.of(tgt)
    lon_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    rows, cols, areas = [], [], []
    for i in range(t_rows.n.size):
        h = np.minimum(t_rows.sin_hi[i], s_rows.sin_hi) - np.maximum(
            t_rows.sin_lo[i], s_rows.sin_lo
        )
        js = np.flatnonzero(h > _SIN_EPS)
        for sid in np.unique(s_rows.structure[js]):
            group = js[s_rows.structure[js] == sid]
            j0 = group[0]
            key = (int(t_rows.structure[i]), int(sid))
            if key not in lon_cache:
                lon_cache[key] = _lon_overlaps(
                    int(t_rows.n[i]), t_rows.lon0[i], t_rows.dlon[i],
                    int(s_rows.n[j0]), s_rows.lon0[j0], s_rows.dlon[j0], bool(s_rows.periodic[j0]),
                )  # fmt: skip
            t_idx, s_idx, length = lon_cache[key]
            m = group.size
            rows.append(np.tile(t_rows.start[i] + t_idx, m))
            cols.append((s_rows.start[group][:, None] + s_idx[None, :]).reshape(-1))
            areas.append((h[group][:, None] * np.radians(length)[None, :]).reshape(-1))
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    a = np.concatenate(areas) if areas else np.zeros(0)
    covered = np.bincount(r, weights=a, minlength=tgt.npoints)
    coverage = np.minimum(covered / tgt.cell_areas, 1.0)
    w = _finish("conservative", src, tgt, r, c, a, coverage, mask)
    logger.info("conservative weights %s -> %s: %d entries in %.2f s", src.describe(),
                tgt.describe(), w.nnz, time.perf_counter() - t0)  # fmt: skip
    return w


def grid_box_average_weights(
    emulator_grid: Grid, target: GridLike, *, source_mask: Any = None
) -> RemapWeights:
    """ECMWF's grid-box average from the emulator's high-resolution grid onto a coarser ESM
    grid: the conservative method with the emulator's pixels as source cells."""
    return conservative_weights(as_model_grid(emulator_grid), target, source_mask=source_mask)


# ---------------------------------------------------------------------------
# Bilinear
# ---------------------------------------------------------------------------


def _row_stencil(
    rows: _Rows, j: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation in longitude along source row j[p] at lon[p], for every p.

    Returns (west point, east point, west weight, east weight, inside) with
    flat source indices. A regional row interpolates only between its first
    and last point (within _LON_TOL); outside, `inside` is False."""
    n, d, periodic = rows.n[j], rows.dlon[j], rows.periodic[j]
    x = np.mod(lon - rows.lon0[j], 360.0)
    span = (n - 1) * d
    # a regional row: a target just west of the first point has x just under 360
    x = np.where(~periodic & (x > 360.0 - _LON_TOL), x - 360.0, x)
    inside = periodic | ((x >= -_LON_TOL) & (x <= span + _LON_TOL))
    x = np.where(periodic, x, np.clip(x, 0.0, span))
    u = x / d
    k = np.floor(u)
    k = np.where(periodic, k, np.clip(k, 0, np.maximum(n - 2, 0)))  # last interval: f = 1
    f = np.clip(u - k, 0.0, 1.0)
    k = k.astype(np.int64)
    k1 = np.where(periodic, np.mod(k + 1, n), np.minimum(k + 1, n - 1))
    k = np.mod(k, n)
    return rows.start[j] + k, rows.start[j] + k1, 1.0 - f, f, inside


def bilinear_weights(
    source: GridLike, target: GridLike, *, source_mask: Any = None
) -> RemapWeights:
    """Bilinear weights: each target point from the two source rows around its latitude.

    Along each row the two points around the target's longitude, then the two
    rows linearly in latitude: exact for fields linear in longitude and
    latitude (away from the 360° seam, where longitude itself jumps). Targets
    beyond the outermost rows of a global source (Gaussian grids stop short of
    the poles) use the pole as a row whose value is the mean of the nearest
    row; a regional source leaves targets outside its rows empty (NaN). With a
    source mask, the valid neighbours' weights are renormalised to 1."""
    src, tgt = as_model_grid(source), as_model_grid(target)
    mask = _check_mask(source_mask, src)
    t0 = time.perf_counter()
    rows = _Rows.of(src)
    order = np.argsort(rows.lat, kind="stable")  # source rows south to north
    lat_sorted = rows.lat[order]
    lat = np.asarray(tgt.latitudes, dtype=np.float64)
    lon = np.asarray(tgt.longitudes, dtype=np.float64)

    rr: list[np.ndarray] = []  # entries (target, source, weight), gathered by part
    cc: list[np.ndarray] = []
    vv: list[np.ndarray] = []
    coverage = np.zeros(tgt.npoints)

    # between the rows just south (a) and north (b) of each target, or on a row (a == b)
    ib = np.searchsorted(lat_sorted, lat, side="left")
    on_row = (ib < lat_sorted.size) & (lat_sorted[np.minimum(ib, lat_sorted.size - 1)] == lat)
    ti = np.flatnonzero(on_row | ((ib > 0) & (ib < lat_sorted.size)))
    ja = order[np.where(on_row, ib, ib - 1)[ti]]
    jb = order[ib[ti]]
    la, lb = rows.lat[ja], rows.lat[jb]
    fb = np.divide(lat[ti] - la, lb - la, out=np.zeros(ti.size), where=lb > la)
    a0, a1, wa0, wa1, in_a = _row_stencil(rows, ja, lon[ti])
    b0, b1, wb0, wb1, in_b = _row_stencil(rows, jb, lon[ti])
    ok = in_a & in_b  # a regional source: both rows must reach the target's longitude
    t = ti[ok]
    rr += [t] * 4
    cc += [a0[ok], a1[ok], b0[ok], b1[ok]]
    vv += [((1 - fb) * wa0)[ok], ((1 - fb) * wa1)[ok], (fb * wb0)[ok], (fb * wb1)[ok]]
    coverage[t] = 1.0

    # polar caps of a global source without pole rows: between the last row and the pole,
    # whose value is that row's mean (a smooth field's value there)
    if src.is_global:
        for pole, j_edge, cap in (
            (90.0, order[-1], lat > lat_sorted[-1]),
            (-90.0, order[0], lat < lat_sorted[0]),
        ):
            t = np.flatnonzero(cap)
            f_pole = (lat[t] - rows.lat[j_edge]) / (pole - rows.lat[j_edge])
            e0, e1, we0, we1, _ = _row_stencil(rows, np.full(t.size, j_edge), lon[t])
            n_ring = int(rows.n[j_edge])
            rr += [t, t, np.repeat(t, n_ring)]
            cc += [e0, e1, np.tile(rows.start[j_edge] + np.arange(n_ring), t.size)]
            vv += [(1 - f_pole) * we0, (1 - f_pole) * we1, np.repeat(f_pole / n_ring, n_ring)]
            coverage[t] = 1.0

    r, c, v = np.concatenate(rr), np.concatenate(cc), np.concatenate(vv)
    nonzero = v > 0  # a target on a point or row gets exact zeros from the others
    r, c, v = r[nonzero], c[nonzero], v[nonzero]
    w = _finish("bilinear", src, tgt, r, c, v, coverage, mask)
    logger.info("bilinear weights %s -> %s: %d entries in %.2f s", src.describe(),
                tgt.describe(), w.nnz, time.perf_counter() - t0)  # fmt: skip
    return w


def compute_weights(
    source: GridLike, target: GridLike, method: str, *, source_mask: Any = None
) -> RemapWeights:
    """Weights of `method` ("conservative" or "bilinear") from `source` to `target`."""
    if method == "conservative":
        return conservative_weights(source, target, source_mask=source_mask)
    if method == "bilinear":
        return bilinear_weights(source, target, source_mask=source_mask)
    raise ValueError(f"unknown remap method {method!r}: expected one of {', '.join(METHODS)}")


# ---------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------


def _is_torch(x: Any) -> bool:
    """A torch tensor? (torch is not imported for this: if it is not loaded, x is not one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if _is_torch(x) else np.asarray(x)


def _batch_shape(w: RemapWeights, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The leading (batch) dims of a field of `shape` on the source grid, which may be
    given in the grid's shape or flat."""
    k = len(w.source_shape)
    if shape[len(shape) - k :] == w.source_shape and len(shape) >= k:
        return shape[: len(shape) - k]
    if shape and shape[-1] == w.n_source:
        return shape[:-1]
    raise ValueError(f"field of shape {shape} is not on the source grid: expected (..., "
                     f"{', '.join(map(str, w.source_shape))}) or (..., {w.n_source})")  # fmt: skip


def apply(weights: RemapWeights, field: Any) -> Any:
    """Remap `field` (..., *source_shape) or (..., n_source) to (..., *target_shape).

    numpy arrays are accumulated in float64; torch tensors stay on their
    device and go through a float64 sparse CSR product (deterministic, unlike
    atomics-based scatter). The result has the field's floating dtype (float64
    for integer or boolean fields); targets with no valid source are NaN."""
    batch = _batch_shape(weights, tuple(field.shape))
    out_shape = (*batch, *weights.target_shape)
    if _is_torch(field):
        return _apply_torch(weights, field, out_shape)
    x = np.asarray(field)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    x = x.reshape(-1, weights.n_source)
    rows = weights.row_of_entry
    out = np.empty((x.shape[0], weights.n_target), dtype=np.float64)
    for b in range(x.shape[0]):  # one gather + bincount per field: memory stays O(nnz)
        out[b] = np.bincount(
            rows, weights=x[b, weights.indices] * weights.weights, minlength=weights.n_target
        )
    out[:, weights.empty_rows] = np.nan
    return out.astype(dtype, copy=False).reshape(out_shape)


def _apply_torch(weights: RemapWeights, field: torch.Tensor, out_shape: tuple[int, ...]) -> Any:
    import torch

    dtype = field.dtype if field.is_floating_point() else torch.float64
    matrix, empty = weights.to_torch(field.device)
    x = field.reshape(-1, weights.n_source).to(torch.float64).T  # (n_source, batch)
    out = (matrix @ x).T.masked_fill(empty, float("nan"))
    return out.to(dtype).reshape(out_shape)


# ---------------------------------------------------------------------------
# ECLand's rules for fields sent to an ESM grid
# ---------------------------------------------------------------------------


def grid_box_average(weights: RemapWeights, field: Any) -> Any:
    """A continuous field (vegetation cover, LAI, land fraction) as the area-weighted mean
    over each target cell: ECLand's rule for continuous fields. With land-masked
    conservative weights, the mean over the cell's land."""
    _require_conservative(weights, "grid_box_average")
    return apply(weights, field)


def land_fraction(weights: RemapWeights, land_mask: Any) -> np.ndarray:
    """The share of each target cell's (covered) area that is land, from a boolean land mask
    on the source grid; `weights` must be unmasked conservative weights (masked ones
    would average land over land, giving 1)."""
    _require_conservative(weights, "land_fraction")
    if weights.masked:
        raise ValueError("land_fraction needs unmasked conservative weights (these are masked)")
    m = _to_numpy(land_mask)
    if m.dtype != bool:
        raise ValueError(f"land_mask must be boolean (True = land), found dtype {m.dtype}")
    return apply(weights, m.astype(np.float64))


def _class_sums(
    weights: RemapWeights, classes: Any, class_values: Sequence[int] | np.ndarray
) -> np.ndarray:
    """(n_target, n_classes): per target, the weight of each class (rows sum to 1 where a
    valid source exists). One pass over the entries, whatever the number of classes."""
    _require_conservative(weights, "class fractions and dominant types")
    codes = _to_numpy(classes)
    batch = _batch_shape(weights, codes.shape)
    if batch:
        raise ValueError(f"classes must be one field on the source grid, found shape {codes.shape}")
    values = np.asarray(class_values)
    if values.ndim != 1 or values.size == 0 or np.any(np.diff(values) <= 0):
        raise ValueError(f"class_values must be increasing and non-empty, found {values}")
    src = codes.reshape(-1)[weights.indices]  # only sources that feed a target matter
    pos = np.clip(np.searchsorted(values, src), 0, values.size - 1)
    unknown = values[pos] != src
    if np.any(unknown):
        raise ValueError(f"classes contain values not in class_values {values.tolist()}: "
                         f"{np.unique(src[unknown])[:10].tolist()}")  # fmt: skip
    k = values.size
    sums = np.bincount(weights.row_of_entry * k + pos, weights=weights.weights,
                       minlength=weights.n_target * k)  # fmt: skip
    return sums.reshape(weights.n_target, k)


def class_fractions(
    weights: RemapWeights, classes: Any, class_values: Sequence[int] | np.ndarray
) -> np.ndarray:
    """(n_classes, *target_shape): each class's overlap-weighted share of each target cell.

    With land-masked conservative weights the shares are of the cell's land
    and sum to 1 wherever there is land; cells without valid source are NaN.
    `class_values` lists the codes (increasing); any other code is an error."""
    sums = _class_sums(weights, classes, class_values)
    sums[weights.empty_rows] = np.nan
    return np.ascontiguousarray(sums.T).reshape(-1, *weights.target_shape)


def dominant_type(weights: RemapWeights, classes: Any, *, missing: int = -1) -> np.ndarray:
    """The class with the largest overlap area in each target cell (the area-weighted mode),
    ECLand's rule for vegetation types; ties go to the smallest code, and cells
    without valid source get `missing`."""
    codes = _to_numpy(classes)
    values = np.unique(codes.reshape(-1)[weights.indices])
    if not values.size:
        return np.full(weights.target_shape, missing, dtype=np.int64)
    sums = _class_sums(weights, codes, values)
    out = values[np.argmax(sums, axis=1)].astype(np.int64)
    out[weights.empty_rows] = missing
    return out.reshape(weights.target_shape)


def _require_conservative(weights: RemapWeights, what: str) -> None:
    if weights.method != "conservative":
        raise ValueError(f"{what} needs conservative weights (area overlaps), "
                         f"found {weights.method!r}")  # fmt: skip


# ---------------------------------------------------------------------------
# The cache on disk
# ---------------------------------------------------------------------------


def _expected_metadata(
    src: ModelGrid, tgt: ModelGrid, method: str, mask_hash: str
) -> dict[str, str]:
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "method": method,
        "source_key": src.key(),
        "target_key": tgt.key(),
        "source_grid": src.canonical_json(),
        "target_grid": tgt.canonical_json(),
        "source_shape": json.dumps(list(src.shape)),
        "target_shape": json.dumps(list(tgt.shape)),
        "mask_sha256": mask_hash,
    }


def weights_filename(
    source: GridLike, target: GridLike, method: str, *, source_mask: Any = None
) -> str:
    """The cache file's name: method, both grid keys and the mask's hash, format version."""
    src, tgt = as_model_grid(source), as_model_grid(target)
    name = f"remap-{method}-{src.key()[:16]}-{tgt.key()[:16]}"
    if source_mask is not None:
        name += f"-mask-{mask_sha256(source_mask)[:16]}"
    return f"{name}-v{FORMAT_VERSION}.safetensors"


def save_weights(path: str | Path, weights: RemapWeights, metadata: dict[str, str]) -> None:
    """Write the weights atomically: a uniquely named file beside `path`, then a rename,
    so concurrent writers (MPI ranks) never interleave and readers never see half a file."""
    import torch

    from landbc.emulator import safetensors

    path = Path(path)
    tensors = {
        "indptr": torch.from_numpy(np.array(weights.indptr, dtype=np.int64)),
        "indices": torch.from_numpy(np.array(weights.indices, dtype=np.int64)),
        "weights": torch.from_numpy(np.array(weights.weights, dtype=np.float64)),
        "coverage": torch.from_numpy(np.array(weights.coverage, dtype=np.float64)),
        "valid_fraction": torch.from_numpy(np.array(weights.valid_fraction, dtype=np.float64)),
    }
    meta = {**metadata, "nnz": str(weights.nnz)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        safetensors.save(tmp, tensors, meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_weights(path: str | Path) -> tuple[RemapWeights, dict[str, str]]:
    """Read a weight file written by `save_weights`; ValueError if it is not one."""
    from landbc.emulator import safetensors

    tensors, meta = safetensors.load(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format {meta.get('format')!r})")
    names = ("indptr", "indices", "weights", "coverage", "valid_fraction")
    missing = set(names) - set(tensors)
    if missing:
        raise ValueError(f"{path}: missing tensors {sorted(missing)}")
    try:
        source_shape = tuple(int(n) for n in json.loads(meta["source_shape"]))
        target_shape = tuple(int(n) for n in json.loads(meta["target_shape"]))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path}: unreadable source_shape/target_shape metadata") from None
    arrays = {k: tensors[k].numpy() for k in names}
    w = RemapWeights(
        method=meta.get("method", ""),
        source_shape=source_shape,
        target_shape=target_shape,
        indptr=arrays["indptr"],
        indices=arrays["indices"],
        weights=arrays["weights"],
        coverage=arrays["coverage"],
        valid_fraction=arrays["valid_fraction"],
        masked=bool(meta.get("mask_sha256")),
    )
    w.check()
    return w, meta


def cached_weights(
    source: GridLike,
    target: GridLike,
    method: str = "conservative",
    *,
    source_mask: Any = None,
    cache_dir: str | Path | None = None,
) -> RemapWeights:
    """The weights from `cache_dir` if a file there matches, else computed (and saved).

    A file whose metadata differs from what is asked for (another format
    version, grids whose keys collide in the name's prefix, a corrupt file) is
    never used: the reason is logged and the weights recomputed and rewritten.
    Without `cache_dir` the weights are just computed."""
    if method not in METHODS:
        raise ValueError(f"unknown remap method {method!r}: expected one of {', '.join(METHODS)}")
    if cache_dir is None:
        return compute_weights(source, target, method, source_mask=source_mask)
    src, tgt = as_model_grid(source), as_model_grid(target)
    mask_hash = mask_sha256(source_mask) if source_mask is not None else ""
    expected = _expected_metadata(src, tgt, method, mask_hash)
    path = Path(cache_dir) / weights_filename(src, tgt, method, source_mask=source_mask)
    if path.is_file():
        try:
            w, meta = load_weights(path)
            diff = sorted(k for k, v in expected.items() if meta.get(k) != v)
            if not diff:
                logger.info("remap weights %s -> %s (%s) from %s", src.name, tgt.name, method, path)
                return w
            logger.warning("remap weight file %s does not match (%s differ); recomputing",
                           path, ", ".join(diff))  # fmt: skip
        except (ValueError, KeyError, OSError) as e:
            logger.warning("remap weight file %s is unreadable (%s); recomputing", path, e)
    w = compute_weights(src, tgt, method, source_mask=source_mask)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(path, w, expected)
    logger.info("remap weights %s -> %s (%s) saved to %s", src.name, tgt.name, method, path)
    return w


# ---------------------------------------------------------------------------
# A host model's weights, for the C++ core (landbc_set_host_grid)
# ---------------------------------------------------------------------------

#: Roles of host weight files (metadata ``host_role``), as the C++ core's HostGrid reads them.
HOST_OUTPUTS, HOST_FORCING = "outputs", "forcing"


def host_grid_label(name: str) -> str:
    """The name a host declares its grid by (`landbc_set_host_grid`): the user's name,
    stripped; the C++ core compares it case-insensitively."""
    return name.strip()


def write_host_weights(
    grid: Grid,
    land_mask: Any,
    host_grid: str,
    out_dir: str | Path,
    *,
    forcing_method: str | None = "conservative",
) -> dict[str, Path]:
    """Write the weight files a C/C++/Fortran host needs for its grid `host_grid`
    (a `grids.grid_from_name` name) and the emulator domain `grid`:

    - ``outputs``: land-masked conservative weights from the domain's
      high-resolution grid to the host grid (grid-box average over land,
      dominant type), as `landbc.coupler.esm_output` uses them;
    - ``forcing`` (unless `forcing_method` is None): unmasked weights
      (conservative or bilinear) from the host grid to the domain's coarse
      grid, for forcing given on the host grid.

    Their names are those of `cached_weights` (so a run's cache can reuse them)
    and their metadata adds ``host_grid`` and ``host_role``, which the C++ core
    matches. Returns the paths by role."""
    from .grids import grid_from_name

    target = grid_from_name(host_grid)
    label = host_grid_label(host_grid)
    land = np.asarray(land_mask)
    if land.shape != grid.shape:
        raise ValueError(f"land_mask of shape {land.shape} does not fit the domain "
                         f"{grid.describe()}")  # fmt: skip
    land = land.astype(bool) if land.dtype == bool else land == 1
    high = RegularLatLonGrid.from_emulator_grid(grid)
    jobs = [(HOST_OUTPUTS, high, target, "conservative", land)]
    if forcing_method is not None:
        coarse = RegularLatLonGrid.from_emulator_grid(grid, coarse=True)
        jobs.append((HOST_FORCING, target, coarse, forcing_method, None))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, src, tgt, method, mask in jobs:
        t0 = time.perf_counter()
        w = compute_weights(src, tgt, method, source_mask=mask)
        meta = _expected_metadata(src, tgt, method, mask_sha256(mask) if mask is not None else "")
        path = out / weights_filename(src, tgt, method, source_mask=mask)
        save_weights(path, w, {**meta, "host_grid": label, "host_role": role})
        logger.info("%s weights %s -> %s (%s, %d entries) in %.1f s: %s", role, src.name,
                    tgt.name, method, w.nnz, time.perf_counter() - t0, path)  # fmt: skip
        paths[role] = path
    return paths
