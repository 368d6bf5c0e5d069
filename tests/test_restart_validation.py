"""Restart files checked by value in both fronts (issue 11): a corrupted restart (NaN,
class codes outside the catalog, LAI out of range, month 13, time/grid/origin that
disagree, another resolution, a missing tensor, a wrong shape or dtype) is refused
with the message a bad step input gets, naming the file and the variable, and the
emulator keeps the state it had. Python through `BoundaryConditionEmulator`, C++
through the C ABI with ctypes (LANDBC_LIB, default build/cpp/liblandbc.so; without it
the C++ tests skip, or fail under LANDBC_REQUIRE_CPP=1 as `make test` sets)."""

from __future__ import annotations

import ctypes
import json
import logging
from ctypes import POINTER, byref, c_char_p, c_int, c_void_p
from pathlib import Path

import pytest
import torch
from cabi import load_lib

from landbc.emulator import safetensors
from landbc.emulator.api import BoundaryConditionEmulator, InputError
from landbc.emulator.cube import Cube

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "weights" / "demo"
LANDBC_OK, LANDBC_ERR_ARGUMENT = 0, 1


# --- corruptions: (tensors, meta) -> None, in place; the variable the error names --------


def _set(name, index, value):
    def corrupt(t, m):
        t[name] = t[name].clone()
        t[name][index] = value

    return corrupt


def _grid(**changes):
    def corrupt(t, m):
        m["grid"] = json.dumps({**json.loads(m["grid"]), **changes})

    return corrupt


def _time(year, month, stamp=None):
    def corrupt(t, m):
        t["time"] = torch.tensor([year, month], dtype=torch.int64)
        m["time"] = stamp or f"{year:04d}-{month:02d}"

    return corrupt


def _tensor(name, fn):
    def corrupt(t, m):
        t[name] = fn(t.get(name))

    return corrupt


def _meta(**changes):
    def corrupt(t, m):
        m.update(changes)

    return corrupt


CORRUPTIONS = {
    "nan_lai": (_set("lai", (3, 4), float("nan")), "lai: expected finite values, found 1 NaN/inf"),
    "inf_elevation": (_set("elevation", (0, 0), float("inf")), "elevation: expected finite"),
    "lu_code": (_set("lu", (5, 5), 9), r"lu: expected values in \[0, 7\] 1, found \[\d+, 9\]"),
    "lc_code": (_set("lc", (5, 5), 21), r"lc: expected values in \[0, 20\]"),
    "koppen_code": (_set("koppen", (0, 1), 6), r"koppen: expected values in \[0, 5\]"),
    "land_mask_code": (_set("land_mask", (0, 1), 2), r"land_mask: expected values in \[0, 1\]"),
    "lai_above_max": (_set("lai", (1, 1), 15.5), r"lai: expected values in \[0, 15\] m2 m-2"),
    "lai_negative": (_set("lai", (1, 1), -0.5), r"lai: expected values in \[0, 15\]"),
    "month_13": (_time(2001, 13), "time: expected month 1..12, found 13"),
    "month_0": (_time(2001, 0), "time: expected month 1..12, found 0"),
    "time_disagrees": (_time(2001, 1, "2001-02"), "time: the metadata says 2001-02"),
    "grid_moved": (_grid(lat_south=46.25, lat_north=50.25), r"origin: expected \(795, 3720\)"),
    "origin_moved": (_tensor("origin", lambda o: o + 5), r"origin: expected \(800, 3720\)"),
    "other_res": (_grid(res=0.1, coarse_factor=5), "grid: expected res 0.05 deg"),
    "other_coarse": (_grid(coarse_factor=10), "grid: expected res 0.05 deg and coarse_factor 5"),
    "grid_not_json": (_meta(grid="{not json"), "grid: not a valid grid description"),
    "missing_lai": (_tensor("lai", lambda x: None), r"missing variable\(s\) \['lai'\]"),
    "unknown_tensor": (_tensor("extra", lambda x: torch.zeros(2)), r"unknown variable\(s\)"),
    "lai_shape": (_tensor("lai", lambda x: x[:-1]), r"lai: expected shape \(80, 80\)"),
    "lai_dtype": (
        _tensor("lai", lambda x: x.double()),
        "lai: expected dtype float32, found float64",
    ),
    "lu_dtype": (_tensor("lu", lambda x: x.float()), "lu: expected dtype uint8, found float32"),
    "time_dtype": (_tensor("time", lambda x: x.int()), r"time: expected int64 of shape \(2,\)"),
    "direction_flipped": (_tensor("direction", lambda x: -x), "direction: the metadata says"),
    "direction_unknown": (_meta(direction="sideways"), "direction: expected 'forward'"),
    "metadata_time_missing": (_meta(time=None), "time: missing from the metadata"),
    "nets_dtype": (_meta(nets_dtype="float16"), "nets_dtype: expected 'float32' or 'bfloat16'"),
    "nets_device": (_meta(nets_device="tpu"), "nets_device: expected 'cpu' or 'cuda:N'"),
}


