"""Write the landbc 0.1 legacy-store fixtures of this folder with the OLD code.

This script needs the environment of landbc 0.1 (commit e3339e4, zarr-python
2.18, top-level packages `emulator` and `coupler`), not the project's current
one; README.md beside it says how to make that environment. It is not a test
(its name does not start with test_) and pytest never imports it.

    /tmp/venv-old/bin/python tests/data/landbc-0.1/make_fixtures.py --old-repo /tmp/landbc-old

It writes, next to itself:

    tiny.zarr     the tiny test cube: generate_world(TINY_GRID, TINY_YEARS, seed=0)
    bc.zarr       an output store of a 4-step forward run from 2001-01 with the demo
                  bundle, stopped after 3 steps (completed_steps = 3, step 4 unwritten)
    restarts/     the restart written at that stop (restart_2001-03.safetensors)
    expected.json what the old code and zarr 2 read from them, for tests/test_legacy_stores.py

and removes any earlier copies of these first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

HERE = Path(__file__).resolve().parent
OLD_COMMIT = "e3339e4"
SEED = 0
RUN_START = (2001, 1)
RUN_STEPS = 4  # the run's length (the store's time axis)
RUN_STOP = 3  # steps done before the stop (max_steps): the store holds 3 of 4
RESTART_EVERY = 3


def describe(a: np.ndarray) -> dict:
    """Shape, dtype, sum (numeric arrays) and sha256 of the raw bytes in C order."""
    a = np.ascontiguousarray(a)
    out = {"shape": list(a.shape), "dtype": a.dtype.str}
    out["sum"] = float(a.sum(dtype=np.float64)) if a.dtype.kind in "iuf" else None
    out["sha256"] = hashlib.sha256(a.tobytes()).hexdigest()
    return out


def json_fill(x):
    if x is None:
        return None
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return x


def array_meta(a: zarr.Array) -> dict:
    return {
        "shape": list(a.shape),
        "dtype": a.dtype.str,
        "chunks": list(a.chunks),
        "fill_value": json_fill(a.fill_value),
        "compressor": a.compressor.get_config() if a.compressor is not None else None,
        "attrs": a.attrs.asdict(),
    }


def xarray_view(path: Path) -> dict:
    """What xarray (with zarr 2) makes of a store: dims and dtype of every variable."""
    with xr.open_zarr(path) as ds:
        return {
            "variables": {
                n: {"dims": list(ds[n].dims), "dtype": ds[n].dtype.str}
                for n in sorted([*ds.data_vars, *ds.coords])
            },
            "time": [str(t)[:10] for t in ds["time"].values],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old-repo", type=Path, required=True, help="a checkout of commit e3339e4")
    args = p.parse_args(argv)
    old = args.old_repo.resolve()

    if not zarr.__version__.startswith("2."):
        sys.exit(f"needs zarr-python 2 (the landbc 0.1 environment), found {zarr.__version__}")
    # The old code: top-level packages, as landbc 0.1 installed them.
    from coupler.config import RunConfig
    from coupler.driver import list_restarts, run
    from coupler.hostfiles import TINY_GRID, TINY_YEARS
    from coupler.output import OutputStore
    from emulator import catalog, cube
    from emulator.world import generate_world

    where = Path(cube.__file__).resolve()
    if not where.is_relative_to(old):
        sys.exit(f"the old code must come from {old}, found emulator.cube at {where}")
    cube_path, store_path, restart_dir = HERE / "tiny.zarr", HERE / "bc.zarr", HERE / "restarts"
    for p_ in (cube_path, store_path, restart_dir):
        if p_.exists():
            shutil.rmtree(p_)

    # -- the cube: exactly the old tests/conftest.py tiny_cube fixture ----------------
    generate_world(cube_path, TINY_GRID, TINY_YEARS, seed=SEED, progress=False)
    root = zarr.open_consolidated(str(cube_path), mode="r")
    cube_arrays = sorted(root.array_keys())
    c = cube.Cube.open(cube_path)
    sample = {"static": {k: describe(v) for k, v in c.static().items()}}
    for y, m in ((2000, 1), (2001, 7), (2002, 12)):
        sample[f"forcing {y}-{m:02d}"] = {k: describe(v) for k, v in c.forcing(y, m).items()}
        sample[f"truth {y}-{m:02d}"] = {k: describe(v) for k, v in c.truth(y, m).items()}
    expected_cube = {
        "path": "tiny.zarr",
        "grid": TINY_GRID.to_dict(),
        "years": list(TINY_YEARS),
        "seed": SEED,
        "attrs": root.attrs.asdict(),
        "arrays": {n: array_meta(root[n]) | describe(root[n][...]) for n in cube_arrays},
        "cube_api": sample,
        "xarray": xarray_view(cube_path),
    }

    # -- the output store: the old step loop, stopped after RUN_STOP of RUN_STEPS ------
    bundle = old / "weights" / "demo"
    cwd = os.getcwd()
    os.chdir(HERE)  # relative paths, so that the store's attributes name no machine path
    try:
        cfg = RunConfig(
            bundle=bundle,
            cube=Path("tiny.zarr"),
            store=Path("bc.zarr"),
            restart_dir=Path("restarts"),
            start=RUN_START,
            steps=RUN_STEPS,
            restart_every=RESTART_EVERY,
            source="tests/data/landbc-0.1/make_fixtures.py",
        ).with_()
        s = run(cfg, progress=False, max_steps=RUN_STOP)
        assert (s.steps_done, s.completed_steps, s.finished) == (RUN_STOP, RUN_STOP, False), s
        restarts = sorted(list_restarts(Path("restarts")))
        assert restarts == [(2001, 3)], restarts
    finally:
        os.chdir(cwd)
    st = OutputStore.open(store_path, mode="r")
    sroot = zarr.open_consolidated(str(store_path), mode="r")
    names = [v.name for v in catalog.OUTPUT_VARIABLES]
    steps = {str(i): {n: describe(a) for n, a in st.read_step(i).items()} for i in range(RUN_STOP)}
    # Unwritten steps: NaN for the floats; the class maps have no fill value (undefined).
    unwritten = {
        str(i): sorted(n for n in names if np.isnan(st.root[n][st.time_index(*st.months[i])]).all())
        for i in range(RUN_STOP, RUN_STEPS)
    }
    expected_store = {
        "path": "bc.zarr",
        "attrs": sroot.attrs.asdict(),
        "months": [list(m) for m in st.months],
        "completed_steps": st.completed_steps,
        "arrays": {n: array_meta(sroot[n]) for n in sorted(sroot.array_keys())},
        "coords": {n: describe(sroot[n][...]) for n in ("time", "lat", "lon")},
        "steps": steps,
        "unwritten_all_nan": unwritten,
        "xarray": xarray_view(store_path),
        "restart": "restarts/" + restart_dir.joinpath("restart_2001-03.safetensors").name,
    }

    # -- a reference: the same run to its end, to compare a resumed legacy run with ----
    with tempfile.TemporaryDirectory() as tmp:
        ref = cfg.with_(
            cube=cube_path, store=Path(tmp) / "ref.zarr", restart_dir=Path(tmp) / "r",
            restart_every=0,
        )  # fmt: skip
        run(ref, progress=False)
        rst = OutputStore.open(ref.store, mode="r")
        resume_ref = {
            str(i): {n: describe(a) for n, a in rst.read_step(i).items()} for i in range(RUN_STEPS)
        }
    for i in range(RUN_STOP):  # the stopped run agrees with the full one on its steps
        assert resume_ref[str(i)] == steps[str(i)], i

    versions = {
        k: metadata.version(k) for k in ("zarr", "numcodecs", "xarray", "numpy", "torch")
    }  # fmt: skip
    expected = {
        "written_by": {
            "landbc_commit": OLD_COMMIT,
            "script": "tests/data/landbc-0.1/make_fixtures.py",
            "python": sys.version.split()[0],
            **versions,
        },
        "cube": expected_cube,
        "store": expected_store,
        "full_run_reference": resume_ref,
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    size = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file())
    print(f"wrote {HERE}: {size / 1e6:.2f} MB in {sum(1 for _ in HERE.rglob('*'))} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
