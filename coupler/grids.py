"""The grids climate models use: regular lat–lon and (reduced) Gaussian grids.

A coupler has to move fields between the emulator's regular high-resolution
grid (`landbc.emulator.grid.Grid`) and whatever grid the host model runs on:
IFS and EC-Earth use octahedral (O) grids with the cubic TCo truncations and
classic reduced Gaussian (N) grids with the linear/quadratic ones
(REFERENCES.md, "Coupling to IFS-like models"); their GRIB output may also be
on regular lat–lon grids. This module only *describes* those grids, so that a
remapper can be written once against one interface:

- `RegularLatLonGrid`: any resolution and origin, rows north→south or
  south→north, global or regional.
- `GaussianGrid`: global Gaussian grids, reduced (`O96`, `N320`) or regular
  (`F96`), north to south, every row starting at longitude 0 as in ecCodes.

Both are made of rows of equally spaced points, so both expose the same
things: `name`, `npoints`, `shape`, the row structure (`points_per_row`,
`row_latitudes`, `row_lat_edges`), the points `latitudes` / `longitudes` (1-D,
in GRIB scanning order, as ecCodes returns them), the cell bounds
`lat_bounds` / `lon_bounds` and the unit-sphere `cell_areas`. Cells are
bounded by parallels and meridians, so the exact overlap of two cells is
Δλ · Δ(sin φ): conservative weights need no polygon clipping.

Grids compare and hash by geometry, through `key()` (a sha256 of a canonical
description rounded to microdegrees, GRIB2's precision): a grid read back
from GRIB equals the grid it was written from, and remap weights can be
cached under the keys of their two grids.

Where ecCodes is the reference (the tabulated pl of classic N grids, GRIB
messages) it is imported lazily, so that importing this module costs numpy
only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import Any

import numpy as np

from landbc.emulator.grid import Grid

# Coordinates are compared (and keyed) at a microdegree: what GRIB2 stores.
ANGLE_DECIMALS = 6
_TOL = 1e-6

# The classic (N) reduced Gaussian grids whose pl ecCodes 2.50 ships as samples
# "reduced_gg_pl_<N>_grib2". Only used to word an error: any sample that loads is used.
ECCODES_CLASSIC_N = (32, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, 512, 640, 1024, 1280, 2000)

SUPPORTED_GRIB_GRID_TYPES = ("regular_ll", "regular_gg", "reduced_gg")


def _readonly(a: np.ndarray) -> np.ndarray:
    """Arrays are cached on frozen grids: make them read-only so no caller can alter one."""
    a.flags.writeable = False
    return a


def _canonical_angle(x: float) -> float:
    """Round to a microdegree; `+ 0.0` folds -0.0 into 0.0 so the JSON is the same."""
    return round(float(x), ANGLE_DECIMALS) + 0.0


def _check_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer >= {minimum}, found {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, found {value}")
    return int(value)


def _check_float(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of degrees, found {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number of degrees, found {value!r}")
    return x


class ModelGrid(ABC):
    """A grid of rows of equally spaced points, bounded by parallels and meridians.

    Subclasses give the row structure (points per row, row latitudes, the
    parallels between rows and the longitudes of the points); everything a
    remapper needs per point is derived here, once, for both kinds of grid.
    Arrays are computed on first use, cached and read-only.
    """

    # -- what a subclass defines -------------------------------------------
    @property
    @abstractmethod
    def name(self) -> str:
        """A short label: "O96", "N320", "F96", "regular_ll 1x1 global", ..."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The shape of a field on this grid: (nlat, nlon) if regular, (npoints,) if reduced."""

    @property
    @abstractmethod
    def is_global(self) -> bool:
        """True if the cells cover the whole sphere (their areas sum to 4π)."""

    @property
    @abstractmethod
    def points_per_row(self) -> np.ndarray:
        """Number of points in each row, in scanning order (GRIB's pl for reduced grids)."""

    @property
    @abstractmethod
    def row_latitudes(self) -> np.ndarray:
        """Latitude (degrees) of each row, in scanning order."""

    @property
    @abstractmethod
    def row_sin_edges(self) -> np.ndarray:
        """sin(latitude) of the nrows + 1 parallels that bound the rows, in scanning order.

        Kept as sines because cell areas are differences of sines: for Gaussian
        rows they come straight from the quadrature weights, with no arcsin/sin
        round trip."""

    @property
    @abstractmethod
    def row_lat_edges(self) -> np.ndarray:
        """Latitude (degrees) of the nrows + 1 parallels that bound the rows, in scanning order."""

    @property
    @abstractmethod
    def row_dlon(self) -> np.ndarray:
        """Longitude spacing (degrees) of the points of each row; cells are that wide."""

    @property
    @abstractmethod
    def longitudes(self) -> np.ndarray:
        """Longitude (degrees) of every point, in scanning order, as ecCodes returns them."""

    @abstractmethod
    def canonical(self) -> dict[str, Any]:
        """The geometry as plain JSON data, rounded to microdegrees: what `key()` hashes."""

    # -- derived -----------------------------------------------------------
    @property
    def nrows(self) -> int:
        return int(self.points_per_row.size)

    @cached_property
    def npoints(self) -> int:
        """Number of grid points (GRIB's numberOfDataPoints)."""
        return int(self.points_per_row.sum())

    @cached_property
    def _row_of_point(self) -> np.ndarray:
        return np.repeat(np.arange(self.nrows), self.points_per_row)

    @cached_property
    def latitudes(self) -> np.ndarray:
        """Latitude (degrees) of every point, in scanning order."""
        return _readonly(self.row_latitudes[self._row_of_point])

    @cached_property
    def lat_bounds(self) -> np.ndarray:
        """(npoints, 2): the southern and northern edge (degrees) of every cell."""
        e = self.row_lat_edges
        lo, hi = np.minimum(e[:-1], e[1:]), np.maximum(e[:-1], e[1:])
        rows = self._row_of_point
        return _readonly(np.stack([lo[rows], hi[rows]], axis=1))

    @cached_property
    def lon_bounds(self) -> np.ndarray:
        """(npoints, 2): the western and eastern edge (degrees) of every cell, ±Δλ/2 around
        its point (not wrapped: an edge may lie beyond ±180 or 360)."""
        half = 0.5 * self.row_dlon[self._row_of_point]
        lon = self.longitudes
        return _readonly(np.stack([lon - half, lon + half], axis=1))

    @cached_property
    def row_areas(self) -> np.ndarray:
        """Unit-sphere area of one cell of each row: Δλ (radians) · |Δ sin φ|."""
        s = self.row_sin_edges
        return _readonly(np.radians(self.row_dlon) * np.abs(s[:-1] - s[1:]))

    @cached_property
    def cell_areas(self) -> np.ndarray:
        """Unit-sphere area (steradians) of every cell; they sum to 4π on a global grid.

        Multiply by R² for physical areas: exact for cells bounded by parallels and
        meridians on a sphere, which is also what conservative remapping needs."""
        return _readonly(self.row_areas[self._row_of_point])

    def describe(self) -> str:
        """One line for logs and error messages."""
        return f"{self.name} ({self.npoints} points, {self.nrows} rows)"

    # -- identity ----------------------------------------------------------
    def canonical_json(self) -> str:
        """The canonical description as a compact, key-sorted JSON string."""
        return self._canonical_json

    @cached_property
    def _canonical_json(self) -> str:  # cached: hashing an O1280 would re-serialise 2560 ints
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """sha256 (hex) of the canonical description: stable across runs and versions,
        equal for grids of the same geometry, usable in cache file names."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelGrid):
            return NotImplemented
        return self.canonical_json() == other.canonical_json()

    def __hash__(self) -> int:
        return hash(self.canonical_json())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


# ---------------------------------------------------------------------------
# Regular lat–lon grids
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class RegularLatLonGrid(ModelGrid):
    """nlat rows × nlon columns of points at dlat / dlon degrees.

    The first point is (lat_first, lon_first); rows run north to south (GRIB's
    default, jScansPositively = 0) unless `south_first`. Longitudes run west to
    east from lon_first, which may be any value (-180, 0, 0.125, ...); they are
    not wrapped, so a grid from -180 returns -180..179 as ecCodes does. Cells
    reach half an increment around each point, clipped at the poles, so a global
    grid with points on the poles (90..-90) and one with points between
    (89.5..-89.5) both cover the sphere.
    """

    lat_first: float
    lon_first: float
    dlat: float
    dlon: float
    nlat: int
    nlon: int
    south_first: bool = False

    def __post_init__(self) -> None:
        for f in ("lat_first", "lon_first", "dlat", "dlon"):
            object.__setattr__(self, f, _check_float(getattr(self, f), f))
        object.__setattr__(self, "nlat", _check_int(self.nlat, "nlat", 1))
        object.__setattr__(self, "nlon", _check_int(self.nlon, "nlon", 1))
        if not isinstance(self.south_first, (bool, np.bool_)):
            raise ValueError(f"south_first must be True or False, found {self.south_first!r}")
        object.__setattr__(self, "south_first", bool(self.south_first))
        for f in ("dlat", "dlon"):
            if not getattr(self, f) > 0:
                raise ValueError(f"{f} must be > 0 degrees, found {getattr(self, f)}")
        if self.nlon * self.dlon > 360 + _TOL:
            raise ValueError(
                f"nlon * dlon must be <= 360 degrees (points would repeat), found "
                f"{self.nlon} * {self.dlon} = {self.nlon * self.dlon}"
            )
        for what, lat in (("lat_first", self.lat_first), ("last latitude", self.lat_last)):
            if not -90 - _TOL <= lat <= 90 + _TOL:
                raise ValueError(
                    f"{what} must be within -90..90 degrees, found {lat} (lat_first="
                    f"{self.lat_first}, dlat={self.dlat}, nlat={self.nlat}, "
                    f"{'south' if self.south_first else 'north'} first)"
                )

    # -- construction ------------------------------------------------------
    @classmethod
    def global_grid(
        cls, dlat: float, dlon: float | None = None, *, lon_first: float = 0.0,
        on_poles: bool = True, south_first: bool = False,
    ) -> RegularLatLonGrid:  # fmt: skip
        """A global grid at dlat × dlon degrees.

        `on_poles=True` is ECMWF's convention (MIR's "1/1": 181 × 360 points from
        90 to -90); `on_poles=False` puts points at cell centres (89.5..-89.5, as
        the emulator's grids and most observation products do)."""
        dlon = dlat if dlon is None else dlon
        dlat = _check_float(dlat, "dlat")
        dlon = _check_float(dlon, "dlon")
        for what, d in (("dlat", dlat), ("dlon", dlon)):
            if not d > 0:
                raise ValueError(f"{what} must be > 0 degrees, found {d}")
        ny, nx = 180.0 / dlat, 360.0 / dlon
        for what, n, span in (("dlat", ny, 180), ("dlon", nx, 360)):
            if abs(n - round(n)) > 1e-9 * n:
                raise ValueError(f"{what} must divide {span} degrees evenly, found {span / n}")
        nlat = round(ny) + (1 if on_poles else 0)
        first = 90.0 if on_poles else 90.0 - dlat / 2
        return cls(
            lat_first=-first if south_first else first,
            lon_first=lon_first,
            dlat=dlat,
            dlon=dlon,
            nlat=nlat,
            nlon=round(nx),
            south_first=south_first,
        )

    @classmethod
    def from_emulator_grid(cls, grid: Grid, *, coarse: bool = False) -> RegularLatLonGrid:
        """The emulator's high-resolution grid (or, with `coarse`, its forcing grid).

        Its pixels are cells of `res` degrees with centres half a pixel inside the
        box, rows north to south: the cell bounds here are then the pixel edges."""
        res = grid.coarse_res if coarse else grid.res
        ny, nx = grid.coarse_shape if coarse else grid.shape
        return cls(
            lat_first=grid.lat_north - res / 2,
            lon_first=grid.lon_west + res / 2,
            dlat=res,
            dlon=res,
            nlat=ny,
            nlon=nx,
        )

    def to_emulator_grid(self, coarse_factor: int = 1) -> Grid:
        """This grid as the emulator's `Grid` (square cells, rows north to south, a box
        inside -180..180 E); a ValueError says which of these it is not."""
        if self.south_first:
            raise ValueError(f"{self.name}: the emulator's Grid runs north to south")
        if abs(self.dlat - self.dlon) > _TOL * 1e-3:
            raise ValueError(f"{self.name}: the emulator's Grid has square cells, "
                             f"found dlat={self.dlat} dlon={self.dlon}")  # fmt: skip
        res = self.dlat
        north = self.lat_first + res / 2
        south = north - self.nlat * res
        if north > 90 + _TOL or south < -90 - _TOL:
            raise ValueError(f"{self.name}: cells reach beyond a pole ({south}..{north} N); "
                             "the emulator's Grid has whole cells inside -90..90")  # fmt: skip
        west = self.lon_first - res / 2
        west -= 360.0 * math.floor((west + 180.0 + _TOL) / 360.0)  # into [-180, 180)
        east = west + self.nlon * res
        if east > 180 + _TOL:
            raise ValueError(f"{self.name}: the box {west}..{east} E crosses 180 E, which the "
                             "emulator's Grid cannot represent")  # fmt: skip
        r = 9  # as Grid.window rounds its edges
        return Grid(
            lat_south=round(south, r), lat_north=round(north, r), lon_west=round(west, r),
            lon_east=round(east, r), res=res, coarse_factor=coarse_factor,
        )  # fmt: skip

    # -- geometry ----------------------------------------------------------
    @property
    def _lat_step(self) -> float:
        return self.dlat if self.south_first else -self.dlat

    @property
    def lat_last(self) -> float:
        return self.lat_first + (self.nlat - 1) * self._lat_step

    @property
    def lon_last(self) -> float:
        return self.lon_first + (self.nlon - 1) * self.dlon

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    @property
    def is_global(self) -> bool:
        e = self.row_lat_edges
        return (
            abs(self.nlon * self.dlon - 360.0) <= _TOL
            and min(e[0], e[-1]) == -90.0
            and max(e[0], e[-1]) == 90.0
        )

    @property
    def name(self) -> str:
        res = f"{self.dlon:g}x{self.dlat:g}"
        if self.is_global:
            return f"regular_ll {res} global"
        return (
            f"regular_ll {res} {self.nlat}x{self.nlon} from "
            f"({self.lat_first:g}N, {self.lon_first:g}E)"
        )

    @cached_property
    def points_per_row(self) -> np.ndarray:
        return _readonly(np.full(self.nlat, self.nlon, dtype=np.int64))

    @cached_property
    def row_latitudes(self) -> np.ndarray:
        return _readonly(self.lat_first + np.arange(self.nlat) * self._lat_step)

    @cached_property
    def row_lat_edges(self) -> np.ndarray:
        """Half an increment around each row; clipped at the poles, and snapped onto them
        within a microdegree (so 89.833333 at 1/3° reaches the pole, as meant)."""
        step = self._lat_step
        e = self.lat_first + (np.arange(self.nlat + 1) - 0.5) * step
        e = np.clip(e, -90.0, 90.0)
        near_pole = np.abs(np.abs(e) - 90.0) <= _TOL
        e[near_pole] = np.copysign(90.0, e[near_pole])
        return _readonly(e)

    @cached_property
    def row_sin_edges(self) -> np.ndarray:
        return _readonly(np.sin(np.radians(self.row_lat_edges)))

    @cached_property
    def row_dlon(self) -> np.ndarray:
        return _readonly(np.full(self.nlat, self.dlon))

    @cached_property
    def longitudes(self) -> np.ndarray:
        row = self.lon_first + np.arange(self.nlon) * self.dlon
        return _readonly(np.tile(row, self.nlat))

    def canonical(self) -> dict[str, Any]:
        """First and last point rounded to microdegrees, longitudes taken modulo 360 (a grid
        from -180 is the grid from 180), the increments and counts."""
        a = _canonical_angle
        return {
            "type": "regular_ll",
            "nlat": self.nlat,
            "nlon": self.nlon,
            "lat_first": a(self.lat_first),
            "lat_last": a(self.lat_last),
            "lon_first": a(self.lon_first % 360.0) % 360.0,
            "dlat": a(self.dlat),
            "dlon": a(self.dlon),
        }


# ---------------------------------------------------------------------------
# Gaussian grids
# ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def gaussian_latitudes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The 2n Gaussian latitudes (degrees, north to south) and their quadrature weights.

    They are the zeros of the Legendre polynomial P_2n (in sin φ) and the
    Gauss–Legendre weights (summing to 2). Newton's iteration on all the
    northern zeros at once, from Tricomi's first-order estimate, is O(n²) with
    numpy-vectorised rows: about 0.1 s for N1280, where
    `numpy.polynomial.legendre.leggauss` (an eigenvalue problem) would take
    seconds. The southern half mirrors the northern one exactly, and the
    weights are normalised to 1 per hemisphere, so the equator is a row edge
    and the cell areas of a global grid sum to 4π.
    """
    n = _check_int(n, "Gaussian number N", 1)
    m = 2 * n  # degree of the Legendre polynomial
    k = np.arange(1, n + 1)
    theta = math.pi * (k - 0.25) / (m + 0.5)
    x = np.cos(theta + 1.0 / (8.0 * m * m * np.tan(theta)))  # Tricomi's estimate
    p_m, p_prev = _legendre(m, x)
    for _ in range(100):
        dp = m * (x * p_m - p_prev) / (x * x - 1.0)
        dx = p_m / dp
        x = x - dx
        p_m, p_prev = _legendre(m, x)
        if np.max(np.abs(dx)) < 1e-15:
            break
    else:  # pragma: no cover - Newton from Tricomi's estimate converges in a few steps
        raise RuntimeError(f"Gaussian latitudes of N{n} did not converge")
    dp = m * (x * p_m - p_prev) / (x * x - 1.0)
    w = 2.0 / ((1.0 - x * x) * dp * dp)
    w = w / w.sum()  # 1 per hemisphere: the error is ~1e-15, and now edges close exactly
    lat_north = np.degrees(np.arcsin(x))
    lats = np.concatenate([lat_north, -lat_north[::-1]])
    weights = np.concatenate([w, w[::-1]])
    return _readonly(lats), _readonly(weights)


def _legendre(m: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P_m(x) and P_{m-1}(x) by the three-term recurrence (one numpy op per degree)."""
    p0, p1 = np.ones_like(x), x.copy()
    for j in range(2, m + 1):
        p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
    return p1, p0


def octahedral_pl(n: int) -> tuple[int, ...]:
    """pl of the octahedral grid O<n>: 20 + 4i points for i = 0..n-1 from the pole to the
    equator, then mirrored (4n² + 36n points in all)."""
    n = _check_int(n, "Gaussian number N", 1)
    half = [20 + 4 * i for i in range(n)]
    return tuple(half + half[::-1])


@cache
def classic_pl(n: int) -> tuple[int, ...]:
    """pl of the classic reduced Gaussian grid N<n>, from ecCodes' sample.

    ECMWF's classic pl are tabulated, not given by a formula, so ecCodes'
    samples (`reduced_gg_pl_<n>_grib2`, shipped inside the library) are the
    reference; ecCodes 2.50 has them for N in `ECCODES_CLASSIC_N`."""
    n = _check_int(n, "Gaussian number N", 1)
    ec = _eccodes()
    sample = f"reduced_gg_pl_{n}_grib2"
    try:
        h = ec.codes_grib_new_from_samples(sample)
    except ec.GribInternalError:
        raise ValueError(
            f"N{n}: ecCodes has no sample {sample!r} to give the pl of this classic reduced "
            f"Gaussian grid (ecCodes 2.50 ships N{', N'.join(map(str, ECCODES_CLASSIC_N))}); "
            f"use O{n}, or GaussianGrid(N={n}, pl=...) with the pl you need"
        ) from None
    try:
        pl = tuple(int(p) for p in ec.codes_get_array(h, "pl"))
        sample_n = int(ec.codes_get(h, "N"))
    finally:
        ec.codes_release(h)
    if sample_n != n or len(pl) != 2 * n:
        raise ValueError(f"ecCodes sample {sample!r} is not N{n} (N={sample_n}, {len(pl)} rows)")
    return pl


@dataclass(frozen=True, eq=False, repr=False)
class GaussianGrid(ModelGrid):
    """A global Gaussian grid: 2N rows at the Gaussian latitudes, north to south, with
    pl[i] points in row i at longitudes 0, 360/pl[i], ... (as ecCodes iterates them).

    `pl` of the octahedral rule gives O<N>, pl all 4N gives the regular F<N>,
    anything else is labelled N<N> (as ecCodes' gridName does); equality
    follows N and pl, not the label. Row edges are the parallels whose sines
    are the cumulative quadrature weights from the pole, so each row's band
    has the area of its weight (2π·w) and cells are pl[i] equal slices of it.
    """

    N: int
    pl: tuple[int, ...]

    def __post_init__(self) -> None:
        n = _check_int(self.N, "Gaussian number N", 1)
        object.__setattr__(self, "N", n)
        try:
            pl = tuple(int(p) for p in self.pl)
        except (TypeError, ValueError):
            raise ValueError(f"pl must be a sequence of integers, found {self.pl!r}") from None
        if len(pl) != 2 * n:
            raise ValueError(
                f"pl of a global N{n} Gaussian grid must have 2N = {2 * n} rows, found {len(pl)}"
            )
        bad = [(i, p) for i, p in enumerate(pl) if p < 1]
        if bad:
            raise ValueError(f"pl must be >= 1 in every row, found (row, pl) {bad[:5]}")
        object.__setattr__(self, "pl", pl)

    @classmethod
    def octahedral(cls, n: int) -> GaussianGrid:
        """O<n>, the grids of IFS's cubic-octahedral (TCo) truncations."""
        return cls(n, octahedral_pl(n))

    @classmethod
    def classic(cls, n: int) -> GaussianGrid:
        """N<n>, ECMWF's classic reduced Gaussian grid (pl from ecCodes' sample)."""
        return cls(n, classic_pl(n))

    @classmethod
    def regular(cls, n: int, nlon: int | None = None) -> GaussianGrid:
        """The regular Gaussian grid, F<n> with 4n points per row unless `nlon` is given."""
        n = _check_int(n, "Gaussian number N", 1)
        nlon = 4 * n if nlon is None else _check_int(nlon, "nlon", 1)
        return cls(n, (nlon,) * (2 * n))

    # -- labels ------------------------------------------------------------
    @property
    def is_octahedral(self) -> bool:
        return self.pl == octahedral_pl(self.N)

    @property
    def is_regular(self) -> bool:
        return len(set(self.pl)) == 1

    @property
    def name(self) -> str:
        if self.is_octahedral:
            return f"O{self.N}"
        if self.is_regular:
            nlon = self.pl[0]
            return f"F{self.N}" if nlon == 4 * self.N else f"F{self.N} ({nlon} per row)"
        return f"N{self.N}"

    # -- geometry ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (2 * self.N, self.pl[0]) if self.is_regular else (self.npoints,)

    @property
    def is_global(self) -> bool:
        return True

    @cached_property
    def points_per_row(self) -> np.ndarray:
        return _readonly(np.asarray(self.pl, dtype=np.int64))

    @property
    def row_latitudes(self) -> np.ndarray:
        return gaussian_latitudes(self.N)[0]

    @property
    def row_weights(self) -> np.ndarray:
        """Gauss–Legendre weight of each row (summing to 2): its band's share of sin φ."""
        return gaussian_latitudes(self.N)[1]

    @cached_property
    def row_sin_edges(self) -> np.ndarray:
        w = self.row_weights[: self.N]
        north = 1.0 - np.concatenate([[0.0], np.cumsum(w)])
        north[-1] = 0.0  # the equator, exactly (the weights sum to 1 up to rounding)
        return _readonly(np.concatenate([north, -north[-2::-1]]))

    @cached_property
    def row_lat_edges(self) -> np.ndarray:
        return _readonly(np.degrees(np.arcsin(np.clip(self.row_sin_edges, -1.0, 1.0))))

    @cached_property
    def row_dlon(self) -> np.ndarray:
        return _readonly(360.0 / self.points_per_row)

    @cached_property
    def longitudes(self) -> np.ndarray:
        pl = self.points_per_row
        starts = np.concatenate([[0], np.cumsum(pl)[:-1]])
        j = np.arange(self.npoints) - np.repeat(starts, pl)
        return _readonly(j * 360.0 / np.repeat(pl, pl))  # ecCodes' j * 360 / pl, bit for bit

    def canonical(self) -> dict[str, Any]:
        return {"type": "gaussian", "N": self.N, "pl": list(self.pl)}


# ---------------------------------------------------------------------------
# Names and GRIB messages
# ---------------------------------------------------------------------------

_NAME_RE = re.compile(r"([A-Za-z]+)\s*(\S*)")
_LL_RE = re.compile(r"([^/xX]+)[/xX]([^/xX]+)")


def grid_from_name(name: str) -> ModelGrid:
    """A grid from its usual name: "O96" (octahedral), "N320" (classic reduced Gaussian),
    "F96" (regular Gaussian), or "dlon/dlat" such as "1/1" or "0.25x0.25" (a global
    regular lat–lon grid from 90 N and 0 E, points on the poles, as MIR reads it)."""
    if not isinstance(name, str):
        raise ValueError(f"grid name must be a string, found {name!r}")
    text = name.strip()
    ll = _LL_RE.fullmatch(text)
    if ll:
        try:
            dlon, dlat = float(ll.group(1)), float(ll.group(2))
        except ValueError:
            raise ValueError(
                f"grid name {name!r}: expected 'dlon/dlat' in degrees such as '1/1' or '0.25/0.25'"
            ) from None
        if not (dlon > 0 and dlat > 0):
            raise ValueError(
                f"grid name {name!r}: increments must be > 0 degrees, found dlon={dlon} dlat={dlat}"
            )
        return RegularLatLonGrid.global_grid(dlat, dlon)
    m = _NAME_RE.fullmatch(text)
    expected = (
        "expected O<N> (octahedral, e.g. O96), N<N> (classic reduced Gaussian, e.g. N320), "
        "F<N> (regular Gaussian, e.g. F96) or 'dlon/dlat' (regular lat-lon, e.g. '1/1')"
    )
    if not m or m.group(1).upper() not in ("O", "N", "F"):
        raise ValueError(f"unknown grid name {name!r}: {expected}")
    letter, number = m.group(1).upper(), m.group(2)
    if not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"grid name {name!r}: the Gaussian number after {letter!r} must be an integer >= 1 "
            f"(the number of rows between a pole and the equator), found {number!r}"
        )
    n = int(number)
    if letter == "O":
        return GaussianGrid.octahedral(n)
    if letter == "N":
        return GaussianGrid.classic(n)
    return GaussianGrid.regular(n)


