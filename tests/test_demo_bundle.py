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
# The 0.1 demo bundle (scripted as `emulator.*`, argmax LU decoding, trained on
# 1960-2015): kept so that 0.1 restarts and bundles stay loadable, and tested as such.
LEGACY = DEMO.parent / "demo-0.1"


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
        emu.initialise(cube.grid, cube.static(), cube.truth(*start), *start, direction)
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


def test_bundle_scripted_before_the_rename_still_loads_and_steps(tiny_cube):
    """The 0.1 bundle's files name `emulator.*` modules and carry the 0.1 stepper
    code: they load and step with this landbc (the code travels in the file)."""
    old_modules = _scripted_modules(LEGACY / "stepper_forward.pt")
    assert "emulator" in old_modules and not any(m.startswith("landbc") for m in old_modules)
    cube = Cube.open(tiny_cube)
    emu = BoundaryConditionEmulator.from_bundle(LEGACY, dtype="float32")
    emu.initialise(cube.grid, cube.static(), cube.truth(2001, 12), 2001, 12, "forward")
    out = emu.step(cube.forcing(2002, 1)).numpy()
    assert out["lu"].shape == cube.grid.shape


def test_legacy_bundle_is_refused_by_reexport_with_a_clear_error(tmp_path):
    with pytest.raises(bundle.BundleError, match=r"lu_net takes \d+ input channels.*retrained"):
        reexport(LEGACY, tmp_path / "new")
    assert not (tmp_path / "new").exists()


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
