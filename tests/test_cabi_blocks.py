"""Blocks of a decomposed domain through the C ABI (issue 11): four handles, each a 2×2
block of the tiny world with its halo, stepped stage by stage (landbc_run_stage) with
the halos filled from the neighbours between stages (landbc_get_prior,
landbc_fill_halo), equal the Python front's whole-domain run bit for bit over 14
months with a year change. The exchange here is what an MPI host does between ranks,
done in one process. Also: the block calls' refusals and status codes."""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_void_p

import numpy as np
import pytest
from cabi import load_lib

from landbc.coupler.decomposition import decompose, local, overlaps
from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.cube import Cube

OK, ERR_ARGUMENT, ERR_STATE = 0, 1, 5
DTYPES = {np.dtype(np.uint8): 1, np.dtype(np.int32): 2, np.dtype(np.float32): 3,
          np.dtype(np.float64): 4}  # fmt: skip
MONTHS = [(2001, m) for m in range(1, 13)] + [(2002, 1), (2002, 2)]


@pytest.fixture(scope="module")
def abi() -> ctypes.CDLL:
    lib = load_lib()
    lib.landbc_open.argtypes = [c_char_p, c_char_p, c_char_p, POINTER(c_void_p)]
    lib.landbc_close.argtypes = [POINTER(c_void_p)]
    lib.landbc_load_restart.argtypes = [c_void_p, c_char_p]
    lib.landbc_set_field.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int, POINTER(c_int64)]
    lib.landbc_halo_width.argtypes = [c_void_p, POINTER(c_int), POINTER(c_int)]
    lib.landbc_set_halo.argtypes = [c_void_p, c_int, c_int, c_int, c_int]
    lib.landbc_stage_count.argtypes = [c_void_p, POINTER(c_int)]
    lib.landbc_run_stage.argtypes = [c_void_p, c_int, c_char_p, ctypes.c_size_t]
    lib.landbc_get_prior.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int64]
    lib.landbc_fill_halo.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int64]
    lib.landbc_get_field.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int64]
    lib.landbc_step.argtypes = [c_void_p, POINTER(c_int), POINTER(c_int)]
    return lib


@pytest.fixture(scope="module")
def world(tiny_bundle, tiny_cube):
    """The tiny cube and its statics (the LAI climatology of the bundle's years)."""
    cube = Cube.open(tiny_cube)
    years = BoundaryConditionEmulator.from_bundle(tiny_bundle).lai_climatology_years
    return cube, cube.static(climatology_years=years)


def _ok(abi, status: int) -> None:
    assert status == OK, abi.landbc_last_error().decode()


class Handle:
    """One block through the C ABI; the forcing arrays it binds are kept alive here."""

    def __init__(self, abi, bundle, restart) -> None:
        self.abi, self.h, self.bound = abi, c_void_p(), []
        _ok(abi, abi.landbc_open(str(bundle).encode(), b"cpu", b"float32", byref(self.h)))
        _ok(abi, abi.landbc_load_restart(self.h, str(restart).encode()))

    def bind(self, forcing: dict[str, np.ndarray]) -> None:
        self.bound = []
        for name, value in forcing.items():
            a = np.asarray(value, dtype=np.float32, order="C")  # keeps 0-D (co2) 0-D
            shape = (c_int64 * max(a.ndim, 1))(*a.shape)
            _ok(self.abi, self.abi.landbc_set_field(self.h, name.encode(), a.ctypes.data, 3,
                                                    a.ndim, shape))  # fmt: skip
            self.bound.append(a)

    def array(self, call, name: str, like: np.ndarray) -> np.ndarray:
        out = np.empty_like(like)
        _ok(self.abi, call(self.h, name.encode(), out.ctypes.data, DTYPES[out.dtype], out.size))
        return out

    def close(self) -> None:
        self.abi.landbc_close(byref(self.h))


