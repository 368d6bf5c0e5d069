"""`landbc train`: build a bundle from a cube.

The recipe follows the BSC work (REFERENCES.md), with the changes issue 8 asked for:

* patches sampled on land; the adjacent year's LU/LC as prior, partly masked with
  random 32×32 blocks (a share drawn per sample, up to 75 %) and with a few
  pixels (`noise`, 2 %) given random classes; everything the stepper derives from
  the prior (its coarse fractions, the per-cell needs) comes from the clean prior;
* the LU net is told how many pixels of each class its coarse cell gains or loses
  (`need`, here from the truth; in the stepper from the scenario-consistent
  decoding, `decoding.scenario_counts`), so it learns *where* change goes, and the
  stepper converts exactly that many pixels (`decoding.rebalance`);
* a recursive unroll of `unroll` steps with gradients through it (the net's own
  probabilities become the next prior);
* a cross-entropy on land where each changed pixel weighs 1 + `change_weight`
  times a stable one (per pixel: not a mean over changed pixels, which would
  weigh a changed pixel ~57x at 0.36 % change a year);
* LAI regressed (MSE on land) from a noisy prior month, unrolled likewise.

The net inputs are built by `features`, the same code the stepper runs.

Training runs on `--device` (cpu by default, or cuda[:N]) under bfloat16 autocast
where that device does bf16 natively and fast, in float32 elsewhere (`--dtype
auto`, decided by `precision`). `--time-budget` bounds the wall-clock time per
direction (each net stops early when its share is spent), so a run on a lent
machine or in a limited session always ends with a bundle. The exported nets are
float32 whatever was used, and the bundle's training record says what was.

A run keeps a run folder (`--run-dir`, by default `<out>.run` beside the bundle), so
that an interrupted run (a lent machine taken back, a session ended) loses little:

* `checkpoint.pt`, rewritten atomically every `--checkpoint-every` iterations and at
  the end of every net: the finished nets, the current net with its optimiser and
  losses, the random generators, the time spent and the config. `--resume`
  continues from it and, without a time budget, ends with the same weights as an
  uninterrupted run (bit for bit on the CPU): the work since the last checkpoint is
  redone, drawing the same batches. A checkpoint is never overwritten without
  `--resume`, and never resumed under another config;
* `loss_<direction>_<net>.png` (loss per iteration and a running mean) and
  `losses.json` (every loss), to watch a run and to judge one afterwards.

Each net's history also records the seconds spent in the loader (drawing,
corrupting, moving and refining batches) and in the steps (forward, backward,
optimiser), and their ratio: whether a faster device would pay, or the loader is
the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm import tqdm

from . import bundle, catalog, features, precision
from .api import parse_device
from .cube import Cube, month_index
from .grid import Grid
from .nets import UNet, fold_batchnorm, unet_from_scripted
from .stepper import BACKWARD, FORWARD, Stepper

log = logging.getLogger(__name__)
DIRECTION_SIGN = {"forward": FORWARD, "backward": BACKWARD}
DIRECTION_NAME = {sign: name for name, sign in DIRECTION_SIGN.items()}


@dataclass
class TrainConfig:
    cube: Path
    out: Path
    name: str = "demo"
    # Every year training may read, priors included: nothing outside it leaks in
    # (the demo holds 2016-2020 out for evaluation).
    years: tuple[int, int] = (1960, 2000)
    directions: tuple[str, ...] = ("forward", "backward")
    patch: int = 160
    batch: int = 8
    iters_lu: int = 400
    iters_lc: int = 200
    iters_lai: int = 400
    lr: float = 2e-3
    unroll: int = 2  # years the LU and LC nets are unrolled on their own outputs
    # months the LAI net is unrolled on its own outputs: the slow anomaly it must
    # carry lives for months, and the coupled run is 12 steps a year
    unroll_lai: int = 12
    change_weight: float = 4.0
    mask_max: float = 0.75
    mask_block: int = 32
    noise: float = 0.02
    tile: int = 512
    seed: int = 0
    dtype: str = "auto"  # autocast dtype: "auto", "float32" or "bfloat16" (precision.py)
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    # Wall-clock budget (s) per direction, 0 for none: each net gets its share in
    # proportion to its iterations and stops early when that is spent (recorded in
    # the history), so a run on a lent machine always ends with a bundle.
    time_budget_s: float = 0.0
    # Run folder (checkpoint.pt, loss curves, losses.json); None: `<out>.run` beside
    # the bundle, set by __post_init__ so the recorded config says where it was.
    run_dir: Path | None = None
    # Iterations between checkpoints; one is also written at the end of every net
    # (0: only there).
    checkpoint_every: int = 50
    # Continue from the run folder's checkpoint (which must have the same config).
    resume: bool = False
    base: int = 16
    # A bundle whose LU and LC nets are kept (not trained): only the LAI nets are
    # trained, e.g. after a change to the LAI net's inputs. Same cube and years.
    lu_lc_from: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.run_dir is None:
            self.run_dir = Path(str(self.out) + ".run")

    def validate(self, cube: Cube) -> None:
        f = cube.grid.coarse_factor
        if self.patch % 16 or self.patch % f:
            raise ValueError(
                f"patch must be a multiple of 16 and of the coarse factor {f}, found {self.patch}"
            )
        ny, nx = cube.grid.shape
        if self.patch > min(ny, nx):
            raise ValueError(f"patch {self.patch} larger than the cube ({ny}x{nx})")
        lo, hi = self.years
        if lo < cube.first_year or hi > cube.last_year:
            raise ValueError(
                f"years {self.years} outside the cube {cube.path} "
                f"({cube.first_year}..{cube.last_year})"
            )
        if hi - lo < self.unroll:
            raise ValueError(
                f"years {self.years} span {hi - lo + 1} years; a prior and {self.unroll} "
                f"unrolled steps need at least {self.unroll + 1}"
            )
        if not 1 <= self.unroll_lai < 12 * (hi - lo + 1):
            raise ValueError(
                f"unroll_lai must be 1 .. {12 * (hi - lo + 1) - 1} months (a prior and the "
                f"unrolled months within years {self.years}), found {self.unroll_lai}"
            )
        if self.lu_lc_from is not None and not Path(self.lu_lc_from).is_dir():
            raise ValueError(f"lu_lc_from: no bundle folder at {self.lu_lc_from}")
        for d in self.directions:
            if d not in DIRECTION_SIGN:
                raise ValueError(f"directions: expected forward/backward, found {d!r}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, found {self.checkpoint_every}")
        precision.parse_dtype(self.dtype, "dtype")
        self.torch_device()

    def torch_device(self) -> torch.device:
        """The training device, checked (a ValueError names what is wrong)."""
        return parse_device(self.device)

    def record(self) -> dict[str, Any]:
        """The config with paths as strings: what the manifest records, and what a
        checkpoint keeps to check a resumption against."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


