"""examples/o96_noleap.toml, the IFS-like host on O96 with a noleap calendar, run as
written except for its data: the tiny test cube instead of the Europe demo cube, its
O96 forcing written by `landbc export-forcing`, 24 monthly couplings from 2001-01. The
GRIB it writes is listed by Debian's grib_ls with the IFS short names on reduced_gg."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from landbc.coupler.config import RunConfig
from landbc.coupler.driver import run
from landbc.coupler.forcing import export_forcing
from landbc.coupler.grids import grid_from_name

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "o96_noleap.toml"
SHORT_NAMES = ["cvh", "cvl", "tvh", "tvl", "lai_hv", "lai_lv"]


def test_o96_noleap_example_runs_24_couplings(tmp_path, tiny_cube):
    data = tomllib.loads(EXAMPLE.read_text())
    assert data["period"] == {"start": "2015-01", "steps": 24, "calendar": "noleap"}
    assert data["esm_output"]["grid"] == "O96" and data["forcing"]["climate"] == "grib"
    start = (2001, 1)  # the tiny cube holds 2000-2002
    files = export_forcing(tiny_cube, "O96", start, 24, tmp_path / "forcing")
    data["period"]["start"] = "2001-01"
    data["forcing"].update(cube=str(tiny_cube), files=[str(tmp_path / "forcing" / "*.grib2")])
    data["output"].update(store=str(tmp_path / "bc.zarr"), restart_dir=str(tmp_path / "rs"))
    cfg = RunConfig.from_dict(data, base_dir=EXAMPLE.parent, source=str(EXAMPLE))
    summary = run(cfg, progress=False)
    assert summary.finished and summary.completed_steps == 24 and len(files) == 24

    esm = sorted((tmp_path / "esm").glob("bc_*.grib2"))
    assert [p.name for p in esm[:2]] == ["bc_2001-01.grib2", "bc_2001-02.grib2"]
    assert len(esm) == 24
    grib_ls = shutil.which("grib_ls")
    if grib_ls is None:
        pytest.fail("grib_ls (Debian libeccodes-tools) is missing; `make test` installs it")
    out = subprocess.run([grib_ls, "-p", "shortName,gridType,numberOfDataPoints", str(esm[1])],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines()[2:] if line.split()[:1] in
            [[n] for n in SHORT_NAMES]]  # fmt: skip
    assert [r[0] for r in rows] == SHORT_NAMES, out
    npoints = str(grid_from_name("O96").npoints)
    assert all(r[1:] == ["reduced_gg", npoints] for r in rows), out

    # The store's time axis is the noleap calendar's: February has 28 days in 2001 and
    # 2002 alike, and xarray decodes the months as cftime noleap dates.
    ds = xr.open_zarr(tmp_path / "bc.zarr")
    assert ds.time.dt.calendar == "noleap"
    bounds = ds.time_bnds.values
    lengths = np.array([(b[1] - b[0]).days for b in bounds])
    assert lengths[1] == lengths[13] == 28 and lengths.sum() == 2 * 365
