"""The example hosts (cpp/examples: Fortran over the C ABI, C++ over landbc::Emulator)
against the Python API on the same input files: the same numbers every step,
restarts written, resumed runs identical, and restarts shared with Python.

The hosts are built by `make test` (build/examples); without them the host tests
skip (fail under LANDBC_REQUIRE_CPP=1, as `make test` sets). The input files
(coupler/hostfiles.py) are tested here either way."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from cabi import missing_cpp

from landbc.coupler.cli import main
from landbc.coupler.hostfiles import (
    MEAN_FIELDS,
    format_record,
    parse_host_output,
    python_domain_means,
    read_namelist,
    write_host_inputs,
)
from landbc.emulator import catalog
from landbc.emulator.cube import Cube

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "weights" / "demo"
# Where `make test` builds the hosts; LANDBC_EXAMPLES_DIR points elsewhere.
EXAMPLES = Path(os.environ.get("LANDBC_EXAMPLES_DIR", REPO / "build" / "examples"))
HOSTS = {"f": EXAMPLES / "landbc_host_f", "cpp": EXAMPLES / "landbc_host_cpp"}
LANGS = sorted(HOSTS)
START, NSTEPS, RESTART_STEP = (2000, 12), 24, 12


def host(lang: str) -> Path:
    exe = HOSTS[lang]
    if not exe.is_file():
        why = (f"{exe} is not built; run `make test` (it builds the C++ core and the example "
               f"hosts before pytest)")  # fmt: skip
        missing_cpp(why)
    return exe


def run_host(exe: Path, *args, expect_rc: int = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert p.returncode == expect_rc, f"{exe.name} exit {p.returncode}\n{p.stderr}"
    return p


def assert_same_numbers(host_records: list[dict], py_records: list[dict]) -> None:
    assert [(r["step"], r["year"], r["month"]) for r in host_records] == [
        (r["step"], r["year"], r["month"]) for r in py_records
    ]
    for h, p in zip(host_records, py_records, strict=True):
        for n in MEAN_FIELDS:  # 10 printed digits; summation order aside, identical
            assert h[n] == pytest.approx(p[n], rel=1e-7, abs=1e-12), (h["step"], n)
        assert (h["lu_sum"], h["lc_sum"]) == (p["lu_sum"], p["lc_sum"]), h["step"]


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forward_inputs(tiny_cube, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("host_forward") / "inputs"
    return write_host_inputs(tiny_cube, out, BUNDLE, start=START, nsteps=NSTEPS,
                             direction="forward", restart_step=RESTART_STEP)  # fmt: skip


@pytest.fixture(scope="module")
def python_forward(forward_inputs) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The Python API's records over the host inputs, and its state after RESTART_STEP."""
    states = {}

    def keep(step, emu):
        if step == RESTART_STEP:
            states["state"] = {k: v.clone() for k, v in emu.state().items()}

    return python_domain_means(forward_inputs, callback=keep), states["state"]


@pytest.fixture(scope="module")
def full_runs(forward_inputs, tmp_path_factory):
    """full_runs(lang) -> (stdout, output folder) of the full run, each host run once."""
    cache: dict[str, tuple[str, Path]] = {}

    def get(lang: str) -> tuple[str, Path]:
        if lang not in cache:
            exe = host(lang)
            out = tmp_path_factory.mktemp(f"run_{lang}")
            cache[lang] = (run_host(exe, forward_inputs, out).stdout, out)
        return cache[lang]

    return get


# --- the input files ---------------------------------------------------------------------


