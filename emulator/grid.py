"""Regular latitude–longitude grids and the global tile lattice.

A `Grid` is a box at a resolution, with a coarse forcing grid an integer
factor coarser. Rows run north to south (as GRIB regular_ll scans and as the
source maps are stored), columns west to east. Every grid is a window of one
global lattice at its resolution: `origin` gives the global (row, col) of its
north-west pixel. The stepper places its tiles on that global lattice
(`tiling`), so a block of a domain computes the tiles the whole domain would
there (DESIGN.md §6).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-6


def _as_int(x: float, what: str) -> int:
    n = round(x)
    if abs(x - n) > 1e-4:
        raise ValueError(f"{what} must be a whole number of cells, found {x:.6f}")
    return int(n)


@dataclass(frozen=True)
class Grid:
    """A lat–lon box [lat_south, lat_north] × [lon_west, lon_east] at `res` degrees.

    The coarse grid has cells of `coarse_factor` × `coarse_factor` pixels and is
    aligned with the global coarse lattice (the box edges fall on coarse cell
    edges), as LUH2's 0.25° grid is aligned with a 0.05° grid.
    """

    lat_south: float
    lat_north: float
    lon_west: float
    lon_east: float
    res: float
    coarse_factor: int = 1

    def __post_init__(self) -> None:
        if not (self.res > 0):
            raise ValueError(f"grid res must be > 0 degrees, found {self.res}")
        if not (-90 <= self.lat_south < self.lat_north <= 90):
            raise ValueError(
                f"grid latitudes must satisfy -90 <= lat_south < lat_north <= 90, "
                f"found lat_south={self.lat_south}, lat_north={self.lat_north}"
            )
        if not (-180 <= self.lon_west < self.lon_east <= 180):
            raise ValueError(
                f"grid longitudes must satisfy -180 <= lon_west < lon_east <= 180, "
                f"found lon_west={self.lon_west}, lon_east={self.lon_east}"
            )
        if not (isinstance(self.coarse_factor, int) and self.coarse_factor >= 1):
            raise ValueError(f"coarse_factor must be an integer >= 1, found {self.coarse_factor}")
        f = self.coarse_factor
        ny, nx = self.shape
        r0, c0 = self.origin
        for name, n in (("rows", ny), ("columns", nx), ("origin row", r0), ("origin col", c0)):
            if n % f:
                raise ValueError(
                    f"grid {name} ({n}) must be a multiple of coarse_factor {f} so that "
                    f"coarse cells align with the global coarse lattice"
                )

    # -- sizes -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        ny = _as_int((self.lat_north - self.lat_south) / self.res, "latitude extent / res")
        nx = _as_int((self.lon_east - self.lon_west) / self.res, "longitude extent / res")
        return ny, nx

    @property
    def coarse_shape(self) -> tuple[int, int]:
        ny, nx = self.shape
        return ny // self.coarse_factor, nx // self.coarse_factor

    @property
    def origin(self) -> tuple[int, int]:
        """Global (row, col) of the north-west pixel on the lattice at this resolution."""
        return (
            _as_int((90.0 - self.lat_north) / self.res, "(90 - lat_north) / res"),
            _as_int((self.lon_west + 180.0) / self.res, "(lon_west + 180) / res"),
        )

    @property
    def coarse_res(self) -> float:
        return self.res * self.coarse_factor

    # -- coordinates -------------------------------------------------------
    @property
    def lat(self) -> np.ndarray:
        """Pixel-centre latitudes, north to south."""
        return self.lat_north - (np.arange(self.shape[0]) + 0.5) * self.res

    @property
    def lon(self) -> np.ndarray:
        """Pixel-centre longitudes, west to east."""
        return self.lon_west + (np.arange(self.shape[1]) + 0.5) * self.res

    @property
    def lat_coarse(self) -> np.ndarray:
        return self.lat_north - (np.arange(self.coarse_shape[0]) + 0.5) * self.coarse_res

    @property
    def lon_coarse(self) -> np.ndarray:
        return self.lon_west + (np.arange(self.coarse_shape[1]) + 0.5) * self.coarse_res

    def pixel_area_km2(self) -> np.ndarray:
        """Area of each row's pixels (km²), for area-weighted statistics."""
        r = 6371.0
        dlat = math.radians(self.res)
        return (r * r * dlat * dlat * np.cos(np.radians(self.lat))).astype(np.float64)

    # -- windows -----------------------------------------------------------
    def window(self, row0: int, row1: int, col0: int, col1: int) -> Grid:
        """The sub-grid of rows [row0, row1) and columns [col0, col1)."""
        ny, nx = self.shape
        if not (0 <= row0 < row1 <= ny and 0 <= col0 < col1 <= nx):
            raise ValueError(f"window rows [{row0},{row1}) cols [{col0},{col1}) outside {ny}x{nx}")
        return Grid(
            lat_south=round(self.lat_north - row1 * self.res, 9),
            lat_north=round(self.lat_north - row0 * self.res, 9),
            lon_west=round(self.lon_west + col0 * self.res, 9),
            lon_east=round(self.lon_west + col1 * self.res, 9),
            res=self.res,
            coarse_factor=self.coarse_factor,
        )

    def coarsen(self, field: np.ndarray) -> np.ndarray:
        """Block mean of a high-res field (..., ny, nx) onto the coarse grid."""
        f = self.coarse_factor
        h, w = self.coarse_shape
        return field.reshape(*field.shape[:-2], h, f, w, f).mean(axis=(-3, -1))

    def refine(self, field: np.ndarray) -> np.ndarray:
        """Nearest (block) upsampling of a coarse field (..., h, w) to the high-res grid."""
        f = self.coarse_factor
        return np.repeat(np.repeat(field, f, axis=-2), f, axis=-1)

    # -- (de)serialisation ---------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        try:
            return cls(
                **{
                    k: d[k]
                    for k in (
                        "lat_south",
                        "lat_north",
                        "lon_west",
                        "lon_east",
                        "res",
                        "coarse_factor",
                    )
                }
            )
        except KeyError as e:
            raise ValueError(f"grid description lacks key {e.args[0]!r}: {d}") from None

    def describe(self) -> str:
        ny, nx = self.shape
        return (
            f"{self.lat_south}..{self.lat_north}N x {self.lon_west}..{self.lon_east}E "
            f"at {self.res} deg ({ny}x{nx} px, coarse x{self.coarse_factor})"
        )


