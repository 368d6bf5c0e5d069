"""A real land-cover case: MODIS MCD12C1 2019 at 0.05° recovered from its 1° class fractions.

No synthetic field at all: the truth is the MCD12C1 2019 IGBP map (3600 × 7200,
classes 0–16 as in the file), the static inputs are the real Köppen–Geiger and
land-mask maps (`staticmaps`, read at 0.05° once and cached). The coarse input
is what a scenario would give: the class fractions of every 1° cell (20 × 20
pixels), over the cell's land pixels. A small U-Net (`nets.UNet`) sees, per
0.05° pixel, the 17 fractions of its 1° cell (nearest upsampled: a field it
convolves over, so it sees the neighbouring cells too) and their logarithms,
the Köppen group (one-hot), the land mask and the pixel's share of 1-km land
samples, and the cell's land share, and returns 17 class logits; the
log-fractions are also its prior channels, so its logits start from the cell's
class mixture. No input says where on Earth a pixel is (no latitude): a net
trained on one region that can tell where it is learns that region (with
latitude, the first version scored worse than the bare fractions east of
60° E, in cross-entropy, while better in the west), and without it every patch
can be turned and mirrored in training.

Split: trained ONLY on land west of 20° E (patches lie wholly in columns
[0, 4000), so no input crosses 20° E or the date line), scored ONLY on land east
of 60° E (columns ≥ 4800). "Land" is the land mask (global-land-mask at 0.05°,
majority of its 6 × 6 1-km samples): the fractions are counted over those pixels
and those pixels are scored; class 0 (water) on a land pixel (lakes, coasts
where MODIS and the mask disagree) is a class like any other. Pixels outside the
land mask are neither input nor scored; the written prediction copies MCD12C1
there.

Count calibration (`count_calibrate`, on by default): before the loss and before
decoding, the logits get one offset per 1° cell and class, found by iterative
proportional fitting so that the cell's mean softmax over its land pixels equals
its fractions. The coarse input decides how much of each class a cell holds; the
net is trained (and asked) only where in the cell each class lies, the question
the count-consistent decoding puts to it.

Decoding is scenario-consistent (`decoding`): from the net's argmax map,
`rebalance` makes the fewest greedy conversions that give every 1° cell the
class counts its fractions imply (here exact integers, the fractions being
counts / land pixels of the 0.05° map itself), so the predicted map aggregates
back to the coarse input exactly (`decode_cells`: the same result, compacted).

Baselines, scored the same way:

(a) dominant: the cell's most frequent land class (ties to the lower code) on
    all its land pixels (not count-consistent);
(b) Köppen allocation (count-consistent): a table of land-pixel class counts per
    Köppen group west of 20° E gives each (group z, class c) pair the score
    log P(c | z) / P(c) (add-one smoothing: how much more often c occurs in z than
    on all training land); in each cell the pairs are taken by that score, best
    first, each pair getting min(pixels of z not yet given, pixels of c not yet
    placed), and inside a group the cell's pixels (row-major) take their classes
    in the order the pairs were taken (`koppen_allocation`).

CLI: ``landbc realcase train --out weights/realcase`` and
``landbc realcase evaluate --bundle weights/realcase --out
output/realcase`` (see `main`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F_nn
from torch import Tensor

from . import staticmaps
from .catalog import IGBP_CLASSES, KOPPEN_GROUPS
from .decoding import rebalance, target_counts, to_cells
from .metrics import class_scores, confusion
from .nets import UNet
from .training import plot_losses, replace_atomically

log = logging.getLogger(__name__)

RES = 0.05  # degrees per pixel of MCD12C1
F = 20  # coarse factor: 1° cells
K = 17  # IGBP classes 0..16 as in the file
N_KG = 5  # Köppen main groups 1..5 (0 = sea / no data)
NY, NX = 3600, 7200
TRAIN_EAST_LON = 20.0  # training: land west of this longitude
SCORE_WEST_LON = 60.0  # scoring: land east of this longitude
NET_FILE = "net.pt"
MANIFEST = "manifest.json"
LOSS_PNG = "loss.png"
CACHE_VERSION = 2

LOG_EPS = 1e-4  # log(fraction + LOG_EPS): the prior channels

CHANNELS: tuple[tuple[str, str], ...] = (
    *(
        (f"logfrac_{c.index}", f"log(1° cell fraction of IGBP {c.index} + {LOG_EPS:g})")
        for c in IGBP_CLASSES
    ),
    *((f"frac_{c.index}", f"1° cell fraction of IGBP {c.index} ({c.name})") for c in IGBP_CLASSES),
    *(
        (f"koppen_{g.index}", f"Köppen group {g.index} ({g.name}), one-hot")
        for g in KOPPEN_GROUPS
        if g.index > 0
    ),
    ("land_mask", "land mask at 0.05° (1 land)"),
    ("land_fraction", "share of the pixel's 6 x 6 1-km land-mask samples that are land"),
    ("cell_land_share", "land pixels of the 1° cell / 400"),
    *(
        (f"smoothfrac_{c.index}", f"1° fractions of IGBP {c.index}, bilinear between cell centres")
        for c in IGBP_CLASSES
    ),
)
IN_CHANNELS = len(CHANNELS)
assert IN_CHANNELS == 3 * K + N_KG + 3

# Colours of the IGBP classes for the quicklook (MODIS-like palette).
IGBP_COLOURS = (
    "#1c6dd0", "#05450a", "#086a10", "#54a708", "#78d203", "#009900", "#c6b044",
    "#dcd159", "#dade48", "#fbff13", "#b6ff05", "#27ff87", "#c24f44", "#a5a5a5",
    "#ff6d4c", "#f9ffa4", "#69fff8",
)  # fmt: skip


def lon_to_col(lon: float, res: float = RES) -> int:
    """Column whose west edge is `lon` (column 0 starts at 180° W)."""
    return int(round((lon + 180.0) / res))


def lat_to_row(lat: float, res: float = RES) -> int:
    """Row whose north edge is `lat` (row 0 starts at 90° N: north-up)."""
    return int(round((90.0 - lat) / res))


# --- the maps --------------------------------------------------------------------


@dataclass
class Maps:
    """The three real maps on one north-up grid whose column 0 starts at 180° W.

    igbp: MCD12C1 class codes as in the file (0..16); land: the land mask (bool);
    koppen: 1..5 on land (0 elsewhere); land_frac: the share of 1-km land samples in
    each pixel (default: the land mask as 0/1); res: degrees per pixel; f: coarse factor.
    The coarse quantities are derived once: `counts` (hc, wc, K) land pixels of
    each class per cell, `nland` (hc, wc) land pixels per cell, `frac` (hc, wc, K)
    the scenario's fractions (counts / nland, 0 where a cell has no land).
    """

    igbp: np.ndarray
    land: np.ndarray
    koppen: np.ndarray
    land_frac: np.ndarray | None = None
    res: float = RES
    f: int = F
    counts: np.ndarray = field(init=False, repr=False)
    nland: np.ndarray = field(init=False, repr=False)
    frac: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ny, nx = self.igbp.shape
        if self.land.shape != (ny, nx) or self.koppen.shape != (ny, nx):
            raise ValueError("igbp, land and koppen must have one shape")
        if ny % self.f or nx % self.f:
            raise ValueError(f"map {ny}x{nx} is not a whole number of {self.f}-px cells")
        if int(self.igbp.max(initial=0)) >= K:
            raise ValueError(f"igbp has codes above {K - 1}")
        self.land = self.land.astype(bool)
        if self.land_frac is None:
            self.land_frac = self.land.astype(np.float32)
        self.counts = cell_counts(self.igbp, self.land, self.f)
        self.nland = self.counts.sum(-1)
        self.frac = fractions(self.counts)

    @property
    def shape(self) -> tuple[int, int]:
        return self.igbp.shape

    def col(self, lon: float) -> int:
        return lon_to_col(lon, self.res)


def read_real_maps() -> dict[str, np.ndarray]:
    """MCD12C1 2019 (raw codes), land mask and Köppen on the global 0.05° grid.

    Land mask and Köppen come from `staticmaps.read_static_window` (the land mask
    as the majority of 6 × 6 1-km samples, Köppen as the mode of its non-missing
    samples, filled from neighbours where land has none); MCD12C1 at its own
    resolution, one sample per pixel, so its codes are the file's (it has no 255).
    """
    t = time.perf_counter()
    static = staticmaps.read_static_window(RES, 0, 0, NY, NX)
    igbp = staticmaps.read_igbp_window(RES, 0, 0, NY, NX)
    land_frac = staticmaps.read_land_fraction_window(RES, 0, 0, NY, NX)
    if not np.array_equal(land_frac >= 0.5, static["land_mask"] == 1):
        raise RuntimeError("land fraction and land mask disagree")
    log.info("read the real maps at %.2f° in %.0f s", RES, time.perf_counter() - t)
    return {
        "igbp": igbp,
        "land": static["land_mask"],
        "koppen": static["koppen"],
        "land_frac": land_frac,
    }


def load_maps(cache: Path | None = Path(".cache/realcase")) -> Maps:
    """The global maps, read once (about 50 s) and cached as .npz (about 1 s)."""
    path = None if cache is None else Path(cache) / "maps_0.05deg.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            if int(z["version"]) == CACHE_VERSION:
                return Maps(z["igbp"], z["land"], z["koppen"], z["land_frac"])
        log.info("%s is from another version: reading the maps again", path)
    arrays = read_real_maps()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, version=CACHE_VERSION, **arrays)
        os.replace(tmp, path)
    return Maps(arrays["igbp"], arrays["land"], arrays["koppen"], arrays["land_frac"])


# --- coarse fractions and counts -----------------------------------------------------


def cells_np(x: np.ndarray, f: int) -> np.ndarray:
    """(H, W) → (H/f, W/f, f*f): the pixels of each cell in row-major order (as `to_cells`)."""
    h, w = x.shape
    return x.reshape(h // f, f, w // f, f).transpose(0, 2, 1, 3).reshape(h // f, w // f, f * f)


def uncells_np(c: np.ndarray, f: int) -> np.ndarray:
    """Inverse of `cells_np`."""
    hc, wc, _ = c.shape
    return c.reshape(hc, wc, f, f).transpose(0, 2, 1, 3).reshape(hc * f, wc * f)


def cell_counts(labels: np.ndarray, mask: np.ndarray, f: int, k: int = K) -> np.ndarray:
    """(H/f, W/f, k) int32: pixels of each class per cell, counting `mask` pixels only."""
    lab = cells_np(labels, f).astype(np.int64)
    m = cells_np(mask.astype(bool), f)
    hc, wc, _ = lab.shape
    cell = np.broadcast_to(np.arange(hc * wc).reshape(hc, wc, 1), lab.shape)
    idx = (cell * k + lab)[m]
    return np.bincount(idx, minlength=hc * wc * k).reshape(hc, wc, k).astype(np.int32)


def fractions(counts: np.ndarray) -> np.ndarray:
    """Class fractions of each cell's land (float32; all 0 where a cell has no land)."""
    n = counts.sum(-1, keepdims=True)
    return np.where(n > 0, counts / np.maximum(n, 1), 0.0).astype(np.float32)