def grid_from_grib(source: int | str | os.PathLike[str]) -> ModelGrid:
    """The grid of a GRIB message: an ecCodes handle, or the first message of a file.

    gridType regular_ll, regular_gg and (global) reduced_gg are understood,
    scanning west to east in rows (the usual and ecCodes' default). Increments
    are derived from the first and last points, as ecCodes' iterator does,
    since iDirectionIncrement is rounded (1/3° is stored as 0.333333); a
    longitude span that is global within the edition's precision becomes
    exactly 360/Ni. (ecCodes 2.50's own iterator steps latitudes by the rounded
    jDirectionIncrement and pins the last row on the last latitude: for a 1/3°
    grid its rows drift by up to 1.8e-4° and its last step is 0.333512°; the
    even rows here are the grid the message means.)
    """
    ec = _eccodes()
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            f = open(path, "rb")
        except OSError as e:
            raise ValueError(f"cannot read GRIB file {path!r}: {e.strerror}") from None
        with f:
            try:
                h = ec.codes_grib_new_from_file(f)
            except ec.GribInternalError as e:
                raise ValueError(f"{path}: not a readable GRIB file ({e})") from None
            if h is None:
                raise ValueError(f"{path}: no GRIB message in the file")
            try:
                return _grid_from_handle(ec, h, path)
            finally:
                ec.codes_release(h)
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return _grid_from_handle(ec, int(source), f"GRIB handle {int(source)}")
    raise TypeError(f"grid_from_grib takes an ecCodes handle or a path, found {source!r}")


