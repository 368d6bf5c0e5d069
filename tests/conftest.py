"""Shared pytest fixtures: small real files, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

# The 80 x 80-pixel test world (46-50N 6-10E, 2000-2002); one definition, shared with
# `landbc host-inputs --tiny`.
from landbc.coupler.hostfiles import TINY_GRID, TINY_YEARS  # noqa: F401


@pytest.fixture(scope="session")
def tiny_cube(tmp_path_factory) -> Path:
    """A surrogate-world cube of TINY_GRID for TINY_YEARS (3 years), seed 0."""
    from landbc.emulator.world import generate_world

    path = tmp_path_factory.mktemp("tiny_cube") / "tiny.zarr"
    return Path(generate_world(path, TINY_GRID, TINY_YEARS, seed=0, progress=False))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_cube, tmp_path_factory) -> Path:
    """A bundle trained for a few iterations on the tiny cube: narrow nets (base 4),
    32-px tiles, both directions. Real training and export, meaningless skill."""
    from landbc.emulator.training import main as train_main

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    train_main([str(tiny_cube), "--out", str(out), "--name", "tiny", "--years", "2000", "2002",
                "--unroll", "1", "--patch", "80", "--tile", "32", "--base", "4", "--batch", "2",
                "--iters-lu", "2", "--iters-lc", "2", "--iters-lai", "2"])  # fmt: skip
    return out
