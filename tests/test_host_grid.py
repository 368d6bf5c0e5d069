"""A host model's own grid in the C++ core (landbc_set_host_grid): the weights Python
computes, applied by C++ bit for bit as Python applies them, and the example Fortran
host on O96 against the Python step loop on the same run.

The C++ pieces are built by `make test`; without them these tests skip (fail under
LANDBC_REQUIRE_CPP=1, as `make test` sets)."""

from __future__ import annotations

import ctypes
import importlib

import numpy as np
import pytest
import torch
from cabi import load_lib, missing_cpp
from test_cpp_hosts import BUNDLE, host, run_host
from test_driver import make_config

from landbc.coupler import remap
from landbc.coupler.config import EsmOutputConfig
from landbc.coupler.driver import run
from landbc.coupler.esm_output import EsmWriter
from landbc.coupler.forcing import export_forcing
from landbc.coupler.grids import RegularLatLonGrid, grid_from_name
from landbc.coupler.hostfiles import ESM_FIELDS, TINY_GRID, read_host_field, write_host_inputs
from landbc.coupler.output import OutputStore
from landbc.emulator.cube import Cube

HOST_GRID = "O96"
START, NSTEPS = (2000, 12), 3  # priors of 2000-12, then 2001-01..2001-03


def cpp_module():
    try:
        return importlib.import_module("landbc._cpp")
    except ImportError as e:
        missing_cpp(f"landbc._cpp is not built ({e}); `make test` builds it")


@pytest.fixture(scope="module")
def host_weights(tmp_path_factory):
    """Weight files for TINY_GRID and a random land mask, to O96 and back."""
    rng = np.random.default_rng(3)
    land = rng.random(TINY_GRID.shape) < 0.7
    out = tmp_path_factory.mktemp("host_weights")
    paths = remap.write_host_weights(TINY_GRID, land, HOST_GRID, out)
    return land, paths


def test_cpp_applies_the_weights_as_python_does(host_weights):
    cpp = cpp_module()
    land, paths = host_weights
    to_host, _ = remap.load_weights(paths["outputs"])
    rng = np.random.default_rng(4)
    field = (rng.random(TINY_GRID.shape) * 7).astype(np.float32)
    expected = remap.grid_box_average(to_host, field.astype(np.float64))
    got = cpp.remap_apply(str(paths["outputs"]), torch.from_numpy(field)).numpy()
    assert np.isfinite(expected).any() and np.isnan(expected).any()  # land and no-land cells
    np.testing.assert_array_equal(got, expected.reshape(-1))  # NaN where NaN, else equal bits
    # Vegetation types: the dominant class, ties to the smallest code, as Python.
    codes = rng.integers(0, 4, TINY_GRID.shape).astype(np.uint8)
    types = remap.dominant_type(to_host, codes, missing=-1).astype(np.float64).reshape(-1)
    types[to_host.empty_rows] = np.nan
    got = cpp.remap_apply(str(paths["outputs"]), torch.from_numpy(codes)).numpy()
    np.testing.assert_array_equal(got, types)
    # Forcing, host grid -> coarse grid: float32 in, float64 sums, rounded once.
    from_host, _ = remap.load_weights(paths["forcing"])
    t2m = (250 + 40 * rng.random(from_host.n_source)).astype(np.float32)
    got = cpp.remap_apply(str(paths["forcing"]), torch.from_numpy(t2m)).numpy()
    np.testing.assert_array_equal(got.astype(np.float32),
                                  remap.apply(from_host, t2m).reshape(-1))  # fmt: skip


def test_weight_files_name_their_host_grid_and_land_mask(host_weights):
    cpp = cpp_module()
    land, paths = host_weights
    _, meta = remap.load_weights(paths["outputs"])
    assert (meta["host_grid"], meta["host_role"]) == (HOST_GRID, remap.HOST_OUTPUTS)
    # The C++ core hashes the land mask as Python does, so a file made for another
    # mask is refused (landbc_set_host_grid).
    assert cpp.mask_sha256(torch.from_numpy(land.astype(np.uint8))) == meta["mask_sha256"]
    assert cpp.mask_sha256(torch.from_numpy((~land).astype(np.uint8))) != meta["mask_sha256"]
    _, meta = remap.load_weights(paths["forcing"])
    assert meta["host_role"] == remap.HOST_FORCING
    assert (
        meta["target_grid"]
        == RegularLatLonGrid.from_emulator_grid(TINY_GRID, coarse=True).canonical_json()
    )


def test_fortran_host_on_o96_equals_the_python_step_loop(tmp_path, tiny_cube):
    """The Fortran host declares O96, gives t2m/tp/ssrd on O96 (decoded from GRIB) and
    reads the IFS fields on O96; the Python step loop runs the same months from the same
    GRIB files with [esm_output] O96. Every field of every step: the same bits."""
    exe = host("f")
    forcing_dir = tmp_path / "forcing"
    months = NSTEPS + 1
    files = export_forcing(tiny_cube, HOST_GRID, START, months, forcing_dir)
    inputs = write_host_inputs(tiny_cube, tmp_path / "inputs", BUNDLE, start=START, nsteps=NSTEPS,
                               restart_step=0, host_grid=HOST_GRID,
                               host_forcing_files=files)  # fmt: skip
    out = tmp_path / "host_out"
    out.mkdir()
    run_host(exe, inputs, out)

    cfg = make_config(tmp_path / "py", BUNDLE, tiny_cube, start=(2001, 1), steps=NSTEPS,
                      restart_every=0, climate="grib", climate_files=tuple(files),
                      esm_output=EsmOutputConfig(grid=HOST_GRID))  # fmt: skip
    run(cfg, progress=False)
    store = OutputStore.open(cfg.store, mode="r")
    cube = Cube.open(tiny_cube)
    writer = EsmWriter(cfg.esm_output, cube.grid, cube.static()["land_mask"],
                       tmp_path / "esm_check", tmp_path / "esm_cache")  # fmt: skip
    n = grid_from_name(HOST_GRID).npoints
    for k in range(1, NSTEPS + 1):
        expected = writer.remap(store.read_step(k - 1))
        for name in ESM_FIELDS:
            got = read_host_field(out, k, name)
            assert got.shape == (n,), name
            assert np.isfinite(got).sum() > 0, name
            np.testing.assert_array_equal(got, expected[name].reshape(-1), err_msg=f"{k} {name}")