def test_host_inputs_layout(forward_inputs, tiny_cube):
    text = (forward_inputs / "host.nml").read_text()
    assert text == (
        "&landbc_host\n"
        f"  bundle = '{BUNDLE.resolve()}'\n"
        "  lat_south = 46.0\n  lat_north = 50.0\n  lon_west = 6.0\n  lon_east = 10.0\n"
        "  year = 2000\n  month = 12\n  nsteps = 24\n  restart_step = 12\n"
        "  direction = 'forward'\n/\n"
    )
    assert read_namelist(forward_inputs)["lat_north"] == 50.0
    cube = Cube.open(tiny_cube)
    # the climatology of the training years the cube holds (the bundle: 1960-2000)
    static, truth = cube.static(climatology_years=(2000, 2000)), cube.truth(2000, 12)
    for part, values, variables in (("static", static, catalog.STATIC_VARIABLES),
                                    ("prior", truth, catalog.STATE_VARIABLES)):  # fmt: skip
        for v in variables:
            raw = (forward_inputs / part / f"{v.name}.bin").read_bytes()
            want = np.ascontiguousarray(values[v.name], dtype=np.dtype(v.dtype).newbyteorder("<"))
            assert raw == want.tobytes(), v.name
    steps = sorted(p.name for p in (forward_inputs / "forcing").iterdir())
    assert steps == [f"{k:03d}" for k in range(1, NSTEPS + 1)]
    # step 013 is 2002-01: that year's LUH2 and CO2, that month's climate
    f = cube.forcing(2002, 1)
    for v in catalog.FORCING_VARIABLES:
        raw = np.fromfile(forward_inputs / "forcing" / "013" / f"{v.name}.bin", dtype="<f4")
        assert raw.size == np.asarray(f[v.name]).size, v.name
        np.testing.assert_array_equal(raw, np.asarray(f[v.name], dtype=np.float32).ravel())
    assert (forward_inputs / "forcing" / "001" / "co2.bin").stat().st_size == 4
    assert (forward_inputs / "forcing" / "001" / "luh2_frac.bin").stat().st_size == 12 * 16 * 16 * 4


def test_cli_host_inputs_box_backward(tiny_cube, tmp_path):
    out = tmp_path / "box"
    rc = main(["-q", "host-inputs", str(tiny_cube), "--bundle", str(BUNDLE), "--out", str(out),
               "--box", "47", "49", "7", "9.5", "--start", "2002-03", "--steps", "3",
               "--direction", "backward", "--restart-step", "0"])  # fmt: skip
    assert rc == 0
    nml = read_namelist(out)
    assert (nml["lat_south"], nml["lat_north"], nml["lon_west"], nml["lon_east"]) == (
        47.0, 49.0, 7.0, 9.5)  # fmt: skip
    assert (nml["year"], nml["month"], nml["nsteps"], nml["direction"]) == (2002, 3, 3, "backward")
    assert (out / "static" / "elevation.bin").stat().st_size == 40 * 50 * 4
    assert (out / "forcing" / "003" / "t2m.bin").stat().st_size == 8 * 10 * 4
    assert not (out / "forcing" / "004").exists()
    # a box off the coarse cells, and months outside the cube, are refused by name
    assert main(["-q", "host-inputs", str(tiny_cube), "--bundle", str(BUNDLE), "--out",
                 str(tmp_path / "bad"), "--box", "47.05", "49", "7", "9.5"]) == 2  # fmt: skip
    assert main(["-q", "host-inputs", str(tiny_cube), "--bundle", str(BUNDLE), "--out",
                 str(tmp_path / "bad"), "--start", "2002-06", "--steps", "24"]) == 2  # fmt: skip


def test_output_format_round_trip(python_forward):
    records, _ = python_forward
    assert len(records) == NSTEPS
    assert (records[0]["year"], records[0]["month"]) == (2001, 1)
    assert (records[-1]["year"], records[-1]["month"]) == (2002, 12)
    text = "\n".join(format_record(r) for r in records) + f"\ndone {NSTEPS} steps\n"
    line = text.splitlines()[0]
    assert line.startswith("step 001 2001-01 lai ") and " lu_sum " in line and " lc_sum " in line
    back = parse_host_output(text)
    assert_same_numbers(back, records)
    with pytest.raises(ValueError, match="host output"):
        parse_host_output("step 001 2001-01 lai nan")


