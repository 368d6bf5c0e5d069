"""Shared pytest fixtures: small real files, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.grid import Grid

# A 4 x 4 degree box (Swiss plateau, Alps, Black Forest) at 0.05 deg, coarse
# factor 5 (0.25 deg forcing): 80 x 80 pixels, 16 x 16 coarse cells. 80 px is
# the smallest training patch (a multiple of 16 for the nets and of 5).
TINY_GRID = Grid(lat_south=46.0, lat_north=50.0, lon_west=6.0, lon_east=10.0, res=0.05,
                 coarse_factor=5)  # fmt: skip
TINY_YEARS = (2000, 2002)


@pytest.fixture(scope="session")
def tiny_cube(tmp_path_factory) -> Path:
    """A surrogate-world cube of TINY_GRID for TINY_YEARS (3 years), seed 0."""
    from emulator.world import generate_world

    path = tmp_path_factory.mktemp("tiny_cube") / "tiny.zarr"
    return Path(generate_world(path, TINY_GRID, TINY_YEARS, seed=0, progress=False))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_cube, tmp_path_factory) -> Path:
    """A bundle trained for a few iterations on the tiny cube: narrow nets (base 4),
    32-px tiles, both directions. Real training and export, meaningless skill."""
    from emulator.training import main as train_main

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    train_main([str(tiny_cube), "--out", str(out), "--name", "tiny", "--years", "2000", "2002",
                "--unroll", "1", "--patch", "80", "--tile", "32", "--base", "4", "--batch", "2",
                "--iters-lu", "2", "--iters-lc", "2", "--iters-lai", "2"])  # fmt: skip
    return out
