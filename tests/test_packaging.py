"""What `pip install .` installs: one import package, landbc, and the console script.

The wheel is built from this tree (no build isolation: the venv's setuptools,
no download) and its file list checked, so a mapping mistake in pyproject.toml
that would put a top-level `emulator` or `coupler` into site-packages fails here
(PyPI has an unrelated `emulator`; the two would overwrite each other).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _clear_setuptools_build() -> None:
    """setuptools builds in <source>/build/lib and never deletes from it: a module
    removed from the tree would still be in the next wheel. Only its own folders go
    (build/ also holds the CMake trees)."""
    for stale in (ROOT / "build").glob("lib"):
        shutil.rmtree(stale)
    for stale in (ROOT / "build").glob("bdist.*"):
        shutil.rmtree(stale)


def test_wheel_installs_only_the_landbc_package(tmp_path):
    _clear_setuptools_build()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    _clear_setuptools_build()
    (wheel,) = tmp_path.glob("landbc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"landbc"}, sorted(top)
    for module in ("landbc/__init__.py", "landbc/emulator/stepper.py", "landbc/coupler/cli.py"):
        assert module in names
    assert not any(n.endswith((".so", ".pyd")) for n in names), "no build outputs in the wheel"
    (info,) = dist_info
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "landbc = landbc.coupler.cli:main" in entry_points


def test_the_package_is_landbc_and_nothing_else_is_importable():
    code = (
        "import importlib.util, landbc; "
        "from landbc import BoundaryConditionEmulator; "
        "print(importlib.util.find_spec('emulator'), importlib.util.find_spec('coupler'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/"
    ).stdout
    assert out.split() == ["None", "None"]
