"""Output plug-ins (`landbc.coupler.outputs`): the registry, the GRIB outputs on the
native and an ESM grid (calendar in the GRIB time range, resume bookkeeping,
backfill from the store), `[[outputs]]` and `[period] calendar` in the config, and
the CF attributes of the Zarr store (time bounds, cell methods, fill values, the
`written` flag, calendars decoded by xarray). Fields come from test_output's fake;
no emulator runs here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_output import fake_result  # tests/ is on sys.path (prepend mode)

from landbc.coupler import gribio
from landbc.coupler import outputs as outs
from landbc.coupler.config import (
    ESM_DEFAULT_VARIABLES,
    ConfigError,
    EsmOutputConfig,
    OutputConfig,
    RunConfig,
)
from landbc.coupler.esm_output import esm_filename
from landbc.coupler.grids import RegularLatLonGrid, grid_from_name
from landbc.coupler.output import CLASS_FILL, WRITTEN, OutputStore, month_days
from landbc.emulator import catalog
from landbc.emulator.grid import Grid

eccodes = pytest.importorskip("eccodes")

GRID = Grid(46.0, 48.0, 6.0, 8.0, 0.05, 5)  # 40 x 40 pixels, inside two 1-degree rows


def run_info(**kw) -> outs.RunInfo:
    land = np.ones(GRID.shape, np.uint8)
    land[:, :5] = 0  # some sea
    args = dict(grid=GRID, months=[(2001, 1), (2001, 2)], land_mask=lambda: land) | kw
    return outs.RunInfo(**args)


def step_fields(year: int, month: int) -> dict[str, np.ndarray]:
    """test_output's random fields, with vegetation types drawn from the codes GRIB
    allows for each (high: trees, low: the rest)."""
    fields = fake_result(year, month, grid=GRID).numpy()
    for name in ("tvh", "tvl"):
        codes = np.array(sorted(gribio.parameter(name).codes), np.uint8)
        fields[name] = codes[fields[name] % len(codes)]
    return fields


def grib_keys(path: Path, *keys: str) -> list[tuple]:
    out = []
    with open(path, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                out.append(tuple(eccodes.codes_get(h, k) for k in keys))
            finally:
                eccodes.codes_release(h)
    return out


# --- the registry --------------------------------------------------------------------


def test_registry_has_the_three_plug_ins():
    assert outs.OUTPUTS[("zarr", "native")] is outs.ZarrOutput
    assert outs.output_class("grib", "native") is outs.NativeGribOutput
    assert outs.output_class("grib", "O96") is outs.EsmGribOutput
    assert outs.output_class("grib", "1/1") is outs.EsmGribOutput
    with pytest.raises(ValueError, match="no output plug-in for type 'netcdf'"):
        outs.output_class("netcdf", "native")
    with pytest.raises(ValueError, match="registered already"):
        outs.register_output("grib", "native")(outs.NativeGribOutput)
    with pytest.raises(ValueError, match="grid_kind"):
        outs.register_output("x", "curvilinear")


def test_a_new_output_is_one_class_and_a_registry_entry(tmp_path):
    try:

        @outs.register_output("memory", "native")
        class MemoryOutput(outs.Output):
            def open(self, run):
                self.months = {}

            def write(self, step_index, year, month, fields):
                self.months[(year, month)] = dict(fields)

            def holds(self, year, month):
                return (year, month) in self.months

            def describe(self):
                return f"{len(self.months)} months in memory"

        out = outs.create_output(OutputConfig(type="memory"), tmp_path)
        assert isinstance(out, MemoryOutput) and out.type == "memory"
        out.open(run_info())
        # backfill from a store: only the months the output lacks
        st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2001, 1), 2)
        for i, m in enumerate(st.months):
            st.write_step(i, fake_result(*m, grid=GRID).numpy())
        out.write(0, 2001, 1, {"x": 1})
        assert outs.backfill([out], st, upto=2) == 1
        assert out.holds(2001, 2) and out.months[(2001, 1)] == {"x": 1}
        assert out.describe() == "2 months in memory"
    finally:
        outs.OUTPUTS.pop(("memory", "native"), None)


# --- GRIB on the native grid ---------------------------------------------------------


@pytest.mark.parametrize("calendar, feb_hours", [("standard", 672), ("noleap", 672),
                                                 ("all_leap", 696), ("360_day", 720)])  # fmt: skip
def test_native_grib_output(tmp_path, calendar, feb_hours):
    spec = OutputConfig(type="grib", grid="native", variables=("lai_hv", "tvh", "cvh"))
    out = outs.create_output(spec, tmp_path / "grib")
    assert isinstance(out, outs.NativeGribOutput)
    (tmp_path / "grib").mkdir()
    stale = tmp_path / "grib" / ".bc_2001-02.grib2.abc123.tmp"  # a killed write's leftover
    stale.write_bytes(b"GRIB")
    out.open(run_info(calendar=calendar))
    assert not stale.exists()
    assert "regular_ll" in out.describe() and calendar in out.describe()
    fields = step_fields(2001, 2)
    assert not out.holds(2001, 2)
    out.write(1, 2001, 2, fields)
    assert out.holds(2001, 2) and not out.holds(2001, 1)
    path = tmp_path / "grib" / esm_filename(2001, 2)
    got = {f.short_name: f for f in gribio.read_grib(path)}
    assert list(got) == ["lai_hv", "tvh", "cvh"]
    want_grid = RegularLatLonGrid.from_emulator_grid(GRID)
    for name, f in got.items():
        assert f.grid == want_grid and f.year_month == (2001, 2)
        v = fields[name].astype(np.float64)
        if gribio.parameter(name).is_code:
            np.testing.assert_array_equal(f.values.reshape(GRID.shape), v)  # codes exactly
        else:
            tol = max(float(v.max() - v.min()), 1e-6) / 2**15
            np.testing.assert_allclose(f.values.reshape(GRID.shape), v, atol=tol, rtol=0)
    # February's time range is the calendar's month length
    keys = grib_keys(path, "gridType", "lengthOfTimeRange", "dataDate")
    assert {k[:2] for k in keys} == {("regular_ll", feb_hours)}
    # Rewriting a month (a resume) gives the same bytes
    before = path.read_bytes()
    out.write(1, 2001, 2, fields)
    assert path.read_bytes() == before
    with pytest.raises(KeyError, match=r"outputs\.variables"):
        out.write(1, 2001, 2, {"lai_hv": fields["lai_hv"]})


def test_esm_grib_output_and_backfill(tmp_path):
    spec = OutputConfig(type="grib", grid="1/1", key="outputs[0]", variables=("cvh", "tvl"))
    out = outs.create_output(spec, tmp_path / "esm")
    out.open(run_info(cache_dir=tmp_path / "remap", calendar="noleap"))
    assert "1/1" in out.describe() or grid_from_name("1/1").describe() in out.describe()
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2001, 1), 2, calendar="noleap")
    zarr_out = outs.ZarrOutput.of(st)
    for i, m in enumerate(st.months):
        fields = step_fields(*m)
        zarr_out.write(i, *m, fields)
        assert zarr_out.holds(*m)
        out.write(i, *m, fields)
    files = sorted(p.name for p in (tmp_path / "esm").iterdir())
    assert files == [esm_filename(2001, 1), esm_filename(2001, 2)]
    jan = (tmp_path / "esm" / esm_filename(2001, 1)).read_bytes()
    (tmp_path / "esm" / esm_filename(2001, 1)).unlink()
    assert outs.backfill([zarr_out, out], st, upto=2) == 1  # the store holds both already
    assert (tmp_path / "esm" / esm_filename(2001, 1)).read_bytes() == jan
    assert outs.backfill([out], st, upto=2) == 0
    keys = grib_keys(tmp_path / "esm" / esm_filename(2001, 2), "shortName", "Ni", "Nj")
    assert [k[0] for k in keys] == ["cvh", "tvl"] and keys[0][1:] == (360, 181)
    with pytest.raises(ValueError, match=r"step 0 .* is 2001-01, not 2001-02"):
        zarr_out.write(0, 2001, 2, fields)


# --- the config ----------------------------------------------------------------------


def base_config(**extra) -> dict:
    return {
        "bundle": {"path": "b"},
        "period": {"start": "2001-01", "steps": 2},
        "forcing": {"cube": "c.zarr"},
        "output": {"store": "out/bc.zarr"},
        **extra,
    }


def test_outputs_and_calendar_from_toml_and_round_trip(tmp_path):
    data = base_config(
        esm_output={"grid": "O96"},
        outputs=[
            {"type": "grib", "grid": "native", "variables": ["lai_hv", "lai_lv"]},
            {"type": "grib", "grid": "1/1", "path": "/abs/one", "packing": "grid_simple"},
        ],
    )
    data["period"]["calendar"] = "365_day"
    cfg = RunConfig.from_dict(data, base_dir=tmp_path)
    assert cfg.calendar == "noleap"
    native, one = cfg.outputs
    assert (native.type, native.grid, native.path, native.key) == ("grib", "native", None,
                                                                   "outputs[0]")  # fmt: skip
    assert native.variables == ("lai_hv", "lai_lv") and one.variables == ESM_DEFAULT_VARIABLES
    assert cfg.output_dir(native) == tmp_path / "out" / "grib_native"
    assert cfg.output_dir(one) == Path("/abs/one")
    keys = [o.key for o in cfg.extra_outputs]
    assert keys == ["esm_output", "outputs[0]", "outputs[1]"]
    assert cfg.output_dir(cfg.extra_outputs[0]) == cfg.esm_output_dir == tmp_path / "out" / "esm"
    toml = tmp_path / "rt.toml"
    toml.write_text(cfg.to_toml())
    again = RunConfig.from_toml(toml)
    assert again.calendar == "noleap" and again.esm_output_dir == cfg.esm_output_dir
    assert [again.output_dir(o) for o in again.outputs] == [cfg.output_dir(o) for o in cfg.outputs]
    assert [o.variables for o in again.outputs] == [o.variables for o in cfg.outputs]
    # defaults: standard calendar, no extra outputs
    plain = RunConfig.from_dict(base_config(), base_dir=tmp_path)
    assert plain.calendar == "standard" and plain.outputs == () and plain.extra_outputs == ()
    assert OutputConfig(type="grib", grid="1/1").folder == Path("grib_1x1")


@pytest.mark.parametrize(
    "outputs, key, found",
    [
        ([{"type": "netcdf"}], "outputs[0].type", "netcdf"),
        ([{"type": "zarr"}], "outputs[0].type", "zarr"),
        ([{"grid": "native"}], "outputs[0].type", None),
        ([{"type": "grib"}, {"type": "grib", "grid": "Q96"}], "outputs[1].grid", "Q96"),
        ([{"type": "grib", "encoding": "ecmwf"}], "outputs[0].encoding", "ecmwf"),
        ([{"type": "grib", "packing": "jpeg"}], "outputs[0].packing", "jpeg"),
        ([{"type": "grib", "variables": ["lu"]}], "outputs[0].variables", "lu"),
        ([{"type": "grib", "variables": []}], "outputs[0].variables", None),
        ([{"type": "grib", "bits": 12}], "outputs[0].bits", None),
        ([{"type": "grib", "path": ""}], "outputs[0].path", None),
        ([{"type": "grib"}, {"type": "grib"}], "outputs[1].path", "grib_native"),
        ([{"type": "grib", "path": "esm", "grid": "O96"}], "outputs[0].path", "esm"),
        ({"type": "grib"}, "outputs", None),
    ],
)
def test_outputs_errors_name_the_key(outputs, key, found):
    data = base_config(outputs=outputs)
    if key.endswith(".path") and found == "esm":
        data["esm_output"] = {"grid": "1/1"}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")) as e:
        RunConfig.from_dict(data)
    if found is not None:
        assert found in str(e.value)


@pytest.mark.parametrize("name", ["gregorian_typo", 360, ""])
def test_calendar_errors_name_the_key(name):
    data = base_config()
    data["period"]["calendar"] = name
    with pytest.raises(ConfigError, match=r"period\.calendar.*noleap") as e:
        RunConfig.from_dict(data)
    assert repr(name) in str(e.value)


def test_calendar_in_code_is_canonical(tmp_path):
    cfg = RunConfig(bundle=tmp_path, cube=tmp_path, store=tmp_path / "bc.zarr", start=(2001, 1),
                    steps=1).with_(calendar="366_day")  # fmt: skip
    assert cfg.calendar == "all_leap"
    with pytest.raises(ConfigError, match=r"period\.calendar"):
        cfg.with_(calendar="lunar")
    with pytest.raises(ConfigError, match=r"esm_output\.grid"):
        cfg.with_(esm_output=EsmOutputConfig(grid="1/0"))


# --- CF attributes of the Zarr store ---------------------------------------------------


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day", "all_leap"])
def test_store_time_axis_and_bounds_in_the_calendar(tmp_path, calendar):
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2000, 12), 3, calendar=calendar)
    assert st.calendar == calendar
    t = st.root["time"][:]
    b = st.root["time_bnds"][:]
    assert t.tolist() == [month_days(*m, calendar) for m in [(2000, 12), (2001, 1), (2001, 2)]]
    assert b[:, 0].tolist() == t.tolist() and b[:-1, 1].tolist() == t[1:].tolist()
    lengths = (b[:, 1] - b[:, 0]).tolist()
    assert lengths == {"standard": [31, 31, 28], "noleap": [31, 31, 28],
                       "360_day": [30, 30, 30], "all_leap": [31, 31, 29]}[calendar]  # fmt: skip
    assert month_days(2001, 1, "noleap") == 31 * 365  # not 11323 as in the standard calendar
    ds = xr.open_zarr(tmp_path / "bc.zarr")
    assert ds.time.encoding["calendar"] == calendar and ds.time.attrs["bounds"] == "time_bnds"
    assert "time_bnds" in ds and ds.time_bnds.dims == ("time", "nv")
    first = ds.time.values[1]
    if calendar == "standard":  # numpy datetime64
        assert str(first)[:10] == "2001-01-01"
    else:  # decoded with cftime
        assert (first.year, first.month, first.day) == (2001, 1, 1)
        assert type(first).__module__.startswith("cftime") and first.calendar == calendar
        end = ds.time_bnds.values[2, 1]
        assert (end.year, end.month, end.day) == (2001, 3, 1)
    # the store was made for this calendar only
    assert st.matches(GRID, (2000, 12), 3, "forward", calendar) is None
    other = "noleap" if calendar == "standard" else "standard"
    assert "calendar" in st.matches(GRID, (2000, 12), 3, "forward", other)


def test_store_cf_attributes_and_fill_values(tmp_path):
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2001, 1), 3)
    # standard and proleptic_gregorian agree after 1582: a landbc 0.1 store resumes
    assert st.matches(GRID, (2001, 1), 3, "forward", "proleptic_gregorian") is None
    r = fake_result(2001, 1, grid=GRID).numpy()
    r["lu"][0, 0] = 0  # class 0 is a class, not missing
    st.write_step(0, r)
    ds = xr.open_zarr(tmp_path / "bc.zarr")
    for v in catalog.OUTPUT_VARIABLES:
        da = ds[v.name]
        want = "time: mean" if v.cadence == catalog.MONTHLY else "time: point"
        assert da.attrs["cell_methods"] == want, v.name
        if v.dtype == "uint8":
            assert da.encoding["_FillValue"] == CLASS_FILL > v.valid_max
            assert st.root[v.name].fill_value == CLASS_FILL
            assert (st.root[v.name][1] == CLASS_FILL).all()  # unwritten: the fill value
        else:
            assert np.isnan(st.root[v.name][1]).all()
        assert np.isnan(da.isel(time=1).values).all()  # xarray: missing
    assert {n for n in ("lai", "lai_hv", "lai_lv")} == {
        v.name for v in catalog.OUTPUT_VARIABLES if v.cadence == catalog.MONTHLY
    }
    assert float(ds.lu.values[0, 0, 0]) == 0.0  # not masked
    np.testing.assert_array_equal(ds.lu.isel(time=0).values, r["lu"].astype(np.float32))
    raw = xr.open_zarr(tmp_path / "bc.zarr", mask_and_scale=False)
    assert raw.lu.dtype == np.uint8 and int(raw.lu.values[2].max()) == CLASS_FILL
    # the written flag and completed_steps agree; the flag is not masked (no fill value)
    assert ds[WRITTEN].dtype == np.uint8 and ds[WRITTEN].values.tolist() == [1, 0, 0]
    assert st.written().tolist() == [True, False, False] and ds.attrs["completed_steps"] == 1
    assert ds.time.dtype.kind == "M" and str(ds.time.values[0])[:10] == "2001-01-01"


def test_backward_store_flags_follow_the_time_axis(tmp_path):
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2001, 3), 3, "backward")
    st.write_step(0, fake_result(2001, 3, grid=GRID).numpy())
    assert st.written().tolist() == [False, False, True]  # 2001-01, 02, 03
    assert outs.ZarrOutput.of(st).holds(2001, 3) and not outs.ZarrOutput.of(st).holds(2001, 2)