def write_corrupted(good: Path, out: Path, corrupt) -> Path:
    tensors, meta = safetensors.load(good)
    corrupt(tensors, meta)
    tensors = {k: v for k, v in tensors.items() if v is not None}
    meta = {k: v for k, v in meta.items() if v is not None}
    safetensors.save(out, tensors, meta)
    return out


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restarts(tiny_cube, tmp_path_factory) -> dict[str, Path]:
    """Good restarts of the demo bundle on the tiny cube: 'first' at 2000-12 (forward),
    'loaded' one step on at 2001-01, and 'backward' at 2002-12."""
    cube = Cube.open(tiny_cube)
    out = tmp_path_factory.mktemp("restarts")
    emu = BoundaryConditionEmulator.from_bundle(DEMO)
    emu.initialise(cube.grid, cube.static(), cube.truth(2000, 12), 2000, 12)
    paths = {"first": emu.save_restart(out / "first.safetensors")}
    emu.step(cube.forcing(*emu.next_time))
    paths["loaded"] = emu.save_restart(out / "loaded.safetensors")
    emu.initialise(cube.grid, cube.static(), cube.truth(2002, 12), 2002, 12, "backward")
    paths["backward"] = emu.save_restart(out / "backward.safetensors")
    return paths


@pytest.fixture(scope="module")
def bad_restarts(restarts, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bad_restarts")
    return {
        case: write_corrupted(restarts["first"], out / f"{case}.safetensors", corrupt)
        for case, (corrupt, _) in CORRUPTIONS.items()
    }


@pytest.fixture(scope="module")
def loaded(restarts) -> BoundaryConditionEmulator:
    return BoundaryConditionEmulator.from_restart(DEMO, restarts["loaded"])


def _clone_state(emu: BoundaryConditionEmulator) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in emu.state().items()}


def _assert_state_equal(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert sorted(before) == sorted(after)
    for k in before:
        assert before[k].dtype == after[k].dtype and torch.equal(before[k], after[k]), k


# --- Python -----------------------------------------------------------------------------


def test_the_good_restarts_load_and_record_the_nets(restarts):
    emu = BoundaryConditionEmulator.from_restart(DEMO, restarts["first"])
    assert emu.time == (2000, 12) and emu.direction == "forward"
    _, meta = safetensors.load(restarts["first"])
    assert (meta["nets_dtype"], meta["nets_device"]) == ("float32", "cpu")
    emu.load_restart(restarts["backward"])
    assert emu.time == (2002, 12) and emu.direction == "backward"


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_python_refuses_a_bad_restart_and_keeps_its_state(case, bad_restarts, loaded):
    path, match = bad_restarts[case], CORRUPTIONS[case][1]
    with pytest.raises(ValueError, match=match) as err:
        BoundaryConditionEmulator.from_restart(DEMO, path)
    assert isinstance(err.value, InputError)
    assert str(err.value).startswith(f"restart {path}: ")
    before, grid, direction = _clone_state(loaded), loaded.grid, loaded.direction
    with pytest.raises(InputError, match=match):
        loaded.load_restart(path)
    _assert_state_equal(before, _clone_state(loaded))
    assert (loaded.grid, loaded.direction, loaded.time) == (grid, direction, (2001, 1))


def test_a_bad_restart_of_the_other_direction_keeps_the_direction(restarts, loaded, tmp_path):
    bad = write_corrupted(
        restarts["backward"], tmp_path / "b.safetensors", CORRUPTIONS["nan_lai"][0]
    )
    before = _clone_state(loaded)
    with pytest.raises(InputError, match="lai: expected finite"):
        loaded.load_restart(bad)
    assert loaded.direction == "forward"
    _assert_state_equal(before, _clone_state(loaded))


def test_restarts_without_the_nets_record_still_load(restarts, tmp_path):
    old = write_corrupted(restarts["first"], tmp_path / "old.safetensors",
                          _meta(nets_dtype=None, nets_device=None))  # fmt: skip
    assert "nets_dtype" not in safetensors.load(old)[1]
    emu = BoundaryConditionEmulator.from_restart(DEMO, old)
    first = BoundaryConditionEmulator.from_restart(DEMO, restarts["first"])
    _assert_state_equal(first.state(), emu.state())


def test_another_nets_dtype_loads_with_a_warning(restarts, tmp_path, caplog):
    other = write_corrupted(restarts["first"], tmp_path / "bf16.safetensors",
                            _meta(nets_dtype="bfloat16"))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="landbc.emulator.api"):
        emu = BoundaryConditionEmulator.from_restart(DEMO, other)
    assert emu.time == (2000, 12)
    assert "written by nets in bfloat16 on cpu; this emulator runs float32" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="landbc.emulator.api"):
        BoundaryConditionEmulator.from_restart(DEMO, restarts["first"])
    assert "written by nets" not in caplog.text


