"""GRIB2 boundary fields for host models, and monthly forcing read from GRIB.

Writing
-------
`encode_field` turns one field of the IFS land-surface parameters into one
GRIB2 message; `write_fields` writes several (parameters × months) into one
file, atomically. A host model of the IFS family reads these as they are:

==========  =======  ==================================  ===============  ============
shortName   paramId  meaning                             ecmwf-local      wmo
==========  =======  ==================================  ===============  ============
cvl         27       low vegetation cover (0–1)          192 / 128 / 27   2 / 0 / 53
cvh         28       high vegetation cover (0–1)         192 / 128 / 28   2 / 0 / 54
tvl         29       type of low vegetation (table 4.234) 192 / 128 / 29  2 / 0 / 57
tvh         30       type of high vegetation             192 / 128 / 30   2 / 0 / 58
lai_lv      66       LAI of low vegetation (m2 m-2)      192 / 128 / 66   2 / 0 / 55
lai_hv      67       LAI of high vegetation (m2 m-2)     192 / 128 / 67   2 / 0 / 56
lai         260373   leaf area index (WMO, m2 m-2)       (none)           2 / 0 / 28
==========  =======  ==================================  ===============  ============

(discipline / parameterCategory / parameterNumber.) Two encodings exist
because ecCodes versions disagree (REFERENCES.md, "Coupling to IFS-like
models"; checked again by tests/test_gribio.py):

- ``"ecmwf-local"`` (the default): ECMWF's local discipline 192, category
  128, number = paramId, with centre = ecmf. ecCodes 2.28 (Debian 12's
  command-line tools) and 2.50 (the PyPI wheels) both decode it as the IFS
  parameter (cvl, cvh, ...), instantaneous or statistically processed alike.
- ``"wmo"``: the WMO numbers that ecCodes 2.50 itself chooses. 2.28 decodes
  every one of them as paramId 0 ("unknown"), and 2.50 decodes the monthly
  *averages* of cvl/cvh/lai_lv/lai_hv/lai as its time-mean parameters
  avg_cvl (235081), avg_cvh (235082), avg_lai_lv (235085), avg_lai_hv
  (235086), avg_lai (235394); tvl/tvh ("mode") and instantaneous fields keep
  their IFS names. Use it for readers that want WMO numbers.

``lai`` has no ECMWF-local number (parameterNumber has 8 bits), so it is
always written in its WMO encoding, whichever `encoding` is asked; ecCodes
2.28 decodes it as paramId 0.

Time: a field describes a calendar month. ``statistic="average"`` (the default
for covers and LAI) is a product definition template 4.8 message:
typeOfStatisticalProcessing 0 (average), typeOfTimeIncrement 2, starting at
the 1st of the month 00 UTC (dataDate/dataTime) and ending at the 1st of the
next month 00 UTC (the end-of-overall-time-interval keys, which ecCodes
reports as validityDate/validityTime). ``statistic="mode"`` (the default for
the vegetation types, since an average of codes is no code) is the same with
typeOfStatisticalProcessing 101 (mode, WMO code table 4.10). Both ecCodes
versions then report stepType avg / mode and stepRange 0-<hours>.
``statistic="instant"`` is template 4.0, valid at the 1st of the month 00 UTC.

The length of the time range is, with ``time_unit="hours"`` (the default),
the days of the month in the `calendar` times 24 (744 for January; 672 or 696
for February in the standard calendar); with ``time_unit="month"`` it is
"1 month" (indicatorOfUnitForTimeRange 3), which is right in every calendar,
but ecCodes (2.28 and 2.50) then counts the month as 720 hours in stepRange
and endStep. The standard (proleptic Gregorian) calendar is the one landbc
runs in (`landbc.coupler.calendar`); "noleap"/"365_day", "all_leap"/"366_day"
and "360_day" change only the month lengths, and the end of the interval
stays the 1st of the next month, a date that exists in every calendar.

Values: missing values (NaN) are written with a bitmap (bitmapPresent = 1).
Packing is ``grid_simple`` at 16 bits per value by default, or
``grid_ccsds`` (lossless CCSDS compression of the same quantised integers;
needs an ecCodes built with libaec, as the PyPI wheels and Debian's are:
`ccsds_available`). Vegetation types are codes: they are packed with
decimalScaleFactor 0 and at least as many bits as their range needs, so that
every integer code survives exactly; the read-back check proves it.

Every message is decoded again after encoding (`verify_message`): every key
that was set, the grid (`landbc.coupler.grids.grid_from_grib` must give back
the grid written), the bitmap and the values to packing precision (codes
exactly). A difference is a `GribError` naming the key; nothing is written
then.

Reading
-------
`read_grib` decodes any message on a grid `grid_from_grib` understands into a
`GribField` (values on the file's grid with NaN where the bitmap says
missing, the period and the calendar month it describes); `to_dataset`
builds an xarray Dataset from such fields by hand (cfgrib is not needed).
`read_forcing` reads the monthly forcing of the emulator (see
`FORCING_SOURCES` for the GRIB parameters and unit conversions) into numpy
arrays in the units of `landbc.emulator.catalog` (t2m K, tp mm day-1,
ssrd W m-2); `forcing_index` says from the headers alone which file holds
which month, so that a run checks its period before the first step.

`write_forcing` (`encode_forcing_field` per message) is the other direction,
for hosts that hand landbc their climate as files and for tests: t2m as the
monthly average of 2t (167), tp and ssrd as accumulations over the month of
tp (228, m) and ssrd (169, J m-2) in the standard calendar, 24 bits per
value, NaN as a bitmap; `read_forcing` gives back the input to packing
precision (`landbc export-forcing` writes the cube's climate this way).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landbc.coupler.calendar import CALENDAR_ALIASES, YearMonth, add_months, format_month
from landbc.coupler.calendar import days_in_month as _calendar_days_in_month
from landbc.coupler.grids import GaussianGrid, ModelGrid, RegularLatLonGrid, grid_from_grib
from landbc.emulator import catalog
from landbc.emulator.grid import Grid

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

log = logging.getLogger(__name__)

ECMWF_LOCAL, WMO = "ecmwf-local", "wmo"
ENCODINGS = (ECMWF_LOCAL, WMO)
PACKINGS = ("grid_simple", "grid_ccsds")
AVERAGE, MODE, INSTANT = "average", "mode", "instant"
STATISTICS = (AVERAGE, MODE, INSTANT)
TIME_UNITS = ("hours", "month")
DEFAULT_BITS_PER_VALUE = 16

# Calendar names as CF spells them, aliases included (`calendar.CALENDAR_ALIASES`).
CALENDARS = tuple(CALENDAR_ALIASES)

# Code table 4.10 (type of statistical processing) and 4.11 (type of time increment).
_STAT_CODE = {AVERAGE: 0, MODE: 101}
_TIME_INCREMENT_SAME_START = 2  # "same start time of forecast, forecast time incremented"
_HOUR, _MONTH_UNIT = 1, 3  # code table 4.4
_ECMF = 98
_MISSING_VALUE = 9999.0


class GribError(ValueError):
    """A field, option or file that cannot be written or read as asked; the message says
    which variable or key and what was expected."""


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GribParameter:
    """A parameter landbc writes: its IFS identity, both encodings and its valid values.

    `wmo` is (discipline, parameterCategory, parameterNumber) as ecCodes 2.50
    encodes the paramId; `ecmwf_local` says whether ECMWF's local encoding
    (192, 128, paramId) exists. `codes` lists the allowed integer values of a
    code field (None for continuous fields, which have `valid_range`)."""

    name: str
    param_id: int
    long_name: str
    units: str
    wmo: tuple[int, int, int]
    ecmwf_local: bool
    valid_range: tuple[float, float]
    codes: frozenset[int] | None = None

    @property
    def is_code(self) -> bool:
        return self.codes is not None

    @property
    def default_statistic(self) -> str:
        """The mode for codes (the type prevailing over the month), the average otherwise."""
        return MODE if self.is_code else AVERAGE

    def numbers(self, encoding: str) -> tuple[int, int, int]:
        """(discipline, category, number) of this parameter in `encoding` (lai: always WMO)."""
        if encoding == ECMWF_LOCAL and self.ecmwf_local:
            return (192, 128, self.param_id)
        return self.wmo


def _catalog_range(name: str) -> tuple[float, float]:
    v = catalog.variable(name)
    return (float(v.valid_min), float(v.valid_max))


_LOW_TYPES = frozenset({0, *catalog.LC_LOW_VEGETATION})  # 0: no low vegetation
_HIGH_TYPES = frozenset({0, *catalog.LC_HIGH_VEGETATION})

PARAMETERS: dict[str, GribParameter] = {
    p.name: p
    for p in (
        GribParameter("cvl", 27, "low vegetation cover", "(0 - 1)", (2, 0, 53), True,
                      _catalog_range("cvl")),
        GribParameter("cvh", 28, "high vegetation cover", "(0 - 1)", (2, 0, 54), True,
                      _catalog_range("cvh")),
        GribParameter("tvl", 29, "type of low vegetation", "(Code table 4.234)", (2, 0, 57),
                      True, (0, 255), _LOW_TYPES),
        GribParameter("tvh", 30, "type of high vegetation", "(Code table 4.234)", (2, 0, 58),
                      True, (0, 255), _HIGH_TYPES),
        GribParameter("lai_lv", 66, "leaf area index, low vegetation", "m**2 m**-2",
                      (2, 0, 55), True, _catalog_range("lai_lv")),
        GribParameter("lai_hv", 67, "leaf area index, high vegetation", "m**2 m**-2",
                      (2, 0, 56), True, _catalog_range("lai_hv")),
        GribParameter("lai", 260373, "leaf area index", "Numeric", (2, 0, 28), False,
                      _catalog_range("lai")),
    )
}  # fmt: skip


def parameter(name: str) -> GribParameter:
    """The parameter called `name` (a shortName); a GribError lists the known ones."""
    try:
        return PARAMETERS[name]
    except (KeyError, TypeError):
        raise GribError(
            f"unknown GRIB parameter {name!r}: landbc writes {', '.join(PARAMETERS)}"
        ) from None


# ---------------------------------------------------------------------------
# ecCodes helpers
# ---------------------------------------------------------------------------


def _eccodes() -> Any:
    """ecCodes, imported when first needed (its import loads the C library)."""
    import eccodes

    return eccodes


@cache
def ccsds_available() -> bool:
    """Whether this ecCodes can write grid_ccsds (it needs libaec): tried once on a tiny
    message, since `codes_is_defined` only says that the key exists, not that it works."""
    ec = _eccodes()
    h = ec.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        ec.codes_set(h, "packingType", "grid_ccsds")
        if ec.codes_get(h, "packingType") != "grid_ccsds":
            return False
        ec.codes_set(h, "bitsPerValue", 16)
        n = int(ec.codes_get(h, "numberOfDataPoints"))
        x = np.linspace(0.0, 1.0, n)
        ec.codes_set_values(h, x)
        h2 = ec.codes_new_from_message(ec.codes_get_message(h))
        try:
            return bool(np.abs(ec.codes_get_values(h2) - x).max() < 1e-3)
        finally:
            ec.codes_release(h2)
    except ec.GribInternalError:
        return False
    finally:
        ec.codes_release(h)


@cache
def tables_version_latest() -> int:
    """The newest WMO tables version this ecCodes knows (2.50: 37; Debian's 2.28: 30)."""
    ec = _eccodes()
    h = ec.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        return int(ec.codes_get(h, "tablesVersionLatest"))
    finally:
        ec.codes_release(h)


def days_in_month(year: int, month: int, calendar: str = "standard") -> int:
    """Days of (year, month) in a CF calendar (`calendar.days_in_month`: the standard
    calendar is Julian before October 1582); a GribError names a bad calendar."""
    try:
        return _calendar_days_in_month(year, month, calendar)
    except ValueError as e:
        raise GribError(f"calendar: {e}") from None


def _check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise GribError(f"{what} must be one of {', '.join(map(repr, choices))}, found {value!r}")
    return value


def _micro(deg: float) -> int:
    """Degrees as GRIB2 stores them: integer microdegrees."""
    return int(round(float(deg) * 1e6))


def _micro_lon(deg: float) -> int:
    """A longitude as GRIB2 stores it: microdegrees in [0, 360) (unsigned)."""
    return _micro(deg) % 360_000_000


# ---------------------------------------------------------------------------
# Keys of one message
# ---------------------------------------------------------------------------

Keys = list[tuple[str, Any]]


def _as_model_grid(grid: ModelGrid | Grid) -> ModelGrid:
    """The emulator's `Grid` is written as its high-resolution regular lat-lon grid."""
    if isinstance(grid, ModelGrid):
        return grid
    if isinstance(grid, Grid):
        return RegularLatLonGrid.from_emulator_grid(grid)
    raise GribError(
        f"grid must be a landbc ModelGrid (RegularLatLonGrid, GaussianGrid) or an emulator "
        f"Grid, found {type(grid).__name__}"
    )


def _grid_keys(grid: ModelGrid) -> tuple[str, Keys]:
    """The sample to start from and the grid keys (angles in integer microdegrees; pl, a
    tuple, after N and Nj).

    All three kinds start from ecCodes' surface samples: the Gaussian ones are
    made global for any N by setting N, Nj, pl and the first/last points, which
    is what ecCodes' `reduced_gg_pl_<N>` samples hold, without depending on
    which N a version ships."""
    if isinstance(grid, RegularLatLonGrid):
        keys: Keys = [
            ("Ni", grid.nlon),
            ("Nj", grid.nlat),
            ("iScansNegatively", 0),
            ("jScansPositively", int(grid.south_first)),
            ("jPointsAreConsecutive", 0),
            ("latitudeOfFirstGridPoint", _micro(grid.lat_first)),
            ("longitudeOfFirstGridPoint", _micro_lon(grid.lon_first)),
            ("latitudeOfLastGridPoint", _micro(grid.lat_last)),
            ("longitudeOfLastGridPoint", _micro_lon(grid.lon_last)),
            ("ijDirectionIncrementGiven", 1),
            ("iDirectionIncrement", _micro(grid.dlon)),
            ("jDirectionIncrement", _micro(grid.dlat)),
        ]
        return "regular_ll_sfc_grib2", keys
    if isinstance(grid, GaussianGrid):
        lat0 = float(grid.row_latitudes[0])
        common: Keys = [
            ("N", grid.N),
            ("Nj", 2 * grid.N),
            ("iScansNegatively", 0),
            ("jScansPositively", 0),
            ("jPointsAreConsecutive", 0),
            ("latitudeOfFirstGridPoint", _micro(lat0)),
            ("longitudeOfFirstGridPoint", 0),
            ("latitudeOfLastGridPoint", _micro(-lat0)),
            ("longitudeOfLastGridPoint", _micro(360.0 - 360.0 / max(grid.pl))),
        ]
        if grid.is_regular:
            nlon = grid.pl[0]
            extra = [("Ni", nlon), ("iDirectionIncrement", _micro(360.0 / nlon))]
            return "regular_gg_sfc_grib2", common + extra
        return "reduced_gg_sfc_grib2", [*common, ("pl", tuple(grid.pl))]
    raise GribError(f"cannot write GRIB on a {type(grid).__name__}")


def _time_keys(year: int, month: int, statistic: str, time_unit: str, calendar: str) -> Keys:
    """Reference time (the 1st of the month, 00 UTC) and, for a statistic over the month,
    the template 4.8 keys ending at the 1st of the next month, 00 UTC."""
    keys: Keys = [
        ("dataDate", year * 10000 + month * 100 + 1),
        ("dataTime", 0),
        ("indicatorOfUnitOfTimeRange", _HOUR),
        ("forecastTime", 0),
    ]
    if statistic == INSTANT:
        return keys
    end_year, end_month = add_months(year, month, 1)
    if time_unit == "hours":
        unit, length = _HOUR, 24 * days_in_month(year, month, calendar)
    else:
        unit, length = _MONTH_UNIT, 1
    return keys + [
        ("yearOfEndOfOverallTimeInterval", end_year),
        ("monthOfEndOfOverallTimeInterval", end_month),
        ("dayOfEndOfOverallTimeInterval", 1),
        ("hourOfEndOfOverallTimeInterval", 0),
        ("minuteOfEndOfOverallTimeInterval", 0),
        ("secondOfEndOfOverallTimeInterval", 0),
        ("numberOfTimeRange", 1),
        ("numberOfMissingInStatisticalProcess", 0),
        ("typeOfStatisticalProcessing", _STAT_CODE[statistic]),
        ("typeOfTimeIncrement", _TIME_INCREMENT_SAME_START),
        ("indicatorOfUnitForTimeRange", unit),
        ("lengthOfTimeRange", length),
        ("indicatorOfUnitForTimeIncrement", 255),  # the sampling within the month: not given
        ("timeIncrement", 0),
    ]


# ---------------------------------------------------------------------------
# Checking a field before encoding it
# ---------------------------------------------------------------------------


def _check_values(param: GribParameter, values: Any, grid: ModelGrid) -> np.ndarray:
    """The field as float64 in scanning order, after checking shape and values: an error
    names the variable, what was expected and what was found, before anything is written."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise GribError(f"{param.name}: values must be a numeric array ({e})") from None
    if a.shape not in (tuple(grid.shape), (grid.npoints,)):
        raise GribError(
            f"{param.name}: field of shape {a.shape} does not fit the grid {grid.describe()}: "
            f"expected {tuple(grid.shape)} (or {(grid.npoints,)} in GRIB scanning order)"
        )
    a = a.reshape(-1)
    if np.isinf(a).any():
        raise GribError(f"{param.name}: values must be finite or NaN (missing), found inf")
    ok = a[~np.isnan(a)]
    if ok.size == 0:
        return a
    lo, hi = param.valid_range
    if param.codes is not None:
        if not np.array_equal(ok, np.round(ok)):
            bad = ok[ok != np.round(ok)][:5]
            raise GribError(
                f"{param.name}: a vegetation type must be an integer code (GRIB2 code table "
                f"4.234), found {bad.tolist()}"
            )
        unknown = sorted(set(np.unique(ok).astype(np.int64).tolist()) - param.codes)
        if unknown:
            raise GribError(
                f"{param.name} ({param.long_name}): codes {unknown[:10]} are not allowed; "
                f"expected one of {sorted(param.codes)} (0 = none)"
            )
    elif ok.min() < lo or ok.max() > hi:
        raise GribError(
            f"{param.name}: values {ok.min():g}..{ok.max():g} outside the valid range "
            f"{lo:g}..{hi:g} {param.units}"
        )
    return a


def _packing_keys(
    param: GribParameter, values: np.ndarray, packing: str, bits_per_value: int
) -> tuple[Keys, int]:
    """packingType and the bits asked for: codes get at least the bits their range needs
    and decimalScaleFactor 0, so simple packing's integers hold them exactly."""
    if packing == "grid_ccsds" and not ccsds_available():
        raise GribError(
            f"{param.name}: packing 'grid_ccsds' is not available in this ecCodes "
            f"({_eccodes().codes_get_api_version()}; it needs libaec); use packing='grid_simple'"
        )
    if (
        isinstance(bits_per_value, bool)
        or not isinstance(bits_per_value, (int, np.integer))
        or not 1 <= bits_per_value <= 32
    ):
        raise GribError(
            f"{param.name}: bits_per_value must be an integer 1..32, found {bits_per_value!r}"
        )
    bits = int(bits_per_value)
    if param.is_code:
        ok = values[~np.isnan(values)]
        span = int(ok.max() - ok.min()) if ok.size else 0
        bits = max(bits, span.bit_length())
    return [("packingType", packing), ("decimalScaleFactor", 0)], bits


# ---------------------------------------------------------------------------
# Encoding and verifying
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedMessage:
    """One verified GRIB2 message and what it holds.

    `keys` are the keys set (and checked after decoding); `decoded_param_id`
    and `decoded_short_name` are what this ecCodes reads back (for the WMO
    encoding of an average, ecCodes 2.50's avg_* parameters)."""

    name: str
    year: int
    month: int
    message: bytes
    keys: tuple[tuple[str, Any], ...]
    decoded_param_id: int
    decoded_short_name: str


def _encode(ec: Any, sample: str, keys: Keys, data: np.ndarray, missing: np.ndarray,
            bits: int, name: str) -> bytes:  # fmt: skip
    """One GRIB message from an ecCodes sample: `keys` set in order, then the values
    packed with `bits` per value, missing ones (NaN) marked by a bitmap."""
    h = ec.codes_grib_new_from_samples(sample)
    try:
        for key, value in keys:
            try:
                if isinstance(value, tuple):
                    ec.codes_set_long_array(h, key, list(value))
                else:
                    ec.codes_set(h, key, value)
            except ec.GribInternalError as e:
                raise GribError(f"{name}: ecCodes cannot set {key} = {value!r} ({e})") from None
        ec.codes_set(h, "bitsPerValue", bits)
        if missing.any():
            fill = _MISSING_VALUE
            if np.any(data[~missing] == fill):  # a real value equal to the fill: pick another
                fill = float(np.nanmax(np.abs(data))) * 2 + 1
            ec.codes_set(h, "missingValue", fill)
            data = np.where(missing, fill, data)
        try:
            ec.codes_set_values(h, data)
        except ec.GribInternalError as e:
            raise GribError(f"{name}: ecCodes cannot encode the values ({e})") from None
        return bytes(ec.codes_get_message(h))
    finally:
        ec.codes_release(h)


def encode_field(
    name: str,
    values: Any,
    grid: ModelGrid | Grid,
    year: int,
    month: int,
    *,
    encoding: str = ECMWF_LOCAL,
    packing: str = "grid_simple",
    bits_per_value: int = DEFAULT_BITS_PER_VALUE,
    statistic: str | None = None,
    time_unit: str = "hours",
    calendar: str = "standard",
) -> EncodedMessage:
    """One field of parameter `name` for (year, month) on `grid` as a verified GRIB2 message.

    `values` has the grid's shape (rows north to south for the emulator's
    grid; (npoints,) for reduced Gaussian grids) or is flat in GRIB scanning
    order; NaN marks missing values (written with a bitmap). `statistic`
    defaults to the parameter's (`GribParameter.default_statistic`). See the
    module docstring for encodings, time keys and packing."""
    param = parameter(name)
    _check_choice(encoding, ENCODINGS, f"{name}: encoding")
    _check_choice(packing, PACKINGS, f"{name}: packing")
    _check_choice(time_unit, TIME_UNITS, f"{name}: time_unit")
    _check_choice(calendar, CALENDARS, f"{name}: calendar")
    statistic = param.default_statistic if statistic is None else statistic
    _check_choice(statistic, STATISTICS, f"{name}: statistic")
    if param.is_code and statistic == AVERAGE:
        raise GribError(f"{name}: an average of vegetation type codes is no code; use "
                        f"statistic='mode' (the type over the month) or 'instant'")  # fmt: skip
    if not param.is_code and statistic == MODE:
        raise GribError(f"{name}: 'mode' is for codes; use statistic='average' or 'instant'")
    for what, v, lo, hi in (("year", year, 1, 9999), ("month", month, 1, 12)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise GribError(f"{name}: {what} must be an integer {lo}..{hi}, found {v!r}")
    year, month = int(year), int(month)
    model_grid = _as_model_grid(grid)
    data = _check_values(param, values, model_grid)

    ec = _eccodes()
    sample, grid_keys = _grid_keys(model_grid)
    discipline, category, number = param.numbers(encoding)
    pdt = 0 if statistic == INSTANT else 8
    pack_keys, bits = _packing_keys(param, data, packing, bits_per_value)
    missing = np.isnan(data)
    keys: Keys = [
        ("centre", _ECMF),  # ECMWF's local tables are read under centre ecmf only
        # The WMO numbers of cvl..tvh exist only in recent tables (ecCodes 2.50: 37).
        ("tablesVersion", tables_version_latest()),
        *grid_keys,
        ("productDefinitionTemplateNumber", pdt),
        ("discipline", discipline),
        ("parameterCategory", category),
        ("parameterNumber", number),
        ("typeOfFirstFixedSurface", 1),  # ground or water surface
        ("typeOfSecondFixedSurface", 255),
        *_time_keys(year, month, statistic, time_unit, calendar),
        *pack_keys,
        ("bitmapPresent", int(missing.any())),
    ]
    message = _encode(ec, sample, keys, data, missing, bits, name)
    decoded = verify_message(
        message, keys, grid=model_grid, values=data, exact=param.is_code, bits_per_value=bits,
        expect_param_id=param.param_id if param.numbers(encoding)[0] == 192 else None,
        what=f"{name} {format_month(year, month)}",
    )  # fmt: skip
    return EncodedMessage(name, year, month, message, tuple(keys), *decoded)


def verify_message(
    message: bytes,
    keys: Iterable[tuple[str, Any]],
    *,
    grid: ModelGrid | None = None,
    values: np.ndarray | None = None,
    exact: bool = False,
    bits_per_value: int | None = None,
    expect_param_id: int | None = None,
    what: str = "GRIB message",
) -> tuple[int, str]:
    """Decode `message` again and check it holds what was set; returns (paramId,
    shortName) as this ecCodes decodes them.

    Checks every (key, value) in `keys` (integers and strings as read back;
    ``pl`` as an array), then, where given: that `grid_from_grib` gives back
    `grid`, that the bitmap marks exactly the NaN of `values` and that the
    other values survived to packing precision (half a quantum 2^E·10^-D, or
    float32 rounding for a constant field) or, with `exact`, exactly; that
    bitsPerValue is `bits_per_value` (or 0 for a constant field); and that the
    decoded paramId is `expect_param_id`. A difference is a GribError naming
    the key and both values: an encoder (or ecCodes version) that silently
    drops or changes a key must not produce a file."""
    ec = _eccodes()
    try:
        h = ec.codes_new_from_message(message)
    except ec.GribInternalError as e:
        raise GribError(f"{what}: the encoded message cannot be decoded ({e})") from None
    try:

        def get(key: str, like: Any) -> Any:
            try:
                if isinstance(like, (tuple, list)):
                    return tuple(int(x) for x in ec.codes_get_array(h, key))
                if isinstance(like, str):
                    return ec.codes_get(h, key, str)
                return ec.codes_get(h, key, int)
            except ec.GribInternalError as e:
                raise GribError(f"{what}: key {key!r} cannot be read back ({e})") from None

        for key, value in keys:
            found = get(key, value)
            expected = tuple(value) if isinstance(value, (tuple, list)) else value
            if found != expected:
                raise GribError(
                    f"{what}: key {key!r} reads back as {_short(found)}, "
                    f"but {_short(expected)} was written"
                )
        param_id = int(ec.codes_get(h, "paramId"))
        short_name = str(ec.codes_get(h, "shortName"))
        if expect_param_id is not None and param_id != expect_param_id:
            raise GribError(
                f"{what}: key 'paramId' reads back as {param_id} ({short_name}), expected "
                f"{expect_param_id}"
            )
        if grid is not None:
            back = grid_from_grib(h)
            if back != grid:
                raise GribError(f"{what}: the grid reads back as {back.describe()}, but "
                                f"{grid.describe()} was written")  # fmt: skip
        if values is not None:
            _verify_values(ec, h, np.asarray(values, dtype=np.float64).reshape(-1), exact,
                           bits_per_value, what)  # fmt: skip
    finally:
        ec.codes_release(h)
    return param_id, short_name


def _short(x: Any) -> str:
    if isinstance(x, tuple) and len(x) > 8:
        return f"({', '.join(map(str, x[:8]))}, ... {len(x)} values)"
    return repr(x)


def _verify_values(
    ec: Any, h: int, expected: np.ndarray, exact: bool, bits: int | None, what: str
) -> None:
    missing = np.isnan(expected)
    decoded = np.asarray(ec.codes_get_values(h), dtype=np.float64)
    if decoded.size != expected.size:
        raise GribError(f"{what}: {decoded.size} values read back, {expected.size} written")
    if int(ec.codes_get(h, "bitmapPresent")):
        present = np.asarray(ec.codes_get_array(h, "bitmap")) != 0
    else:
        present = np.ones(expected.size, dtype=bool)
    if not np.array_equal(present, ~missing):
        n = int((present == missing).sum())
        raise GribError(f"{what}: key 'bitmap' differs from the missing values written at "
                        f"{n} points")  # fmt: skip
    ok = ~missing
    if not ok.any():
        return
    x, y = expected[ok], decoded[ok]
    constant = bool(x.min() == x.max())
    found_bits = int(ec.codes_get(h, "bitsPerValue"))
    if bits is not None and found_bits != bits and not (constant and found_bits == 0):
        raise GribError(f"{what}: key 'bitsPerValue' reads back as {found_bits}, "
                        f"but {bits} was asked")  # fmt: skip
    err = np.abs(y - x)
    if exact:
        if err.max() > 0:
            i = int(np.argmax(err))
            raise GribError(f"{what}: codes must survive packing exactly, but {x[i]:g} reads "
                            f"back as {y[i]!r}")  # fmt: skip
        return
    e = int(ec.codes_get(h, "binaryScaleFactor"))
    d = int(ec.codes_get(h, "decimalScaleFactor"))
    quantum = 2.0**e * 10.0 ** (-d)
    tol = 0.5 * quantum * (1 + 1e-9) if found_bits else 0.0
    tol = max(tol, float(np.abs(x).max()) * 2.0**-23)  # float32 reference value
    if err.max() > tol:
        i = int(np.argmax(err))
        raise GribError(f"{what}: value {x[i]!r} reads back as {y[i]!r}, off by more than the "
                        f"packing precision {tol:g}")  # fmt: skip


# ---------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryField:
    """One field to write: parameter `name` for calendar month (year, month)."""

    name: str
    values: Any
    year: int
    month: int


def write_messages(path: str | os.PathLike[str], messages: Iterable[EncodedMessage]) -> Path:
    """Write messages one after the other into `path`, atomically: a temporary file in
    the same folder, flushed to disk, then renamed over `path` (os.replace), so a reader
    never sees a half-written file and a failure leaves the old file in place."""
    path = Path(path)
    if not path.parent.is_dir():
        raise GribError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for m in messages:
                f.write(m.message)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary open() would (mkstemp gives 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_fields(
    path: str | os.PathLike[str],
    fields: Iterable[BoundaryField | tuple[str, Any, int, int]],
    grid: ModelGrid | Grid,
    **options: Any,
) -> list[EncodedMessage]:
    """Encode and verify every field (BoundaryField or (name, values, year, month)) on
    `grid`, then write them all into one file, atomically, in the order given.
    `options` are those of `encode_field`. Nothing is written unless every message
    encodes and verifies."""
    encoded = []
    for f in fields:
        bf = f if isinstance(f, BoundaryField) else BoundaryField(*f)
        encoded.append(encode_field(bf.name, bf.values, grid, bf.year, bf.month, **options))
    if not encoded:
        raise GribError(f"{path}: no fields to write")
    write_messages(path, encoded)
    log.info("wrote %d GRIB messages to %s", len(encoded), path)
    return encoded


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GribField:
    """One decoded message: values on its grid (NaN where missing), the period it
    describes (start..end; equal for an instantaneous field) and the calendar month
    of its middle, which is the month a monthly mean, a monthly accumulation or an
    ERA5-style monthly mean stamped on the 1st all describe."""

    param_id: int
    short_name: str
    name: str
    units: str
    step_type: str
    start: datetime
    end: datetime
    values: np.ndarray
    grid: ModelGrid
    edition: int
    packing_type: str
    source: str

    @property
    def year_month(self) -> YearMonth:
        return _middle_month(self.start, self.end)

    @property
    def hours(self) -> float:
        """Length of the period in hours (0 for an instantaneous field)."""
        return (self.end - self.start).total_seconds() / 3600.0


def _datetime(date: int, time: int, where: str) -> datetime:
    try:
        return datetime(date // 10000, date // 100 % 100, date % 100, time // 100, time % 100)
    except ValueError:
        raise GribError(f"{where}: invalid date/time {date} {time:04d}") from None


def read_grib(
    path: str | os.PathLike[str], *, param_ids: Iterable[int] | None = None
) -> list[GribField]:
    """Every message of a GRIB file (edition 1 or 2) on a grid `grid_from_grib` reads, or
    only those with a paramId in `param_ids` (the others are not decoded)."""
    ec = _eccodes()
    path = os.fspath(path)
    wanted = None if param_ids is None else {int(p) for p in param_ids}
    out: list[GribField] = []
    try:
        f = open(path, "rb")
    except OSError as e:
        raise GribError(f"cannot read GRIB file {path!r}: {e.strerror}") from None
    with f:
        index = 0
        while True:
            try:
                h = ec.codes_grib_new_from_file(f)
            except ec.GribInternalError as e:
                raise GribError(f"{path}: message {index + 1} is not readable GRIB ({e})") from None
            if h is None:
                break
            index += 1
            try:
                pid = int(ec.codes_get(h, "paramId"))
                if wanted is None or pid in wanted:
                    out.append(_field_from_handle(ec, h, pid, f"{path} message {index}"))
            finally:
                ec.codes_release(h)
    if index == 0:
        raise GribError(f"{path}: no GRIB message in the file")
    return out


def _period(ec: Any, h: int, where: str) -> tuple[datetime, datetime]:
    """(start, end) of the period a message describes; headers suffice (`forcing_index`)."""
    if ec.codes_is_defined(h, "stepUnits"):
        ec.codes_set(h, "stepUnits", _HOUR)
    start_step = int(ec.codes_get(h, "startStep", int))
    ref = _datetime(int(ec.codes_get(h, "dataDate")), int(ec.codes_get(h, "dataTime")), where)
    start = ref + timedelta(hours=start_step)
    end = _datetime(
        int(ec.codes_get(h, "validityDate")), int(ec.codes_get(h, "validityTime")), where
    )
    return start, max(end, start)


def _middle_month(start: datetime, end: datetime) -> YearMonth:
    mid = start + (end - start) / 2
    return (mid.year, mid.month)


def _field_from_handle(ec: Any, h: int, pid: int, where: str) -> GribField:
    start, end = _period(ec, h, where)
    grid = grid_from_grib(h)
    values = np.asarray(ec.codes_get_values(h), dtype=np.float64)
    if int(ec.codes_get(h, "bitmapPresent")):
        values[np.asarray(ec.codes_get_array(h, "bitmap")) == 0] = np.nan
    if values.size != grid.npoints:
        raise GribError(f"{where}: {values.size} values for {grid.describe()}")
    return GribField(
        param_id=pid,
        short_name=str(ec.codes_get(h, "shortName")),
        name=str(ec.codes_get(h, "name")),
        units=str(ec.codes_get(h, "units")),
        step_type=str(ec.codes_get(h, "stepType")),
        start=start,
        end=end,
        values=values.reshape(grid.shape),
        grid=grid,
        edition=int(ec.codes_get(h, "edition")),
        packing_type=str(ec.codes_get(h, "packingType")),
        source=where,
    )


def to_dataset(fields: Sequence[GribField]) -> xr.Dataset:
    """An xarray Dataset of decoded fields, built by hand (no cfgrib): one variable per
    shortName with dims (time, latitude, longitude) on a regular grid or (time,
    values) with latitude/longitude coordinates on a reduced one; time is the 1st of
    each field's month. All fields must share one grid."""
    import xarray as xr

    if not fields:
        raise GribError("to_dataset: no fields")
    grid = fields[0].grid
    for f in fields:
        if f.grid != grid:
            raise GribError(f"to_dataset: {f.source} is on {f.grid.describe()}, the first "
                            f"field on {grid.describe()}; one Dataset holds one grid")  # fmt: skip
    if len(grid.shape) == 2:
        dims: tuple[str, ...] = ("latitude", "longitude")
        coords: dict[str, Any] = {
            "latitude": ("latitude", np.asarray(grid.row_latitudes), {"units": "degrees_north"}),
            "longitude": ("longitude", np.asarray(grid.longitudes[: grid.shape[1]]),
                          {"units": "degrees_east"}),
        }  # fmt: skip
    else:
        dims = ("values",)
        coords = {
            "latitude": ("values", np.asarray(grid.latitudes), {"units": "degrees_north"}),
            "longitude": ("values", np.asarray(grid.longitudes), {"units": "degrees_east"}),
        }
    by_name: dict[str, list[GribField]] = {}
    for f in fields:
        by_name.setdefault(f.short_name, []).append(f)
    arrays = {}
    for short, group in by_name.items():
        group = sorted(group, key=lambda g: g.year_month)
        months = [g.year_month for g in group]
        if len(set(months)) != len(months):
            raise GribError(f"to_dataset: {short} has several fields for one month")
        time = np.array([f"{y:04d}-{m:02d}-01" for y, m in months], dtype="datetime64[ns]")
        first = group[0]
        arrays[short] = xr.DataArray(
            np.stack([g.values for g in group]),
            dims=("time", *dims),
            coords={"time": time, **coords},
            attrs={"units": first.units, "long_name": first.name,
                   "GRIB_paramId": first.param_id, "GRIB_shortName": short,
                   "GRIB_stepType": first.step_type, "GRIB_gridName": grid.name},
        )  # fmt: skip
    return xr.Dataset(arrays, attrs={"grid": grid.describe(), "grid_key": grid.key()})


# ---------------------------------------------------------------------------
# Forcing
# ---------------------------------------------------------------------------

STATE, RATE, AMOUNT = "state", "rate", "amount"


@dataclass(frozen=True)
class ForcingSource:
    """A GRIB parameter that gives a forcing variable, and how to convert it.

    `kind` says how: "state" and "rate" multiply by `factor`; "amount" is an
    accumulation, divided by the days it was accumulated over before
    multiplying by `factor` (the target unit per day → catalog unit). The days
    of an amount are the length of its period when its stepType is "accum";
    otherwise the field is taken as a monthly mean of *daily* accumulations, the
    convention of ERA5's monthly means ("moda": tp in m day-1, ssrd in J m-2
    day-1)."""

    param_id: int
    short_name: str
    grib_units: str
    kind: str
    factor: float


FORCING_SOURCES: dict[str, tuple[ForcingSource, ...]] = {
    # 2 m temperature: K in GRIB and in landbc (catalog t2m). ecCodes 2.50 reads a
    # template 4.8 average of 2t as avg_2t (228004).
    "t2m": (ForcingSource(167, "2t", "K", STATE, 1.0),
            ForcingSource(228004, "avg_2t", "K", STATE, 1.0)),
    # Precipitation: landbc's tp is a rate in mm day-1. GRIB's tp (228) is an amount in m
    # (water equivalent): 1 m = 1000 mm per day of accumulation. ecCodes 2.50 reads an
    # average of tp as the rate tprate (172228, m s-1); ECMWF's mean rates are kg m-2 s-1
    # (1 kg m-2 = 1 mm of water).
    "tp": (ForcingSource(228, "tp", "m", AMOUNT, 1000.0),
           ForcingSource(172228, "tprate", "m s**-1", RATE, 1000.0 * 86400.0),
           ForcingSource(235055, "avg_tprate", "kg m**-2 s**-1", RATE, 86400.0),
           ForcingSource(260048, "tprate", "kg m**-2 s**-1", RATE, 86400.0)),
    # Surface solar radiation downwards: landbc's ssrd is a mean flux in W m-2. GRIB's
    # ssrd (169) is an amount in J m-2: J m-2 per day / 86400 s = W m-2; ecCodes 2.50
    # reads an average as avg_sdswrf (235035, W m-2).
    "ssrd": (ForcingSource(169, "ssrd", "J m**-2", AMOUNT, 1.0 / 86400.0),
             ForcingSource(235035, "avg_sdswrf", "W m**-2", RATE, 1.0)),
}  # fmt: skip
FORCING_VARIABLES = tuple(FORCING_SOURCES)


def _describe_sources(name: str) -> str:
    return ", ".join(
        f"{s.param_id} ({s.short_name}, {s.grib_units})" for s in FORCING_SOURCES[name]
    )


@dataclass(frozen=True)
class GribForcing:
    """Monthly forcing read from GRIB, in landbc's units (`landbc.emulator.catalog`).

    `data[name]` is float32 of shape (len(months), *grid.shape) on the file's
    grid (NaN where missing); `months` are ascending; `sources[name]` says
    which GRIB parameter each month came from and how it was converted."""

    grid: ModelGrid
    months: tuple[YearMonth, ...]
    data: Mapping[str, np.ndarray]
    units: Mapping[str, str]
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def field(self, name: str, year: int, month: int) -> np.ndarray:
        """The field of variable `name` for (year, month); a GribError names what is there."""
        if name not in self.data:
            raise GribError(f"forcing has no variable {name!r}; it has {', '.join(self.data)}")
        try:
            i = self.months.index((year, month))
        except ValueError:
            have = ", ".join(format_month(*m) for m in self.months)
            raise GribError(
                f"{name}: no forcing for {format_month(year, month)}; months read: {have}"
            ) from None
        return self.data[name][i]


def _convert(name: str, src: ForcingSource, f: GribField) -> tuple[np.ndarray, str]:
    """The field in the catalog's units, and a note saying how it was converted."""
    if src.kind == AMOUNT:
        if f.step_type == "accum":
            days = f.hours / 24.0
            if not days > 0:
                raise GribError(
                    f"{name}: {f.source}: {src.short_name} is accumulated over {f.hours:g} h; "
                    "expected a period of at least an hour"
                )
            how = f"accumulated over {f.hours:g} h, divided by {days:g} days"
        else:
            days = 1.0
            how = f"stepType {f.step_type}: a monthly mean of daily accumulations (ERA5)"
        return f.values * (src.factor / days), f"{src.short_name} ({src.param_id}): {how}"
    how = "" if src.factor == 1.0 else f", times {src.factor:g}"
    return f.values * src.factor, f"{src.short_name} ({src.param_id}){how}"


def read_forcing(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    variables: Sequence[str] = FORCING_VARIABLES,
    months: Iterable[YearMonth] | None = None,
    check_range: bool = True,
) -> GribForcing:
    """Read monthly forcing `variables` from one or more GRIB files.

    With `months`, exactly those months are returned and each must be present
    for every variable; without, every month found, which must then be the
    same for every variable. Values are converted to the catalog's units (see
    `FORCING_SOURCES`); with `check_range`, values outside the catalog's valid
    range are an error, which is how a file in other units (2t in °C, tp as a
    monthly total read as daily) is caught."""
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not files:
        raise GribError("read_forcing: no files given")
    where = ", ".join(map(os.fspath, files))
    if not variables:
        raise GribError(f"read_forcing: no variables asked (landbc reads {FORCING_VARIABLES})")
    for name in variables:
        if name not in FORCING_SOURCES:
            raise GribError(f"unknown forcing variable {name!r}: landbc reads "
                            f"{', '.join(FORCING_VARIABLES)} from GRIB")  # fmt: skip
    by_pid = {s.param_id: (name, s) for name in variables for s in FORCING_SOURCES[name]}
    fields: list[GribField] = []
    for p in files:
        fields.extend(read_grib(p, param_ids=by_pid))
    found: dict[str, dict[YearMonth, tuple[GribField, ForcingSource]]] = {n: {} for n in variables}
    for f in fields:
        name, src = by_pid[f.param_id]
        if f.units != src.grib_units:
            raise GribError(f"{name}: {f.source}: {src.short_name} is in {f.units!r} for this "
                            f"ecCodes; expected {src.grib_units!r}")  # fmt: skip
        ym = f.year_month
        if ym in found[name]:
            other = found[name][ym][0]
            raise GribError(f"{name}: two fields for {format_month(*ym)}: {other.source} "
                            f"({other.short_name}) and {f.source} ({f.short_name})")  # fmt: skip
        found[name][ym] = (f, src)
    for name in variables:
        if not found[name]:
            have = _param_ids(files)
            raise GribError(f"{name}: no message in {where} with paramId "
                            f"{_describe_sources(name)}; the file has paramIds {have}")  # fmt: skip
    wanted = (
        sorted(set().union(*(found[n] for n in variables)))
        if months is None
        else sorted({(int(y), int(m)) for y, m in months})
    )
    if not wanted:
        raise GribError(f"read_forcing: no months asked of {where}")
    for name in variables:
        missing = [m for m in wanted if m not in found[name]]
        if missing:
            have = ", ".join(format_month(*m) for m in sorted(found[name]))
            raise GribError(
                f"{name}: no field for {', '.join(format_month(*m) for m in missing)} in "
                f"{where} (found {have})"
            )
    grid = found[variables[0]][wanted[0]][0].grid
    data: dict[str, np.ndarray] = {}
    sources: dict[str, tuple[str, ...]] = {}
    for name in variables:
        var = catalog.variable(name)
        stack, notes = [], []
        for ym in wanted:
            f, src = found[name][ym]
            if f.grid != grid:
                raise GribError(
                    f"{name}: {f.source} is on {f.grid.describe()}, other forcing on "
                    f"{grid.describe()}; all forcing must share one grid"
                )
            values, note = _convert(name, src, f)
            if check_range:
                _check_range(name, var, values, f, src, ym)
            stack.append(values.astype(np.float32))
            notes.append(note)
        data[name] = np.stack(stack)
        sources[name] = tuple(notes)
    return GribForcing(
        grid=grid,
        months=tuple(wanted),
        data=data,
        units={n: catalog.variable(n).units for n in variables},
        sources=sources,
    )


def _param_ids(files: Sequence[str | os.PathLike[str]]) -> list[int]:
    """The paramIds in `files` (headers only), to say what is there when a variable is not."""
    ec = _eccodes()
    ids: set[int] = set()
    for p in files:
        with open(p, "rb") as f:
            while (h := ec.codes_grib_new_from_file(f, headers_only=True)) is not None:
                try:
                    ids.add(int(ec.codes_get(h, "paramId")))
                finally:
                    ec.codes_release(h)
    return sorted(ids)


def _check_range(
    name: str, var: Any, values: np.ndarray, f: GribField, src: ForcingSource, ym: YearMonth
) -> None:
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return
    lo, hi = float(ok.min()), float(ok.max())
    if lo < var.valid_min or hi > var.valid_max:
        raise GribError(
            f"{name}: values {lo:.4g}..{hi:.4g} {var.units} for {format_month(*ym)} "
            f"({f.source}, {src.short_name} in {src.grib_units}) are outside the expected "
            f"{var.valid_min:g}..{var.valid_max:g} {var.units}; are the GRIB units what "
            f"ecCodes says ({src.grib_units})?"
        )


def forcing_index(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    variables: Sequence[str] = FORCING_VARIABLES,
) -> dict[str, dict[YearMonth, str]]:
    """Which file holds each month of each forcing variable, from the message headers only.

    A run checks with it, before its first step, that every month it needs is
    there, and then decodes one month's files at a time (`read_forcing`) instead of
    a whole period. Two messages of one variable for one month are an error naming
    both files."""
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    by_pid = {s.param_id: name for name in variables for s in FORCING_SOURCES[name]}
    ec = _eccodes()
    out: dict[str, dict[YearMonth, str]] = {n: {} for n in variables}
    for p in map(os.fspath, files):
        try:
            f = open(p, "rb")
        except OSError as e:
            raise GribError(f"cannot read GRIB file {p!r}: {e.strerror}") from None
        with f:
            index = 0
            while True:
                try:
                    h = ec.codes_grib_new_from_file(f, headers_only=True)
                except ec.GribInternalError as e:
                    raise GribError(
                        f"{p}: message {index + 1} is not readable GRIB ({e})"
                    ) from None
                if h is None:
                    break
                index += 1
                try:
                    name = by_pid.get(int(ec.codes_get(h, "paramId")))
                    if name is None:
                        continue
                    ym = _middle_month(*_period(ec, h, f"{p} message {index}"))
                finally:
                    ec.codes_release(h)
                if ym in out[name] and out[name][ym] != p:
                    raise GribError(f"{name}: two fields for {format_month(*ym)}: in "
                                    f"{out[name][ym]} and in {p}")  # fmt: skip
                out[name][ym] = p
        if index == 0:
            raise GribError(f"{p}: no GRIB message in the file")
    return out


# The GRIB parameter each forcing variable is written as (`write_forcing`): the
# statistic over the month (code table 4.10: 0 average, 1 accumulation) and the
# factor from landbc's unit to the GRIB unit per day of the month. Accumulations in
# m and J m-2 are what every IFS-family reader knows; `read_forcing` divides them by
# the length of the period again.
_FORCING_WRITE: dict[str, tuple[int, int, float]] = {
    "t2m": (167, 0, 1.0),  # 2t average, K (ecCodes 2.50 reads it as avg_2t)
    "tp": (228, 1, 1.0 / 1000.0),  # tp accumulated, m: mm day-1 -> m day-1
    "ssrd": (169, 1, 86400.0),  # ssrd accumulated, J m-2: W m-2 -> J m-2 day-1
}
FORCING_BITS_PER_VALUE = 24  # forcing is read back into float32: 24 bits lose nothing visible


def encode_forcing_field(
    name: str,
    values: Any,
    grid: ModelGrid | Grid,
    year: int,
    month: int,
    *,
    bits_per_value: int = FORCING_BITS_PER_VALUE,
) -> EncodedMessage:
    """One monthly forcing field (`name` in FORCING_VARIABLES, values in landbc's units:
    t2m K, tp mm day-1, ssrd W m-2; NaN = missing, written with a bitmap) as a verified
    GRIB2 message that `read_forcing` reads back to packing precision.

    t2m is the average over the month of 2t (paramId 167, template 4.8); tp and
    ssrd are the accumulations over the month of tp (228, m) and ssrd (169, J
    m-2), the period running from the 1st of the month to the 1st of the next in
    the standard calendar (the one landbc runs in)."""
    if name not in _FORCING_WRITE:
        raise GribError(f"unknown forcing variable {name!r}: landbc writes "
                        f"{', '.join(FORCING_VARIABLES)} as forcing GRIB")  # fmt: skip
    for what, v, lo, hi in (("year", year, 1, 9999), ("month", month, 1, 12)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise GribError(f"{name}: {what} must be an integer {lo}..{hi}, found {v!r}")
    year, month = int(year), int(month)
    pid, stat, factor = _FORCING_WRITE[name]
    var = catalog.variable(name)
    model_grid = _as_model_grid(grid)
    a = np.asarray(values, dtype=np.float64)
    if a.shape not in (tuple(model_grid.shape), (model_grid.npoints,)):
        raise GribError(
            f"{name}: field of shape {a.shape} does not fit the grid {model_grid.describe()}: "
            f"expected {tuple(model_grid.shape)} (or {(model_grid.npoints,)})"
        )
    a = a.reshape(-1)
    if np.isinf(a).any():
        raise GribError(f"{name}: values must be finite or NaN (missing), found inf")
    ok = a[~np.isnan(a)]
    if ok.size and (ok.min() < var.valid_min or ok.max() > var.valid_max):
        raise GribError(f"{name}: values {ok.min():.4g}..{ok.max():.4g} {var.units} for "
                        f"{format_month(year, month)} outside the valid range "
                        f"{var.valid_min:g}..{var.valid_max:g} {var.units}")  # fmt: skip
    days = days_in_month(year, month) if stat == 1 else 1
    data = a * (factor * days)
    missing = np.isnan(data)

    ec = _eccodes()
    sample, grid_keys = _grid_keys(model_grid)
    time_keys = [
        (k, stat if k == "typeOfStatisticalProcessing" else v)
        for k, v in _time_keys(year, month, AVERAGE, "hours", "standard")
    ]
    keys: Keys = [
        ("centre", _ECMF),
        ("tablesVersion", tables_version_latest()),
        *grid_keys,
        ("productDefinitionTemplateNumber", 8),
    ]
    # paramId sets discipline, category, number and the level (2 m for 2t); it is not
    # checked as a key, since ecCodes reads it back under its name of the statistic.
    after: Keys = [
        *time_keys,
        ("packingType", "grid_simple"),
        ("bitmapPresent", int(missing.any())),
    ]
    message = _encode(ec, sample, [*keys, ("paramId", pid), *after], data, missing,
                      int(bits_per_value), name)  # fmt: skip
    what = f"{name} {format_month(year, month)}"
    decoded = verify_message(message, [*keys, *after], grid=model_grid, values=data,
                             bits_per_value=int(bits_per_value), what=what)  # fmt: skip
    readable = {s.param_id for s in FORCING_SOURCES[name]}
    if decoded[0] not in readable:
        raise GribError(f"{what}: paramId reads back as {decoded[0]} ({decoded[1]}); "
                        f"read_forcing reads {_describe_sources(name)}")  # fmt: skip
    return EncodedMessage(name, year, month, message, tuple([*keys, *after]), *decoded)


def write_forcing(
    path: str | os.PathLike[str],
    fields_by_month: Mapping[YearMonth, Mapping[str, Any]],
    grid: ModelGrid | Grid,
    *,
    bits_per_value: int = FORCING_BITS_PER_VALUE,
) -> list[EncodedMessage]:
    """Write monthly forcing into one GRIB2 file, atomically: for each (year, month) of
    `fields_by_month`, its fields by name (t2m K, tp mm day-1, ssrd W m-2, on `grid`,
    NaN = missing), as `encode_forcing_field` encodes them. What `read_forcing` gives
    back equals the input to packing precision (24 bits by default). For hosts that
    hand landbc their climate as files, and for tests."""
    encoded = [
        encode_forcing_field(name, values, grid, year, month, bits_per_value=bits_per_value)
        for (year, month), fields in sorted(fields_by_month.items())
        for name, values in fields.items()
    ]
    if not encoded:
        raise GribError(f"{path}: no forcing fields to write")
    write_messages(path, encoded)
    log.info("wrote %d forcing GRIB messages to %s", len(encoded), path)
    return encoded
