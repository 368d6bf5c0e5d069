"""BoundaryConditionEmulator: validation that leaves state untouched, exact restart,
both directions, derived IFS fields."""

import numpy as np
import pytest
import torch
import xarray as xr

from landbc.emulator import catalog
from landbc.emulator.api import BoundaryConditionEmulator, InputError
from landbc.emulator.cube import Cube


@pytest.fixture
def cube(tiny_cube):
    return Cube.open(tiny_cube)


def _start(bundle, cube, year=2000, month=12, direction="forward"):
    emu = BoundaryConditionEmulator.from_bundle(bundle)
    emu.initialise(cube.grid, cube.static(), cube.truth(year, month), year, month, direction)
    return emu


def _run(emu, cube, n):
    outs = []
    for _ in range(n):
        y, m = emu.next_time
        outs.append(emu.step(cube.forcing(y, m), time=(y, m)).numpy())
    return outs


def _same_state(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_step_produces_every_output_on_the_grid(tiny_bundle, cube):
    emu = _start(tiny_bundle, cube)
    assert emu.time == (2000, 12) and emu.next_time == (2001, 1)
    res = emu.step(cube.forcing(2001, 1))
    assert (res.year, res.month) == (2001, 1) and emu.time == (2001, 1)
    assert set(res.fields) == {v.name for v in catalog.OUTPUT_VARIABLES}
    for name, t in res.fields.items():
        assert isinstance(t, torch.Tensor) and tuple(t.shape) == cube.grid.shape, name
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["lai"].attrs["units"] == "m2 m-2"
    assert ds["cvh"].attrs["GRIB_paramId"] == 28


def test_derived_ifs_fields_are_consistent(tiny_bundle, cube):
    emu = _start(tiny_bundle, cube)
    f = emu.step(cube.forcing(2001, 1)).numpy()
    high = np.isin(f["lc"], catalog.LC_HIGH_VEGETATION)
    low = np.isin(f["lc"], catalog.LC_LOW_VEGETATION)
    assert np.array_equal(f["tvh"], np.where(high, f["lc"], 0))
    assert np.array_equal(f["tvl"], np.where(low, f["lc"], 0))
    assert ((f["cvh"] > 0) == high).all() and ((f["cvl"] > 0) == low).all()
    veg = high | low
    grid_box = f["cvl"] * f["lai_lv"] + f["cvh"] * f["lai_hv"]
    np.testing.assert_allclose(grid_box[veg], f["lai"][veg], rtol=1e-5)
    assert (f["lai"] >= 0).all()
    land = cube.static()["land_mask"] == 1
    assert (f["lu"][~land] == 0).all() and (f["lai"][~land] == 0).all()


def _bad_forcings(cube):
    good = cube.forcing(2001, 1)
    nan = {**good, "t2m": good["t2m"].copy()}
    nan["t2m"][0, 0] = np.nan
    hot = {**good, "t2m": good["t2m"] + 200}
    shape = {**good, "tp": good["tp"][:-1]}
    missing = {k: v for k, v in good.items() if k != "ssrd"}
    unknown = {**good, "snow": good["tp"]}
    frac = {**good, "luh2_frac": good["luh2_frac"] * 3 + 0.5}
    return [
        (nan, "t2m: expected finite values, found 1 NaN"),
        (hot, r"t2m: expected values in \[180, 340\] K"),
        (shape, r"tp: expected shape \(16, 16\), found \(15, 16\)"),
        (missing, r"forcing: missing variable\(s\) \['ssrd'\]"),
        (unknown, r"forcing: unknown variable\(s\) \['snow'\]"),
        (frac, r"luh2_frac: expected values in \[0, 1\]"),
        ("not a mapping", "forcing: expected a mapping"),
    ]


def test_bad_forcing_names_the_variable_and_leaves_state_untouched(tiny_bundle, cube):
    emu = _start(tiny_bundle, cube)
    _run(emu, cube, 1)
    before = emu.state()
    before = {k: v.clone() for k, v in before.items()}
    for forcing, match in _bad_forcings(cube):
        with pytest.raises(InputError, match=match):
            emu.step(forcing)
        assert _same_state(before, emu.state()) and emu.time == (2001, 1)
    with pytest.raises(InputError, match="time: expected forcing for 2001-02 .* found 2001-03"):
        emu.step(cube.forcing(2001, 3), time=(2001, 3))
    assert _same_state(before, emu.state())
    emu.step(cube.forcing(2001, 2), time=(2001, 2))  # and it still steps


def test_bad_initialisation_is_refused_clearly(tiny_bundle, cube):
    emu = BoundaryConditionEmulator.from_bundle(tiny_bundle)
    static, priors = cube.static(), cube.truth(2000, 12)
    cases = [
        (
            dict(static={**static, "koppen": static["koppen"] + 9}),
            r"koppen: expected values in \[0, 5\]",
        ),
        (
            dict(priors={**priors, "lu": priors["lu"].astype(float) + 0.5}),
            r"lu: expected values in \[0, 7\]|lu: expected integer class codes",
        ),
        (
            dict(priors={k: v for k, v in priors.items() if k != "lai"}),
            r"priors: missing variable\(s\) \['lai'\]",
        ),
        (
            dict(static={**static, "elevation": static["elevation"][:, :10]}),
            r"elevation: expected shape \(80, 80\), found \(80, 10\)",
        ),
        (
            dict(static={**static, "lai_climatology": static["lai_climatology"][:11]}),
            r"lai_climatology: expected shape \(12, 80, 80\), found \(11, 80, 80\)",
        ),
        (
            dict(static={**static, "lai_climatology": static["lai_climatology"] - 1}),
            r"lai_climatology: expected values in \[0, 15\]",
        ),
        (dict(month=13), "month: expected an integer 1..12, found 13"),
        (dict(direction="sideways"), "direction: expected 'forward' or 'backward'"),
    ]
    for override, match in cases:
        kw = dict(grid=cube.grid, static=static, priors=priors, year=2000, month=12)
        kw.update(override)
        with pytest.raises(InputError, match=match):
            emu.initialise(**kw)
    with pytest.raises(RuntimeError, match="not initialised"):
        emu.step(cube.forcing(2001, 1))
    from landbc.emulator.grid import Grid

    coarse10 = Grid(46.0, 50.0, 6.0, 10.0, 0.05, 10)
    with pytest.raises(InputError, match="grid: expected res 0.05 deg and coarse_factor 5"):
        emu.initialise(coarse10, static, priors, 2000, 12)


def test_unavailable_device_and_dtype_are_refused(tiny_bundle):
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            BoundaryConditionEmulator.from_bundle(tiny_bundle, device="cuda:0")
    with pytest.raises(InputError, match="dtype: expected 'auto', 'float32' or 'bfloat16'"):
        BoundaryConditionEmulator.from_bundle(tiny_bundle, dtype="float16")
    with pytest.raises(InputError, match="device: expected"):
        BoundaryConditionEmulator.from_bundle(tiny_bundle, device="tpu")


@pytest.mark.parametrize("direction, start", [("forward", (2000, 1)), ("backward", (2002, 12))])
def test_exact_restart_24_steps_equal_12_restart_12(tiny_bundle, cube, tmp_path, direction, start):
    straight = _run(_start(tiny_bundle, cube, *start, direction=direction), cube, 24)
    emu = _start(tiny_bundle, cube, *start, direction=direction)
    first = _run(emu, cube, 12)
    path = emu.save_restart(tmp_path / "restart.safetensors")
    del emu
    resumed = BoundaryConditionEmulator.from_restart(tiny_bundle, path)
    assert resumed.direction == direction
    second = _run(resumed, cube, 12)
    for a, b in zip(straight, first + second, strict=True):
        for k in a:
            assert np.array_equal(a[k], b[k]), k


def test_backward_runs_back_in_time(tiny_bundle, cube):
    emu = _start(tiny_bundle, cube, 2002, 2, direction="backward")
    times = []
    for _ in range(3):
        y, m = emu.next_time
        times.append((emu.step(cube.forcing(y, m)).year, m))
    assert times == [(2002, 1), (2001, 12), (2001, 11)]


def test_restart_from_other_weights_is_refused(tiny_bundle, cube, tmp_path):
    import shutil

    emu = _start(tiny_bundle, cube)
    path = emu.save_restart(tmp_path / "r.safetensors")
    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)
    import json

    from landbc.emulator.bundle import sha256

    f = other / "stepper_forward.pt"
    f.write_bytes(f.read_bytes() + b"\0")  # different bytes, re-listed: 'other weights'
    m = json.loads((other / "manifest.json").read_text())
    m["files"]["stepper_forward.pt"] = sha256(f)
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="different weights"):
        BoundaryConditionEmulator.from_restart(other, path)
    with pytest.raises(FileNotFoundError):
        BoundaryConditionEmulator.from_restart(tiny_bundle, tmp_path / "missing.safetensors")


