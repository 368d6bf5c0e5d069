"""MPI runs with real processes (issue 11): the decomposition, and CIME's PEM and ERP
tests on the Python step loop — 1, 2 and 4 ranks give bit-identical output stores over
24 steps with a year change, forward and backward; a run stopped at 4 ranks and
resumed at 2 equals the straight run, restart files included.

Every run has one thread per rank (OMP_NUM_THREADS=1, the 1-rank run too): oneDNN's
convolutions may sum in another order on another thread count (LAI then differs in
the last bit, ≤ 5e-7 measured between 1 and 2 threads), which is a change of the
machine's layout, not of the decomposition. mpirun runs oversubscribed on 2 cores.
Without mpirun or mpi4py the process tests skip, or fail under LANDBC_REQUIRE_MPI=1
(as `make test` sets, after installing both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_driver import assert_same_store

from landbc.coupler.decomposition import (
    DecompositionError,
    decompose,
    halo_width,
    local,
    overlaps,
)

LANDBC = Path(sys.executable).parent / "landbc"


def _mpi_missing() -> str | None:
    if shutil.which("mpirun") is None:
        return "mpirun is not installed"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed"
    return None


def _require_mpi() -> None:
    why = _mpi_missing()
    if why:
        if os.environ.get("LANDBC_REQUIRE_MPI") == "1":
            pytest.fail(f"LANDBC_REQUIRE_MPI=1 but {why}")
        pytest.skip(why)


# --- decomposition (no MPI) ---------------------------------------------------------------


def test_halo_width_is_the_windows_reach_in_whole_coarse_cells():
    assert halo_width(480, 16, 16, 5) == 20  # the demo bundle: 16 px, on coarse cells
    assert halo_width(20, 6, 16, 5) == 20  # the tiny bundle: the reach varies by cut, ≤ 18
    assert halo_width(480, 16, 16, 1) == 16


@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 6])
def test_blocks_cover_the_domain_once_and_halos_are_filled_once(ranks):
    shape, origin, stride, halo = (120, 160), (800, 3720), 20, 20
    blocks = decompose(shape, origin, ranks, stride, halo)
    owner = np.full(shape, -1)
    for b in blocks:
        assert (owner[slice(*b.rows), slice(*b.cols)] == -1).all()
        owner[slice(*b.rows), slice(*b.cols)] = b.rank
        sides = [(b.rows[0], origin[0], 0), (b.rows[1], origin[0], shape[0])]
        sides += [(b.cols[0], origin[1], 0), (b.cols[1], origin[1], shape[1])]
        for cut, start, end in sides:
            assert cut == end or (start + cut) % stride == 0, "a cut off the lattice"
    assert (owner >= 0).all()
    for b in blocks:
        # every halo pixel comes from exactly one other rank, and from the rank that owns it
        filled = np.zeros(
            (b.window_rows[1] - b.window_rows[0], b.window_cols[1] - b.window_cols[0]), int
        )
        for src in blocks:
            for rect in overlaps(blocks, src.rank, b.rank):
                assert (owner[rect] == src.rank).all()
                filled[local(b, rect)] += 1
        inner = np.zeros_like(filled, bool)
        inner[b.interior] = True
        assert (filled[~inner] == 1).all() and (filled[inner] == 0).all()


def test_too_many_ranks_is_refused_clearly():
    with pytest.raises(DecompositionError, match="lattice cells.*use fewer ranks"):
        decompose((40, 40), (800, 3720), 9, 20, 20)


# --- real processes -----------------------------------------------------------------------


def _config(tmp: Path, name: str, bundle: Path, cube: Path, start: str, steps: int,
            direction: str) -> Path:  # fmt: skip
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[bundle]\npath = "{bundle}"\ndevice = "cpu"\ndtype = "float32"\n'
        f'[period]\nstart = "{start}"\nsteps = {steps}\n'
        f'[run]\ndirection = "{direction}"\n'
        f'[forcing]\ncube = "{cube}"\n'
        f'[output]\nstore = "{name}/bc.zarr"\nrestart_dir = "{name}/restarts"\n'
        "restart_every = 12\noverwrite = true\n"
    )
    return path


def _mpirun(ranks: int, *command: str) -> str:
    """`command` on `ranks` MPI processes, one thread each; its standard output."""
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "-x", "OMP_NUM_THREADS"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += command
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _run(ranks: int, config: Path, *args: str) -> None:
    """`landbc run CONFIG` on `ranks` MPI processes."""
    _mpirun(ranks, str(LANDBC), "run", str(config), "-q", *args)


@pytest.mark.parametrize(
    "direction, start, steps",
    # both cross a year change; backward starts from the truth of 2002-12
    [("forward", "2001-01", 24), ("backward", "2002-11", 23)],
)
def test_pem_one_two_four_ranks_bit_identical(tmp_path, tiny_bundle, tiny_cube, direction,
                                              start, steps):  # fmt: skip
    _require_mpi()
    stores = {}
    for ranks in (1, 2, 4):
        cfg = _config(tmp_path, f"n{ranks}", tiny_bundle, tiny_cube, start, steps, direction)
        _run(ranks, cfg)
        stores[ranks] = tmp_path / f"n{ranks}" / "bc.zarr"
    assert_same_store(stores[1], stores[2])
    assert_same_store(stores[1], stores[4])
    last = sorted((tmp_path / "n1" / "restarts").iterdir())[-1]
    for ranks in (2, 4):  # one restart of the whole domain, whoever wrote it
        other = tmp_path / f"n{ranks}" / "restarts" / last.name
        assert other.read_bytes() == last.read_bytes()


def test_erp_restart_at_four_ranks_resume_at_two(tmp_path, tiny_bundle, tiny_cube):
    _require_mpi()
    straight = _config(tmp_path, "straight", tiny_bundle, tiny_cube, "2001-01", 24, "forward")
    _run(1, straight)
    split = _config(tmp_path, "split", tiny_bundle, tiny_cube, "2001-01", 24, "forward")
    _run(4, split, "--max-steps", "14")  # stops after 2002-02, its restart written
    assert (tmp_path / "split" / "restarts" / "restart_2002-02.safetensors").exists()
    _run(2, split, "--resume")
    assert_same_store(tmp_path / "straight" / "bc.zarr", tmp_path / "split" / "bc.zarr")
    a = tmp_path / "straight" / "restarts" / "restart_2002-12.safetensors"
    b = tmp_path / "split" / "restarts" / "restart_2002-12.safetensors"
    assert a.read_bytes() == b.read_bytes()


# --- the API's block calls (in process) ---------------------------------------------------


def test_block_api_refuses_bad_halos_and_steps_without_exchange(tiny_bundle, tiny_cube):
    from landbc.emulator.api import BoundaryConditionEmulator, InputError
    from landbc.emulator.cube import Cube

    cube = Cube.open(tiny_cube)
    emu = BoundaryConditionEmulator.from_bundle(tiny_bundle)
    t = emu.manifest["tiling"]
    blocks = decompose(cube.grid.shape, cube.grid.origin, 2, t["stride"], 20)
    b = blocks[1]
    grid = cube.grid.window(*b.window_rows, *b.window_cols)
    static = cube.static(b.window, cube.climatology_years(emu.lai_climatology_years))
    emu.initialise(grid, static, cube.truth(2000, 12, b.window), 2000, 12)
    with pytest.raises(InputError, match="halo: .*must lie on the tile lattice"):
        emu.set_halo((5, 0, 0, 0))  # the cut would be off the lattice
    assert emu.halo == (0, 0, 0, 0)  # refused: unchanged
    emu.set_halo(b.halo)
    assert emu.halo == b.halo
    with pytest.raises(InputError, match="exchange"):
        emu.step(cube.forcing(2001, 1, b.window))
    assert emu.time == (2000, 12)


# --- the Fortran host on MPI ranks --------------------------------------------------------


def test_fortran_mpi_host_one_and_four_ranks_print_the_python_numbers(
    tiny_cube, tiny_bundle, tmp_path
):
    """cpp/examples/host_mpi.f90 over the C ABI: each rank a block, halos exchanged with
    MPI between the stages; 1 and 4 ranks print the same text, the Python API's numbers."""
    from cabi import missing_cpp
    from test_cpp_hosts import EXAMPLES, assert_same_numbers

    from landbc.coupler.hostfiles import parse_host_output, python_domain_means, write_host_inputs

    _require_mpi()
    exe = EXAMPLES / "landbc_host_mpi_f"
    if not exe.is_file():
        missing_cpp(f"{exe} is not built; run `make test` (it builds the example hosts)")
    inputs = write_host_inputs(tiny_cube, tmp_path / "inputs", tiny_bundle, start=(2000, 12),
                               nsteps=14, direction="forward", restart_step=0)  # fmt: skip
    text = {}
    for ranks in (1, 4):
        text[ranks] = _mpirun(ranks, str(exe), str(inputs))
    assert text[1] == text[4]
    assert text[1].splitlines()[-1] == "done 14 steps"
    assert_same_numbers(parse_host_output(text[4]), python_domain_means(inputs))