class BoxError(ValueError):
    """A box that is not a window of a grid; `edge` names the offending edge."""

    def __init__(self, edge: str, detail: str) -> None:
        super().__init__(f"{edge}: {detail}")
        self.edge = edge
        self.detail = detail


def box_window(grid: Grid, box: tuple[float, float, float, float]) -> tuple[slice, slice]:
    """The (rows, cols) slices of `box` = (lat_south, lat_north, lon_west, lon_east)
    on `grid`. Its edges must be pixel edges of the grid, on coarse cell edges (so
    the forcing window is whole cells), and inside the grid."""
    ny, nx = grid.shape
    f = grid.coarse_factor
    edges = {
        "lat_south": ((grid.lat_north - box[0]) / grid.res, grid.lat_north, ny),
        "lat_north": ((grid.lat_north - box[1]) / grid.res, grid.lat_north, ny),
        "lon_west": ((box[2] - grid.lon_west) / grid.res, grid.lon_west, nx),
        "lon_east": ((box[3] - grid.lon_west) / grid.res, grid.lon_west, nx),
    }
    idx = {}
    for (edge, (x, ref, n)), value in zip(edges.items(), box, strict=True):
        k = round(x)
        if abs(x - k) > 1e-6 * max(1.0, abs(x)):
            raise BoxError(edge, f"expected an edge of the grid (multiples of {grid.res} deg "
                                 f"from {ref}), found {value}")  # fmt: skip
        if k % f:
            raise BoxError(edge, f"expected an edge of the coarse forcing grid (multiples of "
                                 f"{grid.res * f:g} deg), found {value}")  # fmt: skip
        if not 0 <= k <= n:
            raise BoxError(edge, f"expected a value inside the grid ({grid.lat_south}.."
                                 f"{grid.lat_north} N, {grid.lon_west}..{grid.lon_east} E), "
                                 f"found {value}")  # fmt: skip
        idx[edge] = k
    if idx["lat_north"] >= idx["lat_south"] or idx["lon_west"] >= idx["lon_east"]:
        raise BoxError("lat_south", f"expected a non-empty box, found {box}")
    return slice(idx["lat_north"], idx["lat_south"]), slice(idx["lon_west"], idx["lon_east"])


def coarse_window(window: tuple[slice, slice], factor: int) -> tuple[slice, slice]:
    """The coarse-grid slices of a coarse-aligned high-res window."""
    rows, cols = window
    return (slice(rows.start // factor, rows.stop // factor),
            slice(cols.start // factor, cols.stop // factor))  # fmt: skip


# The default demo domain: Europe at the MCD12C1 0.05° grid, coarse 0.25° (LUH2).
EUROPE = Grid(
    lat_south=35.0, lat_north=72.0, lon_west=-25.0, lon_east=45.0, res=0.05, coarse_factor=5
)
