"""The data-cube layout shared by the world generator, training and the step loop.

One merged Zarr store (format 2, see `zarrstore`) per dataset, as the BSC work found best: chunks of
512 × 512 pixels and one step in time, `_ARRAY_DIMENSIONS` and CF attributes so
that `xarray.open_zarr` reads it. Training and the step loop read it with raw
zarr indexing (no dask), one time slice at a time.

    static, high res   land_mask elevation slope koppen igbp  (lat, lon)
                       (the emulator's LAI climatology is derived from lai)
    yearly, coarse     luh2_frac     (year, luh2_state, lat_coarse, lon_coarse)
                       secma secmb   (year, lat_coarse, lon_coarse)
                       co2           (year)
    monthly, coarse    t2m tp ssrd   (time, lat_coarse, lon_coarse)
    yearly, high res   lu lc         (year, lat, lon)
    monthly, high res  lai           (time, lat, lon)

Users with real data (HILDA+, LUH2, ESA CCI, ERA5, Copernicus LAI) write the
same layout; nothing downstream knows that the default cube is synthetic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from tqdm import tqdm

from . import catalog, zarrstore
from .grid import Grid, coarse_window
from .zarrstore import SPACE_CHUNK

FORMAT_VERSION = 1
REMEDY = "create one with `landbc world`"
log = logging.getLogger(__name__)

# The static maps a cube stores; the emulator's other static input, the LAI
# climatology, is derived from the cube's LAI (`Cube.lai_climatology`).
MAP_NAMES = tuple(v.name for v in catalog.STATIC_VARIABLES if v.name != catalog.LAI_CLIMATOLOGY)
YEARLY_FORCING = ("luh2_frac", "secma", "secmb", "co2")
MONTHLY_FORCING = ("t2m", "tp", "ssrd")
YEARLY_TRUTH = ("lu", "lc")
MONTHLY_TRUTH = ("lai",)


def month_index(year: int, month: int, first_year: int) -> int:
    """Index on the cube's monthly time axis of (year, month)."""
    return (year - first_year) * 12 + (month - 1)


def _dims(var: catalog.Variable, time_dim: str | None) -> list[str]:
    space = {
        catalog.HIGH: ["lat", "lon"],
        catalog.COARSE: ["lat_coarse", "lon_coarse"],
        catalog.SCALAR: [],
    }[var.grid]
    chan = ["luh2_state"] if var.channels else []
    return ([time_dim] if time_dim else []) + chan + space


