"""Monthly climate forcing from an ESM's files (`landbc.coupler.forcing`).

GRIB on an octahedral and on a regular grid remapped to the run's coarse cells
(an analytic field within remap error, a constant exactly constant, missing
values left out), CF NetCDF/Zarr with a noleap calendar and degC / kg m-2 s-1
units, the errors (a missing month before the first step, values out of
range, a domain the file does not cover), the `[forcing]` config keys, and a
whole `landbc run` on the tiny cube reading what `landbc export-forcing`
wrote: the emulator receives the cube's climate up to remap error, and
`climate = "cube"` stays what it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from landbc.coupler import driver, forcing, gribio, remap
from landbc.coupler.cli import main
from landbc.coupler.config import ConfigError, RunConfig
from landbc.coupler.forcing import ForcingError, open_source
from landbc.coupler.grids import GaussianGrid, RegularLatLonGrid, grid_from_name
from landbc.coupler.hostfiles import TINY_GRID
from landbc.emulator.cube import Cube

CLIMATE = ("t2m", "tp", "ssrd")
MONTHS = [(2001, 1), (2001, 2)]
COARSE = RegularLatLonGrid.from_emulator_grid(TINY_GRID, coarse=True)  # 16 x 16 cells, 0.25°


def analytic(name: str, lat, lon, month: int = 1) -> np.ndarray:
    """Smooth fields inside the catalog's ranges (t2m K, tp mm day-1, ssrd W m-2)."""
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    if name == "t2m":
        return 270.0 + 12.0 * np.cos(la) * (1 + 0.3 * np.sin(2 * lo)) + month
    if name == "tp":
        return 2.0 + 1.5 * np.sin(3 * la) ** 2 + 0.5 * np.cos(lo)
    return 150.0 + 80.0 * np.cos(la) + 10.0 * np.sin(lo) + month


def on_grid(grid, month: int = 1) -> dict[str, np.ndarray]:
    lat, lon = np.asarray(grid.latitudes), np.asarray(grid.longitudes)
    return {n: analytic(n, lat, lon, month).reshape(grid.shape) for n in CLIMATE}


def coarse_truth(month: int = 1) -> dict[str, np.ndarray]:
    lat = np.asarray(COARSE.latitudes).reshape(COARSE.shape)
    lon = np.asarray(COARSE.longitudes).reshape(COARSE.shape)
    return {n: analytic(n, lat, lon, month) for n in CLIMATE}


def remap_error_bound(name: str, grid) -> float:
    """What first-order conservative remapping may be off by on the tiny domain: the
    field's steepest change over the distance from a coarse cell's centre to the
    centres of the source cells it overlaps (half a source cell + half a coarse cell)."""
    rows = np.abs(np.asarray(grid.row_latitudes) - 48.0) <= 3.0
    dlat = float(np.abs(np.diff(np.asarray(grid.row_lat_edges))).max())
    dlon = float(np.asarray(grid.row_dlon)[rows].max())
    lat, lon = np.meshgrid(np.linspace(45, 51, 121), np.linspace(5, 11, 121), indexing="ij")
    f = analytic(name, lat, lon)
    g_lat = np.abs(np.diff(f, axis=0)).max() / 0.05
    g_lon = np.abs(np.diff(f, axis=1)).max() / 0.05
    half = COARSE.dlat / 2
    return g_lat * (dlat / 2 + half) + g_lon * (dlon / 2 + half)


def write_months(path: Path, grid, fields_of_month) -> Path:
    gribio.write_forcing(path, {(y, m): fields_of_month(m) for y, m in MONTHS}, grid)
    return path


def grib_source(cube_path, files, tmp, **kw):
    cube = Cube.open(cube_path)
    return open_source(cube, None, cube.grid, climate="grib", files=[str(f) for f in files],
                       cache_dir=tmp / "remap", months=kw.pop("months", MONTHS), **kw)  # fmt: skip


# ---------------------------------------------------------------------------
# The GRIB writer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [GaussianGrid.octahedral(32), RegularLatLonGrid.global_grid(2.0)],
                         ids=["O32", "2x2"])  # fmt: skip