@pytest.fixture(scope="module")
def strip_cube(tmp_path_factory) -> Path:
    """A 20 x 560-pixel world (2000-2002): wider than one 512-px chunk of the store."""
    from landbc.emulator.grid import Grid
    from landbc.emulator.world import generate_world

    grid = Grid(lat_south=47.0, lat_north=48.0, lon_west=0.0, lon_east=28.0, res=0.05,
                coarse_factor=5)  # fmt: skip
    path = tmp_path_factory.mktemp("strip") / "strip.zarr"
    return Path(generate_world(path, grid, (2000, 2002), seed=1, progress=False))


def test_ranks_write_their_own_chunks(tmp_path, tiny_bundle, strip_cube):
    """Over two chunks of the store, each written by the rank holding its first pixel
    from the parts the other blocks send it: 2 and 4 ranks give the 1-rank store."""
    _require_mpi()
    stores = {}
    for ranks in (1, 2, 4):
        cfg = _config(tmp_path, f"s{ranks}", tiny_bundle, strip_cube, "2001-01", 14, "forward")
        _run(ranks, cfg)
        stores[ranks] = tmp_path / f"s{ranks}" / "bc.zarr"
    assert sorted(p.name for p in (stores[4] / "lai").iterdir() if p.name.startswith("0.")) == [
        "0.0.0", "0.0.1"]  # fmt: skip
    assert_same_store(stores[1], stores[2])
    assert_same_store(stores[1], stores[4])
