"""Overlap-tile plans: which windows the nets run on, and which pixels each keeps.

The U-Net paper's overlap-tile strategy (DESIGN.md, principle 6): the domain is
cut into *cores* on the global lattice of multiples of `stride`; each core is
computed from a *window* reaching `margin` pixels beyond it on every side, and
only the core is kept. No blending: a pixel's value comes from exactly one
window, whose position is fixed by the global lattice. Windows are widened to
global multiples of 16 (the nets pool 4 times), so all start on one phase of
the pooling grid. Cores are clipped where the real domain ends, so the nets
compute the domain plus the margins, not whole overhanging tiles; beyond the
real domain edge pixels are repeated.

A block of a decomposed domain (an MPI rank's) is an array with a *halo* of
real neighbouring data on its cut sides. If the cuts lie on the lattice and
the halo is at least the margin (widened to the multiple of 16), every window
the block needs is inside the array, the same window the whole domain uses
there, so the block computes bit for bit the whole domain's values. A side
with no halo is a real end.

These are TorchScript functions: the stepper compiles them into the bundle.
"""

import torch
from torch import Tensor


def plan_axis(
    start: int, length: int, halo_lo: int, halo_hi: int, stride: int, margin: int, multiple: int
) -> list[list[int]]:
    """The tiles along one axis of an array of `length` pixels whose first pixel is
    the global index `start`, as [core_lo, core_hi, window_lo, window_hi] in array
    indices (a window may reach beyond [0, length) only at a real end).

    The block is [halo_lo, length - halo_hi); its cores are the lattice cells
    [k stride, (k+1) stride) clipped to it. A window is its core plus `margin`,
    widened to global multiples of `multiple`: every window starts on the same
    phase of the nets' pooling grid, so a pixel's value does not depend on which
    tile holds it beyond what the margin limits. Raises if a cut side (halo > 0) is
    not on the lattice or its halo is narrower than the windows need.
    """
    b0 = halo_lo
    b1 = length - halo_hi
    if b1 <= b0:
        raise ValueError(
            "the halo (" + str(halo_lo) + " + " + str(halo_hi) + " px) leaves no block in "
            + str(length) + " px"
        )  # fmt: skip
    for side, h, edge in (("first", halo_lo, b0), ("last", halo_hi, b1)):
        if h > 0 and (start + edge) % stride != 0:
            raise ValueError(
                "the block's " + side + " edge (global index " + str(start + edge)
                + ") is a cut with a halo, so it must lie on the tile lattice "
                + "(a multiple of the stride " + str(stride) + ")"
            )  # fmt: skip
    out: list[list[int]] = []
    g = ((start + b0) // stride) * stride  # global start of the first lattice cell
    while g < start + b1:
        lo = max(g, start + b0)
        hi = min(g + stride, start + b1)
        w_lo = ((lo - margin) // multiple) * multiple
        w_hi = -((-(hi + margin)) // multiple) * multiple
        out.append([lo - start, hi - start, w_lo - start, w_hi - start])
        g += stride
    need_lo = -out[0][2] + halo_lo
    need_hi = out[-1][3] - length + halo_hi
    for side, h, need in (("first", halo_lo, need_lo), ("last", halo_hi, need_hi)):
        if 0 < h < need:
            raise ValueError(
                "the halo on the block's " + side + " side is " + str(h)
                + " px, expected at least " + str(need) + " px (the tiles' margin of "
                + str(margin) + " px, widened to the nets' multiple of " + str(multiple) + ")"
            )  # fmt: skip
    return out


def halo_width(stride: int, margin: int, multiple: int, coarse_factor: int) -> int:
    """The halo a block needs on a cut side: the widest reach of a window beyond
    any lattice cut (either side), in whole coarse cells so that a block's array
    is whole coarse cells. The reach repeats every `multiple` lattice cells."""
    reach = 0
    for k in range(multiple):
        cut = k * stride
        below = cut - ((cut - margin) // multiple) * multiple
        above = -((-(cut + margin)) // multiple) * multiple - cut
        reach = max(reach, max(below, above))
    return -((-reach) // coarse_factor) * coarse_factor


def plan_tiles(
    land_mask: Tensor,
    start_row: int,
    start_col: int,
    halo: list[int],
    stride: int,
    margin: int,
    multiple: int,
) -> list[list[int]]:
    """The tiles whose core holds land, as [core r0, r1, c0, c1, window r0, r1, c0, c1]
    (array indices), sorted by window shape so that tiles of one shape batch together.
    `halo` is [top, bottom, left, right]. Called once when the statics are set: the
    step itself never asks the device which tiles hold land."""
    h = land_mask.shape[0]
    w = land_mask.shape[1]
    rows = plan_axis(start_row, h, halo[0], halo[1], stride, margin, multiple)
    cols = plan_axis(start_col, w, halo[2], halo[3], stride, margin, multiple)
    # one device query for all tiles: land pixels per core
    land = land_mask > 0
    found: list[list[int]] = []
    for r in rows:
        for c in cols:
            found.append(r[0:2] + c[0:2] + r[2:4] + c[2:4])
    has_land: list[bool] = []
    if len(found) > 0:
        any_land = torch.stack([land[t[0] : t[1], t[2] : t[3]].any() for t in found])
        flags: list[bool] = any_land.tolist()
        has_land = flags
    tiles: list[list[int]] = []
    for i in range(len(found)):
        if has_land[i]:
            tiles.append(found[i])
    # group by window shape (stable: lattice order within a shape)
    shapes: list[int] = []
    for t in tiles:
        key = (t[5] - t[4]) * (1 << 31) + (t[7] - t[6])
        if key not in shapes:
            shapes.append(key)
    ordered: list[list[int]] = []
    for key in shapes:
        for t in tiles:
            if (t[5] - t[4]) * (1 << 31) + (t[7] - t[6]) == key:
                ordered.append(t)
    return ordered


def batches(tiles: list[list[int]], per_batch: int) -> list[list[list[int]]]:
    """Consecutive tiles of one window shape, at most `per_batch` at a time: what one
    net call takes (`plan_tiles` sorts tiles by shape)."""
    out: list[list[list[int]]] = []
    for t in tiles:
        if len(out) > 0:
            last = out[-1]
            head = last[0]
            same = t[5] - t[4] == head[5] - head[4] and t[7] - t[6] == head[7] - head[6]
            if same and len(last) < per_batch:
                last.append(t)
                continue
        out.append([t])
    return out


def computed_pixels(tiles: list[list[int]]) -> int:
    """Pixels the nets compute for these tiles (window areas)."""
    n = 0
    for t in tiles:
        n += (t[5] - t[4]) * (t[7] - t[6])
    return n