def test_write_forcing_reads_back(tmp_path, grid):
    fields = on_grid(grid, 2)
    fields["tp"].reshape(-1)[:50] = np.nan  # a bitmap
    msgs = gribio.write_forcing(tmp_path / "f.grib2", {(2000, 2): fields, (2001, 7): fields}, grid)
    assert [m.decoded_short_name for m in msgs][:3] == ["avg_2t", "tp", "ssrd"]
    back = gribio.read_forcing(tmp_path / "f.grib2")
    assert back.grid == grid and back.months == ((2000, 2), (2001, 7))
    for name in CLIMATE:
        got = back.field(name, 2000, 2)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(fields[name]), err_msg=name)
        np.testing.assert_allclose(got, fields[name], rtol=1e-6, err_msg=name)
    assert "accumulated over 696 h" in back.sources["tp"][0]  # Feb 2000: 29 days
    index = gribio.forcing_index(tmp_path / "f.grib2")
    assert index["ssrd"] == dict.fromkeys([(2000, 2), (2001, 7)], str(tmp_path / "f.grib2"))
    with pytest.raises(gribio.GribError, match=r"t2m: values 400..400 K for 2000-01 outside the "
                       r"valid range 180..340 K"):  # fmt: skip
        gribio.encode_forcing_field("t2m", np.full(grid.shape, 400.0), grid, 2000, 1)
    with pytest.raises(gribio.GribError, match=r"unknown forcing variable 'lai'"):
        gribio.encode_forcing_field("lai", np.ones(grid.shape), grid, 2000, 1)


# ---------------------------------------------------------------------------
# GRIB on the model's grid -> the run's coarse cells
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["O96", "1/1"])
def test_grib_analytic_field_to_coarse(tmp_path, tiny_cube, name):
    grid = grid_from_name(name)
    path = write_months(tmp_path / "f.grib2", grid, lambda m: on_grid(grid, m))
    src = grib_source(tiny_cube, [path], tmp_path)
    assert isinstance(src, forcing.GribClimate)
    cube = Cube.open(tiny_cube)
    for y, m in MONTHS:
        got, ref = src.forcing(y, m), cube.forcing(y, m)
        assert set(got) == set(ref)
        for n in ("luh2_frac", "secma", "secmb", "co2"):  # yearly forcing: the cube's
            np.testing.assert_array_equal(got[n], ref[n], err_msg=n)
        truth = coarse_truth(m)
        for n in CLIMATE:
            assert got[n].dtype == np.float32 and got[n].shape == COARSE.shape
            # First-order conservative: off by at most the field's change over a source cell.
            err = np.abs(got[n] - truth[n]).max()
            assert err < remap_error_bound(n, grid), (n, err, remap_error_bound(n, grid))
    # The weights are cached, one file for the (unmasked) source grid.
    assert len(list((tmp_path / "remap").glob("remap-conservative-*.safetensors"))) == 1

    # Bilinear, the option, is closer for a smooth field.
    bil = grib_source(tiny_cube, [path], tmp_path, method="bilinear")
    t = coarse_truth(1)
    for n in CLIMATE:
        err = np.abs(bil.climate(n, 2001, 1) - t[n]).max()
        assert err < remap_error_bound(n, grid) / 3, (n, err, remap_error_bound(n, grid))


def test_grib_constant_field_stays_constant(tmp_path, tiny_cube):
    grid = GaussianGrid.octahedral(96)
    const = {"t2m": 285.0, "tp": 2.5, "ssrd": 150.0}
    path = write_months(
        tmp_path / "c.grib2", grid, lambda m: {n: np.full(grid.shape, v) for n, v in const.items()}
    )
    src = grib_source(tiny_cube, [path], tmp_path)
    for n, v in const.items():
        got = src.climate(n, 2001, 2)
        assert np.ptp(got) == 0, n  # exactly constant
        np.testing.assert_allclose(got, v, rtol=2e-6, err_msg=n)