def create_cube(path: str | Path, grid: Grid, years: tuple[int, int], attrs: dict) -> zarr.Group:
    """Create an empty cube for `grid` and the inclusive `years`; return the group.

    The caller fills the arrays and then calls `finalize_cube`. Existing stores
    are refused: a cube is written once.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"cube {path} exists already; remove it or choose another path")
    y0, y1 = years
    if y1 < y0:
        raise ValueError(f"years must be (first, last) with last >= first, found {years}")
    ny, nx = grid.shape
    h, w = grid.coarse_shape
    nyears = y1 - y0 + 1
    root = zarrstore.create_group(
        path,
        {
            "landbc_cube_format": FORMAT_VERSION,
            "grid": grid.to_dict(),
            "first_year": y0,
            "last_year": y1,
            "Conventions": "CF-1.8",
            **attrs,
        },
    )

    def coord(name, values, cf):
        zarrstore.add_coordinate(root, name, values, cf)

    coord("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"})
    coord("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"})
    coord("lat_coarse", grid.lat_coarse, {"units": "degrees_north", "long_name": "coarse latitude"})
    coord("lon_coarse", grid.lon_coarse, {"units": "degrees_east", "long_name": "coarse longitude"})
    coord("year", np.arange(y0, y1 + 1, dtype="int32"), {"long_name": "calendar year"})
    months = np.arange(f"{y0}-01", f"{y1 + 1}-01", dtype="datetime64[M]")
    days = (months.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype("int64")
    coord(
        "time",
        days,
        {
            "units": "days since 1970-01-01",
            "calendar": "proleptic_gregorian",
            "standard_name": "time",
            "long_name": "first day of the month",
        },
    )
    coord("luh2_state", np.array(catalog.LUH2_STATES, dtype="U5"), {"long_name": "LUH2 state"})

    def var(name, time_dim, n_time):
        v = catalog.variable(name)
        dims = _dims(v, time_dim)
        shape = []
        chunks = []
        for d in dims:
            n = {
                "year": n_time,
                "time": n_time,
                "luh2_state": len(catalog.LUH2_STATES),
                "lat": ny,
                "lon": nx,
                "lat_coarse": h,
                "lon_coarse": w,
            }[d]
            shape.append(n)
            chunks.append(
                1 if d in ("year", "time") else min(n, SPACE_CHUNK) if d in ("lat", "lon") else n
            )
        zarrstore.add_variable(root, name, dims, shape, chunks, v.dtype, 0, v.cf_attrs())

    for n in MAP_NAMES:
        var(n, None, 0)
    for n in YEARLY_FORCING + YEARLY_TRUTH:
        var(n, "year", nyears)
    for n in MONTHLY_FORCING + MONTHLY_TRUTH:
        var(n, "time", 12 * nyears)
    return root


def finalize_cube(path: str | Path) -> None:
    """Consolidate metadata so that readers open the store with one request."""
    zarrstore.consolidate(path)


@dataclass
class Cube:
    """Read access to a cube by (year, month), raw zarr indexing, numpy out."""

    path: Path
    root: zarr.Group
    grid: Grid
    first_year: int
    last_year: int

    @classmethod
    def open(cls, path: str | Path) -> Cube:
        path = Path(path)
        root = zarrstore.open_consolidated(path, "cube", REMEDY)
        fmt = root.attrs.get("landbc_cube_format")
        if fmt != FORMAT_VERSION:
            raise ValueError(
                f"{path}: landbc_cube_format expected {FORMAT_VERSION}, found {fmt} ({REMEDY})"
            )
        return cls(
            path,
            root,
            Grid.from_dict(root.attrs["grid"]),
            int(root.attrs["first_year"]),
            int(root.attrs["last_year"]),
        )

    @property
    def years(self) -> range:
        return range(self.first_year, self.last_year + 1)

    def _check_year(self, year: int) -> int:
        if not (self.first_year <= year <= self.last_year):
            raise ValueError(
                f"year {year} outside the cube {self.path} ({self.first_year}..{self.last_year})"
            )
        return year - self.first_year

    def _check_month(self, year: int, month: int) -> int:
        self._check_year(year)
        if not 1 <= month <= 12:
            raise ValueError(f"month must be 1..12, found {month}")
        return month_index(year, month, self.first_year)

    def maps(self, window: tuple[slice, slice] | None = None) -> dict[str, np.ndarray]:
        """The static maps the cube stores (land mask, elevation, slope, Köppen, IGBP)."""
        sl = window or (slice(None), slice(None))
        return {n: self.root[n][sl] for n in MAP_NAMES}

    def lai_climatology(
        self,
        years: tuple[int, int] | None = None,
        window: tuple[slice, slice] | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Per-pixel mean LAI of each calendar month over the inclusive `years`
        (default: all the cube's years), (12, ny, nx) float32. Summed in float64
        in year order, so the same years give the same bytes everywhere."""
        y0, y1 = (self.first_year, self.last_year) if years is None else years
        self._check_year(y0)
        self._check_year(y1)
        if y1 < y0:
            raise ValueError(f"LAI climatology years must be (first, last), found {years}")
        sl = window or (slice(None), slice(None))
        total = None
        for y in tqdm(range(y0, y1 + 1), desc="LAI climatology", leave=False, disable=not progress):
            t = month_index(y, 1, self.first_year)
            block = np.asarray(self.root["lai"][(slice(t, t + 12), *sl)], dtype=np.float64)
            total = block if total is None else total + block
        return (total / (y1 - y0 + 1)).astype(np.float32)

    def climatology_years(self, trained: tuple[int, int] | None) -> tuple[int, int]:
        """The years of the LAI climatology to give a bundle trained on the years
        `trained` (`BoundaryConditionEmulator.lai_climatology_years`): those the cube
        holds, as in training; all the cube's years where it holds none (logged)."""
        if trained is not None:
            y0, y1 = max(trained[0], self.first_year), min(trained[1], self.last_year)
            if y0 <= y1:
                if (y0, y1) != tuple(trained):
                    log.warning(
                        "LAI climatology of %d-%d: the cube %s holds only these of the "
                        "bundle's training years %d-%d", y0, y1, self.path, *trained
                    )  # fmt: skip
                return y0, y1
        log.warning(
            "LAI climatology of all the cube's years %d-%d: the cube %s holds none of the "
            "bundle's training years (%s)", self.first_year, self.last_year, self.path, trained
        )  # fmt: skip
        return self.first_year, self.last_year

    def static(
        self,
        window: tuple[slice, slice] | None = None,
        climatology_years: tuple[int, int] | None = None,
    ) -> dict[str, np.ndarray]:
        """The emulator's static inputs: the stored maps and the LAI climatology of
        `climatology_years` (default all the cube's years; give a bundle's training
        years, `BoundaryConditionEmulator.lai_climatology_years`, when scoring)."""
        return {
            **self.maps(window),
            catalog.LAI_CLIMATOLOGY: self.lai_climatology(climatology_years, window),
        }

    def forcing(
        self, year: int, month: int, window: tuple[slice, slice] | None = None
    ) -> dict[str, np.ndarray]:
        """Coarse forcing valid for (year, month): that month's climate and that year's
        LUH2/CO2; with a (coarse-aligned, high-res) `window`, only its coarse cells."""
        yi = self._check_year(year)
        ti = self._check_month(year, month)
        f = self.grid.coarse_factor
        cw = coarse_window(window, f) if window else (slice(None), slice(None))
        out = {n: self.root[n][(yi, ..., *cw)] for n in ("luh2_frac", "secma", "secmb")}
        out["co2"] = np.asarray(self.root["co2"][yi], dtype=np.float32).reshape(())
        out.update({n: self.root[n][(ti, *cw)] for n in MONTHLY_FORCING})
        return out

    def truth(
        self,
        year: int,
        month: int,
        window: tuple[slice, slice] | None = None,
        names: tuple[str, ...] = YEARLY_TRUTH + MONTHLY_TRUTH,
    ) -> dict[str, np.ndarray]:
        """High-res LU and LC of `year` and LAI of (year, month) (those in `names`)."""
        yi = self._check_year(year)
        ti = self._check_month(year, month)
        sl = window or (slice(None), slice(None))
        return {n: self.root[n][(ti if n in MONTHLY_TRUTH else yi, *sl)] for n in names}
