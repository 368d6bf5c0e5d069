"""GRIB2 boundary fields written by landbc.coupler.gribio, read back by independent readers.

Readers: the Python ecCodes 2.50 (eccodes + eccodeslib wheels) used directly,
key by key, not through gribio; and Debian's ecCodes 2.28 command-line tools
(libeccodes-tools: grib_get, grib_ls, grib_compare), a different version with
different parameter tables, which is what a host model's installation may
have. Tests that need the tools skip, saying so, where they are not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import eccodes as ec
import numpy as np
import pytest

from landbc.coupler import gribio
from landbc.coupler.gribio import GribError
from landbc.coupler.grids import GaussianGrid, RegularLatLonGrid, grid_from_grib
from landbc.emulator.grid import Grid

IFS = {"cvl": 27, "cvh": 28, "tvl": 29, "tvh": 30, "lai_lv": 66, "lai_hv": 67}
BOUNDARY = tuple(IFS)

GRIB_GET = shutil.which("grib_get")
needs_tools = pytest.mark.skipif(
    GRIB_GET is None,
    reason="Debian's ecCodes command-line tools (grib_get, grib_ls, grib_compare) are not on "
    "PATH: install libeccodes-tools (cpp/install-system-packages.sh does)",
)


def tool(*args: str | Path) -> str:
    """Run an ecCodes command-line tool; its stdout (a failure shows its stderr)."""
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{args[0]} failed ({r.returncode}): {r.stderr}"
    return r.stdout


def tool_version() -> str:
    return tool("grib_get", "-V").strip().split()[-1]


# ---------------------------------------------------------------------------
# Analytic fields on three grids
# ---------------------------------------------------------------------------

O96 = GaussianGrid.octahedral(96)
ONE_DEGREE = RegularLatLonGrid.global_grid(1.0)
# A small window of a 1/120° (~1 km) emulator grid west of 0 E (longitudes wrap in GRIB2).
HIGH_RES = Grid(lat_south=45.0, lat_north=45.5, lon_west=-10.0, lon_east=-9.25, res=1 / 120)


def model_grid(grid):
    return RegularLatLonGrid.from_emulator_grid(grid) if isinstance(grid, Grid) else grid


def analytic_fields(grid, month: int) -> dict[str, np.ndarray]:
    """Smooth covers and LAI, types on half the cells, NaN over a 'sea' band."""
    g = model_grid(grid)
    lat, lon = np.radians(g.latitudes), np.radians(g.longitudes)
    season = np.cos(2 * np.pi * (month - 7) / 12)
    sea = np.sin(3 * lon) * np.cos(2 * lat) > 0.6
    sea[::97] = True  # and scattered points, so that every grid (window) has missing values
    cvh = 0.45 + 0.4 * np.sin(lat) * np.cos(2 * lon)
    cvl = 0.9 - cvh
    lai_hv = 3.0 + 2.0 * np.cos(lat) * season + np.sin(5 * lon)
    lai_lv = 1.5 + np.cos(lat) * season * np.cos(lon) ** 2
    tvh = np.where(np.cos(7 * lon) > 0, 3, 18).astype(float)
    tvl = np.select([np.sin(4 * lat) > 0.3, np.sin(4 * lat) < -0.3], [1, 17], 9).astype(float)
    tvh[np.sin(11 * lon) > 0.95] = 0  # no high vegetation
    out = {"cvl": cvl, "cvh": cvh, "tvl": tvl, "tvh": tvh, "lai_lv": lai_lv, "lai_hv": lai_hv}
    for a in out.values():
        a[sea] = np.nan
    return {k: v.reshape(g.shape) for k, v in out.items()}


MONTHS = ((2016, 2), (2016, 7))  # a leap February (696 h) and July (744 h)


def read_raw(path: Path) -> list[dict]:
    """Every message with Python ecCodes directly: keys, values (NaN by bitmap), points."""
    out = []
    with open(path, "rb") as f:
        while (h := ec.codes_grib_new_from_file(f)) is not None:
            try:
                d = {
                    k: ec.codes_get(h, k)
                    for k in (
                        "paramId", "shortName", "discipline", "parameterCategory",
                        "parameterNumber", "stepType", "stepRange", "dataDate", "dataTime",
                        "validityDate", "validityTime", "productDefinitionTemplateNumber",
                        "packingType", "bitmapPresent", "gridType", "bitsPerValue",
                        "binaryScaleFactor", "decimalScaleFactor", "numberOfDataPoints",
                    )
                }  # fmt: skip
                if d["productDefinitionTemplateNumber"] == 8:
                    for k in ("typeOfStatisticalProcessing", "lengthOfTimeRange",
                              "indicatorOfUnitForTimeRange", "typeOfTimeIncrement"):  # fmt: skip
                        d[k] = ec.codes_get(h, k)
                v = ec.codes_get_values(h).astype(np.float64)
                if d["bitmapPresent"]:
                    v[ec.codes_get_array(h, "bitmap") == 0] = np.nan
                d["values"] = v
                d["latitudes"] = ec.codes_get_array(h, "latitudes")
                d["longitudes"] = ec.codes_get_array(h, "longitudes")
                d["grid"] = grid_from_grib(h)
                if d["gridType"] == "reduced_gg":
                    d["gridName"] = ec.codes_get(h, "gridName")
                    d["isOctahedral"] = ec.codes_get(h, "isOctahedral")
            finally:
                ec.codes_release(h)
            out.append(d)
    return out


@pytest.fixture(scope="module", params=["O96", "1x1", "high-res"])
def written(request, tmp_path_factory):
    """Six parameters × two months on one grid, in one file, with the defaults."""
    grid = {"O96": O96, "1x1": ONE_DEGREE, "high-res": HIGH_RES}[request.param]
    fields = [(n, a, y, m) for y, m in MONTHS for n, a in analytic_fields(grid, m).items()]
    path = tmp_path_factory.mktemp("grib") / f"bc-{request.param}.grib2"
    encoded = gribio.write_fields(path, fields, grid)
    return grid, fields, path, encoded


# ---------------------------------------------------------------------------
# Round trip with the Python ecCodes
# ---------------------------------------------------------------------------


def test_round_trip_python_eccodes(written):
    grid, fields, path, encoded = written
    g = model_grid(grid)
    msgs = read_raw(path)
    assert len(msgs) == len(fields) == 12
    for (name, values, year, month), d in zip(fields, msgs, strict=True):
        what = f"{name} {year}-{month}"
        # The default encoding: ECMWF local, read as the IFS parameter.
        assert (d["paramId"], d["shortName"]) == (IFS[name], name), what
        assert (d["discipline"], d["parameterCategory"], d["parameterNumber"]) == (
            192, 128, IFS[name]), what  # fmt: skip
        # A statistic over the calendar month: average, or mode for the types.
        hours = 696 if month == 2 else 744
        code = name.startswith("tv")
        assert d["productDefinitionTemplateNumber"] == 8
        assert d["typeOfStatisticalProcessing"] == (101 if code else 0), what
        assert d["stepType"] == ("mode" if code else "avg"), what
        assert d["typeOfTimeIncrement"] == 2
        assert (d["indicatorOfUnitForTimeRange"], d["lengthOfTimeRange"]) == (1, hours)
        assert d["stepRange"] == f"0-{hours}"
        assert (d["dataDate"], d["dataTime"]) == (year * 10000 + month * 100 + 1, 0)
        assert (d["validityDate"], d["validityTime"]) == (year * 10000 + (month + 1) * 100 + 1, 0)
        # The grid: ecCodes' own points are the grid's, in scanning order.
        assert d["grid"] == g
        assert d["numberOfDataPoints"] == g.npoints
        # ecCodes steps rows by the increment rounded to a microdegree (1/120 deg is stored as
        # 0.008333), so its points drift by up to half a microdegree per row (grids.py).
        drift = 1e-6 + 0.5e-6 * max(g.shape)
        np.testing.assert_allclose(d["latitudes"], g.latitudes, atol=drift)
        np.testing.assert_allclose(d["longitudes"] % 360, g.longitudes % 360, atol=drift)
        # Values: NaN where they were NaN (bitmap), codes exact, the rest to packing precision.
        x = values.reshape(-1)
        assert d["packingType"] == "grid_simple" and d["bitmapPresent"] == 1
        np.testing.assert_array_equal(np.isnan(d["values"]), np.isnan(x), err_msg=what)
        ok = ~np.isnan(x)
        if code:
            np.testing.assert_array_equal(d["values"][ok], x[ok], err_msg=what)
        else:
            assert d["bitsPerValue"] == 16 and d["decimalScaleFactor"] == 0
            half_quantum = 0.5 * 2.0 ** d["binaryScaleFactor"]
            err = np.abs(d["values"][ok] - x[ok]).max()
            assert err <= half_quantum * 1.000001, (what, err, half_quantum)
            assert err <= (np.nanmax(x) - np.nanmin(x)) / 2**16  # 16 bits of the range
    if isinstance(grid, GaussianGrid):
        assert msgs[0]["gridName"] == "O96" and msgs[0]["isOctahedral"] == 1


def test_encoded_messages_say_what_was_verified(written):
    _, fields, path, encoded = written
    assert path.read_bytes() == b"".join(m.message for m in encoded)
    assert [(m.name, m.year, m.month) for m in encoded] == [(n, y, m) for n, _, y, m in fields]
    assert all(m.decoded_param_id == IFS[m.name] for m in encoded)
    keys = dict(encoded[0].keys)
    assert keys["typeOfFirstFixedSurface"] == 1 and keys["centre"] == 98
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed


def test_gribio_reader_and_xarray(written):
    grid, fields, path, _ = written
    g = model_grid(grid)
    got = gribio.read_grib(path)
    assert [(f.short_name, f.year_month) for f in got] == [(n, (y, m)) for n, _, y, m in fields]
    assert all(f.grid == g and f.values.shape == g.shape for f in got)
    ds = gribio.to_dataset(got)  # by hand: cfgrib is not needed
    assert set(ds.data_vars) == set(BOUNDARY)
    spatial = ("latitude", "longitude") if len(g.shape) == 2 else ("values",)
    assert ds["cvh"].dims == ("time", *spatial)
    assert [str(t)[:7] for t in ds["time"].values] == ["2016-02", "2016-07"]
    assert ds["tvh"].attrs["GRIB_paramId"] == 30 and ds["tvh"].attrs["GRIB_stepType"] == "mode"
    fields_by = {(n, m): a for n, a, _, m in fields}
    np.testing.assert_array_equal(ds["tvl"].isel(time=1).values, fields_by["tvl", 7])
    np.testing.assert_allclose(ds["lai_hv"].isel(time=0).values, fields_by["lai_hv", 2],
                               atol=1e-3)  # fmt: skip
    lat = g.row_latitudes if len(g.shape) == 2 else g.latitudes
    np.testing.assert_allclose(ds["latitude"].values, lat)


# ---------------------------------------------------------------------------
# Debian's ecCodes 2.28 tools
# ---------------------------------------------------------------------------


@needs_tools
def test_debian_tools_read_default_encoding(written):
    grid, fields, path, _ = written
    lines = tool("grib_get", "-p", "paramId,shortName,stepType,stepRange,validityDate",
                 path).split("\n")  # fmt: skip
    expected = []
    for name, _, year, month in fields:
        hours = 696 if month == 2 else 744
        step_type = "mode" if name.startswith("tv") else "avg"
        expected.append(f"{IFS[name]} {name} {step_type} 0-{hours} {year}{month + 1:02d}01")
    assert [ln.strip() for ln in lines if ln.strip()] == expected
    listing = tool("grib_ls", "-p", "shortName,gridType,packingType", path)
    assert f"{len(fields)} of {len(fields)} messages" in listing
    if isinstance(grid, GaussianGrid):
        assert tool("grib_get", "-w", "count=1", "-p", "gridName", path).strip() == "O96"


# What each ecCodes decodes, per encoding, verified on Debian 12's 2.28 and the wheels' 2.50.
WMO_AVG_2_50 = {"cvl": (235081, "avg_cvl"), "cvh": (235082, "avg_cvh"),
                "lai_lv": (235085, "avg_lai_lv"), "lai_hv": (235086, "avg_lai_hv"),
                "lai": (235394, "avg_lai")}  # fmt: skip
PARAM_IDS = {**IFS, "lai": 260373}


@needs_tools
@pytest.mark.parametrize("statistic", ["default", "instant"])
@pytest.mark.parametrize("encoding", ["ecmwf-local", "wmo"])
def test_encodings_as_each_ecCodes_reads_them(tmp_path, encoding, statistic):
    grid = RegularLatLonGrid.global_grid(10.0)
    f = analytic_fields(grid, 4)
    f["lai"] = f["lai_hv"]
    names = (*BOUNDARY, "lai")
    kw = {} if statistic == "default" else {"statistic": "instant"}
    msgs = [gribio.encode_field(n, f[n], grid, 2020, 4, encoding=encoding, **kw) for n in names]
    path = gribio.write_messages(tmp_path / "p.grib2", msgs)
    old = tool("grib_get", "-p", "paramId,shortName", path).split("\n")
    old = [tuple(ln.split()) for ln in old if ln.strip()]
    new = [(m.decoded_param_id, m.decoded_short_name) for m in msgs]
    assert [(d["paramId"], d["shortName"]) for d in read_raw(path)] == new
    for name, (pid_new, short_new), (pid_old, short_old) in zip(names, new, old, strict=True):
        local = encoding == "ecmwf-local" and name != "lai"
        if local:  # the default: both versions read the IFS parameter
            assert (pid_new, short_new) == (IFS[name], name)
            assert (int(pid_old), short_old) == (IFS[name], name)
            continue
        # The WMO encoding (lai has no other): facts of these two versions.
        if tool_version() == "2.28.0":
            assert (int(pid_old), short_old) == (0, "unknown"), name
        if ec.codes_get_api_version().startswith("2.50"):
            if statistic == "default" and name in WMO_AVG_2_50:
                assert (pid_new, short_new) == WMO_AVG_2_50[name]
            else:
                assert (pid_new, short_new) == (PARAM_IDS[name], name)


@needs_tools
def test_written_twice_is_identical(tmp_path):
    grid = RegularLatLonGrid.global_grid(5.0)
    paths = []
    for i in range(2):
        fields = [(n, a, 2001, 6) for n, a in analytic_fields(grid, 6).items()]
        paths.append(tmp_path / f"copy{i}.grib2")
        gribio.write_fields(paths[-1], fields, grid)
    r = subprocess.run(["grib_compare", *map(str, paths)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()


@needs_tools
def test_ccsds_packing(tmp_path):
    if not gribio.ccsds_available():
        pytest.skip("this ecCodes cannot write grid_ccsds (no libaec)")
    grid = GaussianGrid.octahedral(24)
    f = analytic_fields(grid, 1)
    simple = gribio.encode_field("lai_hv", f["lai_hv"], grid, 1990, 1)
    ccsds = gribio.encode_field("lai_hv", f["lai_hv"], grid, 1990, 1, packing="grid_ccsds")
    codes = gribio.encode_field("tvh", f["tvh"], grid, 1990, 1, packing="grid_ccsds")
    path = gribio.write_messages(tmp_path / "c.grib2", [simple, ccsds, codes])
    d = read_raw(path)
    assert [m["packingType"] for m in d] == ["grid_simple", "grid_ccsds", "grid_ccsds"]
    np.testing.assert_array_equal(d[0]["values"], d[1]["values"])  # same quantised values
    np.testing.assert_array_equal(d[2]["values"], f["tvh"])
    assert len(ccsds.message) < len(simple.message)
    out = tool("grib_get", "-p", "packingType,shortName,numberOfMissing", path).split("\n")
    n_missing = int(np.isnan(f["tvh"]).sum())
    assert [ln.strip() for ln in out if ln.strip()] == [
        f"grid_simple lai_hv {n_missing}", f"grid_ccsds lai_hv {n_missing}",
        f"grid_ccsds tvh {n_missing}"]  # fmt: skip
    # Debian's decoder gives the same values as the wheel's.
    dump = tool("grib_get_data", "-w", "packingType=grid_ccsds,shortName=tvh", "-m", "nan",
                "-F", "%.1f", path).split("\n")[1:]  # fmt: skip
    old = np.array([float(ln.split()[2]) for ln in dump if ln.strip()])
    np.testing.assert_array_equal(old, f["tvh"])


# ---------------------------------------------------------------------------
# Time keys
# ---------------------------------------------------------------------------


def keys_of(msg: gribio.EncodedMessage, *names: str) -> tuple:
    h = ec.codes_new_from_message(msg.message)
    try:
        return tuple(ec.codes_get(h, k) for k in names)
    finally:
        ec.codes_release(h)


@pytest.mark.parametrize(
    ("calendar", "year", "month", "hours"),
    [("standard", 1900, 2, 672), ("standard", 2000, 2, 696), ("proleptic_gregorian", 2100, 12,
     744), ("noleap", 2016, 2, 672), ("all_leap", 2015, 2, 696), ("360_day", 2015, 1, 720)],
)  # fmt: skip
def test_length_of_month_per_calendar(calendar, year, month, hours):
    grid = RegularLatLonGrid.global_grid(30.0)
    m = gribio.encode_field("cvl", np.full(grid.shape, 0.2), grid, year, month, calendar=calendar)
    end = year * 10000 + month * 100 + 101 if month < 12 else (year + 1) * 10000 + 101
    assert keys_of(m, "lengthOfTimeRange", "indicatorOfUnitForTimeRange", "validityDate") == (
        hours, 1, end)  # fmt: skip


def test_month_unit_and_instant():
    grid = RegularLatLonGrid.global_grid(30.0)
    v = np.full(grid.shape, 1.0)
    m = gribio.encode_field("lai_lv", v, grid, 2016, 2, time_unit="month")
    # "1 month" is right in any calendar; ecCodes counts it as 720 h in stepRange.
    assert keys_of(m, "indicatorOfUnitForTimeRange", "lengthOfTimeRange", "stepRange",
                   "validityDate") == (3, 1, "0-720", 20160301)  # fmt: skip
    i = gribio.encode_field("tvh", v * 0 + 19, grid, 2016, 2, statistic="instant")
    assert keys_of(i, "productDefinitionTemplateNumber", "stepType", "validityDate",
                   "validityTime") == (0, "instant", 20160201, 0)  # fmt: skip


def test_lai_is_the_wmo_parameter():
    grid = RegularLatLonGrid.global_grid(30.0)
    m = gribio.encode_field("lai", np.full(grid.shape, 2.0), grid, 2010, 5, statistic="instant")
    assert keys_of(m, "discipline", "parameterCategory", "parameterNumber", "paramId") == (
        2, 0, 28, 260373)  # fmt: skip


# ---------------------------------------------------------------------------
# Forcing
# ---------------------------------------------------------------------------

FORCING_GRID = RegularLatLonGrid.global_grid(10.0, on_poles=False)


def forcing_truth(month: int) -> dict[str, np.ndarray]:
    """Monthly means in landbc's units: K, mm day-1, W m-2."""
    g = FORCING_GRID
    lat = np.radians(g.latitudes).reshape(g.shape)
    lon = np.radians(g.longitudes).reshape(g.shape)
    t2m = 250 + 45 * np.cos(lat) + 3 * np.sin(lon) + month
    tp = 3 + 2 * np.cos(lat) ** 2 + np.sin(lon) ** 2
    ssrd = 100 + 150 * np.cos(lat) + month
    t2m[0, :3] = np.nan
    return {"t2m": t2m, "tp": tp, "ssrd": ssrd}