def counts_from_fractions(frac: np.ndarray, nland: np.ndarray) -> np.ndarray:
    """The integer counts a scenario's fractions imply, by `decoding.target_counts`
    (largest remainder to each cell's land pixels). Fractions taken from the map
    itself give its counts back exactly."""
    shape = frac.shape
    real = torch.from_numpy(frac.reshape(-1, shape[-1]).astype(np.float64))
    total = torch.from_numpy(nland.reshape(-1).astype(np.float64))
    real = real * total[:, None]
    counts, _ = target_counts(real, total)
    return counts.numpy().reshape(shape).astype(np.int32)


def upsample(a: np.ndarray, f: int) -> np.ndarray:
    """Nearest upsampling of the two leading axes by f."""
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


# --- baselines -----------------------------------------------------------------------


def dominant_map(maps: Maps) -> np.ndarray:
    """Baseline (a): each cell's most frequent land class (ties to the lower code) on
    all its pixels."""
    return upsample(maps.counts.argmax(-1).astype(np.uint8), maps.f)


def koppen_table(maps: Maps, region: np.ndarray) -> np.ndarray:
    """(N_KG + 1, K) int64: land pixels of each class per Köppen group inside `region`
    (a boolean pixel mask, the training region)."""
    m = maps.land & region
    idx = maps.koppen[m].astype(np.int64) * K + maps.igbp[m].astype(np.int64)
    return np.bincount(idx, minlength=(N_KG + 1) * K).reshape(N_KG + 1, K)


def koppen_scores(table: np.ndarray, kind: str = "pmi") -> np.ndarray:
    """(N_KG + 1, K) float64 score of putting class c in Köppen group z, from the
    training table (add-one smoothing): "pmi" log P(c | z) / P(c) (how much more often
    c occurs in z than on all training land), or "conditional" log P(c | z)."""
    t = table.astype(np.float64) + 1.0
    cond = np.log(t / t.sum(1, keepdims=True))
    if kind == "conditional":
        return cond
    if kind == "pmi":
        return cond - np.log(t.sum(0) / t.sum())[None, :]
    raise ValueError(f"kind must be 'pmi' or 'conditional', found {kind!r}")


def koppen_allocation(
    maps: Maps, scores: np.ndarray, target: np.ndarray | None = None
) -> np.ndarray:
    """Baseline (b): each cell's class counts allocated to its pixels by Köppen group.

    In every cell, with m_z land pixels of group z and n_c pixels of class c to
    place (`target`, default the map's own counts): the (group, class) pairs are
    taken in one global order, by `scores` descending (ties to the lower group, then
    the lower class), and each pair gets min(pixels of z still free, pixels of c still
    to place) pixels (a greedy transport plan). Inside a group, the cell's pixels
    (row-major) take their classes in the order the pairs were taken. Every cell
    ends with exactly its counts. Returns (H, W) uint8 (0 off land).
    """
    f = maps.f
    target = maps.counts if target is None else target
    hc, wc, _ = target.shape
    n, p = hc * wc, f * f
    zone = np.where(cells_np(maps.land, f), cells_np(maps.koppen, f), -1).reshape(n, p)
    zone = zone.astype(np.int16)
    nz = scores.shape[0]
    rank = np.zeros((n, p), np.int16)
    m = np.zeros((n, nz), np.int64)
    for z in range(nz):
        inz = zone == z
        rank = np.where(inz, np.cumsum(inz, 1, dtype=np.int16) - 1, rank)
        m[:, z] = inz.sum(1)
    need = target.reshape(n, K).astype(np.int64).copy()
    if not np.array_equal(need.sum(1), m.sum(1)):
        raise ValueError("target counts do not add up to the land pixels of each cell")
    flat = -scores.ravel()
    order = np.lexsort((np.arange(flat.size), flat))  # score descending, then z, then c
    out = np.zeros((n, p), np.uint8)
    used = np.zeros((n, nz), np.int64)
    for j in order:
        z, c = divmod(int(j), K)
        a = np.minimum(m[:, z] - used[:, z], need[:, c])
        rows = np.nonzero(a)[0]
        if rows.size == 0:
            continue
        lo = used[rows, z][:, None]
        hi = lo + a[rows][:, None]
        sel = (zone[rows] == z) & (rank[rows] >= lo) & (rank[rows] < hi)
        out[rows] = np.where(sel, c, out[rows])
        used[rows, z] += a[rows]
        need[rows, c] -= a[rows]
    return uncells_np(out.reshape(hc, wc, p), f)


