"""The step loop end to end with the real emulator API on the tiny cube and bundle:
a run, the exact-restart test (N + resume N == 2N, also after a crash), a
backward run on a window of the cube, overwrite refusal, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from landbc.coupler import driver
from landbc.coupler.cli import main
from landbc.coupler.config import RunConfig
from landbc.coupler.driver import RunSummary, list_restarts, run
from landbc.coupler.output import OutputStore
from landbc.coupler.quicklook import domain_mean_lai, quicklooks
from landbc.emulator import catalog
from landbc.emulator.cube import Cube

REPO = Path(__file__).resolve().parents[1]
NAMES = [v.name for v in catalog.OUTPUT_VARIABLES]


def make_config(tmp: Path, bundle: Path, cube: Path, **kw) -> RunConfig:
    args = dict(
        bundle=Path(bundle),
        cube=Path(cube),
        store=tmp / "bc.zarr",
        restart_dir=tmp / "restarts",
        start=(2001, 1),
        steps=6,
        restart_every=2,
        source=str(tmp / "run.toml"),
    )
    args.update(kw)
    return RunConfig(**args).with_()


def store_contents(path: Path) -> dict[str, np.ndarray]:
    st = OutputStore.open(path, mode="r")
    return {n: st.root[n][:] for n in NAMES} | {"completed": np.array(st.completed_steps)}


def assert_same_store(a: Path, b: Path) -> None:
    ca, cb = store_contents(a), store_contents(b)
    for n in ca:
        np.testing.assert_array_equal(ca[n], cb[n], err_msg=n)


def test_run_six_steps(tmp_path, tiny_bundle, tiny_cube):
    cfg = make_config(tmp_path, tiny_bundle, tiny_cube)
    s = run(cfg, progress=False)
    assert isinstance(s, RunSummary)
    assert (s.steps_done, s.steps_total, s.completed_steps) == (6, 6, 6) and s.finished
    assert s.output == cfg.store and s.mean_step_s > 0 and s.wall_time_s >= 6 * s.mean_step_s
    assert sorted(list_restarts(cfg.restart_path)) == [(2001, 2), (2001, 4), (2001, 6)]

    ds = xr.open_zarr(cfg.store)
    assert ds.attrs["completed_steps"] == 6
    assert [str(t)[:7] for t in ds.time.values] == [f"2001-{m:02d}" for m in range(1, 7)]
    cube = Cube.open(tiny_cube)
    land = cube.root["land_mask"][:] == 1
    # stored as uint8 with fill 255 (no class), which xarray masks: decoded as float32
    assert ds.lu.encoding["dtype"] == np.uint8 and int(ds.lu.max()) < catalog.N_LU
    assert ds.lc.encoding["dtype"] == np.uint8 and int(ds.lc.max()) < catalog.N_LC
    lai = ds.lai.values
    vmax = catalog.variable("lai").valid_max
    assert np.isfinite(lai[:, land]).all() and (lai[:, land] >= 0).all()
    assert (lai[:, land] <= vmax).all()
    assert lai.shape[1:] == cube.grid.shape

    # Quicklooks and the domain-mean LAI against the cube's truth.
    pngs = quicklooks(cfg.store, tiny_cube, tmp_path / "ql")
    assert sorted(p.name for p in pngs) == [
        "lai_2001-06.png",
        "lai_series.png",
        "lc_2001-06.png",
        "lu_2001-06.png",
    ]
    series = domain_mean_lai(cfg.store, tiny_cube)
    assert series.months == [(2001, m) for m in range(1, 7)]
    assert np.isfinite(series.emulated).all() and np.isfinite(series.mae)
    expect = [cube.truth(2001, m)["lai"][land].astype(np.float64) for m in range(1, 7)]
    w = np.cos(np.radians(cube.grid.lat))[:, None] * np.ones(cube.grid.shape)
    for got, t in zip(series.truth, expect, strict=True):
        assert got == pytest.approx(np.average(t, weights=w[land]), rel=1e-6)


def test_restart_is_exact_after_stop_and_after_crash(tmp_path, tiny_bundle, tiny_cube, monkeypatch):
    """The ESM exact-restart test: N steps + restart + N steps == 2N steps, bit for bit."""
    ref = make_config(tmp_path / "ref", tiny_bundle, tiny_cube, steps=4)
    run(ref, progress=False)

    # A batch job stopped after 2 steps (restart written at the stop), then resumed.
    a = make_config(tmp_path / "a", tiny_bundle, tiny_cube, steps=4, restart_every=3)
    s1 = run(a, progress=False, max_steps=2)
    assert (s1.steps_done, s1.completed_steps, s1.finished) == (2, 2, False)
    assert sorted(list_restarts(a.restart_path)) == [(2001, 2)]
    s2 = run(a, resume=True, progress=False)
    assert (s2.steps_done, s2.resumed_from_step, s2.completed_steps) == (2, 2, 4)
    assert_same_store(ref.store, a.store)

    # A crash while writing step 4 (index 3): the store holds 3 steps, the last
    # restart is after step 2; resume continues from there, rewriting step 3.
    b = make_config(tmp_path / "b", tiny_bundle, tiny_cube, steps=4, restart_every=2)
    real_write = OutputStore.write_step

    def crashing_write(self, step, fields):
        if step == 3:
            raise OSError("disk full (simulated)")
        return real_write(self, step, fields)

    monkeypatch.setattr(OutputStore, "write_step", crashing_write)
    with pytest.raises(OSError, match="simulated"):
        run(b, progress=False)
    monkeypatch.setattr(OutputStore, "write_step", real_write)
    assert OutputStore.open(b.store).completed_steps == 3
    assert sorted(list_restarts(b.restart_path)) == [(2001, 2)]
    s3 = run(b, resume=True, progress=False)
    assert (s3.resumed_from_step, s3.steps_done, s3.completed_steps) == (2, 2, 4)
    assert_same_store(ref.store, b.store)

    # Resuming a finished run does nothing.
    s4 = run(b, resume=True, progress=False)
    assert s4.steps_done == 0 and s4.finished


def test_backward_run_on_a_window(tmp_path, tiny_bundle, tiny_cube):
    cfg = make_config(
        tmp_path,
        tiny_bundle,
        tiny_cube,
        start=(2001, 12),
        steps=3,
        direction="backward",
        box=(46.5, 47.75, 6.25, 7.5),
    )
    assert cfg.prior_month == (2002, 1)
    s = run(cfg, progress=False)
    assert s.completed_steps == 3
    st = OutputStore.open(cfg.store, mode="r")
    assert st.grid.shape == (25, 25) and st.direction == "backward"
    ds = xr.open_zarr(cfg.store)
    assert [str(t)[:7] for t in ds.time.values] == ["2001-10", "2001-11", "2001-12"]
    assert np.isfinite(ds.lai.values).all()
    assert sorted(list_restarts(cfg.restart_path)) == [(2001, 10), (2001, 11)]


def test_refuses_to_overwrite(tmp_path, tiny_bundle, tiny_cube):
    cfg = make_config(tmp_path, tiny_bundle, tiny_cube, steps=1, restart_every=0)
    run(cfg, progress=False)
    before = store_contents(cfg.store)
    with pytest.raises(FileExistsError, match="overwrite"):
        run(cfg, progress=False)
    assert_same = store_contents(cfg.store)
    for n in before:
        np.testing.assert_array_equal(before[n], assert_same[n])
    s = run(cfg.with_(overwrite=True), progress=False)
    assert s.completed_steps == 1
    # A resume of a different run in the same store is refused, naming what differs.
    with pytest.raises(ValueError, match="differs"):
        run(cfg.with_(steps=2), resume=True, progress=False)
    # Period outside the cube: the error names the keys.
    with pytest.raises(ValueError, match=r"period\.start"):
        run(cfg.with_(start=(2002, 12), steps=2, overwrite=True), progress=False)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "landbc.coupler.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_run_and_bad_config(tmp_path, tiny_bundle, tiny_cube, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"""
[bundle]
path = "{tiny_bundle}"
[period]
start = "2001-01"
steps = 2
[forcing]
cube = "{tiny_cube}"
[output]
store = "out/bc.zarr"
restart_every = 1
""")
    p = _cli("-q", "run", str(cfg), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert OutputStore.open(tmp_path / "out" / "bc.zarr").completed_steps == 2
    assert sorted(list_restarts(tmp_path / "out" / "restarts")) == [(2001, 1), (2001, 2)]

    # Running again without overwrite: a user error, one line, exit 2.
    p = _cli("run", str(cfg), cwd=tmp_path)
    assert p.returncode == 2 and "overwrite" in p.stderr and "Traceback" not in p.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("steps = 2", "steps = -2"))
    p = _cli("run", str(bad), cwd=tmp_path)
    assert p.returncode == 2
    assert "period.steps" in p.stderr and "-2" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1

    # In-process: the same one-line errors, and --resume of a finished run is fine.
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert main(["-q", "run", str(cfg), "--resume"]) == 0


def test_driver_module_exports():
    assert driver.restart_name(2015, 1) == "restart_2015-01.safetensors"