def write_forcing_grib2(path: Path, months, skip=()) -> None:
    """ECMWF-style GRIB2 written with ecCodes directly: 2t as a monthly average (template
    4.8), tp (m) and ssrd (J m-2) accumulated over the month."""
    with open(path, "wb") as f:
        for year, month in months:
            days = 29 if (year, month) == (2016, 2) else 31 if month in (1, 3, 5, 7) else 30
            truth = forcing_truth(month)
            for pid, name, stat, value in (
                (167, "t2m", 0, truth["t2m"]),
                (228, "tp", 1, truth["tp"] / 1000 * days),  # mm day-1 -> m per month
                (169, "ssrd", 1, truth["ssrd"] * 86400 * days),  # W m-2 -> J m-2 per month
            ):
                if (name, month) in skip:
                    continue
                h = ec.codes_grib_new_from_samples("regular_ll_sfc_grib2")
                g = FORCING_GRID
                for k, v in (("tablesVersion", ec.codes_get(h, "tablesVersionLatest")),
                             ("Ni", g.nlon), ("Nj", g.nlat),
                             ("latitudeOfFirstGridPointInDegrees", g.lat_first),
                             ("longitudeOfFirstGridPointInDegrees", g.lon_first),
                             ("latitudeOfLastGridPointInDegrees", g.lat_last),
                             ("longitudeOfLastGridPointInDegrees", g.lon_last),
                             ("iDirectionIncrementInDegrees", g.dlon),
                             ("jDirectionIncrementInDegrees", g.dlat),
                             ("paramId", pid), ("productDefinitionTemplateNumber", 8),
                             ("typeOfStatisticalProcessing", stat), ("typeOfTimeIncrement", 2),
                             ("dataDate", year * 10000 + month * 100 + 1), ("dataTime", 0),
                             ("forecastTime", 0), ("indicatorOfUnitForTimeRange", 1),
                             ("lengthOfTimeRange", 24 * days),
                             ("yearOfEndOfOverallTimeInterval", year + month // 12),
                             ("monthOfEndOfOverallTimeInterval", month % 12 + 1),
                             ("dayOfEndOfOverallTimeInterval", 1),
                             ("hourOfEndOfOverallTimeInterval", 0),
                             ("bitsPerValue", 24), ("bitmapPresent", 1),
                             ("missingValue", 9999.0)):  # fmt: skip
                    ec.codes_set(h, k, v)
                ec.codes_set_values(h, np.where(np.isnan(value), 9999.0, value).reshape(-1))
                ec.codes_write(h, f)
                ec.codes_release(h)


def write_forcing_era5_grib1(path: Path, months, celsius=False) -> None:
    """ERA5-style monthly means (GRIB1, stamped on the 1st, step 0): tp in m day-1 and
    ssrd in J m-2 day-1 (means of daily accumulations)."""
    with open(path, "wb") as f:
        for year, month in months:
            truth = forcing_truth(month)
            t2m = truth["t2m"] - (273.15 if celsius else 0.0)
            for pid, value in ((167, t2m), (228, truth["tp"] / 1000), (169, truth["ssrd"] * 86400)):
                h = ec.codes_grib_new_from_samples("regular_ll_sfc_grib1")
                g = FORCING_GRID
                for k, v in (("Ni", g.nlon), ("Nj", g.nlat),
                             ("latitudeOfFirstGridPointInDegrees", g.lat_first),
                             ("longitudeOfFirstGridPointInDegrees", g.lon_first),
                             ("latitudeOfLastGridPointInDegrees", g.lat_last),
                             ("longitudeOfLastGridPointInDegrees", g.lon_last),
                             ("iDirectionIncrementInDegrees", g.dlon),
                             ("jDirectionIncrementInDegrees", g.dlat), ("paramId", pid),
                             ("dataDate", year * 10000 + month * 100 + 1), ("dataTime", 0),
                             ("bitsPerValue", 24), ("bitmapPresent", 1),
                             ("missingValue", 9999.0)):  # fmt: skip
                    ec.codes_set(h, k, v)
                ec.codes_set_values(h, np.where(np.isnan(value), 9999.0, value).reshape(-1))
                ec.codes_write(h, f)
                ec.codes_release(h)


FORCING_MONTHS = [(2016, 1), (2016, 2), (2016, 3)]


@pytest.mark.parametrize("style", ["grib2-accumulated", "era5-grib1"])
def test_forcing_round_trip(tmp_path, style):
    path = tmp_path / "forcing.grib"
    if style == "era5-grib1":
        write_forcing_era5_grib1(path, FORCING_MONTHS)
    else:
        write_forcing_grib2(path, FORCING_MONTHS)
    fo = gribio.read_forcing(path)
    assert fo.grid == FORCING_GRID
    assert fo.months == tuple(FORCING_MONTHS)
    assert dict(fo.units) == {"t2m": "K", "tp": "mm day-1", "ssrd": "W m-2"}
    for i, (_, month) in enumerate(FORCING_MONTHS):
        truth = forcing_truth(month)
        for name in ("t2m", "tp", "ssrd"):
            got = fo.data[name][i]
            assert got.dtype == np.float32 and got.shape == FORCING_GRID.shape
            np.testing.assert_allclose(got, truth[name], rtol=2e-6, atol=1e-4, err_msg=name)
        np.testing.assert_array_equal(fo.field("t2m", 2016, month), fo.data["t2m"][i])
    if style == "grib2-accumulated":
        assert "avg_2t (228004)" in fo.sources["t2m"][0]  # ecCodes 2.50's name of an average
        assert "accumulated over 696 h" in fo.sources["tp"][1]
    else:
        assert "daily accumulations" in fo.sources["ssrd"][0]
    sub = gribio.read_forcing(path, variables=["tp"], months=[(2016, 2)])
    assert list(sub.data) == ["tp"] and sub.months == ((2016, 2),)


# ---------------------------------------------------------------------------
# Errors: each names the variable and what was expected
# ---------------------------------------------------------------------------


def test_error_unknown_parameter():
    with pytest.raises(GribError, match=r"unknown GRIB parameter 'lai_xx'.*cvl, cvh, tvl"):
        gribio.encode_field("lai_xx", np.zeros(ONE_DEGREE.shape), ONE_DEGREE, 2000, 1)


def test_error_wrong_shape():
    with pytest.raises(GribError, match=r"cvh: field of shape \(180, 360\).*expected \(181, 360\)"):
        gribio.encode_field("cvh", np.zeros((180, 360)), ONE_DEGREE, 2000, 1)
    with pytest.raises(GribError, match=r"lai_hv: .*O96 .*expected \(40320,\)"):
        gribio.encode_field("lai_hv", np.zeros(40000), O96, 2000, 1)


def test_error_values_and_options():
    g = RegularLatLonGrid.global_grid(30.0)
    z = np.zeros(g.shape)
    with pytest.raises(GribError, match=r"cvl: values 0..1.5 outside the valid range 0..1"):
        gribio.encode_field("cvl", z + np.linspace(0, 1.5, z.size).reshape(g.shape), g, 2000, 1)
    with pytest.raises(
        GribError,
        match=r"tvh \(type of high vegetation\): codes \[1\] are not allowed; expected one "
        r"of \[0, 3, 4",
    ):
        gribio.encode_field("tvh", z + 1, g, 2000, 1)
    with pytest.raises(GribError, match=r"tvl: a vegetation type must be an integer code"):
        gribio.encode_field("tvl", z + 1.5, g, 2000, 1)
    with pytest.raises(GribError, match=r"tvl: an average of vegetation type codes"):
        gribio.encode_field("tvl", z + 1, g, 2000, 1, statistic="average")
    with pytest.raises(GribError, match=r"cvl: packing must be one of .*'grid_ccsds'.*'grid_jpeg'"):
        gribio.encode_field("cvl", z, g, 2000, 1, packing="grid_jpeg")
    with pytest.raises(GribError, match=r"cvl: encoding must be one of 'ecmwf-local', 'wmo'"):
        gribio.encode_field("cvl", z, g, 2000, 1, encoding="ncep")
    with pytest.raises(GribError, match=r"cvl: month must be an integer 1..12, found 13"):
        gribio.encode_field("cvl", z, g, 2000, 13)
    with pytest.raises(GribError, match=r"cvl: values must be finite or NaN"):
        gribio.encode_field("cvl", z + np.inf, g, 2000, 1)


def test_error_ccsds_unavailable(monkeypatch):
    monkeypatch.setattr(gribio, "ccsds_available", lambda: False)
    g = RegularLatLonGrid.global_grid(30.0)
    with pytest.raises(GribError, match=r"lai_lv: packing 'grid_ccsds' is not available.*"
                       r"libaec.*packing='grid_simple'"):  # fmt: skip
        gribio.encode_field("lai_lv", np.ones(g.shape), g, 2000, 1, packing="grid_ccsds")


def test_error_key_read_back_differs():
    g = RegularLatLonGrid.global_grid(30.0)
    m = gribio.encode_field("cvl", np.ones(g.shape) / 2, g, 2000, 1)
    gribio.verify_message(m.message, m.keys, grid=g)  # what was written verifies
    with pytest.raises(GribError, match=r"key 'lengthOfTimeRange' reads back as 744, but 743"):
        gribio.verify_message(m.message, [("lengthOfTimeRange", 743)])
    with pytest.raises(GribError, match=r"the grid reads back as regular_ll 30x30 global"):
        gribio.verify_message(m.message, [], grid=ONE_DEGREE)


def test_failed_write_keeps_the_old_file(tmp_path):
    g = RegularLatLonGrid.global_grid(30.0)
    path = tmp_path / "bc.grib2"
    gribio.write_fields(path, [("cvl", np.ones(g.shape) / 2, 2000, 1)], g)
    before = path.read_bytes()
    with pytest.raises(GribError, match="cvh: field of shape"):
        gribio.write_fields(path, [("cvl", np.ones(g.shape), 2000, 2), ("cvh", np.ones(3), 2000,
                            2)], g)  # fmt: skip

    def failing():
        yield gribio.encode_field("cvl", np.ones(g.shape), g, 2000, 3)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        gribio.write_messages(path, failing())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bc.grib2"]


def test_forcing_errors(tmp_path):
    path = tmp_path / "f.grib2"
    write_forcing_grib2(path, FORCING_MONTHS, skip={("tp", 2)})
    with pytest.raises(GribError, match=r"tp: no field for 2016-02 in .*f.grib2 \(found 2016-01, "
                       r"2016-03\)"):  # fmt: skip
        gribio.read_forcing(path)
    with pytest.raises(GribError, match=r"t2m: no field for 2016-04 .*found 2016-01, 2016-02, "):
        gribio.read_forcing(path, variables=["t2m"], months=[(2016, 4)])
    with pytest.raises(GribError, match=r"unknown forcing variable 'swvl1'"):
        gribio.read_forcing(path, variables=["swvl1"])
    only_t = tmp_path / "t.grib2"
    write_forcing_grib2(only_t, FORCING_MONTHS[:1], skip={("tp", 1), ("ssrd", 1)})
    with pytest.raises(GribError, match=r"ssrd: no message in .* with paramId 169 \(ssrd, J m\*\*-2"
                       r"\), 235035 .*the file has paramIds \[228004\]"):  # fmt: skip
        gribio.read_forcing(only_t, variables=["t2m", "ssrd"])
    celsius = tmp_path / "c.grib"
    write_forcing_era5_grib1(celsius, FORCING_MONTHS[:1], celsius=True)
    with pytest.raises(GribError, match=r"t2m: values .* K for 2016-01 .* outside the expected "
                       r"180..340 K"):  # fmt: skip
        gribio.read_forcing(celsius)
    fo = gribio.read_forcing(celsius, check_range=False)
    with pytest.raises(GribError, match=r"tp: no forcing for 2016-05; months read: 2016-01"):
        fo.field("tp", 2016, 5)


@pytest.mark.parametrize("grid", [GaussianGrid.regular(16), GaussianGrid.classic(32)],
                         ids=["F16", "N32"])  # fmt: skip
def test_other_gaussian_grids(tmp_path, grid):
    f = analytic_fields(grid, 3)
    path = tmp_path / "g.grib2"
    gribio.write_fields(path, [("lai_lv", f["lai_lv"], 2030, 3), ("tvl", f["tvl"], 2030, 3)], grid)
    d = read_raw(path)
    assert [m["gridType"] for m in d] == ["regular_gg" if grid.is_regular else "reduced_gg"] * 2
    assert all(m["grid"] == grid for m in d)
    np.testing.assert_array_equal(d[1]["values"], f["tvl"].reshape(-1))
    np.testing.assert_allclose(d[0]["latitudes"], grid.latitudes, atol=1e-6)
