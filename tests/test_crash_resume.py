"""Crash safety with a real killed process: `landbc run` is SIGKILLed in the middle of
writing a step's fields (the test hook `LANDBC_TEST_WRITE_PAUSE`, see
`landbc.coupler.output`, pauses it half-way through the step's variables), a reader
then sees only whole steps, and `--resume` finishes a run identical, bit for bit and
file for file, to an uninterrupted one (Zarr store, native-grid and ESM-grid GRIB)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from landbc.coupler.config import RunConfig
from landbc.coupler.driver import list_restarts, run
from landbc.coupler.output import CLASS_FILL, PAUSE_ENV, OutputStore
from landbc.emulator import catalog

pytest.importorskip("eccodes")

REPO = Path(__file__).resolve().parents[1]
NAMES = [v.name for v in catalog.OUTPUT_VARIABLES]
STEPS, KILL_STEP = 4, 3  # restarts after steps 2 and 4: the resume rewrites step index 2


def write_config(folder: Path, bundle: Path, cube: Path) -> Path:
    folder.mkdir(parents=True)
    cfg = folder / "run.toml"
    cfg.write_text(f"""
[bundle]
path = "{bundle}"
dtype = "float32"
[period]
start = "2001-01"
steps = {STEPS}
calendar = "noleap"
[forcing]
cube = "{cube}"
[output]
store = "out/bc.zarr"
restart_every = 2
[esm_output]
grid = "1/1"
[[outputs]]
type = "grib"
grid = "native"
variables = ["cvh", "tvh", "lai_hv"]
""")
    return cfg


def grib_files(cfg: RunConfig) -> dict[str, bytes]:
    out = {}
    for spec in cfg.extra_outputs:
        d = cfg.output_dir(spec)
        for p in sorted(d.iterdir()):
            out[f"{d.name}/{p.name}"] = p.read_bytes()
    return out


def test_sigkill_mid_step_then_resume(tmp_path, tiny_bundle, tiny_cube):
    ref = RunConfig.from_toml(write_config(tmp_path / "ref", tiny_bundle, tiny_cube))
    run(ref, progress=False)
    ref_store = OutputStore.open(ref.store, mode="r")
    want = [ref_store.read_step(i) for i in range(STEPS)]

    path = write_config(tmp_path / "crash", tiny_bundle, tiny_cube)
    cfg = RunConfig.from_toml(path)
    pythonpath = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=pythonpath)
    env[PAUSE_ENV] = f"{KILL_STEP}:120"
    proc = subprocess.Popen([sys.executable, "-m", "landbc.coupler.cli", "-q", "run", str(path)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    # Step KILL_STEP's first half of variables is on disk, its second is not: mid-write.
    ti = KILL_STEP  # forward run: time index == step index
    first_chunk = cfg.store / NAMES[len(NAMES) // 2 - 1] / f"{ti}.0.0"
    last_chunk = cfg.store / NAMES[len(NAMES) // 2] / f"{ti}.0.0"
    try:
        deadline = time.monotonic() + 120
        while not first_chunk.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run never reached the pause"
            time.sleep(0.05)
        assert not last_chunk.exists()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    # A reader after the kill: only whole steps are flagged, the rest are fill values
    # (or, in the step being written, the new step's fields: never a torn chunk).
    st = OutputStore.open(cfg.store, mode="r")
    assert st.completed_steps == KILL_STEP
    assert st.written().tolist() == [True] * KILL_STEP + [False] * (STEPS - KILL_STEP)
    with xr.open_zarr(cfg.store) as ds:
        assert ds.attrs["completed_steps"] == KILL_STEP
        assert ds.written.values.tolist() == [1] * KILL_STEP + [0] * (STEPS - KILL_STEP)
        assert ds.time.encoding["calendar"] == "noleap"
        for i in range(STEPS):
            for n in NAMES:
                got = ds[n].isel(time=i).values
                if i < KILL_STEP:
                    np.testing.assert_array_equal(got, want[i][n].astype(got.dtype), err_msg=n)
                elif n in NAMES[: len(NAMES) // 2]:  # written before the pause
                    np.testing.assert_array_equal(got, want[i][n].astype(got.dtype), err_msg=n)
                else:
                    assert np.isnan(got).all(), (i, n)  # missing to xarray
                    raw = st.root[n][i]
                    assert (np.isnan(raw) if raw.dtype.kind == "f" else raw == CLASS_FILL).all()
    assert sorted(list_restarts(cfg.restart_path)) == [(2001, 2)]
    files = grib_files(cfg)
    months = range(1, KILL_STEP + 1)
    want_files = [f"{d}/bc_2001-{m:02d}.grib2" for d in ("esm", "grib_native") for m in months]
    assert sorted(files) == sorted(want_files)

    # --resume: continues from the restart after step 2, rewriting step index 2
    s = run(cfg, resume=True, progress=False)
    assert (s.resumed_from_step, s.steps_done, s.completed_steps) == (2, 2, STEPS)
    st = OutputStore.open(cfg.store, mode="r")
    assert st.completed_steps == STEPS and st.written().all()
    for i in range(STEPS):
        got = st.read_step(i)
        for n in NAMES:
            np.testing.assert_array_equal(got[n], want[i][n], err_msg=f"step {i} {n}")
    for n in NAMES:  # every array, whole: each step once, in its place
        np.testing.assert_array_equal(st.root[n][:], ref_store.root[n][:], err_msg=n)
    assert grib_files(cfg) == grib_files(ref)  # byte-identical files, and no temporaries
    assert not list(cfg.store.rglob("*.partial"))
