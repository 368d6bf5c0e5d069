"""landbc: online emulators of land-surface boundary conditions for Earth-system models.

One import package: `landbc.emulator` (the ML side; source in emulator/),
`landbc.coupler` (the ESM side; source in coupler/) and, once built, the
pybind11 module `landbc._cpp`. The Python front is `BoundaryConditionEmulator`
(`from landbc import BoundaryConditionEmulator`). The C++ core
`landbc::Emulator` is importable as `landbc._cpp.Emulator` once built (`make
test` or `cmake --build build/cpp`, see cpp/README.md); both load the same
TorchScript steppers and give bit-identical results.
"""

from importlib import import_module
from importlib.metadata import version as _version

# The API is re-exported lazily: `import landbc` (and so every `landbc.coupler`
# module, the CLI among them) must not pay for importing torch until an emulator
# is needed; `landbc --help` starts in a fraction of a second.
_EXPORTS = {
    "BoundaryConditionEmulator": "landbc.emulator.api",
    "InputError": "landbc.emulator.api",
    "StepResult": "landbc.emulator.api",
    "BundleError": "landbc.emulator.bundle",
    "Grid": "landbc.emulator.grid",
}
__all__ = sorted(_EXPORTS)
__version__ = _version("landbc")  # one source: pyproject.toml


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'landbc' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once resolved, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
