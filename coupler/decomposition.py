"""Domain decomposition for MPI runs: 2-D blocks cut on the tile lattice, with halos.

A run's domain is cut into `py × px` blocks, one per rank. Every cut lies on the
stepper's tile lattice (global multiples of the stride), so a block plus a halo
of its neighbours' data computes bit for bit the whole domain's values
(`emulator/tiling.py`). Blocks get whole lattice cells, as evenly as the cells
allow. A halo is as wide as the windows next to a cut reach (`tiling.halo_width`:
the margin widened to the nets' multiple of 16, in whole coarse cells); sides on
the real domain edge have none.

`overlaps` says which pixels each rank sends to each other rank to fill the
halos: every rectangle where one rank's block meets another's halo, corners
included, so one exchange fills a halo whatever the process grid.

Pure Python: the decomposition is checked without MPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from landbc.emulator.tiling import halo_width  # noqa: F401  (re-exported: the halo a cut needs)


class DecompositionError(ValueError):
    pass


@dataclass(frozen=True)
class Block:
    rank: int
    rows: tuple[int, int]  # the block: rows [r0, r1) of the run grid
    cols: tuple[int, int]
    halo: tuple[int, int, int, int]  # top, bottom, left, right (px)

    @property
    def window_rows(self) -> tuple[int, int]:
        """Rows of the block's array: the block and its halo."""
        return self.rows[0] - self.halo[0], self.rows[1] + self.halo[1]

    @property
    def window_cols(self) -> tuple[int, int]:
        return self.cols[0] - self.halo[2], self.cols[1] + self.halo[3]

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(*self.window_rows), slice(*self.window_cols)

    @property
    def interior(self) -> tuple[slice, slice]:
        """The block inside its own array."""
        t, b, left, r = self.halo
        ny = self.window_rows[1] - self.window_rows[0]
        nx = self.window_cols[1] - self.window_cols[0]
        return slice(t, ny - b), slice(left, nx - r)


def process_grid(n: int, ny: int, nx: int) -> tuple[int, int]:
    """py × px = n with the blocks closest to square."""
    best = (n, 1)
    for py in range(1, n + 1):
        if n % py == 0:
            px = n // py
            if abs(math.log((ny / py) / (nx / px))) < abs(
                math.log((ny / best[0]) / (nx / best[1]))
            ):
                best = (py, px)
    return best


def _cuts(length: int, start: int, stride: int, parts: int, axis: str) -> list[int]:
    """Cut positions 0 = c0 < c1 < ... < c_parts = length (run-grid indices), the
    inner ones on the global lattice, giving each part whole lattice cells as
    evenly as possible."""
    # inner lattice points of this axis, in run-grid indices
    first = -(-start // stride) * stride - start
    points = [p for p in range(first, length, stride) if p > 0]
    cells = len(points) + 1
    if parts > cells:
        raise DecompositionError(
            f"{parts} blocks along the {axis} axis need at least {parts} tile lattice cells, "
            f"but its {length} px hold {cells} (stride {stride} px): use fewer ranks"
        )
    chosen = [points[round(i * cells / parts) - 1] for i in range(1, parts)]
    return [0, *chosen, length]


def decompose(
    shape: tuple[int, int],
    origin: tuple[int, int],
    ranks: int,
    stride: int,
    halo: int,
    grid: tuple[int, int] | None = None,
) -> list[Block]:
    """Blocks of a domain of `shape` whose north-west pixel is the global `origin`,
    one per rank (row-major over the process grid), cut on the lattice of `stride`,
    each with `halo` px of its neighbours on its cut sides."""
    if ranks < 1:
        raise DecompositionError(f"ranks: expected at least 1, found {ranks}")
    ny, nx = shape
    py, px = grid if grid is not None else process_grid(ranks, ny, nx)
    if py * px != ranks:
        raise DecompositionError(f"process grid {py}x{px} does not have {ranks} ranks")
    rcuts = _cuts(ny, origin[0], stride, py, "row")
    ccuts = _cuts(nx, origin[1], stride, px, "column")
    for cuts, axis in ((rcuts, "row"), (ccuts, "column")):
        narrow = min(b - a for a, b in zip(cuts, cuts[1:], strict=False))
        if len(cuts) > 2 and narrow < halo:
            raise DecompositionError(
                f"a block along the {axis} axis is {narrow} px, narrower than the halo "
                f"({halo} px): use fewer ranks"
            )
    blocks = []
    for i in range(py):
        for j in range(px):
            r0, r1 = rcuts[i], rcuts[i + 1]
            c0, c1 = ccuts[j], ccuts[j + 1]
            h = (
                halo if i > 0 else 0,
                halo if i < py - 1 else 0,
                halo if j > 0 else 0,
                halo if j < px - 1 else 0,
            )
            blocks.append(Block(len(blocks), (r0, r1), (c0, c1), h))
    return blocks


def _meet(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int] | None:
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo < hi else None


def overlaps(blocks: list[Block], src: int, dst: int) -> list[tuple[slice, slice]]:
    """Run-grid rectangles of `src`'s block that lie in `dst`'s halo (not its block)."""
    a, b = blocks[src], blocks[dst]
    if src == dst:
        return []
    rows = _meet(a.rows, b.window_rows)
    cols = _meet(a.cols, b.window_cols)
    if rows is None or cols is None:
        return []
    return [(slice(*rows), slice(*cols))]


def local(block: Block, rect: tuple[slice, slice]) -> tuple[slice, slice]:
    """A run-grid rectangle in `block`'s array indices."""
    r0, c0 = block.window_rows[0], block.window_cols[0]
    return slice(rect[0].start - r0, rect[0].stop - r0), slice(
        rect[1].start - c0, rect[1].stop - c0
    )