def test_grib_missing_values_are_left_out(tmp_path, tiny_cube):
    """A regional 0.125° grid (2 x 2 source cells per coarse cell) with one cell of four
    missing (a bitmap) where the stored value would be absurd: each coarse cell averages
    its three valid cells only. Missing all four of some cells is an error."""
    grid = RegularLatLonGrid(lat_first=49.9375, lon_first=6.0625, dlat=0.125, dlon=0.125,
                             nlat=32, nlon=32)  # fmt: skip
    i, j = np.indices(grid.shape)
    holes = (i % 2 == 0) & (j % 2 == 0)

    def fields(m):
        f = on_grid(grid, m)
        for n in CLIMATE:
            f[n][holes] = np.nan
        return f

    path = write_months(tmp_path / "holes.grib2", grid, fields)
    src = grib_source(tiny_cube, [path], tmp_path)
    full = on_grid(grid, 2)
    for n in CLIMATE:
        expected = np.where(holes, 0.0, full[n]).reshape(16, 2, 16, 2).sum(axis=(1, 3)) / 3
        np.testing.assert_allclose(src.climate(n, 2001, 2), expected, rtol=1e-5, err_msg=n)

    bad = holes | ((i < 4) & (j < 6))  # the 2 x 3 north-western coarse cells: nothing valid
    gribio.write_forcing(tmp_path / "bad.grib2", {
        (y, m): {n: np.where(bad, np.nan, on_grid(grid, m)[n]) for n in CLIMATE} for y, m in MONTHS
    }, grid)  # fmt: skip
    with pytest.raises(ForcingError, match=r"t2m 2001-01 \(.*bad.grib2, avg_2t.*\): 6 of "
                       r"256 coarse cells of the run's domain .* no valid source"):  # fmt: skip
        grib_source(tiny_cube, [tmp_path / "bad.grib2"], tmp_path)


def test_grib_missing_month_and_files(tmp_path, tiny_cube):
    grid = GaussianGrid.octahedral(32)
    for y, m in MONTHS:
        gribio.write_forcing(tmp_path / f"forcing_{y}-{m:02d}.grib2", {(y, m): on_grid(grid, m)},
                             grid)  # fmt: skip
    months = [*MONTHS, (2001, 3)]
    with pytest.raises(ForcingError, match=r"\[forcing.files\]: t2m: the run needs 2001-01, "
                       r"2001-02, 2001-03; .*found no t2m for 2001-03 in .*forcing_2001-01.grib2, "
                       r".*\(months there: 2001-01, 2001-02\)"):  # fmt: skip
        grib_source(tiny_cube, [tmp_path / "forcing_*.grib2"], tmp_path, months=months)
    with pytest.raises(ForcingError, match=r"\[forcing.files\]: expected files matching "
                       r"'.*nothing_\*.grib2', found none"):  # fmt: skip
        grib_source(tiny_cube, [tmp_path / "nothing_*.grib2"], tmp_path)
    with pytest.raises(ForcingError, match=r"\[forcing.files\]: expected an existing file, "
                       r"found no '.*absent.grib2'"):  # fmt: skip
        grib_source(tiny_cube, [tmp_path / "absent.grib2"], tmp_path)


# ---------------------------------------------------------------------------
# CF NetCDF / Zarr
# ---------------------------------------------------------------------------


