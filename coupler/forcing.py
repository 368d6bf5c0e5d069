"""Where a run's monthly climate forcing comes from: the cube, or an ESM's files.

The emulator steps on coarse forcing (`landbc.emulator.cube.Cube.forcing`): the
year's LUH2 fractions, secondary-land ages and CO2, and the month's climate
t2m [K], tp [mm day-1] and ssrd [W m-2]. A land-surface modeller driving
landbc from a climate model wants that model's climate, not the cube's
reanalysis-like one, while statics, priors and LUH2/CO2 still come from the
cube. The `[forcing]` table's `climate` says which:

- ``"cube"`` (the default): everything from the cube, as before (`CubeForcing`).
- ``"grib"``: t2m/tp/ssrd from GRIB files on any grid ecCodes and
  `landbc.coupler.grids.grid_from_grib` understand (regular_ll, regular or
  reduced Gaussian such as O96), decoded by `gribio.read_forcing` (parameters
  and unit conversions: `gribio.FORCING_SOURCES`) (`GribClimate`).
- ``"cf"``: any NetCDF or Zarr store xarray opens, with CF metadata
  (`CfClimate`): variables found by `standard_name` (air_temperature;
  precipitation_flux or lwe_precipitation_rate;
  surface_downwelling_shortwave_flux_in_air), converted from their `units`
  attribute (`cf_unit_conversion`; a temperature in degC is *converted* to K,
  and logged), time decoded with cftime in the file's calendar (standard,
  noleap, 360_day, ...; a month is that of the time bounds' middle, or of the
  time stamp without bounds), on a regular lat/lon grid of 1-D coordinates
  (either latitude order, longitudes from 0..360 or -180..180).

Fields from files are on their own grid: they are remapped to the run's coarse
cells (`remap`, conservative by default, bilinear as an option) with weights
cached in the run's output folder (``remap/``). Missing source values (NaN, a
GRIB bitmap, a CF _FillValue) are left out through the remap's source mask, so
a coarse cell averages the valid values only; a coarse cell of the domain with
no valid value at all is an error, as is a remapped value outside the
catalog's valid range: a unit mistake (a temperature in °C read as K, a
monthly total read as a rate) must stop a run rather than feed the emulator.

Every month of the run is checked to be in the files before the first step
(`ForcingSource.check`), and the first month is remapped then too, so a missing
month or a grid that does not cover the domain fails the run at once, not at
month 17.

`export_forcing` writes the cube's climate on a model grid as monthly GRIB2
files (`landbc export-forcing`): what a host would hand over, and what the
tests and the O96 example read back.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landbc.emulator import catalog
from landbc.emulator.cube import MONTHLY_FORCING, Cube
from landbc.emulator.grid import Grid

from . import calendar as cal
from . import gribio, remap
from .calendar import YearMonth
from .grids import ModelGrid, RegularLatLonGrid, grid_from_name

log = logging.getLogger(__name__)

CUBE, GRIB, CF = "cube", "grib", "cf"
CLIMATE_SOURCES = (CUBE, GRIB, CF)
CLIMATE_VARIABLES = MONTHLY_FORCING  # t2m, tp, ssrd
REMAP_METHODS = remap.METHODS  # conservative, bilinear
DEFAULT_REMAP = "conservative"
METHOD = "conservative"  # export_forcing: coarse cells to a model grid, area-weighted

# CF standard names of each climate variable (`CfClimate`).
CF_STANDARD_NAMES: dict[str, tuple[str, ...]] = {
    "t2m": ("air_temperature",),
    "tp": ("precipitation_flux", "lwe_precipitation_rate"),
    "ssrd": ("surface_downwelling_shortwave_flux_in_air",),
}


class ForcingError(ValueError):
    """Forcing that cannot be read or used as asked; the message names the variable,
    month and file, and what was expected."""


def _where(files: Sequence[str | os.PathLike[str]], limit: int = 3) -> str:
    names = [os.fspath(f) for f in files]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _months_text(months: Iterable[YearMonth], limit: int = 6) -> str:
    ms = sorted(months)
    if not ms:
        return "none"
    text = ", ".join(cal.format_month(*m) for m in ms[:limit])
    return text + (f" ... ({len(ms)} months)" if len(ms) > limit else "")


def expand_files(patterns: Sequence[str | os.PathLike[str]], key: str = "forcing.files"
                 ) -> list[Path]:  # fmt: skip
    """Files from paths and globs (already absolute), in the order given, each glob's
    matches sorted; a glob that matches nothing or a path that does not exist is an
    error naming it, since silently running on fewer months is worse."""
    out: list[Path] = []
    for p in patterns:
        text = os.fspath(p)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise ForcingError(f"[{key}]: expected files matching {text!r}, found none")
            out.extend(Path(m) for m in matches)
        elif not Path(text).exists():
            raise ForcingError(f"[{key}]: expected an existing file, found no {text!r}")
        else:
            out.append(Path(text))
    seen: set[Path] = set()
    unique = [f for f in out if not (f in seen or seen.add(f))]
    if not unique:
        raise ForcingError(f"[{key}]: expected at least one file, found an empty list")
    return unique


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


class ForcingSource(ABC):
    """The coarse forcing of one month for the emulator (`emu.step`), on the run's domain."""

    kind: str

    def __init__(self, cube: Cube, window: tuple[slice, slice] | None) -> None:
        self.cube = cube
        self.window = window

    def check(self, months: Sequence[YearMonth]) -> None:  # noqa: B027 - optional hook
        """Fail now if some month of `months` cannot be given (the cube's years are
        checked by the driver)."""

    @abstractmethod
    def forcing(self, year: int, month: int) -> dict[str, np.ndarray]:
        """The month's forcing as `Cube.forcing` gives it (same names, shapes, float32)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the run's log."""


