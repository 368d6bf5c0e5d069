"""Stores written by landbc 0.1 (commit e3339e4, zarr-python 2.18) stay readable.

tests/data/landbc-0.1/ holds a tiny cube, the output store of a run stopped after
3 of 4 steps and its restart, all written by the old code with zarr-python 2, and
expected.json: what the old code read from them (shapes, dtypes, chunking, fill
values, compressors, attributes, sums and sha256 of the raw bytes). Here the
current code reads them: through Cube, OutputStore and xarray, the cube against a
cube generated now, and the stopped run resumed to its end by the current driver.
make_fixtures.py in that folder wrote them; its README says how to redo it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from landbc.coupler.config import RunConfig
from landbc.coupler.driver import run
from landbc.coupler.hostfiles import TINY_GRID, TINY_YEARS
from landbc.coupler.output import OutputStore
from landbc.emulator import catalog
from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.cube import Cube
from landbc.emulator.grid import Grid

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "landbc-0.1"
EXPECTED = json.loads((DATA / "expected.json").read_text())
CUBE = DATA / EXPECTED["cube"]["path"]
STORE = DATA / EXPECTED["store"]["path"]
NAMES = [v.name for v in catalog.OUTPUT_VARIABLES]


def describe(a) -> dict:
    """As make_fixtures.describe: shape, dtype, sum and sha256 of the raw C-order bytes."""
    a = np.ascontiguousarray(a)
    out = {"shape": list(a.shape), "dtype": a.dtype.str}
    out["sum"] = float(a.sum(dtype=np.float64)) if a.dtype.kind in "iuf" else None
    out["sha256"] = hashlib.sha256(a.tobytes()).hexdigest()
    return out


def assert_described(a, want: dict, what: str) -> None:
    got = describe(a)
    for k in ("shape", "dtype", "sha256"):
        assert got[k] == want[k], (what, k, got[k], want[k])
    if want["sum"] is None:
        assert got["sum"] is None, what
    else:
        assert got["sum"] == pytest.approx(want["sum"], rel=1e-12, nan_ok=True), what


def json_fill(x):
    """A fill value as make_fixtures wrote it to JSON (NaN as "NaN")."""
    if x is None:
        return None
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return x


def assert_array_meta(a: zarr.Array, want: dict, what: str) -> None:
    assert list(a.shape) == want["shape"], what
    assert a.dtype.str == want["dtype"], what
    assert list(a.chunks) == want["chunks"], what
    assert json_fill(a.fill_value) == want["fill_value"], what
    if want["compressor"] is None:
        assert not a.compressors, what
    else:
        assert [c.get_config() for c in a.compressors] == [want["compressor"]], what
    assert dict(a.attrs) == want["attrs"], what


def assert_decoded_as_before(ds: xr.Dataset, want: dict) -> None:
    """xarray sees the variables, dims, dtypes and times it saw under zarr 2."""
    got = {n: {"dims": list(ds[n].dims), "dtype": ds[n].dtype.str} for n in want["variables"]}
    assert got == want["variables"]
    assert sorted([*ds.data_vars, *ds.coords]) == sorted(want["variables"])
    assert [str(t)[:10] for t in ds["time"].values] == want["time"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module", autouse=True)
def fixtures_stay_unchanged():
    """No test here may write to the committed fixtures (read-write work uses copies)."""
    before = _digest(DATA)
    yield
    assert _digest(DATA) == before, "a test modified tests/data/landbc-0.1"


def test_fixtures_were_written_by_landbc_0_1_with_zarr_2():
    w = EXPECTED["written_by"]
    assert w["landbc_commit"] == "e3339e4" and w["zarr"].startswith("2.")
    for store in (CUBE, STORE):
        assert (store / ".zmetadata").is_file() and not (store / "zarr.json").exists()


# --- the cube -------------------------------------------------------------------------


def test_cube_opens_and_every_array_reads_as_zarr_2_read_it():
    want = EXPECTED["cube"]
    c = Cube.open(CUBE)
    assert c.grid == Grid.from_dict(want["grid"]) == TINY_GRID
    assert (c.first_year, c.last_year) == tuple(want["years"]) == TINY_YEARS
    assert list(c.years) == list(range(TINY_YEARS[0], TINY_YEARS[1] + 1))
    assert dict(c.root.attrs) == want["attrs"]
    assert c.root.attrs["seed"] == want["seed"]
    assert sorted(c.root.array_keys()) == sorted(want["arrays"])
    for name, w in want["arrays"].items():
        a = c.root[name]
        assert_array_meta(a, w, name)
        assert_described(a[...], w, name)


def test_cube_api_reads_the_legacy_cube():
    c = Cube.open(CUBE)
    for key, fields in EXPECTED["cube"]["cube_api"].items():
        if key == "static":
            got = c.maps()
        else:
            kind, ym = key.split()
            y, m = (int(x) for x in ym.split("-"))
            got = c.forcing(y, m) if kind == "forcing" else c.truth(y, m)
        assert sorted(got) == sorted(fields), key
        for n, w in fields.items():
            assert_described(got[n], w, f"{key} {n}")


def test_cube_opens_with_xarray_as_before():
    want = EXPECTED["cube"]
    with xr.open_zarr(CUBE) as ds:  # CF decoding, as a user opens it
        assert_decoded_as_before(ds, want["xarray"])
        assert ds.attrs == want["attrs"]
    with xr.open_zarr(CUBE, decode_cf=False) as raw:  # the stored values themselves
        for n in [*raw.data_vars, *raw.coords]:
            assert_described(raw[n].values, want["arrays"][n], f"xarray {n}")


def test_legacy_cube_equals_a_cube_generated_now(tiny_cube):
    """The generator is deterministic: the session's tiny_cube (generate_world of
    TINY_GRID, TINY_YEARS, seed 0, by the current code) is the legacy cube, bit for bit."""
    old, new = Cube.open(CUBE), Cube.open(tiny_cube)
    assert (old.grid, old.first_year, old.last_year) == (new.grid, new.first_year, new.last_year)
    assert new.root.attrs["seed"] == EXPECTED["cube"]["seed"]
    so, sn = old.static(), new.static()
    assert sorted(so) == sorted(sn)
    for n in so:
        assert sn[n].dtype == so[n].dtype, n
        np.testing.assert_array_equal(sn[n], so[n], err_msg=f"static {n}")
    for y in old.years:
        for m in range(1, 13):
            for part, fo, fn in (
                ("forcing", old.forcing(y, m), new.forcing(y, m)),
                ("truth", old.truth(y, m), new.truth(y, m)),
            ):
                assert sorted(fo) == sorted(fn), (part, y, m)
                for n in fo:
                    what = f"{part} {y}-{m:02d} {n}"
                    assert fn[n].dtype == fo[n].dtype and fn[n].shape == fo[n].shape, what
                    np.testing.assert_array_equal(fn[n], fo[n], err_msg=what)
    # every stored array (coordinates included), and the statistics derived from them
    assert sorted(old.root.array_keys()) == sorted(new.root.array_keys())
    for n in old.root.array_keys():
        np.testing.assert_array_equal(new.root[n][...], old.root[n][...], err_msg=n)
    assert new.root.attrs["stats"] == old.root.attrs["stats"]


# --- the output store ---------------------------------------------------------------


def test_output_store_opens_and_reads_as_zarr_2_read_it():
    want = EXPECTED["store"]
    st = OutputStore.open(STORE, mode="r")
    a = want["attrs"]
    assert st.grid == Grid.from_dict(a["grid"]) == TINY_GRID
    assert (st.direction, st.steps, st.variables) == (
        a["run_direction"],
        a["run_steps"],
        tuple(NAMES),
    )
    assert st.start == (2001, 1) and a["run_start"] == "2001-01"
    assert [list(m) for m in st.months] == want["months"]
    assert st.completed_steps == want["completed_steps"] == 3
    assert st.matches(TINY_GRID, (2001, 1), 4, "forward") is None
    assert dict(st.root.attrs) == a
    assert sorted(st.root.array_keys()) == sorted(want["arrays"])
    for name, w in want["arrays"].items():
        assert_array_meta(st.root[name], w, name)
    for name, w in want["coords"].items():
        assert_described(st.root[name][...], w, name)
    for i, fields in want["steps"].items():
        got = st.read_step(int(i))
        assert sorted(got) == sorted(fields)
        for n, w in fields.items():
            assert_described(got[n], w, f"step {i} {n}")
    # the unwritten step reads as the fill value: NaN for the float fields
    for i, nan_names in want["unwritten_all_nan"].items():
        ti = st.time_index(*st.months[int(i)])
        assert nan_names, i
        for n in nan_names:
            assert np.isnan(st.root[n][ti]).all(), (i, n)


def test_output_store_opens_with_xarray_as_before():
    want = EXPECTED["store"]
    with xr.open_zarr(STORE) as ds:
        assert ds.attrs == want["attrs"] and ds.attrs["completed_steps"] == 3
        assert_decoded_as_before(ds, want["xarray"])
        # class maps stay uint8 (class 0 is not masked); the written steps are the stored bytes
        assert ds["lu"].dtype == np.uint8 and ds["lai"].dtype == np.float32
        for i, fields in want["steps"].items():
            for n, w in fields.items():
                assert_described(ds[n].isel(time=int(i)).values, w, f"xarray step {i} {n}")
        assert np.isnan(ds["lai"].isel(time=3).values).all()


def test_legacy_run_is_refused_clearly_by_the_current_driver_and_left_as_written(tmp_path):
    """The stopped legacy run (3 of 4 steps, restart after step 3) was written by the
    0.1 bundle, removed in 0.3 (it takes no LAI climatology). Its restart names that
    bundle's stepper, so resuming it with the current demo bundle is refused, saying
    so, and the store keeps its 3 steps as written."""
    for name in ("tiny.zarr", "bc.zarr", "restarts"):
        shutil.copytree(DATA / name, tmp_path / name)
    (restart,) = (tmp_path / "restarts").glob("*.safetensors")
    cfg = RunConfig(
        bundle=REPO / "weights" / "demo",
        cube=tmp_path / "tiny.zarr",
        store=tmp_path / "bc.zarr",
        restart_dir=tmp_path / "restarts",
        start=(2001, 1),
        steps=4,
        restart_every=3,
        dtype="float32",
        source="test_legacy_stores",
    ).with_()
    with pytest.raises(ValueError, match=r"written with stepper sha256 .*different weights"):
        BoundaryConditionEmulator.from_restart(cfg.bundle, restart, dtype="float32")
    with pytest.raises(ValueError, match="different weights"):
        run(cfg, resume=True, progress=False)
    st = OutputStore.open(cfg.store, mode="r")
    assert st.completed_steps == 3
    for i in range(3):
        got = st.read_step(i)
        for n, w in EXPECTED["store"]["steps"][str(i)].items():
            assert_described(got[n], w, f"legacy step {i} {n}")