def cf_dataset(lat, lon, months, *, t_units="degC", p_std="precipitation_flux",
               p_units="kg m-2 s-1", t_offset=None) -> xr.Dataset:  # fmt: skip
    """Monthly means in a noleap calendar counted from 1850 (standard-calendar decoding
    would be off by 37 leap days, a month), stamped on the 2nd of each month; tas has a
    size-1 height dim, as some models write it."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    cum = np.concatenate([[0], np.cumsum([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])])
    time = np.array([365.0 * (y - 1850) + cum[m - 1] + 1 for y, m in months])
    k = {"t2m": [], "tp": [], "ssrd": []}
    for _, m in months:
        for n in CLIMATE:
            k[n].append(analytic(n, la, lo, m))
    t = np.array(k["t2m"]) - (273.15 if t_offset is None and t_units == "degC" else t_offset or 0)
    p = np.array(k["tp"]) / (86400.0 if p_units == "kg m-2 s-1" else 1.0)
    dims = ("time", "lat", "lon")
    return xr.Dataset(
        {
            "tas": (
                ("time", "height", "lat", "lon"),
                t[:, None].astype("f4"),
                {"standard_name": "air_temperature", "units": t_units},
            ),
            "pr": (dims, p.astype("f4"), {"standard_name": p_std, "units": p_units}),
            "rsds": (
                dims,
                np.array(k["ssrd"], "f4"),
                {"standard_name": "surface_downwelling_shortwave_flux_in_air", "units": "W m-2"},
            ),
        },  # fmt: skip
        coords={
            "time": ("time", time, {"units": "days since 1850-01-01", "calendar": "noleap"}),
            "height": ("height", [2.0], {"units": "m", "standard_name": "height"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


@pytest.mark.parametrize(
    "lat, lon, fmt, precip",
    [
        (np.arange(-89.5, 90, 1.0), np.arange(0.5, 360, 1.0), "nc", "precipitation_flux"),
        (np.arange(60.0, 35, -0.5), np.arange(-20.0, 25, 0.5), "zarr", "lwe_precipitation_rate"),
        (np.arange(89.5, -90, -1.0), np.r_[np.arange(180.5, 360, 1), np.arange(0.5, 180, 1)],
         "nc", "precipitation_flux"),
    ],
    ids=["global-south-first-0..360", "regional-north-first-zarr-mm", "global-rolled-lon"],
)  # fmt: skip
def test_cf_noleap_and_units(tmp_path, tiny_cube, lat, lon, fmt, precip):
    p_units = "kg m-2 s-1" if precip == "precipitation_flux" else "mm/day"
    ds = cf_dataset(lat, lon, MONTHS, p_std=precip, p_units=p_units)
    path = tmp_path / f"climate.{fmt}"
    if fmt == "zarr":
        ds.to_zarr(path, zarr_format=2)
    else:
        ds.to_netcdf(path, engine="scipy")
    cube = Cube.open(tiny_cube)
    src = open_source(cube, None, cube.grid, climate="cf", files=[str(path)],
                      cache_dir=tmp_path / "remap", months=MONTHS)  # fmt: skip
    assert isinstance(src, forcing.CfClimate) and src.months == MONTHS
    grid = src._layout["t2m"][MONTHS[0]][0].grid  # the file's grid, as read
    assert grid.shape == (lat.size, lon.size)
    for y, m in MONTHS:
        got, truth = src.forcing(y, m), coarse_truth(m)
        for n in CLIMATE:
            err = np.abs(got[n] - truth[n]).max()
            assert err < remap_error_bound(n, grid), (n, err)


def test_the_cube_read_as_cf(tmp_path, tiny_cube):
    """The cube is CF itself (lat_coarse/lon_coarse, standard names, mm day-1): read as a
    CF source its climate comes back unchanged, the remap to its own grid being 1:1."""
    cube = Cube.open(tiny_cube)
    src = open_source(cube, None, cube.grid, climate="cf", files=[str(tiny_cube)],
                      cache_dir=tmp_path / "remap", months=MONTHS)  # fmt: skip
    for y, m in MONTHS:
        got, ref = src.forcing(y, m), cube.forcing(y, m)
        for n in CLIMATE:
            np.testing.assert_allclose(got[n], ref[n], rtol=1e-6, err_msg=n)


def test_cf_errors(tmp_path, tiny_cube):
    cube = Cube.open(tiny_cube)
    lat, lon = np.arange(-89.0, 90, 2.0), np.arange(-179.0, 180, 2.0)

    def source(ds, name, months=MONTHS):
        ds.to_netcdf(tmp_path / name, engine="scipy")
        return open_source(cube, None, cube.grid, climate="cf", files=[str(tmp_path / name)],
                           cache_dir=tmp_path / "remap", months=months)  # fmt: skip

    # Kelvin labelled degC: converted to ~550 K, caught by the range check at once.
    with pytest.raises(ForcingError, match=r"t2m 2001-01 \(.*kelvin_as_c.nc \(tas, degC "
                       r"converted to K \(\+273.15\)\)\): remapped values 5.*\.\..*5.* K; "
                       r"expected 180..340 K"):  # fmt: skip
        source(cf_dataset(lat, lon, MONTHS, t_units="degC", t_offset=0.0), "kelvin_as_c.nc")
    with pytest.raises(ForcingError, match=r"tp \(.*pr\): units attribute 'mm month-1' not "
                       r"understood; expected kg m-2 s-1, mm day-1"):  # fmt: skip
        source(cf_dataset(lat, lon, MONTHS, p_units="mm month-1"), "units.nc")
    with pytest.raises(ForcingError, match=r"t2m: the run needs 2001-01, 2001-02, 2001-03; "
                       r".*found no t2m for 2001-03 in .*short.nc"):  # fmt: skip
        source(cf_dataset(lat, lon, MONTHS), "short.nc", [*MONTHS, (2001, 3)])
    ds = cf_dataset(lat, lon, MONTHS).drop_vars("rsds")
    std = "surface_downwelling_shortwave_flux_in_air"
    with pytest.raises(ForcingError, match=rf"ssrd: expected a variable with standard_name "
                       rf"{std} in .*nossrd.nc, found none"):  # fmt: skip
        source(ds, "nossrd.nc")
    reg = cf_dataset(np.arange(30.0, 45, 1.0), np.arange(0.0, 20, 1.0), MONTHS)
    with pytest.raises(ForcingError, match=r"t2m 2001-01 .*: 256 of 256 coarse cells of the "
                       r"run's domain"):  # fmt: skip
        source(reg, "elsewhere.nc")


def test_cf_unit_conversion():
    conv = forcing.cf_unit_conversion
    assert conv("t2m", "K")[:2] == (1.0, 0.0)
    assert conv("t2m", "degree_Celsius")[:2] == (1.0, 273.15)
    assert conv("tp", "kg m**-2 s**-1")[0] == 86400.0
    assert conv("tp", "kg/m2/s")[0] == 86400.0
    assert conv("tp", "m s-1")[0] == 86400.0 * 1000.0
    assert conv("tp", "mm d-1")[0] == 1.0
    assert conv("ssrd", "W.m-2")[0] == 1.0
    with pytest.raises(ForcingError, match=r"ssrd \(f.nc\): units attribute 'J m-2' not "
                       r"understood; expected W m-2"):  # fmt: skip
        conv("ssrd", "J m-2", "f.nc")
    with pytest.raises(ForcingError, match=r"t2m: units attribute 'degF'"):
        conv("t2m", "degF")


# ---------------------------------------------------------------------------
# [forcing] in the config
# ---------------------------------------------------------------------------


def config_dict(**forcing_keys) -> dict:
    return {
        "bundle": {"path": "b"},
        "period": {"start": "2001-01", "steps": 2},
        "forcing": {"cube": "c.zarr", **forcing_keys},
        "output": {"store": "out/bc.zarr"},
    }


def test_config_forcing_keys(tmp_path):
    cfg = RunConfig.from_dict(config_dict(), base_dir=tmp_path, source="t.toml")
    assert (cfg.climate, cfg.climate_files, cfg.climate_remap) == ("cube", (), "conservative")
    keys = {"climate": "grib", "files": ["esm/forcing_*.grib2", "/x.grb"], "remap": "bilinear"}
    cfg = RunConfig.from_dict(config_dict(**keys), base_dir=tmp_path, source="t.toml")
    assert cfg.climate == "grib" and cfg.climate_remap == "bilinear"
    assert cfg.climate_files == (tmp_path / "esm" / "forcing_*.grib2", Path("/x.grb"))
    text = cfg.to_toml()
    assert 'climate = "grib"' in text and 'remap = "bilinear"' in text
    again = RunConfig.from_toml(_write(tmp_path / "again.toml", text))
    assert again.climate_files == cfg.climate_files

    bad = [
        ({"climate": "era5"}, r'\[forcing.climate\]: expected "cube", "grib" or "cf", found '
                              r"'era5'"),
        ({"climate": "grib"}, r'\[forcing.files\]: expected a non-empty list of paths or globs '
                              r'with climate = "grib", found \[\]'),
        ({"files": ["a.grib2"]}, r'\[forcing.files\]: expected no files with climate = "cube"'),
        ({"climate": "cf", "files": []}, r"\[forcing.files\]: expected a non-empty list of paths "
                                         r"or globs \(strings\), found \[\]"),
        ({"climate": "cf", "files": ["a.nc"], "remap": "nearest"},
         r'\[forcing.remap\]: expected "conservative" or "bilinear", found \'nearest\''),
        ({"clmate": "cf"}, r"unknown key forcing.clmate"),
    ]  # fmt: skip
    for keys, match in bad:
        with pytest.raises(ConfigError, match=match):
            RunConfig.from_dict(config_dict(**keys), base_dir=tmp_path, source="t.toml")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# A whole run on the tiny cube
# ---------------------------------------------------------------------------


def make_config(tmp: Path, bundle: Path, cube: Path, **kw) -> RunConfig:
    # February on: LAI-only steps, and two of them (TorchScript warms up over the first
    # steps of each run, seconds apiece on a CPU): the test stays short.
    args = dict(bundle=Path(bundle), cube=Path(cube), store=tmp / "bc.zarr",
                restart_dir=tmp / "restarts", start=(2001, 2), steps=2, restart_every=0,
                source=str(tmp / "run.toml"))  # fmt: skip
    return RunConfig(**{**args, **kw}).with_()


@pytest.fixture
def received(monkeypatch):
    """The forcing every `emu.step` of a run receives, in order."""
    from landbc.emulator.api import BoundaryConditionEmulator

    seen: list[dict[str, np.ndarray]] = []
    real = BoundaryConditionEmulator.step

    def step(self, forcing, *args, **kw):
        seen.append({k: np.array(v) for k, v in forcing.items()})
        return real(self, forcing, *args, **kw)

    monkeypatch.setattr(BoundaryConditionEmulator, "step", step)
    return seen


def test_run_with_grib_climate_from_export_forcing(tmp_path, tiny_bundle, tiny_cube, received):
    esm = tmp_path / "esm"
    assert main(["-q", "export-forcing", "--cube", str(tiny_cube), "--grid", "O48", "--start",
                 "2001-01", "--steps", "3", "--out", str(esm)]) == 0  # fmt: skip
    assert sorted(p.name for p in esm.iterdir()) == [
        "forcing_2001-01.grib2", "forcing_2001-02.grib2", "forcing_2001-03.grib2"]  # fmt: skip
    cube = Cube.open(tiny_cube)
    o48 = GaussianGrid.octahedral(48)
    back = gribio.read_forcing(esm / "forcing_2001-02.grib2")
    assert back.grid == o48
    assert 0 < np.isfinite(back.data["t2m"][0]).sum() < 100  # cells outside the cube: missing

    # The cube's coarse climate, to O48 and back, computed here independently.
    there = remap.compute_weights(COARSE, o48, "conservative")
    valid = ~there.empty_rows
    back_w = remap.compute_weights(o48, COARSE, "conservative", source_mask=valid.reshape(-1))

    def round_trip(field):
        on_o48 = remap.apply(there, field.astype(np.float64))
        return remap.apply(back_w, np.where(valid, on_o48, 0.0))

    cfg = make_config(tmp_path / "grib", tiny_bundle, tiny_cube, climate="grib",
                      climate_files=(esm / "forcing_*.grib2",))  # fmt: skip
    s = driver.run(cfg, progress=False)
    assert s.completed_steps == 2 and len(received) == 2
    assert list((cfg.store.parent / driver.REMAP_CACHE).glob("remap-conservative-*"))
    for got, (y, m) in zip(received, cfg.months, strict=True):
        ref = cube.forcing(y, m)
        for n in ("luh2_frac", "secma", "secmb", "co2"):
            np.testing.assert_array_equal(got[n], ref[n], err_msg=n)
        for n in CLIMATE:
            # Exactly the cube's climate up to the remap (and GRIB packing) ...
            np.testing.assert_allclose(got[n], round_trip(ref[n]), rtol=1e-5, err_msg=n)
            # ... which averages the cube's values: inside their range, near their mean.
            assert ref[n].min() - 1e-3 <= got[n].min() and got[n].max() <= ref[n].max() + 1e-3
            assert abs(got[n].mean() - ref[n].mean()) < 0.1 * np.ptp(ref[n]) + 1e-6, n

    # climate = "cube" (the default): the cube's forcing, unchanged (whole runs on the
    # cube are tests/test_driver.py's).
    cfg = make_config(tmp_path / "cube", tiny_bundle, tiny_cube)
    grid, win, _ = driver.domain_window(cube.grid, cfg.box)
    src = driver._forcing_source(cfg, cube, grid, win)
    assert isinstance(src, forcing.CubeForcing)
    for y, m in cfg.months:
        for n, v in cube.forcing(y, m).items():
            np.testing.assert_array_equal(src.forcing(y, m)[n], v, err_msg=n)

    # A month missing from the files fails the run before its first step.
    received.clear()
    (esm / "forcing_2001-03.grib2").unlink()
    cfg = make_config(tmp_path / "short", tiny_bundle, tiny_cube, climate="grib",
                      climate_files=(esm / "forcing_*.grib2",))  # fmt: skip
    with pytest.raises(ConfigError, match=r"run.toml: \[forcing.files\]: t2m: the run needs "
                       r"2001-02, 2001-03; .*found no t2m for 2001-03"):  # fmt: skip
        driver.run(cfg, progress=False)
    assert not received and not cfg.store.exists()