def decode_cells(
    logp: Tensor, start: Tensor, target: Tensor, free: Tensor, chunk: int = 256
) -> Tensor:
    """`decoding.rebalance` over many cells with bounded memory, compacted: the same
    map as ``rebalance(logp, start, target, free)``, for a fraction of the work.

    logp (N, K, P), start (N, P), target (N, K), free (N, P) bool. Cells whose counts
    already match are left alone; the others are sorted by how many conversions they
    need and rebalanced `chunk` at a time, so that a chunk's rounds (one conversion per
    cell per round, as many as its neediest cell) go to cells that need about as many.
    Each chunk is compacted before `rebalance` sees it, which changes nothing in the
    result: only the classes a cell has or must have are kept (in their order), and
    only the pixels that can be converted, the free pixels of a class the cell must
    lose (a class that must gain never comes to lose, so no other pixel ever moves;
    the pixels left out are taken off the target), in their order, so that ties break
    as in the full problem. Memory: chunk × K × P floats at most.
    """
    out = start.long().clone()
    n, k, _ = logp.shape
    fr_all = free.to(torch.bool)
    have = torch.zeros(n, k, dtype=torch.int64, device=out.device)
    have.scatter_add_(1, out, fr_all.long())
    need = target.long() - have
    todo = need.clamp_min(0).sum(1)
    active = (todo > 0).nonzero()[:, 0]
    if active.numel() == 0:
        return out
    active = active[torch.argsort(todo[active], stable=True)]
    for a in range(0, active.numel(), chunk):
        idx = active[a : a + chunk]
        st, nd, fr = out[idx], need[idx], fr_all[idx]
        rel = (target[idx] > 0) | (have[idx] > 0)
        kk = int(rel.sum(1).max())
        cls = torch.argsort((~rel).to(torch.int8), dim=1, stable=True)[:, :kk]  # (n, kk)
        inv = torch.zeros(len(idx), k, dtype=torch.int64, device=out.device)
        inv.scatter_(1, cls, torch.arange(kk, device=out.device).expand(len(idx), kk))
        cand = fr & (nd < 0).gather(1, st)
        pp = int(cand.sum(1).max())
        pix = torch.argsort((~cand).to(torch.int8), dim=1, stable=True)[:, :pp]  # (n, pp)
        lp = logp[idx].gather(1, cls[:, :, None].expand(-1, -1, logp.shape[2]))
        lp = lp.gather(2, pix[:, None, :].expand(-1, kk, -1))
        st_c = inv.gather(1, st.gather(1, pix))
        fr_c = cand.gather(1, pix)
        moving = torch.zeros_like(nd)
        moving.scatter_add_(1, st.gather(1, pix), fr_c.long())
        tg_c = (moving + nd).gather(1, cls)  # what the movable pixels must end with
        res = cls.gather(1, rebalance(lp, st_c, tg_c, fr_c))
        out[idx] = st.scatter(1, pix, torch.where(fr_c, res, st.gather(1, pix)))
    return out


# --- net inputs ------------------------------------------------------------------------


def features(maps: Maps, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """(IN_CHANNELS, h, w) float32 inputs for the window whose top-left pixel is (r0, c0).

    Columns wrap around the globe; rows beyond a pole repeat the polar row (so a
    window may overhang the map for context, as the tiled inference does).
    """
    ny, nx = maps.shape
    f = maps.f
    rows = np.clip(np.arange(r0, r0 + h), 0, ny - 1)
    cols = np.mod(np.arange(c0, c0 + w), nx)
    rc, cc = rows // f, cols // f
    x = np.zeros((IN_CHANNELS, h, w), np.float32)
    x[K : 2 * K] = maps.frac[rc][:, cc].transpose(2, 0, 1)
    x[:K] = np.log(x[K : 2 * K] + LOG_EPS)
    o = 2 * K
    kg = maps.koppen[rows][:, cols]
    for g in range(1, N_KG + 1):
        x[o + g - 1] = kg == g
    x[o + N_KG] = maps.land[rows][:, cols]
    x[o + N_KG + 1] = maps.land_frac[rows][:, cols]
    x[o + N_KG + 2] = (maps.nland[rc][:, cc] / float(f * f)).astype(np.float32)
    # The fractions again, interpolated bilinearly between cell centres: inside a cell
    # they lean towards the neighbours that hold more of a class, where that class is
    # likelier to lie. With them the decoded map went from 0.8101 / 0.4482 to 0.8121 /
    # 0.4552 east of 60° E (same seed and iterations), and the square artefacts along
    # cell edges that the stepped fractions alone invite became fewer.
    x[o + N_KG + 3 :] = bilinear_cells(maps.frac, rows, np.arange(c0, c0 + w), f)
    return x


def bilinear_cells(cells: np.ndarray, rows: np.ndarray, cols: np.ndarray, f: int) -> np.ndarray:
    """(hc, wc, C) per-cell values → (C, len(rows), len(cols)) interpolated bilinearly
    between cell centres at the given pixel rows and columns (rows clipped to the map,
    columns wrapped around the globe)."""
    hc, wc = cells.shape[:2]
    u = (np.asarray(rows) + 0.5) / f - 0.5
    v = (np.asarray(cols) + 0.5) / f - 0.5
    i0 = np.floor(u).astype(np.int64)
    j0 = np.floor(v).astype(np.int64)
    t = (u - i0).astype(np.float32)[:, None, None]
    s = (v - j0).astype(np.float32)[None, :, None]
    ia, ib = np.clip(i0, 0, hc - 1), np.clip(i0 + 1, 0, hc - 1)
    ja, jb = np.mod(j0, wc), np.mod(j0 + 1, wc)
    top = (1 - s) * cells[ia][:, ja] + s * cells[ia][:, jb]
    bottom = (1 - s) * cells[ib][:, ja] + s * cells[ib][:, jb]
    return ((1 - t) * top + t * bottom).transpose(2, 0, 1)


# --- count calibration ------------------------------------------------------------------


def count_calibrate(
    logits: Tensor, frac: Tensor, land: Tensor, f: int, iters: int = 12, eps: float = 1e-6
) -> Tensor:
    """The logits shifted by one offset per cell and class so that, in every f × f cell,
    the mean over its land pixels of the softmax equals the cell's fractions.

    The offsets come from iterative proportional fitting (a Sinkhorn iteration whose
    other marginal, one per pixel, the softmax keeps), under no_grad: they are what
    the coarse fractions say about a cell as a whole, so the loss on the shifted
    logits trains only what they leave open, where in the cell each class lies, and
    decoding to the cell's counts starts from a map that nearly has them. A class
    absent from a cell is pushed to log(eps) there.

    logits (B, K, H, W), frac (B, K, H, W) constant within each cell (the nearest-
    upsampled fractions, as in `features`), land (B, H, W); H and W multiples of f.
    """
    m = land.to(logits.dtype)[:, None]
    share = F_nn.avg_pool2d(m, f).clamp_min(1.0 / (f * f))  # land share of each cell
    log_target = torch.log(F_nn.avg_pool2d(frac.to(logits.dtype), f) + eps)
    offsets = torch.zeros_like(log_target)

    def spread(b: Tensor) -> Tensor:
        return b.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)

    with torch.no_grad():
        z = logits.detach()
        for _ in range(iters):
            p = torch.softmax(z + spread(offsets), dim=1)
            mean = F_nn.avg_pool2d(p * m, f) / share
            offsets = offsets + log_target - torch.log(mean + eps)
    return logits + spread(offsets)


# --- the net and its training ----------------------------------------------------------