class CubeForcing(ForcingSource):
    """Everything from the cube: the behaviour of a run without `climate`."""

    kind = CUBE

    def forcing(self, year: int, month: int) -> dict[str, np.ndarray]:
        return self.cube.forcing(year, month, self.window)

    def describe(self) -> str:
        return f"forcing from the cube {self.cube.path}"


class RemappedClimate(ForcingSource):
    """t2m/tp/ssrd from files on their own grid, remapped to the run's coarse cells;
    the yearly forcing (LUH2, secondary land, CO2) still from the cube.

    Subclasses index their files (`_index`: variable -> month -> file) and read one
    field (`_read`: values on the source grid in landbc's units, NaN = missing)."""

    def __init__(
        self,
        cube: Cube,
        window: tuple[slice, slice] | None,
        domain: Grid,
        files: Sequence[str | os.PathLike[str]],
        *,
        method: str = DEFAULT_REMAP,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(cube, window)
        if method not in REMAP_METHODS:
            choices = ", ".join(map(repr, REMAP_METHODS))
            raise ForcingError(f"[forcing.remap]: expected one of {choices}, found {method!r}")
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ForcingError("[forcing.files]: expected at least one file, found none")
        self.domain = domain
        self.target = RegularLatLonGrid.from_emulator_grid(domain, coarse=True)
        self.method = method
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._weights: dict[tuple[str, str], remap.RemapWeights] = {}
        self._months: list[YearMonth] = []
        self.index: dict[str, dict[YearMonth, str]] = self._index()

    @abstractmethod
    def _index(self) -> dict[str, dict[YearMonth, str]]: ...

    @abstractmethod
    def _read(self, name: str, ym: YearMonth) -> tuple[np.ndarray, ModelGrid, str]:
        """(values on the source grid in landbc's units, the grid, where they came from)."""

    @property
    def months(self) -> list[YearMonth]:
        """Months present for every climate variable."""
        common = set.intersection(*(set(self.index[n]) for n in CLIMATE_VARIABLES))
        return sorted(common)

    def check(self, months: Sequence[YearMonth]) -> None:
        """Every month for every variable is in the files (a ForcingError lists what is
        missing and what is there); then the first month is read and remapped, so a
        grid that misses the domain or a unit error also fails before the first step."""
        self._months = list(months)
        for name in CLIMATE_VARIABLES:
            have = self.index[name]
            missing = [m for m in months if m not in have]
            if missing:
                raise ForcingError(
                    f"[forcing.files]: {name}: the run needs {_months_text(months)}; "
                    f"expected every month in the files, found no {name} for "
                    f"{_months_text(missing)} in {_where(self.files)} (months there: "
                    f"{_months_text(have)})"
                )
        if months:
            for name in CLIMATE_VARIABLES:
                self.climate(name, *months[0])

    def climate(self, name: str, year: int, month: int) -> np.ndarray:
        """One climate variable of (year, month) on the run's coarse cells (float32)."""
        ym = (year, month)
        if ym not in self.index[name]:
            raise ForcingError(f"{name}: no field for {cal.format_month(*ym)} in "
                               f"{_where(self.files)}")  # fmt: skip
        values, grid, where = self._read(name, ym)
        return self._remap(name, ym, values, grid, where)

    def forcing(self, year: int, month: int) -> dict[str, np.ndarray]:
        out = self.cube.forcing(year, month, self.window)
        for name in CLIMATE_VARIABLES:
            out[name] = self.climate(name, year, month)
        return out

    def _weights_for(self, grid: ModelGrid, valid: np.ndarray) -> remap.RemapWeights:
        mask = None if valid.all() else valid.reshape(grid.shape)
        key = (grid.key(), "" if mask is None else remap.mask_sha256(mask))
        w = self._weights.get(key)
        if w is None:
            w = remap.cached_weights(grid, self.target, self.method, source_mask=mask,
                                     cache_dir=self.cache_dir)  # fmt: skip
            self._weights[key] = w
            partly = int(np.count_nonzero((w.coverage < 1 - 1e-9) & ~w.empty_rows))
            if partly:  # a regional file that ends inside the domain: said once per grid
                log.warning("%d coarse cells of the domain are only partly inside %s; "
                            "their forcing averages the part inside", partly,
                            grid.describe())  # fmt: skip
        return w

    def _remap(self, name: str, ym: YearMonth, values: np.ndarray, grid: ModelGrid,
               where: str) -> np.ndarray:  # fmt: skip
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        valid = np.isfinite(flat)
        month = cal.format_month(*ym)
        if not valid.any():
            raise ForcingError(f"{name} {month} ({where}): every value is missing")
        w = self._weights_for(grid, valid)
        empty = w.empty_rows
        if empty.any():
            raise ForcingError(
                f"{name} {month} ({where}): {int(empty.sum())} of {w.n_target} coarse cells of "
                f"the run's domain {self.domain.describe()} have no valid source value on "
                f"{grid.describe()}; expected the file to cover the domain with values "
                f"(missing or outside the file's grid)"
            )
        out = np.asarray(remap.apply(w, np.where(valid, flat, 0.0)), dtype=np.float64)
        var = catalog.variable(name)
        lo, hi = float(out.min()), float(out.max())
        if lo < var.valid_min or hi > var.valid_max:
            raise ForcingError(
                f"{name} {month} ({where}): remapped values {lo:.4g}..{hi:.4g} {var.units}; "
                f"expected {var.valid_min:g}..{var.valid_max:g} {var.units} (are the file's "
                f"units what its metadata says?)"
            )
        return out.reshape(self.target.shape).astype(np.float32)

    def describe(self) -> str:
        return (
            f"climate (t2m, tp, ssrd) from {len(self.files)} {self.kind} file(s) "
            f"{_where(self.files)}, remapped {self.method} to the {self.target.nlat}x"
            f"{self.target.nlon} coarse cells (weights cached in {self.cache_dir}); "
            f"LUH2/CO2 from the cube {self.cube.path}"
        )


class GribClimate(RemappedClimate):
    """t2m/tp/ssrd from GRIB (`gribio.read_forcing`), on any grid it reads.

    The files are indexed from their headers when the source is built; a step
    decodes only the files holding its month (all the run's months in those
    files at once, so a single multi-month file is decoded once, not per step)."""

    kind = GRIB

    def _index(self) -> dict[str, dict[YearMonth, str]]:
        try:
            return gribio.forcing_index(self.files, variables=CLIMATE_VARIABLES)
        except gribio.GribError as e:
            raise ForcingError(f"[forcing.files]: {e}") from None

    _cached: tuple[tuple[str, ...], gribio.GribForcing] | None = None

    def _read(self, name: str, ym: YearMonth) -> tuple[np.ndarray, ModelGrid, str]:
        files = tuple(sorted({self.index[n][ym] for n in CLIMATE_VARIABLES if ym in self.index[n]}))
        if self._cached is None or self._cached[0] != files or ym not in self._cached[1].months:
            inside = set(files)
            wanted = [
                m
                for m in (self._months or [ym])
                if all(self.index[n].get(m) in inside for n in CLIMATE_VARIABLES)
            ]
            if ym not in wanted:
                wanted.append(ym)
            try:
                fo = gribio.read_forcing(files, variables=CLIMATE_VARIABLES, months=wanted,
                                         check_range=False)  # fmt: skip
            except gribio.GribError as e:
                raise ForcingError(f"[forcing.files]: {e}") from None
            self._cached = (files, fo)
        fo = self._cached[1]
        src = fo.sources[name][fo.months.index(ym)]
        return fo.field(name, *ym), fo.grid, f"{self.index[name][ym]}, {src}"


# ---------------------------------------------------------------------------
# CF NetCDF / Zarr
# ---------------------------------------------------------------------------

_CELSIUS = {"degc", "deg_c", "degree_c", "degrees_c", "degree_celsius", "degrees_celsius",
            "celsius", "°c"}  # fmt: skip
_KELVIN = {"k", "kelvin", "degk", "deg_k", "degree_k", "degrees_k", "degree_kelvin",
           "degrees_kelvin"}  # fmt: skip
_BASE_ALIASES = {
    "s": "s", "sec": "s", "second": "s", "seconds": "s",
    "d": "day", "day": "day", "days": "day",
    "m": "m", "meter": "m", "metre": "m", "meters": "m", "metres": "m",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "millimeters": "mm", "millimetres": "mm",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg",
    "w": "W", "watt": "W", "watts": "W",
}  # fmt: skip
_TOKEN_RE = re.compile(r"([a-z_]+)(-?\d+)?")
_LAT_UNITS = ("degrees_north", "degree_north", "degree_N", "degrees_N", "degreeN", "degreesN")
_LON_UNITS = ("degrees_east", "degree_east", "degree_E", "degrees_E", "degreeE", "degreesE")


def _unit_terms(units: str) -> tuple[tuple[str, int], ...] | None:
    """A unit string as sorted (base, exponent) terms, or None if it is not a product of
    the bases landbc knows ("kg m-2 s-1", "kg m**-2 s**-1", "mm/day", "W.m-2" all work)."""
    parts = units.strip().lower().replace("**", "").replace("^", "").split("/")
    terms: dict[str, int] = {}
    for i, part in enumerate(parts):
        tokens = [t for t in re.split(r"[\s.*·]+", part.strip()) if t]
        if i > 0 and len(tokens) != 1:
            return None  # "kg/m2 s" is ambiguous
        for tok in tokens:
            m = _TOKEN_RE.fullmatch(tok)
            if not m or m.group(1) not in _BASE_ALIASES:
                return None
            base = _BASE_ALIASES[m.group(1)]
            exp = int(m.group(2) or 1) * (1 if i == 0 else -1)
            terms[base] = terms.get(base, 0) + exp
    return tuple(sorted((b, e) for b, e in terms.items() if e))


_CF_FACTORS: dict[str, dict[tuple[tuple[str, int], ...] | None, float]] = {
    "tp": {
        _unit_terms("kg m-2 s-1"): 86400.0,  # 1 kg m-2 of water = 1 mm
        _unit_terms("kg m-2 day-1"): 1.0,
        _unit_terms("mm s-1"): 86400.0,
        _unit_terms("mm day-1"): 1.0,
        _unit_terms("m s-1"): 86400.0 * 1000.0,
        _unit_terms("m day-1"): 1000.0,
    },
    "ssrd": {_unit_terms("W m-2"): 1.0},
}
_CF_EXPECTED = {
    "t2m": "K (or degC, converted)",
    "tp": "kg m-2 s-1, mm day-1, mm s-1, m s-1 or m day-1",
    "ssrd": "W m-2",
}


def cf_unit_conversion(name: str, units: Any, where: str = "") -> tuple[float, float, str]:
    """(scale, offset, note) taking a CF variable in `units` to landbc's unit of `name`
    (value * scale + offset). A temperature in degC is converted to K (+273.15); units
    landbc does not know are a ForcingError naming the variable, file and both units."""
    text = str(units).strip() if units is not None else ""
    at = f" ({where})" if where else ""
    if name == "t2m":
        low = text.lower().replace(" ", "_")
        if low in _KELVIN:
            return 1.0, 0.0, "K"
        if low in _CELSIUS:
            return 1.0, 273.15, f"{text} converted to K (+273.15)"
    elif name in _CF_FACTORS:
        factor = _CF_FACTORS[name].get(_unit_terms(text)) if text else None
        if factor is not None:
            target = catalog.variable(name).units
            return factor, 0.0, (target if factor == 1.0 else f"{text} times {factor:g}")
    raise ForcingError(f"{name}{at}: units attribute {text!r} not understood; expected "
                       f"{_CF_EXPECTED.get(name, catalog.variable(name).units)}")  # fmt: skip


def _open_dataset(path: Path) -> Any:
    import xarray as xr

    zarr = path.is_dir() or path.suffix == ".zarr"
    try:
        # Times are decoded here with cftime (any CF calendar), not by xarray.
        return xr.open_dataset(path, engine="zarr" if zarr else None, decode_times=False,
                               mask_and_scale=True)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - xarray raises many types for unreadable files
        raise ForcingError(f"[forcing.files]: {path}: not readable by xarray as NetCDF or "
                           f"Zarr ({type(e).__name__}: {e})") from None  # fmt: skip


def _axis(ds: Any, dims: Sequence[str], kind: str) -> str | None:
    """The dim of `dims` that is the latitude (kind "lat") or longitude ("lon") axis: by
    its coordinate's standard_name, then its units, then its name."""
    std = {"lat": "latitude", "lon": "longitude"}[kind]
    units = {"lat": _LAT_UNITS, "lon": _LON_UNITS}[kind]
    names = {"lat": ("lat", "latitude"), "lon": ("lon", "longitude")}[kind]
    attrs = {d: (ds[d].attrs if d in ds.variables else {}) for d in dims}
    for test in (
        lambda d: attrs[d].get("standard_name") == std,
        lambda d: attrs[d].get("units") in units,
        lambda d: d.lower() in names,
    ):
        found = [d for d in dims if test(d)]
        if found:
            return found[0]
    return None


def _regular_axis(values: np.ndarray, what: str, where: str) -> tuple[float, float]:
    """(first, step) of an evenly spaced axis; a ForcingError otherwise."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ForcingError(f"{where}: {what} must be a 1-D coordinate of at least 2 values, "
                           f"found shape {v.shape}")  # fmt: skip
    d = np.diff(v)
    step = float(np.round(np.mean(d), 9))
    if step == 0 or np.abs(d - step).max() > 1e-4 * abs(step) + 1e-6:
        raise ForcingError(f"{where}: {what} must be evenly spaced (a regular lat/lon grid), "
                           f"found steps {d.min():g}..{d.max():g} degrees; regrid it or use "
                           f"GRIB for Gaussian grids")  # fmt: skip
    return float(np.round(v[0], 9)), step


class _CfVariable:
    """One CF variable's layout: which file, its name there, how to put its (lat, lon)
    values on a RegularLatLonGrid, and the unit conversion."""

    def __init__(self, path: Path, ds: Any, var: str, name: str) -> None:
        da = ds[var]
        where = f"{path}: {var}"
        self.path, self.var, self.name = path, var, name
        lat_dim, lon_dim = _axis(ds, da.dims, "lat"), _axis(ds, da.dims, "lon")
        if lat_dim is None or lon_dim is None:
            raise ForcingError(f"{where}: expected 1-D latitude and longitude dimensions "
                               f"(a regular lat/lon grid), found dims {da.dims}")  # fmt: skip
        # The time axis: the dim whose coordinate counts "<unit> since <date>"; any other
        # dim (a 2 m height, say) must have size 1.
        others = [d for d in da.dims if d not in (lat_dim, lon_dim)]
        times = [d for d in others
                 if d in ds.variables and "since" in str(ds[d].attrs.get("units", ""))]  # fmt: skip
        if len(times) != 1 or any(da.sizes[d] > 1 for d in others if d != times[0]):
            raise ForcingError(f"{where}: expected dims (time, lat, lon), time with units "
                               f"'<unit> since <date>', other dims of size 1; found "
                               f"{dict(da.sizes)}")  # fmt: skip
        self.time_dim = times[0]
        self.lat_dim, self.lon_dim = lat_dim, lon_dim
        lat0, dlat = _regular_axis(ds[lat_dim].values, "latitude", where)
        lon = np.asarray(ds[lon_dim].values, dtype=np.float64)
        if lon.size > 1 and np.any(np.diff(lon) <= 0):
            lon = np.unwrap(lon, period=360.0)  # 180..359, 0..179 -> 180..539
        lon0, dlon = _regular_axis(lon, "longitude", where)
        self.flip_lon = dlon < 0
        if self.flip_lon:
            lon0, dlon = lon0 + dlon * (lon.size - 1), -dlon
        self.grid = RegularLatLonGrid(lat_first=lat0, lon_first=lon0, dlat=abs(dlat), dlon=dlon,
                                      nlat=int(ds.sizes[lat_dim]), nlon=int(lon.size),
                                      south_first=dlat > 0)  # fmt: skip
        self.scale, self.offset, self.note = cf_unit_conversion(name, da.attrs.get("units"), where)
        self.months = _cf_months(ds, self.time_dim, where)

    def read(self, ds: Any, index: int) -> np.ndarray:
        da = ds[self.var].isel({self.time_dim: index})
        extra = [d for d in da.dims if d not in (self.lat_dim, self.lon_dim)]
        da = da.squeeze(extra).transpose(self.lat_dim, self.lon_dim)
        values = np.asarray(da.values, dtype=np.float64)
        if self.flip_lon:
            values = values[:, ::-1]
        return values * self.scale + self.offset


def _cf_months(ds: Any, time_dim: str, where: str) -> list[YearMonth]:
    """The calendar month of each time step: the middle of its bounds if the time has
    bounds (a monthly mean stamped at the end of its month is still that month), else
    the time stamp; decoded with cftime in the coordinate's calendar."""
    try:
        import cftime
    except ImportError:  # pragma: no cover - cftime is a dependency of the dev extra
        raise ForcingError(f"{where}: reading CF times needs cftime (pip install cftime)") from None
    t = ds[time_dim]
    units = t.attrs.get("units")
    calendar = t.attrs.get("calendar", "standard")
    if not isinstance(units, str) or "since" not in units:
        raise ForcingError(f"{where}: time coordinate {time_dim!r} needs units '<unit> since "
                           f"<date>', found {units!r}")  # fmt: skip
    values = np.asarray(t.values, dtype=np.float64).reshape(-1)
    bounds = t.attrs.get("bounds")
    if bounds and bounds in ds.variables:
        b = np.asarray(ds[bounds].values, dtype=np.float64)
        if b.shape == (values.size, 2):
            values = b.mean(axis=1)
    try:
        dates = cftime.num2date(values, units, calendar=calendar)
    except Exception as e:  # noqa: BLE001 - cftime raises ValueError and others
        raise ForcingError(f"{where}: time {time_dim!r} ({units!r}, calendar {calendar!r}) "
                           f"cannot be decoded: {e}") from None  # fmt: skip
    return [(int(d.year), int(d.month)) for d in np.atleast_1d(dates)]


class CfClimate(RemappedClimate):
    """t2m/tp/ssrd from CF NetCDF or Zarr files (see the module docstring)."""

    kind = CF

    def _index(self) -> dict[str, dict[YearMonth, str]]:
        self._datasets: dict[Path, Any] = {}
        self._layout: dict[str, dict[YearMonth, tuple[_CfVariable, int]]] = {
            n: {} for n in CLIMATE_VARIABLES
        }
        by_std = {s: n for n, names in CF_STANDARD_NAMES.items() for s in names}
        index: dict[str, dict[YearMonth, str]] = {n: {} for n in CLIMATE_VARIABLES}
        for path in self.files:
            ds = _open_dataset(path)
            self._datasets[path] = ds
            for var in ds.data_vars:
                name = by_std.get(ds[var].attrs.get("standard_name"))
                if name is None or ds[var].ndim < 2:
                    continue
                layout = _CfVariable(path, ds, str(var), name)
                if layout.note != catalog.variable(name).units:
                    log.info("%s: %s (%s) in %s", path, var, name, layout.note)
                for i, ym in enumerate(layout.months):
                    if ym in index[name]:
                        raise ForcingError(
                            f"[forcing.files]: {name}: two fields for {cal.format_month(*ym)}: "
                            f"in {index[name][ym]} and in {path} ({var})"
                        )
                    index[name][ym] = f"{path} ({var})"
                    self._layout[name][ym] = (layout, i)
        for name in CLIMATE_VARIABLES:
            if not index[name]:
                raise ForcingError(
                    f"[forcing.files]: {name}: expected a variable with standard_name "
                    f"{' or '.join(CF_STANDARD_NAMES[name])} in {_where(self.files)}, found none"
                )
        return index

    def _read(self, name: str, ym: YearMonth) -> tuple[np.ndarray, ModelGrid, str]:
        layout, i = self._layout[name][ym]
        values = layout.read(self._datasets[layout.path], i)
        return values, layout.grid, f"{layout.path} ({layout.var}, {layout.note})"


# ---------------------------------------------------------------------------
# From a run's config
# ---------------------------------------------------------------------------


def open_source(
    cube: Cube,
    window: tuple[slice, slice] | None,
    domain: Grid,
    *,
    climate: str = CUBE,
    files: Sequence[str | os.PathLike[str]] = (),
    method: str = DEFAULT_REMAP,
    cache_dir: str | Path | None = None,
    months: Sequence[YearMonth] | None = None,
) -> ForcingSource:
    """The forcing source of a run, checked for `months` (see `ForcingSource.check`).

    `files` are paths or globs (`expand_files`); `domain` is the run's grid, whose
    coarse cells the climate is remapped to; `cache_dir` keeps the remap weights."""
    if climate == CUBE:
        source: ForcingSource = CubeForcing(cube, window)
    elif climate in (GRIB, CF):
        cls = GribClimate if climate == GRIB else CfClimate
        source = cls(cube, window, domain, expand_files(files), method=method,
                     cache_dir=cache_dir)  # fmt: skip
    else:
        choices = ", ".join(map(repr, CLIMATE_SOURCES))
        raise ForcingError(f"[forcing.climate]: expected one of {choices}, found {climate!r}")
    if months is not None:
        source.check(months)
    return source


# ---------------------------------------------------------------------------
# The cube's climate on a model grid, as GRIB
# ---------------------------------------------------------------------------


def forcing_filename(year: int, month: int) -> str:
    """The name of a month's forcing file: ``forcing_YYYY-MM.grib2``."""
    return f"forcing_{cal.format_month(year, month)}.grib2"


def export_forcing(
    cube_path: str | Path,
    grid: str | ModelGrid,
    start: YearMonth,
    steps: int,
    out_dir: str | Path,
    *,
    direction: str = cal.FORWARD,
) -> list[Path]:
    """Write the cube's monthly climate (t2m, tp, ssrd) on `grid` (a `grid_from_name` name
    or a ModelGrid) as one GRIB2 file per month, ``<out_dir>/forcing_YYYY-MM.grib2``
    (`gribio.write_forcing`), for `steps` months from `start`.

    The coarse cells are remapped conservatively; a model cell the cube covers
    only partly gets the mean over the covered part, and cells outside the
    cube's domain are missing (a bitmap). Reading these files back into a run
    on the cube (`climate = "grib"`) then gives every coarse cell a value."""
    cube = Cube.open(cube_path)
    target = grid_from_name(grid) if isinstance(grid, str) else grid
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ForcingError(f"steps: expected an integer >= 1, found {steps!r}")
    months = cal.month_range(start, steps, direction)
    outside = [m for m in months if not cube.first_year <= m[0] <= cube.last_year]
    if outside:
        raise ForcingError(f"months {_months_text(outside)}: expected them inside the cube "
                           f"{cube.path} ({cube.first_year}-01..{cube.last_year}-12)")  # fmt: skip
    source = RegularLatLonGrid.from_emulator_grid(cube.grid, coarse=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights: dict[str, remap.RemapWeights] = {}
    paths = []
    for y, m in months:
        fields = {}
        coarse = cube.forcing(y, m)
        for name in CLIMATE_VARIABLES:
            values = np.asarray(coarse[name], dtype=np.float64)
            valid = np.isfinite(values)
            key = "" if valid.all() else remap.mask_sha256(valid)
            if key not in weights:
                mask = valid if key else None
                weights[key] = remap.compute_weights(source, target, METHOD, source_mask=mask)
            fields[name] = remap.apply(weights[key], np.where(valid, values, 0.0))
        path = out / forcing_filename(y, m)
        gribio.write_forcing(path, {(y, m): fields}, target)
        paths.append(path)
    n_cells = min(int(w.n_target - np.count_nonzero(w.empty_rows)) for w in weights.values())
    log.info("wrote %d forcing files %s..%s on %s (%d cells with values) into %s", len(paths),
             paths[0].name, paths[-1].name, target.describe(), n_cells, out)  # fmt: skip
    return paths


__all__ = [
    "CF",
    "CF_STANDARD_NAMES",
    "CLIMATE_SOURCES",
    "CLIMATE_VARIABLES",
    "CUBE",
    "DEFAULT_REMAP",
    "GRIB",
    "REMAP_METHODS",
    "CfClimate",
    "CubeForcing",
    "ForcingError",
    "ForcingSource",
    "GribClimate",
    "RemappedClimate",
    "cf_unit_conversion",
    "expand_files",
    "export_forcing",
    "forcing_filename",
    "open_source",
]
