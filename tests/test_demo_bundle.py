"""The committed demo bundle: it verifies, describes its training, and steps."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from landbc.emulator import bundle
from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.cube import Cube
from landbc.emulator.training import reexport

DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo"


def _no_constants(name):
    raise ValueError(f"manifest holds {name}, which is not JSON (the C++ front rejects it)")


def test_demo_bundle_verifies_and_records_provenance_and_skill():
    json.loads((DEMO / "manifest.json").read_text(), parse_constant=_no_constants)
    manifest = bundle.verify(DEMO)
    assert set(manifest["directions"]) == {"forward", "backward"}
    data = manifest["training"]["data"]
    assert data["years"] == [1960, 2000]  # the BSC split: 2001-2015 held out
    assert "SURROGATE" in data["description"].upper()
    assert set(data["provenance"]) == {"land_mask", "koppen", "igbp"}
    for direction in ("forward", "backward"):  # recorded by make evaluate
        assert manifest["metrics"][f"heldout_{direction}"]["period"] == [2001, 2015]
    size = sum(f.stat().st_size for f in DEMO.iterdir())
    assert size < 64e6, f"demo bundle is {size / 1e6:.0f} MB"


def test_demo_bundle_steps_both_directions_on_the_tiny_cube(tiny_cube):
    cube = Cube.open(tiny_cube)
    for direction, start in (("forward", (2001, 12)), ("backward", (2001, 1))):
        emu = BoundaryConditionEmulator.from_bundle(DEMO)
        static = cube.static(climatology_years=cube.climatology_years(emu.lai_climatology_years))
        emu.initialise(cube.grid, static, cube.truth(*start), *start, direction)
        y, m = emu.next_time
        out = emu.step(cube.forcing(y, m)).numpy()
        truth = cube.truth(y, m)
        land = cube.static()["land_mask"] == 1
        # a trained bundle on its own world: LU mostly right, LAI in range
        assert (out["lu"][land] == truth["lu"][land]).mean() > 0.9, direction
        assert np.isfinite(out["lai"]).all() and out["lai"].max() < 15
        json.dumps({k: float(v.mean()) for k, v in out.items()})


def _scripted_modules(stepper_file: Path) -> set[str]:
    """The Python modules a TorchScript file's classes were scripted from."""
    names = zipfile.ZipFile(stepper_file).namelist()
    return {
        n.split("/code/__torch__/")[1].rsplit("/", 1)[0] for n in names if "/code/__torch__/" in n
    }


def test_a_bundle_without_the_lai_climatology_is_refused_with_the_remedy(tmp_path):
    """Bundles before 0.3 take no LAI climatology: verify says so and how to fix it."""
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((DEMO / "manifest.json").read_text())
    manifest["variables"]["static"] = [
        v for v in manifest["variables"]["static"] if v["name"] != "lai_climatology"
    ]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(bundle.BundleError, match=r"\['lai_climatology'\].*--lu-lc-from"):
        bundle.verify(old)


def test_reexport_names_landbc_modules_and_steps_bit_identically(tiny_cube, tmp_path):
    new = reexport(DEMO, tmp_path / "demo")
    for direction in ("forward", "backward"):
        modules = _scripted_modules(new / f"stepper_{direction}.pt")
        assert "landbc/emulator" in modules, sorted(modules)
        assert not any(m == "emulator" or m.startswith("emulator/") for m in modules)

    cube = Cube.open(tiny_cube)
    start = (2001, 12)
    outs = []
    for path in (DEMO, new):
        emu = BoundaryConditionEmulator.from_bundle(path, dtype="float32")
        emu.initialise(cube.grid, cube.static(), cube.truth(*start), *start, "forward")
        outs.append(emu.step(cube.forcing(2002, 1)).numpy())
    for name in outs[0]:
        np.testing.assert_array_equal(outs[0][name], outs[1][name], err_msg=name)