@dataclass
class TrainConfig:
    out: Path = Path("weights/realcase")
    run_dir: Path = Path("output/realcase-train")
    cache: Path = Path(".cache/realcase")
    name: str = "realcase"
    iters: int = 1200
    batch: int = 8
    patch: int = 160
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    base: int = 16
    levels: int = 3
    prior_gain: float = 1.0  # logits start at log(fractions): the cell mixture
    entropy_sampling: bool = True  # patches drawn ∝ the mixture entropy of their cells
    # Train and decode on count-calibrated logits (`count_calibrate`): the net learns
    # where in a cell each class lies given the cell's counts, the question decoding asks.
    count_aware: bool = True
    # Cross-entropy weights ∝ frequency^-power over training land. 0 (plain, calibrated
    # cross-entropy): with 0.25 the decoded map scored 0.8052 / 0.4444 east of 60° E,
    # without weights and count-aware 0.8101 / 0.4482 (1200 iterations each, CPU, before
    # the smoothed fractions were added to the inputs).
    class_weight_power: float = 0.0
    augment: bool = True  # random flips and quarter turns (no input has a direction)
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads (0: torch's default)
    resume: bool = False
    score: bool = True  # evaluate the exported net after training (metrics in the manifest)
    tile: int = 720
    margin: int = 40

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def make_net(cfg: TrainConfig) -> UNet:
    """The U-Net of `nets` (3 poolings by default) with the log-fractions as its prior
    channels: the logits start from prior_gain × log(fraction + LOG_EPS), i.e. the cell's
    class mixture, the best guess without any other input (cross-entropy 0.47 nats per
    training pixel), and the net learns where in the cell each class lies."""
    return UNet(
        IN_CHANNELS, K, base=cfg.base, levels=cfg.levels, head="logits", prior_channel=0,
        prior_gain=cfg.prior_gain,
    )  # fmt: skip


def cell_entropy(maps: Maps) -> np.ndarray:
    """(hc, wc) entropy (nats) of each cell's class mixture; 0 for pure or sea cells."""
    fr = maps.frac.astype(np.float64)
    return -(fr * np.log(np.where(fr > 0, fr, 1.0))).sum(-1)


class PatchSampler:
    """Training patches: coarse-aligned windows lying wholly west of `east_col` whose
    centre pixel is land; the sequence is fixed by the seed (its state is checkpointed).

    With `entropy_weighted`, a patch is drawn with probability ∝ 0.05 + the mean
    mixture entropy of its land pixels' cells: a third of the training land lies in
    pure cells, where the counts alone decide the map and the loss is 0 from the start.
    """

    def __init__(
        self, maps: Maps, patch: int, east_col: int, seed: int, entropy_weighted: bool = False
    ) -> None:
        f = maps.f
        if patch % f:
            raise ValueError(f"patch {patch} is not a multiple of the coarse factor {f}")
        ny, _ = maps.shape
        ys = np.arange(0, ny - patch + 1, f)
        xs = np.arange(0, east_col - patch + 1, f)
        if len(ys) == 0 or len(xs) == 0:
            raise ValueError(f"no {patch}-px patch fits in the training region")
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        centre = maps.land[yy + patch // 2, xx + patch // 2]
        self.origins = np.stack([yy[centre], xx[centre]], 1)
        if len(self.origins) == 0:
            raise ValueError("no training patch is centred on land")
        self.maps, self.patch = maps, patch
        self.rng = np.random.default_rng(seed)
        self.prob = None
        if entropy_weighted:
            h = cell_entropy(maps) * maps.nland
            n = patch // f
            cy, cx = self.origins[:, 0] // f, self.origins[:, 1] // f
            hs = np.zeros(len(cy))
            ls = np.zeros(len(cy))
            for dy in range(n):
                for dx in range(n):
                    hs += h[cy + dy, cx + dx]
                    ls += maps.nland[cy + dy, cx + dx]
            w = 0.05 + hs / np.maximum(ls, 1)
            self.prob = w / w.sum()

    def batch(self, n: int, augment: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs (n, C, p, p), targets (n, p, p) int64, land (n, p, p) bool; with
        `augment`, each patch turned by a random element of the square's symmetry
        group (quarter turns, mirrored or not)."""
        p = self.patch
        if self.prob is None:
            pick = self.rng.integers(0, len(self.origins), n)
        else:
            pick = self.rng.choice(len(self.origins), n, p=self.prob)
        turns = self.rng.integers(0, 8, n)
        xs, ys, ms = [], [], []
        for (r, c), t in zip(self.origins[pick], turns, strict=True):
            x = features(self.maps, int(r), int(c), p, p)
            y = self.maps.igbp[r : r + p, c : c + p].astype(np.int64)
            m = self.maps.land[r : r + p, c : c + p]
            if augment:
                x, y, m = (np.rot90(a, int(t) % 4, axes=(-2, -1)) for a in (x, y, m))
                if t >= 4:
                    x, y, m = x[..., ::-1], y[..., ::-1], m[..., ::-1]
            xs.append(x)
            ys.append(y)
            ms.append(m)
        return (np.ascontiguousarray(np.stack(xs)), np.ascontiguousarray(np.stack(ys)),
                np.ascontiguousarray(np.stack(ms)))  # fmt: skip


def class_weights(maps: Maps, region: np.ndarray, power: float) -> np.ndarray:
    """Cross-entropy weights ∝ frequency^-power (classes of the training land; a class
    absent there gets the largest weight), normalised to a frequency-weighted mean of 1."""
    freq = np.bincount(maps.igbp[maps.land & region], minlength=K).astype(np.float64)
    freq = freq / max(freq.sum(), 1.0)
    w = np.where(freq > 0, np.maximum(freq, 1e-6) ** -power, 0.0)
    w = np.where(freq > 0, w, w.max(initial=1.0))
    return (w / max((w * freq).sum(), 1e-12)).astype(np.float32)


def parse_device(name: str) -> torch.device:
    dev = torch.device(name)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or cuda:N, found {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here")
    return dev


def _lr_at(cfg: TrainConfig, it: int) -> float:
    """Linear warm-up, then cosine decay to 2 % of lr at cfg.iters."""
    if it < cfg.warmup:
        return cfg.lr * (it + 1) / cfg.warmup
    t = (it - cfg.warmup) / max(1, cfg.iters - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def train_net(cfg: TrainConfig, maps: Maps) -> tuple[UNet, dict]:
    """Train on random patches west of TRAIN_EAST_LON; returns the net (eval mode) and
    a record (iterations, wall time, losses). Checkpoints every cfg.checkpoint_every
    iterations into cfg.run_dir/checkpoint.pt; with cfg.resume it continues from
    there and gives the same weights as an uninterrupted run."""
    device = parse_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    east_col = maps.col(TRAIN_EAST_LON)
    region = np.zeros(maps.shape, bool)
    region[:, :east_col] = True

    torch.manual_seed(cfg.seed)
    net = make_net(cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PatchSampler(maps, cfg.patch, east_col, cfg.seed, cfg.entropy_sampling)
    weights = torch.from_numpy(class_weights(maps, region, cfg.class_weight_power)).to(device)
    losses: list[float] = []
    it0, wall0 = 0, 0.0
    if cfg.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sampler.rng.bit_generator.state = state["sampler"]
        losses = list(state["losses"])
        it0, wall0 = int(state["iteration"]), float(state["wall_s"])
        log.info("resumed from %s at iteration %d", ckpt, it0)
    elif cfg.resume:
        log.info("--resume: no checkpoint in %s, starting afresh", run_dir)
    log.info(
        "training %s: %d iterations of %d × %d² px on %s (float32), %d candidate patches, "
        "%.0f k parameters",
        cfg.name, cfg.iters, cfg.batch, cfg.patch, device, len(sampler.origins),
        sum(p.numel() for p in net.parameters()) / 1e3,
    )  # fmt: skip
    net.train()
    t0 = time.perf_counter()
    for it in range(it0, cfg.iters):
        for g in opt.param_groups:
            g["lr"] = _lr_at(cfg, it)
        xb, yb, mb = sampler.batch(cfg.batch, cfg.augment)
        x = torch.from_numpy(xb).to(device)
        y = torch.from_numpy(yb).to(device)
        m = torch.from_numpy(mb).to(device)
        logits = net(x)
        if cfg.count_aware:
            logits = count_calibrate(logits, x[:, K : 2 * K], m, maps.f)
        ce = F_nn.cross_entropy(logits, y, weight=weights, reduction="none")
        wsum = (weights[y] * m).sum().clamp_min(1.0)
        loss = (ce * m).sum() / wsum
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        done = it + 1
        if done % 50 == 0 or done == cfg.iters:
            log.info(
                "iteration %d/%d  loss %.4f (mean of 50: %.4f)  %.1f s",
                done, cfg.iters, losses[-1], float(np.mean(losses[-50:])),
                wall0 + time.perf_counter() - t0,
            )  # fmt: skip
        if done % cfg.checkpoint_every == 0 or done == cfg.iters:
            replace_atomically(ckpt, partial(torch.save, {
                "net": net.state_dict(), "opt": opt.state_dict(),
                "sampler": sampler.rng.bit_generator.state, "losses": losses,
                "iteration": done, "wall_s": wall0 + time.perf_counter() - t0,
                "config": cfg.to_dict(),
            }))  # fmt: skip
            plot_losses(losses, run_dir / LOSS_PNG, f"{cfg.name}: training loss",
                        ylabel="cross-entropy (land)", window=50)  # fmt: skip
    wall = wall0 + time.perf_counter() - t0
    net.eval()
    record = {
        "iterations": cfg.iters,
        "wall_s": round(wall, 1),
        "device": str(device),
        "dtype": "float32",
        "torch_threads": torch.get_num_threads(),
        "final_loss_mean50": float(np.mean(losses[-50:])) if losses else None,
        "candidate_patches": int(len(sampler.origins)),
        "class_weights": [round(float(v), 4) for v in weights.cpu()],
    }
    with open(run_dir / "losses.json", "w") as fh:
        json.dump(losses, fh)
    return net, record


# --- prediction of the global map ------------------------------------------------------


def _logits(net: Callable[[Tensor], Tensor], x: np.ndarray, device: torch.device) -> Tensor:
    with torch.inference_mode():
        return net(torch.from_numpy(x)[None].to(device))[0].float()


def tiles(ny: int, nx: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """(r0, c0, h, w) of the core tiles covering the map (row-major)."""
    for r in range(0, ny, tile):
        for c in range(0, nx, tile):
            yield r, c, min(tile, ny - r), min(tile, nx - c)


def predict_map(
    net: Callable[[Tensor], Tensor],
    maps: Maps,
    target: np.ndarray | None = None,
    tile: int = 720,
    margin: int = 40,
    multiple: int = 8,
    device: torch.device | str = "cpu",
    chunk: int = 256,
    progress: bool = False,
    cols: tuple[int, int] | None = None,
    score: str = "logp",
    decode_threads: int = 1,
    count_aware: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The decoded map and the net's argmax map (H, W) uint8, and timings.

    Tiles of `tile` px (a multiple of the coarse factor, so whole cells) are computed
    with `margin` px of context on each side (columns wrap around the globe, rows
    beyond a pole repeat it) and padded to a multiple of the net's pooling; each
    core is decoded at once (`decode_cells` towards `target`, default the map's own
    counts) and only uint8 classes are kept: memory is one tile's logits, never
    the whole map's. Non-land pixels get the MCD12C1 value; tiles with no land are
    skipped, and so are tiles outside the columns `cols` [c0, c1) where given (their
    land pixels then keep the MCD12C1 value). Decoding runs on `device` too.

    `score` is what `rebalance` ranks conversions by: "logp" the log-softmax (gain
    log p(new) - log p(old)), or "prob" the softmax (gain p(new) - p(old), the
    expected number of right pixels: a greedy towards the most accurate map).
    On the CPU the decoding runs on `decode_threads` torch threads (0: as set):
    its tensors are small, and two threads that wait on each other's barriers on a
    busy 2-core machine took 10 times as long as one.
    """
    if score not in ("logp", "prob"):
        raise ValueError(f"score must be 'logp' or 'prob', found {score!r}")
    f = maps.f
    if tile % f or margin < 0:
        raise ValueError(f"tile must be a multiple of {f} and margin >= 0")
    device = torch.device(device)
    target = maps.counts if target is None else target
    ny, nx = maps.shape
    decoded = maps.igbp.copy()
    argmax = maps.igbp.copy()
    t_net = t_dec = 0.0
    n_tiles = 0
    conv = 0
    todo = list(tiles(ny, nx, tile))
    it = todo
    if progress:
        from tqdm import tqdm

        it = tqdm(todo, desc="tiles", unit="tile")
    for r, c, h, w in it:
        land = maps.land[r : r + h, c : c + w]
        if not land.any() or (cols is not None and (c + w <= cols[0] or c >= cols[1])):
            continue
        n_tiles += 1
        t = time.perf_counter()
        hh = -(-(h + 2 * margin) // multiple) * multiple
        ww = -(-(w + 2 * margin) // multiple) * multiple
        x = features(maps, r - margin, c - margin, hh, ww)
        logits = _logits(net, x, device)[:, margin : margin + h, margin : margin + w]
        if count_aware:
            frac = upsample(maps.frac[r // f : (r + h) // f, c // f : (c + w) // f], f)
            logits = count_calibrate(
                logits[None], torch.from_numpy(frac.transpose(2, 0, 1).copy())[None].to(device),
                torch.from_numpy(land.copy())[None].to(device), f,
            )[0]  # fmt: skip
        logp = torch.log_softmax(logits, 0)
        start = logp.argmax(0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_net += time.perf_counter() - t
        t = time.perf_counter()
        threads = torch.get_num_threads()
        if device.type == "cpu" and decode_threads > 0:
            torch.set_num_threads(decode_threads)
        sc = logp.exp() if score == "prob" else logp
        lp_c = to_cells(sc.contiguous(), f)  # (n, K, P)
        st_c = to_cells(start, f)
        free_c = to_cells(torch.from_numpy(land.copy()).to(device), f)
        tg = torch.from_numpy(target[r // f : (r + h) // f, c // f : (c + w) // f].reshape(-1, K))
        try:
            out = decode_cells(lp_c, st_c, tg.long().to(device), free_c, chunk)
        finally:
            torch.set_num_threads(threads)
        conv += int(((out != st_c) & free_c).sum())
        dec = out.reshape(h // f, w // f, f * f).cpu().numpy().astype(np.uint8)
        dec = uncells_np(dec, f)
        decoded[r : r + h, c : c + w] = np.where(land, dec, decoded[r : r + h, c : c + w])
        am = start.cpu().numpy().astype(np.uint8)
        argmax[r : r + h, c : c + w] = np.where(land, am, argmax[r : r + h, c : c + w])
        t_dec += time.perf_counter() - t
    timing = {
        "tiles": n_tiles,
        "tile": tile,
        "margin": margin,
        "net_s": round(t_net, 1),
        "decode_s": round(t_dec, 1),
        "conversions": conv,
    }
    return decoded, argmax, timing


# --- scoring ---------------------------------------------------------------------------


def regions(maps: Maps) -> dict[str, np.ndarray]:
    """Boolean pixel masks of the two regions (all rows), before the land mask."""
    ny, nx = maps.shape
    col = np.arange(nx)
    west = col < maps.col(TRAIN_EAST_LON)
    east = col >= maps.col(SCORE_WEST_LON)
    return {
        f"east_of_{SCORE_WEST_LON:g}E": np.broadcast_to(east, (ny, nx)),
        f"west_of_{TRAIN_EAST_LON:g}E": np.broadcast_to(west, (ny, nx)),
    }


def score(truth: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict:
    """Accuracy, F1s and mean IoU (classes present) from one confusion matrix, and
    the IoU of each class."""
    cm = confusion(truth, pred, K, mask)
    s = class_scores(cm)
    s.pop("per_class_iou", None)  # newer metrics.py: NaN for absent classes; ours uses None
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    s["iou"] = [round(float(a / u), 4) if u > 0 else None for a, u in zip(tp, union, strict=True)]
    return s


def reference_convention(maps: Maps, mask: np.ndarray) -> dict:
    """The dominant class as the quoted reference (0.7935 / 0.4385) computed it: the
    cell fractions over ALL 400 pixels (sea counted as class 0), scored on pixels
    where MCD12C1 is not 0, mean IoU over the classes present in the truth."""
    allc = cell_counts(maps.igbp, np.ones(maps.shape, bool), maps.f)
    dom = upsample(allc.argmax(-1).astype(np.uint8), maps.f)
    cm = confusion(maps.igbp, dom, K, mask & (maps.igbp > 0))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    iou = tp / np.maximum(cm.sum(0) + support - tp, 1)
    return {
        "accuracy": float(tp.sum() / cm.sum()),
        "mean_iou": float(iou[support > 0].mean()),
        "pixels": int(cm.sum()),
    }


def count_mismatch(pred: np.ndarray, maps: Maps, target: np.ndarray | None = None) -> int:
    """Cells whose land-pixel class counts in `pred` differ from `target`."""
    target = maps.counts if target is None else target
    return int((cell_counts(pred, maps.land, maps.f) != target).any(-1).sum())


# --- bundle -----------------------------------------------------------------------------


def _manifest(cfg: TrainConfig, record: dict, files: dict[str, str], net: UNet) -> dict:
    return {
        "format": "landbc-realcase",
        "format_version": 1,
        "name": cfg.name,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "torch_version": torch.__version__.split("+")[0],
        "description": "U-Net that recovers the MODIS MCD12C1 2019 IGBP map at 0.05° from "
        "its 1° class fractions, the Köppen-Geiger groups and the land mask (no position); "
        "decoded scenario-consistently (landbc.emulator.decoding.rebalance) so that each "
        "1° cell keeps the class counts of its fractions",
        "grid": {
            "resolution_deg": RES,
            "shape": [NY, NX],
            "orientation": "north-up, row 0 starts at 90N, column 0 starts at 180W",
            "coarse_factor": F,
            "coarse_resolution_deg": RES * F,
        },
        "inputs": {
            "layout": "(batch, channel, y, x) float32 at 0.05°; sides a multiple of "
            f"{2**cfg.levels}",
            "channels": [
                {"index": i, "name": n, "description": d} for i, (n, d) in enumerate(CHANNELS)
            ],  # fmt: skip
        },
        "outputs": {
            "layout": "(batch, 17, y, x) float32 logits of the IGBP classes",
            "decoding": "argmax, then rebalance per 1° cell to the counts of the fractions "
            "(landbc.emulator.decoding.rebalance, land pixels free)",
        },
        "classes": [{"code": c.index, "name": c.name} for c in IGBP_CLASSES],
        "land": "pixels of the land mask (global-land-mask at 0.05°, majority of 6x6 1-km "
        "samples); class 0 (water) on land is a class like any other",
        "training_region": {
            "description": f"land west of {TRAIN_EAST_LON:g}E: patches wholly inside columns "
            f"[0, {lon_to_col(TRAIN_EAST_LON)}), loss on land pixels",
            "lon": [-180.0, TRAIN_EAST_LON],
        },
        "scoring_region": {
            "description": f"land east of {SCORE_WEST_LON:g}E: columns >= "
            f"{lon_to_col(SCORE_WEST_LON)}",
            "lon": [SCORE_WEST_LON, 180.0],
        },
        "net": {
            "file": NET_FILE,
            "class": "landbc.emulator.nets.UNet (TorchScript, eval mode, float32)",
            "in_channels": IN_CHANNELS,
            "out_channels": K,
            "base": cfg.base,
            "levels": cfg.levels,
            "prior_channel": 0,
            "parameters": int(sum(p.numel() for p in net.parameters())),
        },
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "training": record,
        "metrics": {},
        "files": files,
        "provenance": staticmaps.PROVENANCE,
    }


def export_bundle(
    net: UNet, cfg: TrainConfig, record: dict, out: Path, loss_png: Path | None
) -> Path:
    """net.pt (TorchScript) + loss.png + manifest.json (with the sha256 of both)."""
    from .bundle import sha256

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(net.cpu().eval())
    torch.jit.save(scripted, str(out / NET_FILE))
    if loss_png is not None and Path(loss_png).is_file():
        shutil.copyfile(loss_png, out / LOSS_PNG)
    files = {fn: sha256(out / fn) for fn in (NET_FILE, LOSS_PNG) if (out / fn).is_file()}
    write_manifest(out, _manifest(cfg, record, files, net))
    return out


def write_manifest(folder: Path, manifest: dict) -> None:
    with open(Path(folder) / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def load_bundle(folder: Path) -> tuple[torch.jit.ScriptModule, dict]:
    """The scripted net and the manifest, after checking the sha256 of every file."""
    from .bundle import sha256

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a realcase bundle?")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != "landbc-realcase":
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected landbc-realcase")
    for fn, digest in manifest["files"].items():
        found = sha256(folder / fn)
        if found != digest:
            raise ValueError(f"{folder / fn}: sha256 {found}, manifest expects {digest}")
    net = torch.jit.load(str(folder / manifest["net"]["file"]), map_location="cpu")
    if int(net.in_channels) != IN_CHANNELS or int(net.out_channels) != K:
        raise ValueError(
            f"{folder}: net has {int(net.in_channels)} inputs / {int(net.out_channels)} "
            f"outputs, this landbc builds {IN_CHANNELS} / {K}"
        )
    return net.eval(), manifest


# --- evaluation and report ---------------------------------------------------------------


def evaluate_net(
    net: Callable[[Tensor], Tensor],
    maps: Maps,
    device: torch.device | str = "cpu",
    tile: int = 720,
    margin: int = 40,
    multiple: int = 8,
    progress: bool = False,
    count_aware: bool = False,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics of the model (decoded, and the argmax decoding starts from) and both
    baselines in both regions, and the maps (prediction, argmax, dominant, koppen)."""
    reg = regions(maps)
    west = reg[f"west_of_{TRAIN_EAST_LON:g}E"]
    t = time.perf_counter()
    table = koppen_table(maps, west)
    kg_map = koppen_allocation(maps, koppen_scores(table))
    t_kg = time.perf_counter() - t
    dom = dominant_map(maps)
    t = time.perf_counter()
    pred, am, timing = predict_map(
        net, maps, tile=tile, margin=margin, multiple=multiple, device=device, progress=progress,
        count_aware=count_aware,
    )  # fmt: skip
    timing["total_s"] = round(time.perf_counter() - t, 1)
    timing["koppen_allocation_s"] = round(t_kg, 1)
    methods = {
        "model": pred,
        "model_argmax_undecoded": am,
        "dominant": dom,
        "koppen_allocation": kg_map,
    }
    metrics: dict = {"timing": timing, "regions": {}}
    for rname, rmask in reg.items():
        m = rmask & maps.land
        metrics["regions"][rname] = {k: score(maps.igbp, v, m) for k, v in methods.items()}
        metrics["regions"][rname]["dominant_reference_convention"] = reference_convention(
            maps, rmask
        )
    metrics["count_mismatch_cells"] = {
        k: count_mismatch(v, maps) for k, v in methods.items() if k != "model_argmax_undecoded"
    }
    metrics["cells_with_land"] = int((maps.nland > 0).sum())
    metrics["koppen_table_west"] = table.tolist()
    return metrics, {"prediction": pred, "argmax": am, "dominant": dom, "koppen": kg_map}


def quicklook(maps: Maps, out: dict[str, np.ndarray], path: Path, window: dict) -> None:
    """Truth / model / dominant / Köppen allocation for one window, IGBP colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    r0, r1 = lat_to_row(window["lat"][1]), lat_to_row(window["lat"][0])
    c0, c1 = lon_to_col(window["lon"][0]), lon_to_col(window["lon"][1])
    cmap = ListedColormap(IGBP_COLOURS)
    land = maps.land[r0:r1, c0:c1]
    panels = [
        ("MCD12C1 2019 (truth)", maps.igbp),
        ("model (decoded)", out["prediction"]),
        ("1° dominant class", out["dominant"]),
        ("Köppen allocation", out["koppen"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 10), dpi=90)
    ext = (window["lon"][0], window["lon"][1], window["lat"][0], window["lat"][1])
    for ax, (title, a) in zip(axes.ravel(), panels, strict=True):
        img = np.ma.masked_where(~land, a[r0:r1, c0:c1])
        ax.imshow(img, cmap=cmap, vmin=-0.5, vmax=K - 0.5, interpolation="nearest", extent=ext)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(np.arange(ext[0], ext[1] + 1, 5))
        ax.set_yticks(np.arange(ext[2], ext[3] + 1, 5))
        ax.grid(color="k", alpha=0.15, lw=0.5)
    handles = [
        Patch(color=IGBP_COLOURS[c.index], label=f"{c.index} {c.name}") for c in IGBP_CLASSES
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(f"{window['name']}: {window['lat'][0]}–{window['lat'][1]}° N, "
                 f"{window['lon'][0]}–{window['lon'][1]}° E (land only)", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    fig.savefig(path)
    plt.close(fig)


METHOD = (
    "Land = the land mask at 0.05° (global-land-mask, majority of its 6 × 6 1-km samples). "
    "Coarse input: per 1° cell (20 × 20 px), the fraction of its land pixels in each IGBP "
    "class; the counts the decoders must reach are those fractions × the land pixels (exact "
    "integers, via decoding.target_counts). Model: per-pixel logits from the U-Net, count-"
    "calibrated where the config says count_aware (one offset per cell and class, by iterative "
    "proportional fitting, so that the cell's mean softmax over its land pixels equals its "
    "fractions); decoded by starting from their argmax and calling decoding.rebalance (log-"
    "softmax scores, land pixels free, target = the counts) per 1° cell, cells processed in "
    "chunks sorted by the conversions they need and compacted to the classes and pixels that "
    "can move (the same result as rebalance on the whole cell). (a) Dominant: the cell's most "
    "frequent land class (ties to the lower code) on all its pixels. (b) Köppen allocation: "
    "from the land pixels west of 20° E, a table of class counts per Köppen group gives the "
    "score log P(class | group) / P(class) (add-one smoothing); in each cell the (group, class)"
    " pairs are taken by score, best first, each taking min(pixels of the group still free, "
    "pixels of the class still to place); inside a group, pixels take their classes in row-"
    "major order. Every cell then has exactly its counts. Training: random 160 × 160 px "
    "patches, coarse-aligned, lying wholly west of 20° E (no wrap across the date line), "
    "centred on land; cross-entropy (class-weighted if class_weight_power > 0) of the (count-"
    "calibrated) logits on land pixels; each patch turned by a random symmetry of the square."
)

QUICKLOOK_WINDOW = {"name": "eastern China", "lat": (20, 40), "lon": (100, 120)}
TARGET = {"accuracy": 0.84, "mean_iou": 0.49}
REFERENCE_DOMINANT = {"accuracy": 0.7935, "mean_iou": 0.4385}


def _fmt(s: dict) -> str:
    return f"{s['accuracy']:.4f} | {s['mean_iou']:.4f} | {s['macro_f1']:.4f}"


def report_md(metrics: dict, manifest: dict) -> str:
    """The report: what was done and the numbers, in Markdown."""
    east = f"east_of_{SCORE_WEST_LON:g}E"
    west = f"west_of_{TRAIN_EAST_LON:g}E"
    me, mw = metrics["regions"][east], metrics["regions"][west]
    tr = manifest.get("training", {})
    tm = metrics["timing"]
    ok = (me["model"]["accuracy"] >= TARGET["accuracy"]) and (
        me["model"]["mean_iou"] >= TARGET["mean_iou"]
    )
    rows = [
        ("model (U-Net, decoded to the 1° counts)", "model"),
        ("model, raw argmax (not count-consistent)", "model_argmax_undecoded"),
        ("(a) 1° dominant class", "dominant"),
        ("(b) Köppen allocation (count-consistent)", "koppen_allocation"),
    ]
    lines = [
        f"# Real case: MCD12C1 2019 at 0.05° from 1° fractions ({manifest['name']})",
        "",
        "Truth: MODIS MCD12C1 2019 IGBP (3600 × 7200, classes 0–16 as in the file). "
        "Inputs: the 17 class fractions of each 1° cell over its land pixels, the "
        "Köppen–Geiger groups and the land mask (no latitude or longitude) — all real "
        "maps (provenance in the bundle's manifest). Land = the land mask at 0.05°; "
        "class 0 on land counts as a class. Trained only on land west of 20° E, scored "
        "only on land east of 60° E. Scores from one confusion matrix over all scored pixels "
        "(`landbc.emulator.metrics`); mean IoU over the classes present in truth or "
        "prediction.",
        "",
        f"## East of 60° E (scored region, {me['model']['pixels']:,} land pixels)",
        "",
        "| method | accuracy | mean IoU | macro F1 |",
        "|---|---|---|---|",
        *(f"| {label} | {_fmt(me[k])} |" for label, k in rows),
        "",
        f"Target for the model: accuracy ≥ {TARGET['accuracy']}, mean IoU ≥ "
        f"{TARGET['mean_iou']}: **{'reached' if ok else 'NOT reached'}** "
        f"(accuracy {me['model']['accuracy'] - TARGET['accuracy']:+.4f}, mean IoU "
        f"{me['model']['mean_iou'] - TARGET['mean_iou']:+.4f}).",
        "",
        f"## West of 20° E (training region, {mw['model']['pixels']:,} land pixels)",
        "",
        "| method | accuracy | mean IoU | macro F1 |",
        "|---|---|---|---|",
        *(f"| {label} | {_fmt(mw[k])} |" for label, k in rows),
        "",
        "## The quoted reference for the dominant class",
        "",
        f"Quoted east of 60° E: accuracy {REFERENCE_DOMINANT['accuracy']} / mean IoU "
        f"{REFERENCE_DOMINANT['mean_iou']}. With land = the land mask (fractions over land "
        f"pixels, scored on land pixels) the dominant class scores "
        f"{me['dominant']['accuracy']:.4f} / {me['dominant']['mean_iou']:.4f}. The quoted "
        "pair is reproduced when the fractions are taken over all 400 pixels of a cell "
        "(sea counted as class 0, so coastal cells may be 'water'), the pixels scored are "
        "those where MCD12C1 is not 0 (MODIS land, not the land mask) and the mean IoU runs "
        "over the classes present in the truth (which drops the predicted-only class 0): "
        f"{me['dominant_reference_convention']['accuracy']:.4f} / "
        f"{me['dominant_reference_convention']['mean_iou']:.4f} on "
        f"{me['dominant_reference_convention']['pixels']:,} pixels. The numbers above use "
        "the land mask as asked.",
        "",
        "## Per-class IoU east of 60° E",
        "",
        "| code | class | model | dominant | Köppen allocation |",
        "|---|---|---|---|---|",
    ]

    def _iou(v):
        return "–" if v is None else f"{v:.3f}"

    for c in IGBP_CLASSES:
        lines.append(
            f"| {c.index} | {c.name} | {_iou(me['model']['iou'][c.index])} | "
            f"{_iou(me['dominant']['iou'][c.index])} | "
            f"{_iou(me['koppen_allocation']['iou'][c.index])} |"
        )
    mis = metrics["count_mismatch_cells"]
    lines += [
        "",
        "## Scenario consistency",
        "",
        f"1° cells with land: {metrics['cells_with_land']:,}. Cells whose land-pixel class "
        f"counts differ from the fractions' counts: model {mis['model']}, Köppen allocation "
        f"{mis['koppen_allocation']}, dominant {mis['dominant']} (not count-consistent by "
        "construction).",
        "",
        "## Time",
        "",
        f"Training: {tr.get('iterations')} iterations of {manifest['config']['batch']} × "
        f"{manifest['config']['patch']}² px in {tr.get('wall_s')} s on {tr.get('device')} "
        f"({tr.get('torch_threads')} threads, float32). Global prediction ({tm['tiles']} "
        f"tiles of {tm['tile']}² px + {tm['margin']} px margin): net {tm['net_s']} s, "
        f"decoding {tm['decode_s']} s ({tm['conversions']:,} conversions), total "
        f"{tm['total_s']} s; Köppen allocation {tm['koppen_allocation_s']} s.",
        "",
        "## Method",
        "",
        METHOD,
        "",
        f"Net: landbc.emulator.nets.UNet, base {manifest['net']['base']}, "
        f"{manifest['net']['levels']} poolings, {manifest['net']['parameters']:,} parameters, "
        f"inputs {IN_CHANNELS} channels ({', '.join(n for n, _ in CHANNELS)}), the fractions "
        "also added to the logits with a learned gain (prior_channel 0). Config: "
        f"`{json.dumps({k: v for k, v in manifest['config'].items() if k not in ('out', 'run_dir', 'cache')})}`.",  # noqa: E501
        "",
        f"![truth / model / dominant / Köppen]({QUICKLOOK_PNG})",
        "",
    ]
    return "\n".join(lines)


QUICKLOOK_PNG = "compare_east.png"


def evaluate(
    bundle: Path, out: Path, cache: Path | None = Path(".cache/realcase"), device: str = "cpu",
    threads: int = 0, progress: bool = True,
) -> dict:  # fmt: skip
    """Load the bundle (fresh TorchScript), predict the global map, score, write
    report.md, metrics.json, prediction.npy and the quicklook into `out`."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = parse_device(device)
    net, manifest = load_bundle(bundle)
    net = net.to(dev)
    maps = load_maps(cache)
    metrics, outs = evaluate_net(
        net, maps, dev, tile=int(manifest["config"]["tile"]),
        margin=int(manifest["config"]["margin"]), multiple=2 ** int(manifest["net"]["levels"]),
        progress=progress, count_aware=bool(manifest["config"].get("count_aware", False)),
    )  # fmt: skip
    metrics["bundle"] = {"path": str(bundle), "name": manifest["name"], "files": manifest["files"]}
    metrics["device"] = str(dev)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "prediction.npy", outs["prediction"].astype(np.uint8))
    with open(out / "metrics.json", "w") as fh:
        json.dump(metrics, fh, indent=1)
        fh.write("\n")
    quicklook(maps, outs, out / QUICKLOOK_PNG, QUICKLOOK_WINDOW)
    (out / "report.md").write_text(report_md(metrics, manifest))
    east = metrics["regions"][f"east_of_{SCORE_WEST_LON:g}E"]
    for k in ("model", "dominant", "koppen_allocation"):
        log.info("east of 60E %-18s accuracy %.4f  mean IoU %.4f", k, east[k]["accuracy"],
                 east[k]["mean_iou"])  # fmt: skip
    log.info("wrote %s", out)
    return metrics


def summary_metrics(metrics: dict) -> dict:
    """The accuracy / mean IoU pairs kept in the manifest."""
    return {
        r: {
            k: {"accuracy": round(v["accuracy"], 4), "mean_iou": round(v["mean_iou"], 4)}
            for k, v in d.items()
        }
        for r, d in metrics["regions"].items()
    } | {"timing": metrics["timing"]}


def train(cfg: TrainConfig) -> Path:
    """Train, export the bundle, and (cfg.score) put its scores in the manifest."""
    maps = load_maps(cfg.cache)
    net, record = train_net(cfg, maps)
    out = export_bundle(net, cfg, record, cfg.out, Path(cfg.run_dir) / LOSS_PNG)
    if cfg.score:
        scripted, manifest = load_bundle(out)
        metrics, _ = evaluate_net(
            scripted.to(parse_device(cfg.device)), maps, cfg.device, cfg.tile, cfg.margin,
            2**cfg.levels, count_aware=cfg.count_aware,
        )  # fmt: skip
        manifest["metrics"] = summary_metrics(metrics)
        write_manifest(out, manifest)
    log.info("bundle written to %s", out)
    return out


# --- CLI ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="landbc realcase",
        description="Real land-cover case: MCD12C1 2019 at 0.05° from its 1° fractions.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    d = TrainConfig()
    t = sub.add_parser("train", help="train the U-Net west of 20E and write the bundle")
    for f_ in fields(TrainConfig):
        name = "--" + f_.name.replace("_", "-")
        default = getattr(d, f_.name)
        if isinstance(default, bool):
            t.add_argument(name, action=argparse.BooleanOptionalAction, default=default)
        else:
            t.add_argument(name, type=type(default), default=default)
    e = sub.add_parser("evaluate", help="score a bundle east of 60E and write the report")
    e.add_argument("--bundle", type=Path, default=Path("weights/realcase"))
    e.add_argument("--out", type=Path, default=Path("output/realcase"))
    e.add_argument("--cache", type=Path, default=d.cache)
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--no-progress", action="store_true")
    b = sub.add_parser("baselines", help="only the two baselines (no net)")
    b.add_argument("--cache", type=Path, default=d.cache)
    b.add_argument("--score", default="pmi", choices=("pmi", "conditional"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.cmd == "train":
        cfg = TrainConfig(**{f_.name: getattr(args, f_.name) for f_ in fields(TrainConfig)})
        train(cfg)
    elif args.cmd == "evaluate":
        evaluate(args.bundle, args.out, args.cache, args.device, args.threads,
                 progress=not args.no_progress)  # fmt: skip
    else:
        maps = load_maps(args.cache)
        reg = regions(maps)
        west = reg[f"west_of_{TRAIN_EAST_LON:g}E"]
        t0 = time.perf_counter()
        kg = koppen_allocation(maps, koppen_scores(koppen_table(maps, west), args.score))
        log.info("Köppen allocation in %.1f s", time.perf_counter() - t0)
        dom = dominant_map(maps)
        for rname, rmask in reg.items():
            for k, v in (("dominant", dom), ("koppen_allocation", kg)):
                s = score(maps.igbp, v, rmask & maps.land)
                print(f"{rname:14s} {k:18s} accuracy {s['accuracy']:.4f} "
                      f"mean IoU {s['mean_iou']:.4f} pixels {s['pixels']}")  # fmt: skip
            r = reference_convention(maps, rmask)
            print(f"{rname:14s} dominant (reference convention) accuracy {r['accuracy']:.4f} "
                  f"mean IoU {r['mean_iou']:.4f} pixels {r['pixels']}")  # fmt: skip


if __name__ == "__main__":
    main()
