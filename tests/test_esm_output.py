"""`[esm_output]`: a tiny run also writes its months on an ESM grid as GRIB2 files,
remapped with ECLand's rules (land-masked grid-box average, dominant type), through
a resume; and the table's config errors name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_driver import make_config as driver_config  # tests/ is on sys.path (prepend mode)

from landbc.coupler import gribio, remap
from landbc.coupler.config import (
    ESM_DEFAULT_VARIABLES,
    ConfigError,
    EsmOutputConfig,
    RunConfig,
)
from landbc.coupler.driver import REMAP_CACHE, run
from landbc.coupler.esm_output import esm_filename
from landbc.coupler.grids import RegularLatLonGrid, grid_from_name
from landbc.coupler.output import OutputStore
from landbc.emulator.cube import Cube

eccodes = pytest.importorskip("eccodes")

ESM_GRID = "1/1"  # the tiny domain (46-50N 6-10E) covers 5 x 5 one-degree cells


def make_config(tmp: Path, bundle: Path, cube: Path, **kw) -> RunConfig:
    """test_driver's tiny run, shortened to 3 steps with a restart after each, writing
    the ESM grid too."""
    args = dict(steps=3, restart_every=1, esm_output=EsmOutputConfig(grid=ESM_GRID)) | kw
    return driver_config(tmp, bundle, cube, **args)


def read_messages(path: Path) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                keys = ("shortName", "dataDate", "gridType", "Ni", "Nj", "bitmapPresent")
                msg = {k: eccodes.codes_get(h, k) for k in keys}
                values = eccodes.codes_get_values(h).astype(np.float64)
                missing = eccodes.codes_get(h, "missingValue")
                if msg["bitmapPresent"]:
                    values[values == missing] = np.nan
                msg["values"] = values
                out.append(msg)
            finally:
                eccodes.codes_release(h)
    return out


def test_run_writes_esm_grib_per_month(tmp_path, tiny_bundle, tiny_cube, caplog):
    caplog.set_level("INFO", logger="landbc.coupler.driver")
    cfg = make_config(tmp_path, tiny_bundle, tiny_cube)
    assert cfg.esm_output_dir == tmp_path / "esm"
    # A batch job stopped after 2 steps, then resumed: the remaining month is written.
    run(cfg, progress=False, max_steps=2)
    assert sorted(p.name for p in cfg.esm_output_dir.iterdir()) == [
        esm_filename(2001, 1),
        esm_filename(2001, 2),
    ]
    log_lines = [r.getMessage() for r in caplog.records if "ESM output" in r.getMessage()]
    assert len(log_lines) == 1 and "conservative" in log_lines[0]
    assert grid_from_name(ESM_GRID).describe() in log_lines[0]
    (cfg.esm_output_dir / esm_filename(2001, 1)).unlink()  # restored from the store on resume
    s = run(cfg, resume=True, progress=False)
    assert s.finished
    files = sorted(p.name for p in cfg.esm_output_dir.iterdir())
    assert files == [esm_filename(2001, m) for m in (1, 2, 3)]
    assert len(list((tmp_path / REMAP_CACHE).glob("remap-conservative-*.safetensors"))) == 1

    # The reference: remap of the store's high-res fields with the same rules.
    cube = Cube.open(tiny_cube)
    land = cube.root["land_mask"][:] == 1
    target = grid_from_name(ESM_GRID)
    src = RegularLatLonGrid.from_emulator_grid(cube.grid)
    w = remap.compute_weights(src, target, "conservative", source_mask=land)
    empty = w.empty_rows
    assert 16 <= (~empty).sum() <= 36  # the domain covers a few ESM cells
    store = OutputStore.open(cfg.store, mode="r")
    for i, (y, m) in enumerate(cfg.months):
        fields = store.read_step(i)
        msgs = read_messages(cfg.esm_output_dir / esm_filename(y, m))
        assert [g["shortName"] for g in msgs] == list(ESM_DEFAULT_VARIABLES)
        for g, name in zip(msgs, ESM_DEFAULT_VARIABLES, strict=True):
            assert g["dataDate"] == y * 10000 + m * 100 + 1
            assert (g["gridType"], g["Ni"], g["Nj"]) == ("regular_ll", 360, 181)
            got = g["values"]
            np.testing.assert_array_equal(np.isnan(got), empty, err_msg=name)
            if gribio.parameter(name).is_code:
                want = remap.dominant_type(w, fields[name]).reshape(-1)
                np.testing.assert_array_equal(got[~empty], want[~empty], err_msg=name)
                assert 0 in gribio.parameter(name).codes
            else:
                want = remap.grid_box_average(w, fields[name].astype(np.float64)).reshape(-1)
                ok = want[~empty]
                # 16-bit simple packing: within one packing step of the field's range.
                tol = max(float(ok.max() - ok.min()), 1e-6) / 2**15
                np.testing.assert_allclose(got[~empty], ok, atol=tol, rtol=0, err_msg=name)
        by_name = {
            f.short_name: f for f in gribio.read_grib(cfg.esm_output_dir / esm_filename(y, m))
        }
        assert by_name["cvh"].year_month == (y, m) and by_name["cvh"].grid == target


def test_esm_output_from_toml_and_round_trip(tmp_path):
    data = {
        "bundle": {"path": "b"},
        "period": {"start": "2001-01", "steps": 2},
        "forcing": {"cube": "c.zarr"},
        "output": {"store": "out/bc.zarr"},
        "esm_output": {"grid": "O96", "encoding": "wmo", "variables": ["cvh", "tvh"]},
    }
    cfg = RunConfig.from_dict(data, base_dir=tmp_path)
    esm = cfg.esm_output
    assert esm is not None and (esm.grid, esm.format, esm.encoding, esm.packing) == (
        "O96",
        "grib",
        "wmo",
        "grid_simple",
    )
    assert esm.variables == ("cvh", "tvh")
    assert cfg.esm_output_dir == tmp_path / "out" / "esm"
    toml = tmp_path / "rt.toml"
    toml.write_text(cfg.to_toml())
    again = RunConfig.from_toml(toml)
    assert again.esm_output_dir == cfg.esm_output_dir
    assert again.esm_output is not None and again.esm_output.variables == esm.variables
    # Without the table: no ESM output; the default variables are the six IFS fields.
    del data["esm_output"]
    assert RunConfig.from_dict(data, base_dir=tmp_path).esm_output is None
    data["esm_output"] = {"grid": "N320"}
    assert RunConfig.from_dict(data).esm_output.variables == ESM_DEFAULT_VARIABLES  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "table, key",
    [
        ({"grid": "Q96"}, "esm_output.grid"),
        ({"grid": 96}, "esm_output.grid"),
        ({}, "esm_output.grid"),
        ({"grid": "O96", "variables": ["cvh", "lia"]}, "esm_output.variables"),
        ({"grid": "O96", "variables": []}, "esm_output.variables"),
        ({"grid": "O96", "variables": "cvh"}, "esm_output.variables"),
        ({"grid": "O96", "variables": ["cvh", "cvh"]}, "esm_output.variables"),
        ({"grid": "O96", "encoding": "ecmwf"}, "esm_output.encoding"),
        ({"grid": "O96", "packing": "grid_jpeg"}, "esm_output.packing"),
        ({"grid": "O96", "format": "netcdf"}, "esm_output.format"),
        ({"grid": "O96", "path": ""}, "esm_output.path"),
        ({"grid": "O96", "bits": 12}, "esm_output.bits"),
    ],
)
def test_esm_output_errors_name_the_key(table, key):
    data = {
        "bundle": {"path": "b"},
        "period": {"start": "2001-01", "steps": 2},
        "forcing": {"cube": "c.zarr"},
        "output": {"store": "bc.zarr"},
        "esm_output": table,
    }
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        RunConfig.from_dict(data)


def test_esm_output_built_in_code_is_validated(tmp_path):
    cfg = RunConfig(bundle=tmp_path, cube=tmp_path, store=tmp_path / "bc.zarr", start=(2001, 1),
                    steps=1)  # fmt: skip
    with pytest.raises(ConfigError, match=r"esm_output\.variables"):
        cfg.with_(esm_output=EsmOutputConfig(grid="1/1", variables=("lu",)))
    with pytest.raises(ConfigError, match=r"esm_output\.grid"):
        cfg.with_(esm_output=EsmOutputConfig(grid="1/0"))