# --- the hosts ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_host_matches_python(lang, full_runs, python_forward):
    stdout, out = full_runs(lang)
    assert stdout.splitlines()[-1] == f"done {NSTEPS} steps"
    assert_same_numbers(parse_host_output(stdout), python_forward[0])
    assert (out / f"restart_{RESTART_STEP:03d}.safetensors").is_file()


def test_hosts_print_the_same_text(full_runs):
    # C ABI from Fortran and C++ API: the same library, the same summation order.
    assert full_runs("f")[0] == full_runs("cpp")[0]


@pytest.mark.parametrize("lang", LANGS)
def test_host_resume_is_exact(lang, forward_inputs, full_runs, tmp_path):
    stdout, out = full_runs(lang)
    restart = out / f"restart_{RESTART_STEP:03d}.safetensors"
    resumed = run_host(host(lang), forward_inputs, tmp_path, restart).stdout
    assert resumed.splitlines() == stdout.splitlines()[RESTART_STEP:]
    assert [r["step"] for r in parse_host_output(resumed)] == list(range(13, NSTEPS + 1))


@pytest.mark.parametrize("lang", LANGS)
def test_host_restart_read_by_python(lang, full_runs, python_forward):
    from landbc.emulator.api import BoundaryConditionEmulator

    _, out = full_runs(lang)
    restart = out / f"restart_{RESTART_STEP:03d}.safetensors"
    emu = BoundaryConditionEmulator.from_restart(BUNDLE, restart)
    assert emu.time == (2001, 12) and emu.direction == "forward"
    state, want = emu.state(), python_forward[1]
    assert sorted(state) == sorted(want)
    for k in want:
        assert torch.equal(state[k], want[k]), k


def test_backward_run_matches_python(tiny_cube, tmp_path):
    exe = host("f")
    inputs = write_host_inputs(tiny_cube, tmp_path / "inputs", BUNDLE, start=(2002, 6), nsteps=6,
                               direction="backward", restart_step=3)  # fmt: skip
    stdout = run_host(exe, inputs, tmp_path).stdout
    records = parse_host_output(stdout)
    assert [(r["year"], r["month"]) for r in records] == [
        (2002, 5), (2002, 4), (2002, 3), (2002, 2), (2002, 1), (2001, 12)]  # fmt: skip
    assert_same_numbers(records, python_domain_means(inputs))
    # resumed from step 3 (2002-03) backward: steps 4..6
    resumed = run_host(exe, inputs, inputs, tmp_path / "restart_003.safetensors").stdout
    assert resumed.splitlines() == stdout.splitlines()[3:]


@pytest.mark.parametrize("lang", LANGS)
def test_host_reports_errors(lang, forward_inputs, tmp_path):
    exe = host(lang)
    bad = tmp_path / "inputs"
    bad.mkdir()
    nml = (forward_inputs / "host.nml").read_text()
    (bad / "host.nml").write_text(nml.replace(str(BUNDLE.resolve()), str(tmp_path / "nowhere")))
    p = run_host(exe, bad, expect_rc=1)
    assert "nowhere" in p.stderr and p.stdout == ""
    # a missing forcing file: the lines of the steps before it, then a message naming it
    inputs = tmp_path / "copy"
    shutil.copytree(forward_inputs, inputs)
    (inputs / "forcing" / "002" / "t2m.bin").unlink()
    p = run_host(exe, inputs, tmp_path, expect_rc=1)
    assert [r["step"] for r in parse_host_output(p.stdout)] == [1]
    assert "002/t2m.bin" in p.stderr
    # a restart that does not exist
    p = run_host(exe, forward_inputs, tmp_path, tmp_path / "no_such_restart.safetensors",
                 expect_rc=1)  # fmt: skip
    assert "no_such_restart" in p.stderr