def test_blocks_through_the_c_abi_equal_the_whole_domain(abi, tiny_bundle, world, tmp_path):
    cube, static = world
    py = BoundaryConditionEmulator.from_bundle(tiny_bundle)
    py.initialise(cube.grid, static, cube.truth(2000, 12), 2000, 12)

    # each block's initial state: a Python restart of its window, loaded by a C handle
    probe = Handle(abi, tiny_bundle, _block_restart(tiny_bundle, world, None, tmp_path))
    stride, width = c_int(), c_int()
    _ok(abi, abi.landbc_halo_width(probe.h, byref(stride), byref(width)))
    probe.close()
    blocks = decompose(cube.grid.shape, cube.grid.origin, 4, stride.value, width.value)
    assert [b.halo for b in blocks] == [(0, 20, 0, 20), (0, 20, 20, 0), (20, 0, 0, 20),
                                        (20, 0, 20, 0)]  # fmt: skip
    handles = [Handle(abi, tiny_bundle, _block_restart(tiny_bundle, world, b, tmp_path))
               for b in blocks]  # fmt: skip
    for b, h in zip(blocks, handles, strict=True):
        _ok(abi, abi.landbc_set_halo(h.h, *b.halo))
    year, month = c_int(), c_int()
    assert abi.landbc_step(handles[0].h, byref(year), byref(month)) == ERR_STATE
    assert b"halo" in abi.landbc_last_error()

    for y, m in MONTHS:
        whole = py.step(cube.forcing(y, m)).numpy()
        for b, h in zip(blocks, handles, strict=True):
            h.bind(cube.forcing(y, m, b.window))
        count = c_int()
        _ok(abi, abi.landbc_stage_count(handles[0].h, byref(count)))
        assert count.value == (3 if m == 1 else 1)
        for stage in range(count.value):
            name = ctypes.create_string_buffer(8)
            for h in handles:
                _ok(abi, abi.landbc_run_stage(h.h, stage, name, len(name)))
            field = name.value.decode()
            sent = [
                h.array(abi.landbc_get_prior, field, whole[field][b.window])
                for b, h in zip(blocks, handles, strict=True)
            ]
            for dst, h in zip(blocks, handles, strict=True):
                filled = sent[dst.rank].copy()
                for src in blocks:
                    for rect in overlaps(blocks, src.rank, dst.rank):
                        filled[local(dst, rect)] = sent[src.rank][local(src, rect)]
                _ok(abi, abi.landbc_fill_halo(h.h, field.encode(), filled.ctypes.data,
                                              DTYPES[filled.dtype], filled.size))  # fmt: skip
        for b, h in zip(blocks, handles, strict=True):
            for name in ("lu", "lc", "lai", "cvh", "lai_hv"):
                got = h.array(abi.landbc_get_field, name, whole[name][b.window])
                np.testing.assert_array_equal(
                    got[b.interior], whole[name][slice(*b.rows), slice(*b.cols)],
                    err_msg=f"{name} {y}-{m:02d} block {b.rank}",
                )  # fmt: skip
    for h in handles:
        h.close()


def test_block_calls_refuse_bad_arguments(abi, tiny_bundle, world, tmp_path):
    cube, _ = world
    h = Handle(abi, tiny_bundle, _block_restart(tiny_bundle, world, None, tmp_path))
    assert abi.landbc_set_halo(h.h, 5, 0, 0, 0) == ERR_ARGUMENT  # off the lattice
    message = abi.landbc_last_error()  # a raise inside the TorchScript stepper: one line
    assert b"halo" in message and b"lattice" in message and b"\n" not in message
    name = ctypes.create_string_buffer(8)
    assert abi.landbc_run_stage(h.h, 3, name, len(name)) == ERR_ARGUMENT  # one stage in 2001-01?
    lai = np.zeros(cube.grid.shape, np.float32)
    assert abi.landbc_get_prior(h.h, b"cvh", lai.ctypes.data, 3, lai.size) == ERR_ARGUMENT
    assert abi.landbc_fill_halo(h.h, b"lai", lai.ctypes.data, 3, lai.size - 1) == ERR_ARGUMENT
    assert b"count" in abi.landbc_last_error()
    lai[0, 0] = np.nan
    assert abi.landbc_fill_halo(h.h, b"lai", lai.ctypes.data, 3, lai.size) == ERR_ARGUMENT
    assert b"lai" in abi.landbc_last_error()
    h.close()


def _block_restart(bundle, world, block, tmp_path):
    """A restart of `block`'s window (None: the whole domain) at the initial state."""
    cube, static = world
    if block is None:
        grid, window = cube.grid, None
    else:
        grid, window = cube.grid.window(*block.window_rows, *block.window_cols), block.window
    rows, cols = window or (slice(None), slice(None))
    mine = {k: np.asarray(v)[..., rows, cols] for k, v in static.items()}
    emu = BoundaryConditionEmulator.from_bundle(bundle)
    emu.initialise(grid, mine, cube.truth(2000, 12, window), 2000, 12)
    name = "whole" if block is None else f"block{block.rank}"
    return emu.save_restart(tmp_path / f"{name}.safetensors")
