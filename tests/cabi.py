"""The built C++ pieces for the tests that reach them: the shared library of the C ABI
(for ctypes) and the rule for when it is missing.

`make test` builds everything first and sets LANDBC_REQUIRE_CPP=1, so a missing piece
fails there; a plain `pytest` without a C++ build skips those tests instead."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The C ABI library: LANDBC_LIB, or the one `make test` builds.
LIB = Path(os.environ.get("LANDBC_LIB", REPO / "build" / "cpp" / "liblandbc.so"))


def missing_cpp(why: str) -> None:
    """Fail under LANDBC_REQUIRE_CPP (as `make test` sets: no silent skips), else skip."""
    if os.environ.get("LANDBC_REQUIRE_CPP"):
        pytest.fail(why)
    pytest.skip(why)


def require_lib() -> Path:
    """The library's path, or a skip / failure (`missing_cpp`) if it is not built."""
    if not LIB.is_file():
        missing_cpp(f"{LIB} is not built; run `make test` or set LANDBC_LIB to a built "
                    f"liblandbc.so")  # fmt: skip
    return LIB


def load_lib() -> ctypes.CDLL:
    """The C ABI through ctypes, with `landbc_last_error` returning bytes."""
    lib = ctypes.CDLL(str(require_lib()))
    lib.landbc_last_error.restype = ctypes.c_char_p
    lib.landbc_last_error.argtypes = []
    return lib