def _grid_from_handle(ec: Any, h: int, where: str) -> ModelGrid:
    def get(key: str) -> Any:
        try:
            return ec.codes_get(h, key)
        except ec.GribInternalError as e:
            raise ValueError(f"{where}: cannot read GRIB key {key!r} ({e})") from None

    def flag(key: str) -> int:
        return int(get(key)) if ec.codes_is_defined(h, key) else 0

    grid_type = get("gridType")
    if grid_type not in SUPPORTED_GRIB_GRID_TYPES:
        raise ValueError(
            f"{where}: GRIB gridType {grid_type!r} is not supported; expected one of "
            f"{', '.join(SUPPORTED_GRIB_GRID_TYPES)}"
        )
    for key in ("iScansNegatively", "jPointsAreConsecutive", "alternativeRowScanning"):
        if flag(key):
            raise ValueError(f"{where}: {key} = 1 is not supported (rows must run west to east, "
                             "one after the other)")  # fmt: skip
    edition = int(get("edition"))
    tol = 1.5 * (1e-3 if edition == 1 else 1e-6)  # GRIB1 stores millidegrees, GRIB2 micro
    lat1 = float(get("latitudeOfFirstGridPointInDegrees"))
    lat2 = float(get("latitudeOfLastGridPointInDegrees"))
    lon1 = float(get("longitudeOfFirstGridPointInDegrees"))
    lon2 = float(get("longitudeOfLastGridPointInDegrees"))
    south_first = bool(flag("jScansPositively"))

    if grid_type == "regular_ll":
        ni, nj = int(get("Ni")), int(get("Nj"))
        if ni < 1 or nj < 1:
            raise ValueError(f"{where}: Ni and Nj must be >= 1, found Ni={ni} Nj={nj}")
        if (lat2 < lat1) == south_first and nj > 1:
            raise ValueError(
                f"{where}: jScansPositively={int(south_first)} contradicts the first and last "
                f"latitudes {lat1} and {lat2}"
            )
        if lon2 < lon1:  # the span crosses the GRIB2 wrap (e.g. -180 stored as 180)
            lon1 -= 360.0
        if ni > 1:
            dlon = (lon2 - lon1) / (ni - 1)
            if abs(lon2 - lon1 + dlon - 360.0) <= tol * 2:
                dlon = 360.0 / ni
        else:
            dlon = _grib_increment(get, flag, "iDirectionIncrementInDegrees", where)
        if nj > 1:
            dlat = abs(lat2 - lat1) / (nj - 1)
        else:
            dlat = _grib_increment(get, flag, "jDirectionIncrementInDegrees", where)
        return RegularLatLonGrid(
            lat_first=lat1, lon_first=lon1, dlat=dlat, dlon=dlon, nlat=nj, nlon=ni,
            south_first=south_first,
        )  # fmt: skip

    n = int(get("N"))
    if n < 1:
        raise ValueError(f"{where}: Gaussian number N must be >= 1, found {n}")
    if south_first:
        raise ValueError(f"{where}: Gaussian grids scanning south to north "
                         "(jScansPositively = 1) are not supported")  # fmt: skip
    if grid_type == "regular_gg":
        ni, nj = int(get("Ni")), int(get("Nj"))
        pl: tuple[int, ...] = (ni,) * nj
    else:
        pl = tuple(int(p) for p in ec.codes_get_array(h, "pl"))
    lats = gaussian_latitudes(n)[0]
    d = lats[0] - lats[1]
    global_ = (
        len(pl) == 2 * n
        and min(pl) >= 1
        and abs(lat1 - lats[0]) < d / 2
        and abs(lat2 - lats[-1]) < d / 2
        and abs(lon1) <= tol
        # ecCodes' own test: the last longitude within one equatorial spacing of 360 - that
        # (a sample whose pl was changed keeps its old longitudeOfLastGridPoint).
        and abs(lon2 - (360.0 - 360.0 / max(pl))) <= 360.0 / max(pl) + tol
    )
    if not global_:
        raise ValueError(
            f"{where}: only global Gaussian grids starting at 0 E are supported; this "
            f"{grid_type} N{n} message has {len(pl)} rows (global: {2 * n}), first/last "
            f"point ({lat1}, {lon1}) / ({lat2}, {lon2})"
        )
    return GaussianGrid(n, pl)


def _grib_increment(get: Any, flag: Any, key: str, where: str) -> float:
    """The increment of a single-point direction, which only the message itself states."""
    if not flag("ijDirectionIncrementGiven"):
        raise ValueError(f"{where}: a single point in a direction and no {key} given")
    d = float(get(key))
    if not d > 0:
        raise ValueError(f"{where}: {key} must be > 0, found {d}")
    return d


def _eccodes() -> Any:
    """ecCodes, imported when first needed (its import loads the C library)."""
    import eccodes

    return eccodes
