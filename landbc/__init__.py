"""landbc: online emulators of land-surface boundary conditions for Earth-system models.

The Python front is `BoundaryConditionEmulator` (emulator/api.py). The C++ core
`landbc::Emulator` is importable as `landbc._cpp.Emulator` once built (`make
test` or `cmake --build build/cpp`, see cpp/README.md); both load the same
TorchScript steppers and give bit-identical results.
"""

import torch  # noqa: F401  (loads libtorch and its pybind11 casters before landbc._cpp)

from emulator.api import BoundaryConditionEmulator, InputError, StepResult
from emulator.bundle import BundleError
from emulator.grid import Grid

__all__ = ["BoundaryConditionEmulator", "BundleError", "Grid", "InputError", "StepResult"]
__version__ = "0.1.0"
