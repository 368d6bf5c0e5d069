"""The C++ core (landbc::Emulator through pybind11) against the Python front: bit-identical
outputs and states over 24 steps in both directions, across restarts written by either,
byte-identical restart files, and the same error messages.

Both fronts load the same TorchScript stepper (DESIGN.md, principle 1); what these tests
guard is everything around it: input conversion, the nets' dtype and memory-format cast,
inference mode, the restart format.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from test_api import _bad_forcings  # tests/ is on sys.path (pytest prepend mode)

from landbc.emulator.api import BoundaryConditionEmulator, InputError
from landbc.emulator.cube import Cube

try:
    from landbc import _cpp
except ImportError:
    if os.environ.get("LANDBC_REQUIRE_CPP"):  # set by `make test`, which builds it first
        raise
    pytest.skip("the C++ core is not built (`make cpp`)", allow_module_level=True)

DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo"
STARTS = {"forward": (2000, 12), "backward": (2002, 12)}


def test_one_version_for_both_fronts():
    """The C++ library takes its version from CMake's project(VERSION); the Python
    package from pyproject.toml: they must name the same release."""
    import landbc

    assert _cpp.version() == landbc.__version__


@pytest.fixture
def cube(tiny_cube):
    return Cube.open(tiny_cube)


def _tensors(arrays):
    return {k: torch.as_tensor(v) for k, v in arrays.items()}


def _pair(bundle, cube, direction, dtype="float32"):
    """The same start in both fronts."""
    year, month = STARTS[direction]
    py = BoundaryConditionEmulator.from_bundle(bundle, dtype=dtype)
    py.initialise(cube.grid, cube.static(), cube.truth(year, month), year, month, direction)
    cpp = _cpp.Emulator(str(bundle), "cpu", dtype)
    cpp.initialise(
        cube.grid.to_dict(),
        _tensors(cube.static()),
        _tensors(cube.truth(year, month)),
        year,
        month,
        direction,
    )
    return py, cpp


def _assert_identical(a: dict, b: dict, what: str):
    assert set(a) == set(b), what
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), f"{what}: {k} differs"


def _step_both(py, cpp, cube, n):
    for _ in range(n):
        y, m = py.next_time
        assert cpp.next_time == (y, m)
        forcing = cube.forcing(y, m)
        out_py = py.step(forcing).fields
        out_cpp = cpp.step(_tensors(forcing))
        _assert_identical(out_py, out_cpp, f"outputs of {y:04d}-{m:02d}")
        assert cpp.time == py.time == (y, m)
    _assert_identical(py.state(), cpp.state(), f"state at {py.time}")


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_24_steps_bit_identical(tiny_bundle, cube, direction):
    """Multi-tile blending (32-px tiles on 80 px), yearly and monthly steps."""
    py, cpp = _pair(tiny_bundle, cube, direction)
    _assert_identical(py.state(), cpp.state(), "initial state")
    _step_both(py, cpp, cube, 24)


def test_demo_bundle_bit_identical(cube):
    """The real demo weights (256-px tiles), 14 months including two year changes."""
    py, cpp = _pair(DEMO, cube, "forward")
    _step_both(py, cpp, cube, 14)


def test_bfloat16_nets_bit_identical(tiny_bundle, cube):
    py, cpp = _pair(tiny_bundle, cube, "forward", dtype="bfloat16")
    _step_both(py, cpp, cube, 3)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_restarts_cross_between_fronts(tiny_bundle, cube, tmp_path, direction):
    """Both fronts write the same restart bytes; each continues from the other's restart
    exactly as an uninterrupted run (24 steps = 12 + restart + 12)."""
    py, cpp = _pair(tiny_bundle, cube, direction)
    _step_both(py, cpp, cube, 12)
    py.save_restart(tmp_path / "py.safetensors")
    cpp.save_restart(str(tmp_path / "cpp.safetensors"))
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cpp.safetensors").read_bytes()

    # Python writes, C++ continues; C++ writes, Python continues
    cpp_cont = _cpp.Emulator(str(tiny_bundle))
    cpp_cont.load_restart(str(tmp_path / "py.safetensors"))
    py_cont = BoundaryConditionEmulator.from_restart(tiny_bundle, tmp_path / "cpp.safetensors")
    assert cpp_cont.direction == py_cont.direction == direction
    assert cpp_cont.grid == cube.grid.to_dict()
    _step_both(py, cpp, cube, 12)  # the uninterrupted runs
    _step_both(py_cont, cpp_cont, cube, 12)
    _assert_identical(py.state(), py_cont.state(), "Python after a C++ restart")
    _assert_identical(cpp.state(), cpp_cont.state(), "C++ after a Python restart")


def test_bad_forcing_gives_the_python_message_and_leaves_state_untouched(tiny_bundle, cube):
    py, cpp = _pair(tiny_bundle, cube, "forward")
    _step_both(py, cpp, cube, 1)
    before = {k: v.clone() for k, v in cpp.state().items()}
    for forcing, match in _bad_forcings(cube):
        if not isinstance(forcing, dict):
            continue  # a non-mapping cannot reach the C++ core (pybind11 refuses it)
        with pytest.raises(InputError, match=match) as py_err:
            py.step(forcing)
        with pytest.raises(ValueError, match=match) as cpp_err:
            cpp.step(_tensors(forcing))
        assert str(cpp_err.value) == f"[LANDBC_ERR_ARGUMENT] {py_err.value}"
        _assert_identical(before, cpp.state(), "state after a refused step")
    _step_both(py, cpp, cube, 1)  # and both still step alike


def test_open_and_restart_failures_name_the_problem(tiny_bundle, cube, tmp_path):
    with pytest.raises(OSError, match=r"\[LANDBC_ERR_IO\] bundle .*nowhere is not a folder"):
        _cpp.Emulator(str(tmp_path / "nowhere"))
    absent = f"cuda:{max(7, torch.cuda.device_count())}"  # an index no machine here has
    with pytest.raises(RuntimeError, match=rf"\[LANDBC_ERR_DEVICE\] device: '{absent}'"):
        _cpp.Emulator(str(tiny_bundle), absent)
    with pytest.raises(ValueError, match=r"\[LANDBC_ERR_ARGUMENT\] dtype: expected"):
        _cpp.Emulator(str(tiny_bundle), "cpu", "float16")
    emu = _cpp.Emulator(str(tiny_bundle))
    with pytest.raises(RuntimeError, match=r"\[LANDBC_ERR_STATE\] emulator is not initialised"):
        emu.step({})
    with pytest.raises(OSError, match=r"\[LANDBC_ERR_IO\] .*missing.safetensors does not exist"):
        emu.load_restart(str(tmp_path / "missing.safetensors"))
    # a restart of other weights (the demo bundle's) is refused by its stepper sha256
    py, _ = _pair(DEMO, cube, "forward")
    py.save_restart(tmp_path / "demo.safetensors")
    with pytest.raises(ValueError, match=r"written with stepper sha256 .* \(different weights\)"):
        emu.load_restart(str(tmp_path / "demo.safetensors"))
    assert not emu.initialised


def test_cpp_refuses_bundle_files_outside_the_bundle(tiny_bundle, tmp_path):
    """Manifest file names are plain names in the bundle folder in the C++ front too."""

    def copy_with(name: str) -> Path:
        dst = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(tiny_bundle, dst)
        m = json.loads((dst / "manifest.json").read_text())
        m["files"][name] = m["files"].pop("stepper_forward.pt")
        m["directions"]["forward"]["file"] = name
        (dst / "manifest.json").write_text(json.dumps(m))
        return dst

    for name in ("../outside.pt", "/etc/passwd", "sub/x.pt"):
        with pytest.raises(ValueError, match=r"\[LANDBC_ERR_BUNDLE\] .*not a plain file name"):
            _cpp.Emulator(str(copy_with(name)))
