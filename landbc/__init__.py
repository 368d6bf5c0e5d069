"""landbc: online emulators of land-surface boundary conditions for Earth-system models.

One import package: `landbc.emulator` (the ML side; source in emulator/),
`landbc.coupler` (the ESM side; source in coupler/) and, once built, the
pybind11 module `landbc._cpp`. The Python front is `BoundaryConditionEmulator`
(`from landbc import BoundaryConditionEmulator`). The C++ core
`landbc::Emulator` is importable as `landbc._cpp.Emulator` once built (`make
test` or `cmake --build build/cpp`, see cpp/README.md); both load the same
TorchScript steppers and give bit-identical results.
"""

from importlib.metadata import version as _version

import torch  # noqa: F401  (loads libtorch and its pybind11 casters before landbc._cpp)

from landbc.emulator.api import BoundaryConditionEmulator, InputError, StepResult
from landbc.emulator.bundle import BundleError
from landbc.emulator.grid import Grid

__all__ = ["BoundaryConditionEmulator", "BundleError", "Grid", "InputError", "StepResult"]
__version__ = _version("landbc")  # one source: pyproject.toml