# --- the C ABI's checks, through ctypes ------------------------------------------------

OK, ERR_ARGUMENT, ERR_IO, ERR_STATE = 0, 1, 2, 5
FLOAT32, FLOAT64 = 3, 4


@pytest.fixture(scope="module")
def abi():
    return load_lib()


@pytest.fixture(scope="module")
def restart_and_weights(tiny_cube, tmp_path_factory):
    """A restart of the demo bundle on the tiny cube, and O96 weights for its land mask and
    for another one."""
    from landbc.emulator.api import BoundaryConditionEmulator

    tmp = tmp_path_factory.mktemp("abi")
    cube = Cube.open(tiny_cube)
    emu = BoundaryConditionEmulator.from_bundle(BUNDLE, dtype="float32")
    emu.initialise(cube.grid, cube.static(), cube.truth(*START), *START)
    emu.save_restart(tmp / "restart.safetensors")
    land = cube.static()["land_mask"] == 1
    remap.write_host_weights(cube.grid, land, HOST_GRID, tmp / "ok", forcing_method=None)
    remap.write_host_weights(cube.grid, ~land, HOST_GRID, tmp / "other_mask",
                             forcing_method=None)  # fmt: skip
    return tmp


def test_c_abi_host_grid_errors_name_what_is_wrong(abi, restart_and_weights):
    tmp = restart_and_weights
    h = ctypes.c_void_p()
    assert abi.landbc_open(str(BUNDLE).encode(), b"cpu", b"float32", ctypes.byref(h)) == OK

    def call(fn, *args) -> tuple[int, str]:
        rc = getattr(abi, fn)(h, *args)
        return rc, abi.landbc_last_error().decode() if rc else ""

    ok_dir = str(tmp / "ok").encode()
    rc, msg = call("landbc_set_host_grid", b"O96", ok_dir)
    assert rc == ERR_STATE and "landbc_initialise or landbc_load_restart" in msg
    assert call("landbc_load_restart", str(tmp / "restart.safetensors").encode())[0] == OK

    rc, msg = call("landbc_set_host_grid", b"O96", str(tmp / "missing").encode())
    assert rc == ERR_IO and "does not exist" in msg
    rc, msg = call("landbc_set_host_grid", b"O96", str(tmp / "other_mask").encode())
    assert rc == ERR_ARGUMENT and "another land mask" in msg and "landbc remap-weights" in msg
    n = ctypes.c_int64(0)
    assert call("landbc_host_grid_size", ctypes.byref(n))[0] == ERR_STATE  # still none

    assert call("landbc_set_host_grid", b"o96", ok_dir)[0] == OK  # names: case-insensitive
    assert call("landbc_host_grid_size", ctypes.byref(n))[0] == OK
    assert n.value == grid_from_name(HOST_GRID).npoints
    rc, msg = call("landbc_set_host_grid", b"N320", ok_dir)  # refused: O96 stays declared
    assert rc == ERR_ARGUMENT and "N320" in msg
    assert call("landbc_host_grid_size", ctypes.byref(n))[0] == OK and n.value == 40320

    buf = (ctypes.c_double * n.value)()
    rc, msg = call("landbc_get_host_field", b"cvh", buf, FLOAT64, ctypes.c_int64(n.value - 1))
    assert rc == ERR_ARGUMENT and "count expected 40320 points of O96" in msg, msg
    rc, msg = call("landbc_get_host_field", b"t2m", buf, FLOAT64, ctypes.c_int64(n.value))
    assert rc == ERR_ARGUMENT and "t2m" in msg
    assert call("landbc_get_host_field", b"cvh", buf, FLOAT64, ctypes.c_int64(n.value))[0] == OK
    values = np.frombuffer(buf, dtype=np.float64)
    assert np.isfinite(values).sum() > 0 and np.nanmin(values) >= 0 and np.nanmax(values) <= 1

    field = (ctypes.c_float * n.value)()
    shape = (ctypes.c_int64 * 1)(n.value)
    rc, msg = call("landbc_set_host_field", b"t2m", field, FLOAT32, 1, shape)
    assert rc == OK  # bound; no forcing weights in this folder: the step says so
    rc, msg = call("landbc_step", None, None)
    assert rc == ERR_ARGUMENT and "t2m" in msg and "no forcing weights" in msg
    rc, msg = call("landbc_set_host_field", b"elevation", field, FLOAT32, 1, shape)
    assert rc == ERR_ARGUMENT and "only coarse forcing" in msg
    bad = (ctypes.c_int64 * 1)(n.value - 1)
    rc, msg = call("landbc_set_host_field", b"tp", field, FLOAT32, 1, bad)
    assert rc == ERR_ARGUMENT and "expected shape (40320,)" in msg
    assert abi.landbc_close(ctypes.byref(h)) == OK