def test_bfloat16_nets_run_and_stay_close(tiny_bundle, cube):
    a = _run(_start(tiny_bundle, cube), cube, 1)[0]
    emu = BoundaryConditionEmulator.from_bundle(tiny_bundle, dtype="bfloat16")
    emu.initialise(cube.grid, cube.static(), cube.truth(2000, 12), 2000, 12)
    b = _run(emu, cube, 1)[0]
    assert np.abs(a["lai"] - b["lai"]).mean() < 0.1 * max(a["lai"].mean(), 1e-3) + 0.05


def test_inputs_may_be_xarray_torch_or_numpy(tiny_bundle, cube):
    grid = cube.grid
    static = xr.Dataset(
        {k: (("month", "lat", "lon")[-v.ndim :], v) for k, v in cube.static().items()},
        coords={"lat": grid.lat, "lon": grid.lon},
    )
    priors = {k: torch.from_numpy(v) for k, v in cube.truth(2000, 12).items()}
    a = BoundaryConditionEmulator.from_bundle(tiny_bundle)
    a.initialise(grid, static, priors, 2000, 12)
    b = _start(tiny_bundle, cube)
    assert _same_state(a.state(), b.state())
    fa = a.step({k: xr.DataArray(v) for k, v in cube.forcing(2001, 1).items()}).numpy()
    fb = b.step(cube.forcing(2001, 1)).numpy()
    assert all(np.array_equal(fa[k], fb[k]) for k in fa)