# --- C++, through the C ABI -------------------------------------------------------------


@pytest.fixture(scope="module")
def abi() -> ctypes.CDLL:
    lib = load_lib()
    lib.landbc_open.argtypes = [c_char_p, c_char_p, c_char_p, POINTER(c_void_p)]
    lib.landbc_close.argtypes = [POINTER(c_void_p)]
    lib.landbc_time.argtypes = [c_void_p, POINTER(c_int), POINTER(c_int)]
    lib.landbc_direction.argtypes = [c_void_p, POINTER(c_int)]
    lib.landbc_load_restart.argtypes = [c_void_p, c_char_p]
    lib.landbc_save_restart.argtypes = [c_void_p, c_char_p]
    for f in ("landbc_open", "landbc_close", "landbc_time", "landbc_direction",
              "landbc_load_restart", "landbc_save_restart"):  # fmt: skip
        getattr(lib, f).restype = c_int
    return lib


@pytest.fixture
def handle(abi, restarts):
    """A C++ emulator of the demo bundle that has loaded the 'loaded' restart."""
    h = c_void_p()
    assert abi.landbc_open(str(DEMO).encode(), b"cpu", b"float32", byref(h)) == LANDBC_OK, (
        abi.landbc_last_error()
    )
    assert abi.landbc_load_restart(h, str(restarts["loaded"]).encode()) == LANDBC_OK, (
        abi.landbc_last_error()
    )
    yield h
    abi.landbc_close(byref(h))


def _time_and_direction(abi, h) -> tuple[int, int, int]:
    y, m, d = c_int(), c_int(), c_int()
    assert abi.landbc_time(h, byref(y), byref(m)) == LANDBC_OK
    assert abi.landbc_direction(h, byref(d)) == LANDBC_OK
    return y.value, m.value, d.value


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_cpp_refuses_a_bad_restart_as_python_does(case, abi, handle, bad_restarts):
    path, match = bad_restarts[case], CORRUPTIONS[case][1]
    rc = abi.landbc_load_restart(handle, str(path).encode())
    msg = abi.landbc_last_error().decode()
    assert rc == LANDBC_ERR_ARGUMENT, msg
    assert "\n" not in msg
    import re

    assert re.search(match, msg), msg
    with pytest.raises(InputError) as py_err:
        BoundaryConditionEmulator.from_restart(DEMO, path)
    if case != "grid_not_json":  # the JSON parsers' own words differ
        assert msg == str(py_err.value)
    assert _time_and_direction(abi, handle) == (2001, 1, 1)


def test_cpp_keeps_the_direction_after_a_bad_backward_restart(abi, handle, restarts, tmp_path):
    bad = write_corrupted(
        restarts["backward"], tmp_path / "b.safetensors", CORRUPTIONS["lu_code"][0]
    )
    assert abi.landbc_load_restart(handle, str(bad).encode()) == LANDBC_ERR_ARGUMENT
    assert _time_and_direction(abi, handle) == (2001, 1, 1)
    assert abi.landbc_load_restart(handle, str(restarts["backward"]).encode()) == LANDBC_OK
    assert _time_and_direction(abi, handle) == (2002, 12, -1)


def test_cpp_writes_the_python_bytes_and_loads_old_and_bf16_restarts(
    abi, handle, restarts, tmp_path
):
    out = tmp_path / "cpp.safetensors"
    assert abi.landbc_save_restart(handle, str(out).encode()) == LANDBC_OK
    assert out.read_bytes() == restarts["loaded"].read_bytes()  # nets_dtype/device included
    for name, changes in (("old", {"nets_dtype": None, "nets_device": None}),
                          ("bf16", {"nets_dtype": "bfloat16"})):  # fmt: skip
        p = write_corrupted(restarts["first"], tmp_path / f"{name}.safetensors", _meta(**changes))
        assert abi.landbc_load_restart(handle, str(p).encode()) == LANDBC_OK, (
            abi.landbc_last_error()
        )
        assert _time_and_direction(abi, handle) == (2000, 12, 1)
