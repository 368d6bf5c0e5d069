"""The Zarr output store: layout, CF attributes, xarray round trip, idempotent
rewrites; and the quicklooks drawn from it. Fields come from a small fake that
follows the StepResult contract (the real emulator is exercised in test_driver)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from landbc.coupler.output import OutputStore, is_output_store
from landbc.coupler.quicklook import plot_class_map, quicklooks
from landbc.emulator import catalog
from landbc.emulator.grid import Grid

# 600 rows: more than one 512 chunk in latitude.
GRID = Grid(lat_south=30.0, lat_north=60.0, lon_west=0.0, lon_east=2.0, res=0.05, coarse_factor=5)
NAMES = [v.name for v in catalog.OUTPUT_VARIABLES]


@dataclass
class FakeResult:
    """Same shape as emulator.api.StepResult: device tensors, .numpy()."""

    year: int
    month: int
    fields: dict[str, torch.Tensor]

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.fields.items()}


def fake_result(year: int, month: int, grid: Grid = GRID, seed: int = 0) -> FakeResult:
    g = torch.Generator().manual_seed(seed + year * 12 + month)
    ny, nx = grid.shape
    fields = {}
    for v in catalog.OUTPUT_VARIABLES:
        if v.dtype == "uint8":
            fields[v.name] = torch.randint(
                0, int(v.valid_max) + 1, (ny, nx), generator=g, dtype=torch.uint8
            )
        else:
            fields[v.name] = torch.rand((ny, nx), generator=g) * v.valid_max
    return FakeResult(year, month, fields)


def test_round_trip_with_xarray(tmp_path):
    path = tmp_path / "bc.zarr"
    st = OutputStore.create(path, GRID, (2015, 11), 3, "forward", attrs={"bundle": "b"})
    assert st.completed_steps == 0 and is_output_store(path)
    results = [fake_result(*m) for m in st.months]
    for i, r in enumerate(results):
        st.write_step(i, r.numpy())
        assert st.completed_steps == i + 1

    ds = xr.open_zarr(path)  # consolidated metadata
    assert ds.attrs["completed_steps"] == 3
    assert ds.attrs["run_start"] == "2015-11" and ds.attrs["run_direction"] == "forward"
    assert ds.attrs["bundle"] == "b" and ds.attrs["Conventions"] == "CF-1.8"
    assert Grid.from_dict(ds.attrs["grid"]) == GRID
    assert set(ds.data_vars) == {*NAMES, "time_bnds", "written"}
    assert ds["written"].values.tolist() == [1, 1, 1]
    assert [str(t)[:10] for t in ds.time.values] == ["2015-11-01", "2015-12-01", "2016-01-01"]
    np.testing.assert_allclose(ds.lat.values, GRID.lat)
    np.testing.assert_allclose(ds.lon.values, GRID.lon)
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["units"] == "degrees_east"
    for v in catalog.OUTPUT_VARIABLES:
        da = ds[v.name]
        assert da.dims == ("time", "lat", "lon")
        # Class maps have a fill value outside their classes (255): xarray masks it, so
        # they decode as float32 (class 0 stays 0, not missing); floats stay float32.
        assert da.dtype == np.float32
        assert da.encoding["dtype"] == np.dtype(v.dtype)
        assert da.encoding["chunks"] == (1, 512, 40)
        for k in ("units", "long_name", "standard_name", "GRIB_paramId"):
            want = v.cf_attrs().get(k)
            assert da.attrs.get(k) == want, (v.name, k)
        for i, r in enumerate(results):
            np.testing.assert_array_equal(da.isel(time=i).values, r.numpy()[v.name])
    assert ds["lai"].attrs["GRIB_paramId"] == 260373
    assert ds["lai"].attrs["standard_name"] == "leaf_area_index"
    assert ds["cvh"].attrs["GRIB_paramId"] == 28
    # Raw zarr: _ARRAY_DIMENSIONS and the chunking are in the store itself.
    root = zarr.open_consolidated(str(path), mode="r")
    assert root["lu"].attrs["_ARRAY_DIMENSIONS"] == ["time", "lat", "lon"]
    assert root["lu"].chunks == (1, 512, 40)
    assert root["time"].attrs["units"] == "days since 1970-01-01"


def test_backward_run_fills_an_ascending_time_axis(tmp_path):
    st = OutputStore.create(tmp_path / "b.zarr", GRID, (2015, 2), 3, "backward")
    assert st.months == [(2015, 2), (2015, 1), (2014, 12)]
    r = fake_result(2015, 2)
    st.write_step(0, r.numpy())
    ds = xr.open_zarr(tmp_path / "b.zarr")
    assert [str(t)[:7] for t in ds.time.values] == ["2014-12", "2015-01", "2015-02"]
    np.testing.assert_array_equal(ds.lai.isel(time=2).values, r.numpy()["lai"])
    assert np.isnan(ds.lai.isel(time=0).values).all()  # not written yet: NaN
    assert ds.attrs["completed_steps"] == 1


def test_rewrite_is_idempotent_and_gaps_are_refused(tmp_path):
    path = tmp_path / "bc.zarr"
    st = OutputStore.create(path, GRID, (2015, 1), 4)
    r0, r1 = fake_result(2015, 1), fake_result(2015, 2)
    st.write_step(0, r0.fields)  # tensors are accepted as well as numpy
    st.write_step(1, r1.numpy())
    before = {n: st.root[n][:2] for n in NAMES}
    st.write_step(0, r0.numpy())  # a resumed run rewrites a step
    assert st.completed_steps == 2  # does not go back
    for n in NAMES:
        np.testing.assert_array_equal(st.root[n][:2], before[n])
    reopened = OutputStore.open(path)
    assert reopened.completed_steps == 2 and reopened.months == st.months
    with pytest.raises(ValueError, match="only 2 steps are complete"):
        reopened.write_step(3, fake_result(2015, 4).numpy())
    with pytest.raises(ValueError, match="missing output variable"):
        reopened.write_step(2, {"lai": r0.numpy()["lai"]})
    bad = dict(r0.numpy(), lai=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="lai has shape"):
        reopened.write_step(2, bad)
    assert reopened.completed_steps == 2


def test_bfloat16_tensors_are_written_as_float32(tmp_path):
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2015, 1), 1)
    r = fake_result(2015, 1)
    fields = {
        k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in r.fields.items()
    }
    st.write_step(0, fields)
    got = st.read_step(0)["lai"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, fields["lai"].float().numpy())


def test_existing_store_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "bc.zarr"
    OutputStore.create(path, GRID, (2015, 1), 2)
    with pytest.raises(FileExistsError, match="overwrite"):
        OutputStore.create(path, GRID, (2015, 1), 2)
    st = OutputStore.create(path, GRID, (2016, 1), 1, overwrite=True)
    assert st.start == (2016, 1) and json.loads((path / ".zattrs").read_text())["run_steps"] == 1
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(FileExistsError, match="not a landbc output store"):
        OutputStore.create(other, GRID, (2015, 1), 1, overwrite=True)
    assert (other / "thesis.tex").exists()
    with pytest.raises(ValueError, match="not a landbc output store"):
        OutputStore.open(other)


def test_matches_reports_differences(tmp_path):
    st = OutputStore.create(tmp_path / "bc.zarr", GRID, (2015, 1), 2)
    assert st.matches(GRID, (2015, 1), 2, "forward") is None
    assert "differs" in st.matches(GRID, (2015, 1), 3, "forward")
    other = Grid(30.0, 60.0, 0.0, 2.5, 0.05, 5)
    assert "grid" in st.matches(other, (2015, 1), 2, "forward")


def test_quicklooks_without_cube(tmp_path):
    g = Grid(46.0, 48.0, 6.0, 8.0, 0.05, 5)
    st = OutputStore.create(tmp_path / "bc.zarr", g, (2015, 6), 3)
    for i, m in enumerate(st.months):
        st.write_step(i, fake_result(*m, grid=g).numpy())
    pngs = quicklooks(tmp_path / "bc.zarr", outdir=tmp_path / "ql")
    names = sorted(p.name for p in pngs)
    assert names == ["lai_2015-07.png", "lc_2015-08.png", "lu_2015-08.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    p = plot_class_map(
        np.zeros((4, 4), np.uint8),
        g,
        catalog.LU_CLASSES,
        ("#000000",) * 8,
        "t",
        tmp_path / "one.png",
    )
    assert p.exists()