# ------------------------------------------------------------------ data


class PatchSampler:
    """Random land patches from a cube: yearly maps in memory, LAI read per sample."""

    def __init__(self, cube: Cube, cfg: TrainConfig, rng: np.random.Generator) -> None:
        self.cube = cube
        self.cfg = cfg
        self.rng = rng
        root = cube.root
        self.f = cube.grid.coarse_factor
        self.static = cube.maps()
        # the LAI net's climatology: of the training years, as the host gives it
        self.lai_climatology = cube.lai_climatology(cfg.years, progress=True)
        self.y0 = cube.first_year
        self.lu = np.asarray(root["lu"][:])
        self.lc = np.asarray(root["lc"][:])
        self.luh2 = np.asarray(root["luh2_frac"][:], dtype=np.float32)
        self.secma = np.asarray(root["secma"][:], dtype=np.float32)
        self.secmb = np.asarray(root["secmb"][:], dtype=np.float32)
        self.co2 = np.asarray(root["co2"][:], dtype=np.float32)
        self.clim = {n: np.asarray(root[n][:], dtype=np.float32) for n in ("t2m", "tp", "ssrd")}
        self.lai = root["lai"]
        p = cfg.patch
        land = self.static["land_mask"].astype(np.float32)
        ny, nx = land.shape
        # candidate origins: coarse-aligned, patch at least 10 % land
        rows = np.arange(0, ny - p + 1, self.f)
        cols = np.arange(0, nx - p + 1, self.f)
        csum = np.pad(land.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        frac = (
            csum[rows[:, None] + p, cols[None, :] + p]
            - csum[rows[:, None], cols[None, :] + p]
            - csum[rows[:, None] + p, cols[None, :]]
            + csum[rows[:, None], cols[None, :]]
        ) / p**2
        r, c = np.nonzero(frac >= 0.1)
        if len(r) == 0:
            raise ValueError(f"cube {cube.path} has no {p}x{p} patch with >= 10% land")
        self.origins = np.stack([rows[r], cols[c]], axis=1)

    def _origin(self) -> tuple[int, int]:
        r, c = self.origins[self.rng.integers(len(self.origins))]
        return int(r), int(c)

    def _hi(self, arr: np.ndarray, r: int, c: int) -> np.ndarray:
        p = self.cfg.patch
        return arr[..., r : r + p, c : c + p]

    def _co(self, arr: np.ndarray, r: int, c: int) -> torch.Tensor:
        """The coarse cells under a patch (refined to the patch later, by `refine`,
        on the training device: upsampling on the CPU was most of a batch's cost)."""
        p, f = self.cfg.patch, self.f
        return torch.from_numpy(
            np.ascontiguousarray(arr[..., r // f : (r + p) // f, c // f : (c + p) // f])
        )

    def _hi_stack(self, arr: np.ndarray, index: list[int], batch) -> torch.Tensor:
        """Patches of arr[i] (high res) for each (i, origin) of the batch."""
        pairs = zip(index, batch, strict=True)
        return torch.from_numpy(np.stack([self._hi(arr[i], r, c) for i, (r, c) in pairs]))

    def _co_stack(self, arr: np.ndarray, index: list[int], batch) -> torch.Tensor:
        """Coarse patches of arr[i] for each (i, origin)."""
        pairs = zip(index, batch, strict=True)
        return torch.stack([self._co(arr[i], r, c) for i, (r, c) in pairs])

    def _static(self, batch: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        return {
            n: torch.from_numpy(np.stack([self._hi(a, r, c) for r, c in batch]))
            for n, a in self.static.items()
        }

    def _first_targets(self, lo: int, hi: int, sign: int, b: int, u: int) -> np.ndarray:
        """b random first-target indices t such that the prior t - sign and the
        u unrolled targets up to t + sign * (u - 1) all lie in [lo, hi]."""
        first, last = (lo + 1, hi - u + 1) if sign > 0 else (lo + u - 1, hi - 1)
        return self.rng.integers(first, last + 1, size=b)

    def yearly(self, sign: int, b: int) -> dict:
        """A batch for the LU and LC nets: priors of year y - sign, targets y, y + sign, ..."""
        lo, hi = (y - self.y0 for y in self.cfg.years)
        batch = [self._origin() for _ in range(b)]
        first = self._first_targets(lo, hi, sign, b, self.cfg.unroll)
        out = {"static": self._static(batch), "steps": []}
        for k in range(self.cfg.unroll + 1):
            yi = [int(y) + sign * (k - 1) for y in first]
            entry = {
                "lu": self._hi_stack(self.lu, yi, batch),
                "lc": self._hi_stack(self.lc, yi, batch),
                "luh2": self._co_stack(self.luh2, yi, batch),
                "secma": self._co_stack(self.secma, yi, batch),
                "secmb": self._co_stack(self.secmb, yi, batch),
            }
            out["steps"].append(entry)
        return out

    def monthly(self, sign: int, b: int) -> dict:
        """A batch for the LAI net: prior month m - sign, targets m, m + sign, ..."""
        lo, hi = self.cfg.years
        batch = [self._origin() for _ in range(b)]
        u = self.cfg.unroll_lai
        start = self._first_targets(
            month_index(lo, 1, self.y0), month_index(hi, 12, self.y0), sign, b, u
        )
        p = self.cfg.patch
        lat = np.stack([self.cube.grid.lat[r : r + p] for r, _ in batch]).astype(np.float32)
        clim = np.stack([self._hi(self.lai_climatology, r, c) for r, c in batch])
        out = {
            "static": self._static(batch),
            "lai_climatology": torch.from_numpy(clim),
            "lat": torch.from_numpy(lat),
            "steps": [],
        }
        for k in range(u + 1):
            ti = [int(t) + sign * (k - 1) for t in start]
            yi = [t // 12 for t in ti]
            # LAI is read from the store per sample (the whole cube would not fit in memory)
            pairs = zip(ti, batch, strict=True)
            lai = np.stack([self.lai[t, r : r + p, c : c + p] for t, (r, c) in pairs])
            entry = {
                "lai": torch.from_numpy(lai.astype(np.float32)),
                "lc": self._hi_stack(self.lc, yi, batch),
                "month": [t % 12 + 1 for t in ti],
                "co2": [float(self.co2[y]) for y in yi],
                **{n: self._co_stack(a, ti, batch) for n, a in self.clim.items()},
            }
            out["steps"].append(entry)
        return out


COARSE_KEYS = ("luh2", "secma", "secmb", "t2m", "tp", "ssrd")


def refine(batch: dict, f: int) -> dict:
    """A batch with its coarse fields (`COARSE_KEYS`) repeated onto the patch's pixels."""
    for entry in batch["steps"]:
        for k in COARSE_KEYS:
            if k in entry:
                entry[k] = entry[k].repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)
    return batch


def normalisation(cube: Cube, years: tuple[int, int]) -> dict[str, list[float]]:
    """Mean and std of the continuous inputs over land and the training years."""
    root = cube.root
    land = np.asarray(root["land_mask"][:]).astype(bool)
    coarse_land = cube.grid.coarsen(land.astype(np.float32)) > 0.5
    yi = slice(years[0] - cube.first_year, years[1] - cube.first_year + 1)
    ti = slice(
        month_index(years[0], 1, cube.first_year), month_index(years[1], 12, cube.first_year) + 1
    )

    def stats(x: np.ndarray) -> list[float]:
        x = x.astype(np.float64)
        return [float(x.mean()), float(max(x.std(), 1e-6))]

    norm = {
        "elevation": stats(np.asarray(root["elevation"][:])[land]),
        "slope": stats(np.asarray(root["slope"][:])[land]),
        "secma": stats(np.asarray(root["secma"][yi])[:, coarse_land]),
        "secmb": stats(np.asarray(root["secmb"][yi])[:, coarse_land]),
        "co2": stats(np.asarray(root["co2"][yi])),
    }
    for n in ("t2m", "tp", "ssrd"):
        norm[n] = stats(np.asarray(root[n][ti])[:, coarse_land])
    # LAI: a sample of months is enough for its scale
    months = range(ti.start, ti.stop, max(1, (ti.stop - ti.start) // 24))
    lai = np.concatenate([np.asarray(root["lai"][t])[land] for t in months])
    norm["lai"] = stats(lai)
    return norm


# ------------------------------------------------------------------ corruption


def corrupt_classes(
    classes: torch.Tensor, n: int, cfg: TrainConfig, gen: torch.Generator
) -> torch.Tensor:
    """One-hot prior with random blocks masked (all-zero = unknown) and noise."""
    b, p, q = classes.shape
    noisy = classes.long().clone()
    flip = torch.rand(b, p, q, generator=gen) < cfg.noise
    noisy[flip] = torch.randint(0, n, (int(flip.sum()),), generator=gen)
    probs = features.one_hot(noisy, n)
    k = cfg.mask_block
    cells = torch.rand(b, 1, math.ceil(p / k), math.ceil(q / k), generator=gen)
    share = torch.rand(b, 1, 1, 1, generator=gen) * cfg.mask_max
    keep = (cells >= share).float()
    keep = keep.repeat_interleave(k, 2).repeat_interleave(k, 3)[:, :, :p, :q]
    return probs * keep


def class_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    prior: torch.Tensor,
    land: torch.Tensor,
    change_weight: float,
) -> tuple[torch.Tensor, int]:
    """Cross-entropy over land pixels, each changed pixel (target != prior) weighing
    1 + `change_weight` times a stable one.

    The weight is per pixel: a changed pixel counts the same however rare changes
    are in the batch (a mean over changed pixels would weigh each one ~57x a stable
    pixel at 0.36 % change a year, and teach the net to see change everywhere)."""
    ce = F.cross_entropy(logits.float(), target.long(), reduction="none")
    land = land.bool()
    changed = land & (target != prior)
    weight = land.float() * (1.0 + change_weight * changed.float())
    loss = (ce * weight).sum() / land.sum().clamp_min(1)
    return loss, int(changed.sum())


# ------------------------------------------------------------------ loop pieces


def _static_inputs(batch: dict, norm: dict) -> list[torch.Tensor]:
    st = batch["static"]
    return features.static_inputs(
        st["land_mask"], st["elevation"], st["slope"], st["koppen"], st["igbp"], norm
    )


def _bar(what: str, iters: int, done: int = 0):
    """A progress bar over iterations done..iters-1 (a resumed net goes on where its
    checkpoint left it)."""
    # disable=None: a bar on a terminal only; logs get _log_progress lines instead
    return tqdm(
        range(done, iters),
        desc=f"train {what}",
        initial=done,
        total=iters,
        leave=False,
        disable=None,
    )


class Schedule:
    """One-cycle learning rate (warm-up over the first 15 %, cosine decay to lr/1e4)
    driven by progress: the share of the iterations done, or, under a time budget
    (`TrainConfig.time_budget_s`), the share of the net's time spent if that is
    larger. A run stopped by its budget has therefore still annealed. `spent` is the
    time the net trained before an interruption: a resumed net's budget counts it."""

    def __init__(self, cfg: TrainConfig, iters: int, spent: float = 0.0) -> None:
        self.lr = cfg.lr
        self.iters = max(iters, 1)
        self.start = time.time() - spent
        total = cfg.iters_lai + (0 if cfg.lu_lc_from else cfg.iters_lu + cfg.iters_lc)
        self.seconds = (
            cfg.time_budget_s * iters / max(total, 1) if cfg.time_budget_s > 0 else math.inf
        )

    def elapsed(self) -> float:
        """Wall-clock seconds the net has trained, interrupted runs included."""
        return time.time() - self.start

    def progress(self, done: int) -> float:
        return max(done / self.iters, self.elapsed() / self.seconds)

    def rate(self, done: int) -> float:
        x = min(self.progress(done), 1.0)
        if x < 0.15:
            return self.lr * (0.04 + 0.96 * x / 0.15)
        return self.lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (x - 0.15) / 0.85)))


def _update(opt, sched: Schedule, loss: torch.Tensor, losses: list[float], bar) -> None:
    """One optimiser step on the mean loss per unrolled step; record it."""
    for group in opt.param_groups:
        group["lr"] = sched.rate(len(losses))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    losses.append(float(loss.detach()))
    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")


def _stop(sched: Schedule, losses: list[float], what: str) -> bool:
    """True once the net's iterations or its share of the time budget are spent."""
    if len(losses) >= sched.iters:
        return True
    if sched.progress(len(losses)) >= 1.0:
        log.warning("%s: time budget spent at iteration %d/%d", what, len(losses), sched.iters)
        return True
    return False


def _log_progress(what: str, losses: list[float], iters: int) -> None:
    """A log line every tenth of the iterations: progress where no bar is drawn (CI, logs)."""
    n = len(losses)
    if n % max(1, iters // 10) == 0 and n < iters:
        log.info("%s: iteration %d/%d, loss %.4f", what, n, iters, float(np.mean(losses[-20:])))


def _optimiser(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)


def _autocast(device: torch.device, dtype: torch.dtype):
    """bf16 autocast on the training device; a no-op in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)


def _to(x, device: torch.device):
    """A batch (dicts and lists of tensors) on the training device."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    if isinstance(x, list):
        return [_to(v, device) for v in x]
    return x


def _sync(device: torch.device) -> None:
    """Wait for the work queued on the device, so that a clock read next charges it to
    whatever queued it (the loader's copies and refinement, not the step after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------ run folder

CHECKPOINT = "checkpoint.pt"
# Layout of checkpoint.pt; a change to it bumps this, and older checkpoints are refused
# by name rather than failing on a missing key half-way through a resumption.
CHECKPOINT_FORMAT = 1
LOSSES = "losses.json"
# Config keys a resumption may change: where the run lives and the flag asking to
# resume. Anything else would give weights that are neither run's.
RESUME_FREE_KEYS = frozenset({"run_dir", "resume"})


@dataclass
class NetProgress:
    """How far one net's training has got, beyond what its module and optimiser hold:
    what a checkpoint keeps to carry the net's record across an interruption."""

    losses: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # wall time trained, interrupted runs included
    loader_s: float = 0.0  # drawing, corrupting, moving and refining batches
    step_s: float = 0.0  # forward, backward and optimiser step
    history: dict | None = None  # the net's record, once it is finished

    def record(self, iters: int) -> dict[str, Any]:
        """The finished net's history (the bundle's training.history). The loader and
        step times say where the time went: a loader_per_step near or above 1 means
        a faster device would not pay before a faster loader."""
        return {
            "iters": len(self.losses),
            "iters_planned": iters,
            "final_loss": float(np.mean(self.losses[-20:])) if self.losses else None,
            "wall_s": round(self.elapsed_s, 3),
            "loader_s": round(self.loader_s, 3),
            "step_s": round(self.step_s, 3),
            "loader_per_step": round(self.loader_s / self.step_s, 3) if self.step_s else None,
        }


def _rng_state(gen: torch.Generator, rng: np.random.Generator) -> dict[str, Any]:
    """Every random stream training draws from: the corruption generator `gen`, the
    sampler's numpy generator (patch origins and years) and torch's global one (the
    nets' initial weights). Batches are drawn on the CPU, so no device stream is."""
    return {
        "gen": gen.get_state(),
        "sampler": rng.bit_generator.state,
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: dict[str, Any], gen: torch.Generator, rng: np.random.Generator) -> None:
    """Set the streams of `_rng_state` back to `state`."""
    gen.set_state(state["gen"])
    rng.bit_generator.state = state["sampler"]
    torch.set_rng_state(state["torch"])


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` through a temporary file renamed over it: an interruption while
    writing (the very thing checkpoints are for) leaves the previous version whole."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def plot_losses(
    losses: list[float],
    path: Path,
    title: str,
    ylabel: str = "loss per unrolled step",
    window: int = 20,
) -> None:
    """Loss per iteration and its running mean over `window` (20: as logged) as a PNG,
    written atomically. Drawn on a bare Figure, not through pyplot: no global backend
    to switch, no window."""
    y = np.asarray(losses, dtype=np.float64)
    it = np.arange(1, len(y) + 1)
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.subplots()
    ax.plot(it, y, lw=0.6, alpha=0.5, label="loss")
    n = min(window, len(y) // 2)  # a mean over half the points at most, so it shows a line
    if n >= 2:
        mean = np.convolve(y, np.ones(n) / n, mode="valid")
        ax.plot(it[n - 1 :], mean, lw=1.5, label=f"mean of {n}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    replace_atomically(path, partial(fig.savefig, format="png"))


class Run:
    """The run folder of a `train` call: the checkpoint it resumes from and keeps up to
    date, the loss curves and losses.json.

    Opening it refuses an existing checkpoint unless cfg.resume (an earlier run is
    never silently overwritten), and refuses to resume under another config (the
    result would be neither run's)."""

    def __init__(self, cfg: TrainConfig, gen: torch.Generator, rng: np.random.Generator) -> None:
        assert cfg.run_dir is not None  # set by TrainConfig.__post_init__
        self.cfg = cfg
        self.folder = Path(cfg.run_dir)
        self.path = self.folder / CHECKPOINT
        self.gen, self.rng = gen, rng
        # finished nets by direction and net: weights (on the CPU) and progress
        self.finished: dict[str, dict[str, dict]] = {}
        self.resumed: dict | None = None  # the checkpoint this run continues
        self.resumes: list[dict] = []  # where the run was resumed, each time
        spent = 0.0
        if self.path.exists():
            if not cfg.resume:
                raise FileExistsError(
                    f"run folder {self.folder} holds the checkpoint of an earlier run: pass "
                    "--resume to continue it, or remove the folder to start afresh"
                )
            self.resumed = torch.load(self.path, map_location="cpu", weights_only=True)
            self._check(self.resumed)
            self.finished = self.resumed["finished"]
            spent = float(self.resumed["wall_s"])
            at = self.resumed["position"]
            self.resumes = [*self.resumed["resumes"], {**at, "wall_s": round(spent, 1)}]
            log.info(
                "resuming from %s: %s net (%s) at iteration %d, %.0f s already spent",
                self.path,
                at["net"],
                at["direction"],
                at["iteration"],
                spent,
            )
        elif cfg.resume:
            log.info("--resume: no checkpoint in %s, starting afresh", self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started = time.time() - spent

    def _check(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another layout, or of a run with another config
        (naming every key that differs, but those of RESUME_FREE_KEYS)."""
        found = checkpoint.get("format")
        if found != CHECKPOINT_FORMAT:
            raise ValueError(
                f"cannot resume {self.path}: checkpoint format {found}, this landbc writes "
                f"{CHECKPOINT_FORMAT}; remove {self.folder} to start afresh"
            )
        saved, now = checkpoint["config"], self.cfg.record()
        keys = sorted((saved.keys() | now.keys()) - RESUME_FREE_KEYS)
        differ = [k for k in keys if saved.get(k) != now.get(k)]
        if differ:
            what = "; ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in differ)
            raise ValueError(
                f"cannot resume {self.path}: its run had another config ({what}); resume "
                f"with the same settings, or start a new run (another --run-dir, or remove "
                f"{self.folder})"
            )

    def wall_s(self) -> float:
        """Wall-clock seconds of the run, interrupted runs included."""
        return time.time() - self.started

    def restore(
        self, direction: str, which: str, net: torch.nn.Module, opt: torch.optim.Optimizer
    ) -> NetProgress:
        """Where a net's training starts: afresh, or as the resumed checkpoint left it
        (a finished net: its weights and record; the interrupted net: its weights,
        optimiser and progress). At the checkpoint's own net the random streams are
        set back as they were saved there, after the nets before it were rebuilt as
        before, so everything after draws what the interrupted run drew."""
        ckpt = self.resumed
        if ckpt is None:
            return NetProgress()
        progress = NetProgress()
        done = self.finished.get(direction, {}).get(which)
        at = ckpt["position"]
        here = (at["direction"], at["net"]) == (direction, which)
        if done is not None:
            net.load_state_dict(done["state_dict"])
            progress = NetProgress(**done["progress"])
        elif here:
            net.load_state_dict(ckpt["current"]["state_dict"])
            opt.load_state_dict(ckpt["current"]["optimiser"])
            progress = NetProgress(**ckpt["current"]["progress"])
        if here:
            _set_rng_state(ckpt["rng"], self.gen, self.rng)
        return progress

    def save(
        self,
        direction: str,
        which: str,
        net: torch.nn.Module,
        opt: torch.optim.Optimizer,
        progress: NetProgress,
    ) -> None:
        """Checkpoint the run after the net's latest update (a finished net, one whose
        progress has its history, joins the finished ones), then draw its loss curve
        and rewrite losses.json."""
        current = None
        if progress.history is None:
            current = {
                "state_dict": net.state_dict(),
                "optimiser": opt.state_dict(),
                "progress": asdict(progress),
            }
        else:
            weights = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            self.finished.setdefault(direction, {})[which] = {
                "state_dict": weights,
                "progress": asdict(progress),
            }
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg.record(),
            "position": {"direction": direction, "net": which, "iteration": len(progress.losses)},
            "finished": self.finished,
            "current": current,
            "rng": _rng_state(self.gen, self.rng),
            "wall_s": self.wall_s(),
            "resumes": self.resumes,
        }
        replace_atomically(self.path, partial(torch.save, state))
        plot_losses(
            progress.losses,
            self.folder / f"loss_{direction}_{which}.png",
            f"{self.cfg.name}: {which} net, {direction}",
        )
        losses = {
            d: {n: e["progress"]["losses"] for n, e in nets.items()}
            for d, nets in self.finished.items()
        }
        losses.setdefault(direction, {})[which] = progress.losses
        replace_atomically(self.folder / LOSSES, lambda tmp: tmp.write_text(json.dumps(losses)))


# ------------------------------------------------------------------ loops


def _fit(
    net: UNet,
    direction: str,
    which: str,
    iters: int,
    cfg: TrainConfig,
    device: torch.device,
    run: Run | None,
    load: Callable[[], Any],
    loss: Callable[[Any], torch.Tensor],
) -> dict[str, Any]:
    """Train one net, the loop all nets share; return its history. `load` (the loader)
    gives a batch ready on the device, `loss` its mean loss per unrolled step; the
    loader and the step (loss, backward, optimiser; the loss read back waits for the
    device) are timed apart. With a `run`, the net starts from the resumed checkpoint
    and is checkpointed every cfg.checkpoint_every iterations and when finished."""
    what = f"{which} {direction}"
    net.to(device)
    opt = _optimiser(net, cfg)
    progress = run.restore(direction, which, net, opt) if run else NetProgress()
    if progress.history is not None:
        log.info("%s net: finished before the interruption, restored", what)
        return progress.history
    sched = Schedule(cfg, iters, spent=progress.elapsed_s)
    losses = progress.losses
    net.train()
    bar = _bar(what, iters, len(losses))
    for _ in bar:
        if _stop(sched, losses, what):
            break
        t0 = time.perf_counter()
        batch = load()
        _sync(device)
        t1 = time.perf_counter()
        _update(opt, sched, loss(batch), losses, bar)
        progress.loader_s += t1 - t0
        progress.step_s += time.perf_counter() - t1
        progress.elapsed_s = sched.elapsed()
        _log_progress(what, losses, iters)
        every = cfg.checkpoint_every
        if run and every and len(losses) % every == 0 and len(losses) < iters:
            run.save(direction, which, net, opt, progress)
    progress.elapsed_s = sched.elapsed()
    h = progress.history = progress.record(iters)
    log.info(
        "%s net: loss %.4f after %d iterations in %.1f s; loader %.1f s, steps %.1f s "
        "(loader/step %.2f)",
        what,
        h["final_loss"] or 0.0,
        h["iters"],
        h["wall_s"],
        h["loader_s"],
        h["step_s"],
        h["loader_per_step"] or 0.0,
    )
    if run:
        run.save(direction, which, net, opt, progress)
    return h


def _yearly_batch(
    sampler: PatchSampler,
    sign: int,
    which: str,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[dict, torch.Tensor]:
    """The LU and LC nets' loader: a yearly batch refined on the device, and the
    corrupted prior of the net's classes. Drawn and corrupted on the CPU, so that the
    random streams do not depend on the device."""
    batch = sampler.yearly(sign, cfg.batch)
    n = catalog.N_LU if which == "lu" else catalog.N_LC
    prior = corrupt_classes(batch["steps"][0][which], n, cfg, gen)
    return refine(_to(batch, device), sampler.f), prior.to(device)


def _lu_lc_loss(
    net: UNet,
    which: str,
    cfg: TrainConfig,
    norm: dict,
    f: int,
    device: torch.device,
    dtype: torch.dtype,
    loaded: tuple[dict, torch.Tensor],
) -> torch.Tensor:
    """Mean loss per unrolled step of the LU or LC net on a `_yearly_batch`."""
    batch, prior = loaded
    # what the stepper derives from the prior (its coarse fractions, the
    # needs) comes from the clean prior, as in a coupled run
    clean = features.one_hot(batch["steps"][0]["lu"], catalog.N_LU)
    static = _static_inputs(batch, norm)
    land = batch["static"]["land_mask"]
    steps = batch["steps"]
    loss = torch.zeros((), device=device)
    for k in range(1, cfg.unroll + 1):
        cur, prev = steps[k], steps[k - 1]
        with _autocast(device, dtype):
            if which == "lu":
                before = features.coarse_fractions(clean, catalog.N_LU, f)
                after = features.coarse_fractions(
                    features.one_hot(cur["lu"], catalog.N_LU), catalog.N_LU, f
                )
                x = features.lu_inputs(
                    static,
                    prior,
                    before,
                    after - before,
                    cur["luh2"],
                    cur["secma"],
                    cur["secmb"],
                    norm,
                )
            else:
                x = features.lc_inputs(
                    static,
                    features.one_hot(cur["lu"], catalog.N_LU),
                    features.one_hot(prev["lu"], catalog.N_LU),
                    prior,
                )
            logits = net(x)
        step_loss, _ = class_loss(logits, cur[which], prev[which], land, cfg.change_weight)
        loss = loss + step_loss
        prior = torch.softmax(logits.float(), dim=1)
        clean = prior
    return loss / cfg.unroll


def train_lu_lc(
    sampler: PatchSampler,
    sign: int,
    cfg: TrainConfig,
    norm: dict,
    gen: torch.Generator,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    run: Run | None = None,
) -> tuple[UNet, UNet, dict]:
    """Train the LU net, then the LC net, for one direction, on `device` under
    `dtype` autocast, checkpointed in `run` if given. Batches are drawn and corrupted
    on the CPU (the random streams do not depend on the device), then moved; the nets
    come back on the CPU."""
    device = device or torch.device("cpu")
    direction = DIRECTION_NAME[sign]
    lu_net = UNet(
        features.N_LU_INPUTS, catalog.N_LU, base=cfg.base, prior_channel=features.LU_PRIOR_CHANNEL
    )
    lc_net = UNet(
        features.N_LC_INPUTS, catalog.N_LC, base=cfg.base, prior_channel=features.LC_PRIOR_CHANNEL
    )
    history = {}
    for which, net, iters in (("lu", lu_net, cfg.iters_lu), ("lc", lc_net, cfg.iters_lc)):
        load = partial(_yearly_batch, sampler, sign, which, cfg, gen, device)
        loss = partial(_lu_lc_loss, net, which, cfg, norm, sampler.f, device, dtype)
        history[which] = _fit(net, direction, which, iters, cfg, device, run, load, loss)
    return lu_net.cpu().eval(), lc_net.cpu().eval(), history


def _monthly_batch(
    sampler: PatchSampler,
    sign: int,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[dict, torch.Tensor]:
    """The LAI net's loader: a monthly batch refined on the device, and its prior month
    with multiplicative noise (drawn on the CPU, as `_yearly_batch`)."""
    batch = sampler.monthly(sign, cfg.batch)
    lai = batch["steps"][0]["lai"]
    prior = lai * (1 + cfg.noise * torch.randn(lai.shape, generator=gen))
    return refine(_to(batch, device), sampler.f), prior.clamp_min(0).to(device)


def _lai_loss(
    net: UNet,
    cfg: TrainConfig,
    norm: dict,
    device: torch.device,
    dtype: torch.dtype,
    loaded: tuple[dict, torch.Tensor],
) -> torch.Tensor:
    """Mean normalised MSE on land per unrolled step of the LAI net on a `_monthly_batch`:
    the net predicts each month's departure from the climatology, told the previous
    month's departure (its own from the second unrolled month on)."""
    batch, prior = loaded
    static = _static_inputs(batch, norm)
    land = batch["static"]["land_mask"].bool()
    clim = batch["lai_climatology"]
    steps = batch["steps"]
    loss = torch.zeros((), device=device)
    for k in range(1, cfg.unroll_lai + 1):
        cur = steps[k]
        month_prev = steps[k - 1]["month"]
        preds, clim_cur = [], []
        # months and CO2 differ per sample: features take scalars, so build per sample
        for i in range(cfg.batch):
            clim_cur.append(clim[i, cur["month"][i] - 1])
            x = features.lai_inputs(
                [piece[i : i + 1] for piece in static],
                features.one_hot(cur["lc"][i : i + 1], catalog.N_LC),
                prior[i : i + 1] - clim[i : i + 1, month_prev[i] - 1],
                clim[i : i + 1, cur["month"][i] - 1],
                cur["t2m"][i : i + 1],
                cur["tp"][i : i + 1],
                cur["ssrd"][i : i + 1],
                cur["month"][i],
                cur["co2"][i],
                batch["lat"][i : i + 1],
                norm,
            )
            preds.append(x)
        with _autocast(device, dtype):
            y = net(torch.cat(preds))
        departure = features.departure_from_output(y.float(), norm)
        lai = features.lai_from_departure(departure, torch.stack(clim_cur))
        err = (lai - cur["lai"]) / norm["lai"][1]
        loss = loss + (err[land] ** 2).mean()
        prior = lai
    return loss / cfg.unroll_lai


def new_lai_net(base: int = 16) -> UNet:
    """The LAI net before training: it starts as the climatology (zero departure:
    head and prior gain 0) and learns what departs from it; its prior gain becomes
    the month-to-month persistence of the departure."""
    net = UNet(
        features.N_LAI_INPUTS,
        1,
        base=base,
        head="linear",
        prior_channel=features.LAI_PRIOR_CHANNEL,
        prior_gain=0.0,
    )
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def train_lai(
    sampler: PatchSampler,
    sign: int,
    cfg: TrainConfig,
    norm: dict,
    gen: torch.Generator,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    run: Run | None = None,
) -> tuple[UNet, dict]:
    """Train the LAI net for one direction (devices, dtypes and `run` as `train_lu_lc`)."""
    device = device or torch.device("cpu")
    net = new_lai_net(cfg.base)
    load = partial(_monthly_batch, sampler, sign, cfg, gen, device)
    loss = partial(_lai_loss, net, cfg, norm, device, dtype)
    hist = _fit(net, DIRECTION_NAME[sign], "lai", cfg.iters_lai, cfg, device, run, load, loss)
    return net.cpu().eval(), hist


def nets_of_bundle(
    src: Path, file: str, direction: str, names: tuple[str, ...], remedy: str
) -> tuple[torch.jit.ScriptModule, dict[str, UNet]]:
    """A bundle's stepper file and plain `UNet`s of its nets `names`
    (`unet_from_scripted`), each checked to take this landbc's input layout; a
    mismatch is a BundleError ending in `remedy`."""
    old = torch.jit.load(str(src / file), map_location="cpu")
    nets = {n: unet_from_scripted(getattr(old, n)) for n in names}
    for name, net in nets.items():
        want = EXPECTED_INPUTS[name]
        if net.in_channels != want:
            raise bundle.BundleError(
                f"{src}: {direction} {name} takes {net.in_channels} input channels, "
                f"this landbc's features give {want}: the bundle was trained for another "
                f"input layout and {remedy}"
            )
    return old, nets


# What the LU and LC nets were normalised with: a kept net needs the same.
LU_LC_NORM_KEYS = ("elevation", "slope", "secma", "secmb")


def kept_lu_lc(src: Path, direction: str, norm: dict) -> tuple[UNet, UNet, dict]:
    """The LU and LC nets of `direction` from the bundle `src`, with their training
    history, for a run that trains only the LAI nets (`TrainConfig.lu_lc_from`)."""
    # an older catalog is fine (e.g. before an LAI input changed): the nets' input
    # layouts and normalisation are checked below
    manifest = bundle.verify(src, check_catalog=False)
    if direction not in manifest["directions"]:
        raise bundle.BundleError(
            f"lu_lc_from: {src} has no {direction} stepper (it has "
            f"{sorted(manifest['directions'])})"
        )
    for k in LU_LC_NORM_KEYS:
        theirs = manifest["normalisation"].get(k)
        if theirs is None or not np.allclose(theirs, norm[k], rtol=1e-6, atol=0):
            raise bundle.BundleError(
                f"lu_lc_from: {src} normalised {k} with {theirs}, this run's cube and years "
                f"give {norm[k]}: its LU and LC nets were trained on other data"
            )
    _, nets = nets_of_bundle(
        src, manifest["directions"][direction]["file"], direction, ("lu_net", "lc_net"),
        "cannot be kept (lu_lc_from)",
    )  # fmt: skip
    past = manifest.get("training", {}).get("history", {}).get(direction, {})
    history = {
        n: {**past.get(n, {}), "kept_from": {"bundle": str(src), "created": manifest["created"]}}
        for n in ("lu", "lc")
    }
    log.info("%s: LU and LC nets kept from %s (only the LAI net is trained)", direction, src)
    return nets["lu_net"], nets["lc_net"], history


def export_stepper(
    lu: UNet,
    lc: UNet,
    lai: UNet,
    norm: dict,
    sign: int,
    cfg: TrainConfig,
    grid: Grid,
    sea_lc: int,
) -> torch.jit.ScriptModule:
    for net in (lu, lc, lai):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    stepper = Stepper(
        fold_batchnorm(lu),
        fold_batchnorm(lc),
        fold_batchnorm(lai),
        norm,
        sign,
        tile=cfg.tile,
        coarse_factor=grid.coarse_factor,
        sea_lc=sea_lc,
        res=grid.res,
    )
    return torch.jit.script(stepper)


EXPECTED_INPUTS = {
    "lu_net": features.N_LU_INPUTS,
    "lc_net": features.N_LC_INPUTS,
    "lai_net": features.N_LAI_INPUTS,
}


def reexport(
    src: str | Path, out: str | Path, tile: int | None = None, stride: int | None = None
) -> Path:
    """Rebuild a bundle's steppers around its trained nets with this landbc's stepper
    code (after a change to the stepper or the features), keeping weights,
    normalisation, the training record and, unless `tile` (with `stride`, by default
    tile - 32) is given, the tiling. Metrics are not carried over: they were measured
    with the old code; run `landbc evaluate` again."""
    src, out = Path(src), Path(out)
    manifest = bundle.verify(src)
    if tile is None:
        tile = manifest["tiling"]["tile"]
        stride = manifest["tiling"]["stride"] if stride is None else stride
    stride = stride or 0  # 0: the stepper's default margin
    steppers = {}
    for direction, entry in manifest["directions"].items():
        old, nets = nets_of_bundle(
            src, entry["file"], direction, ("lu_net", "lc_net", "lai_net"),
            "must be retrained (landbc train), not re-exported",
        )  # fmt: skip
        new = Stepper(
            fold_batchnorm(nets["lu_net"]),
            fold_batchnorm(nets["lc_net"]),
            fold_batchnorm(nets["lai_net"]),
            manifest["normalisation"],
            DIRECTION_SIGN[direction],
            tile=tile,
            stride=stride,
            coarse_factor=manifest["grid"]["coarse_factor"],
            res=manifest["grid"]["res"],
            sea_lc=int(old.sea_lc),
        )
        steppers[direction] = torch.jit.script(new)
    training = {
        **manifest["training"],
        "reexported_from": {"created": manifest["created"], "files": manifest["files"]},
    }
    return bundle.write_bundle(
        out,
        steppers,
        name=manifest["name"],
        res=manifest["grid"]["res"],
        coarse_factor=manifest["grid"]["coarse_factor"],
        tile=tile,
        stride=int(next(iter(steppers.values())).stride),
        normalisation=manifest["normalisation"],
        training=training,
    )


def train(cfg: TrainConfig) -> Path:
    """Train every net of every direction and write the bundle to cfg.out, keeping
    checkpoints and loss curves in cfg.run_dir (with cfg.resume: continuing the run
    checkpointed there)."""
    cube = Cube.open(cfg.cube)
    cfg.validate(cube)
    if cfg.out.exists() and any(cfg.out.iterdir()):
        raise FileExistsError(f"output bundle {cfg.out} exists and is not empty")
    device = cfg.torch_device()
    dtype, why = precision.resolve_dtype(cfg.dtype, device, what="dtype")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    run = Run(cfg, gen, rng)  # before anything long: refuses a checkpoint it may not use
    log.info("training on %s in %s autocast (%s)", device, precision.dtype_name(dtype), why)
    log.info(
        "training %s from %s (%s), years %d..%d; run folder %s",
        cfg.name,
        cube.path,
        cube.grid.describe(),
        *cfg.years,
        run.folder,
    )
    norm = normalisation(cube, cfg.years)
    sampler = PatchSampler(cube, cfg, rng)
    sea_lc = catalog.LC_SEA
    steppers, history = {}, {}
    for direction in cfg.directions:
        sign = DIRECTION_SIGN[direction]
        if cfg.lu_lc_from:
            lu, lc, h = kept_lu_lc(Path(cfg.lu_lc_from), direction, norm)
        else:
            lu, lc, h = train_lu_lc(sampler, sign, cfg, norm, gen, device, dtype, run)
        lai, h_lai = train_lai(sampler, sign, cfg, norm, gen, device, dtype, run)
        history[direction] = {**h, "lai": h_lai}
        steppers[direction] = export_stepper(lu, lc, lai, norm, sign, cfg, cube.grid, sea_lc)
    attrs = dict(cube.root.attrs)
    training = {
        "data": {
            "cube": cube.path.name,
            "title": attrs.get("title", ""),
            "description": attrs.get("description", ""),
            "grid": attrs["grid"],
            "years": [cfg.years[0], cfg.years[1]],
            "seed": attrs.get("seed"),
            "provenance": attrs.get("provenance", {}),
        },
        "config": cfg.record(),
        "history": history,
        # what training ran in, as resolved here (config.dtype is what was asked for)
        "precision": {
            "device": str(device),
            "dtype": precision.dtype_name(dtype),
            "requested": cfg.dtype,
            "reason": why,
        },
        # where the run was interrupted and resumed (none: it ran straight through)
        "resumes": run.resumes,
        "wall_time_s": round(run.wall_s(), 1),
        "licence": "weights: Apache-2.0; trained on surrogate data (see data.provenance)",
    }
    out = bundle.write_bundle(
        cfg.out,
        steppers,
        name=cfg.name,
        res=cube.grid.res,
        coarse_factor=cube.grid.coarse_factor,
        tile=cfg.tile,
        stride=int(steppers[cfg.directions[0]].stride),
        normalisation=norm,
        training=training,
    )
    log.info("bundle written to %s after %.0f s of training", out, run.wall_s())
    return out


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        prog="landbc train", description="Train a landbc bundle from a cube"
    )
    p.add_argument("cube", type=Path, help="landbc cube (Zarr) with truth and forcing")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to create")
    p.add_argument("--name", default="demo")
    p.add_argument(
        "--years",
        type=int,
        nargs=2,
        default=(1960, 2000),
        metavar=("FIRST", "LAST"),
        help="every year training may read, priors included (default 1960 2000: the "
        "BSC split, 2001-2015 held out)",
    )
    p.add_argument("--directions", nargs="+", default=["forward", "backward"])
    p.add_argument("--iters-lu", type=int, default=400)
    p.add_argument("--iters-lc", type=int, default=200)
    p.add_argument("--iters-lai", type=int, default=400)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=160)
    p.add_argument("--tile", type=int, default=512,
                   help="the exported steppers' tile window (px); cores are tile - 32")  # fmt: skip
    p.add_argument("--base", type=int, default=16, help="U-Net base channels")
    p.add_argument(
        "--unroll", type=int, default=2, help="years the LU and LC nets are unrolled (default 2)"
    )
    p.add_argument(
        "--unroll-lai", type=int, default=12, help="months the LAI net is unrolled (default 12)"
    )
    p.add_argument(
        "--lu-lc-from",
        type=Path,
        default=None,
        metavar="BUNDLE",
        help="keep the LU and LC nets of this bundle (trained on the same cube and years) "
        "and train only the LAI nets",
    )
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument(
        "--change-weight",
        type=float,
        default=4.0,
        help="extra weight of each changed pixel in the cross-entropy (a changed pixel "
        "weighs 1 + this times a stable one)",
    )
    p.add_argument(
        "--noise", type=float, default=0.02, help="share of prior pixels given random classes"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dtype",
        default="auto",
        choices=precision.DTYPE_CHOICES,
        help="autocast precision (default auto: bfloat16 only where the device does it "
        "natively and fast, else float32)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        help="wall-clock seconds per direction; each net stops early when its share "
        "is spent (default 0: no budget)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run folder for checkpoint.pt, the loss curves and losses.json (default: "
        "<out>.run beside the bundle)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        help="iterations between checkpoints; one is also written at the end of every "
        "net (default 50; 0: only there)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run checkpointed in the run folder (same settings required); "
        "without it, an existing checkpoint is refused",
    )
    a = p.parse_args(argv)
    cfg = TrainConfig(
        cube=a.cube,
        out=a.out,
        name=a.name,
        years=tuple(a.years),
        directions=tuple(a.directions),
        iters_lu=a.iters_lu,
        iters_lc=a.iters_lc,
        iters_lai=a.iters_lai,
        batch=a.batch,
        patch=a.patch,
        tile=a.tile,
        base=a.base,
        unroll=a.unroll,
        unroll_lai=a.unroll_lai,
        lu_lc_from=a.lu_lc_from,
        lr=a.lr,
        change_weight=a.change_weight,
        noise=a.noise,
        seed=a.seed,
        dtype=a.dtype,
        device=a.device,
        time_budget_s=a.time_budget,
        run_dir=a.run_dir,
        checkpoint_every=a.checkpoint_every,
        resume=a.resume,
    )
    return train(cfg)
