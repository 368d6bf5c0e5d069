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
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import bundle, catalog, features, precision
from .api import parse_device
from .cube import Cube, month_index
from .grid import Grid
from .nets import UNet, unet_from_scripted
from .stepper import BACKWARD, FORWARD, Stepper

log = logging.getLogger(__name__)
DIRECTION_SIGN = {"forward": FORWARD, "backward": BACKWARD}


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
    unroll: int = 2
    change_weight: float = 4.0
    mask_max: float = 0.75
    mask_block: int = 32
    noise: float = 0.02
    tile: int = 256
    seed: int = 0
    dtype: str = "auto"  # autocast dtype: "auto", "float32" or "bfloat16" (precision.py)
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    # Wall-clock budget (s) per direction, 0 for none: each net gets its share in
    # proportion to its iterations and stops early when that is spent (recorded in
    # the history), so a run on a lent machine always ends with a bundle.
    time_budget_s: float = 0.0
    base: int = 16
    extra: dict = field(default_factory=dict)

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
        for d in self.directions:
            if d not in DIRECTION_SIGN:
                raise ValueError(f"directions: expected forward/backward, found {d!r}")
        precision.parse_dtype(self.dtype, "dtype")
        self.torch_device()

    def torch_device(self) -> torch.device:
        """The training device, checked (a ValueError names what is wrong)."""
        return parse_device(self.device)


# ------------------------------------------------------------------ data


class PatchSampler:
    """Random land patches from a cube: yearly maps in memory, LAI read per sample."""

    def __init__(self, cube: Cube, cfg: TrainConfig, rng: np.random.Generator) -> None:
        self.cube = cube
        self.cfg = cfg
        self.rng = rng
        root = cube.root
        self.f = cube.grid.coarse_factor
        self.static = {n: np.asarray(root[n][:]) for n in features_static_names()}
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

    def _first_targets(self, lo: int, hi: int, sign: int, b: int) -> np.ndarray:
        """b random first-target indices t such that the prior t - sign and the
        unrolled targets up to t + sign * (unroll - 1) all lie in [lo, hi]."""
        u = self.cfg.unroll
        first, last = (lo + 1, hi - u + 1) if sign > 0 else (lo + u - 1, hi - 1)
        return self.rng.integers(first, last + 1, size=b)

    def yearly(self, sign: int, b: int) -> dict:
        """A batch for the LU and LC nets: priors of year y - sign, targets y, y + sign, ..."""
        lo, hi = (y - self.y0 for y in self.cfg.years)
        batch = [self._origin() for _ in range(b)]
        first = self._first_targets(lo, hi, sign, b)
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
        start = self._first_targets(
            month_index(lo, 1, self.y0), month_index(hi, 12, self.y0), sign, b
        )
        p = self.cfg.patch
        lat = np.stack([self.cube.grid.lat[r : r + p] for r, _ in batch]).astype(np.float32)
        out = {"static": self._static(batch), "lat": torch.from_numpy(lat), "steps": []}
        for k in range(self.cfg.unroll + 1):
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


def features_static_names() -> list[str]:
    return [v.name for v in catalog.STATIC_VARIABLES]


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


# ------------------------------------------------------------------ loops


def _static_inputs(batch: dict, norm: dict) -> torch.Tensor:
    st = batch["static"]
    return features.static_inputs(
        st["land_mask"], st["elevation"], st["slope"], st["koppen"], st["igbp"], norm
    )


def _bar(what: str, iters: int):
    # disable=None: a bar on a terminal only; logs get _log_progress lines instead
    return tqdm(range(iters), desc=f"train {what}", leave=False, disable=None)


class Schedule:
    """One-cycle learning rate (warm-up over the first 15 %, cosine decay to lr/1e4)
    driven by progress: the share of the iterations done, or, under a time budget
    (`TrainConfig.time_budget_s`), the share of the net's time spent if that is
    larger. A run stopped by its budget has therefore still annealed."""

    def __init__(self, cfg: TrainConfig, iters: int) -> None:
        self.lr = cfg.lr
        self.iters = max(iters, 1)
        self.start = time.time()
        total = cfg.iters_lu + cfg.iters_lc + cfg.iters_lai
        self.seconds = (
            cfg.time_budget_s * iters / max(total, 1) if cfg.time_budget_s > 0 else math.inf
        )

    def progress(self, done: int) -> float:
        return max(done / self.iters, (time.time() - self.start) / self.seconds)

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


def _optimiser(net: torch.nn.Module, cfg: TrainConfig, iters: int):
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    return opt, Schedule(cfg, iters)


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


def train_lu_lc(
    sampler: PatchSampler,
    sign: int,
    cfg: TrainConfig,
    norm: dict,
    gen: torch.Generator,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[UNet, UNet, dict]:
    """Train the LU net, then the LC net, for one direction, on `device` under
    `dtype` autocast. Batches are drawn and corrupted on the CPU (the random
    streams do not depend on the device), then moved; the nets come back on the CPU."""
    device = device or torch.device("cpu")
    lu_net = UNet(
        features.N_LU_INPUTS, catalog.N_LU, base=cfg.base, prior_channel=features.LU_PRIOR_CHANNEL
    )
    lc_net = UNet(
        features.N_LC_INPUTS, catalog.N_LC, base=cfg.base, prior_channel=features.LC_PRIOR_CHANNEL
    )
    history = {}
    f = sampler.f
    for which, net, iters in (("lu", lu_net, cfg.iters_lu), ("lc", lc_net, cfg.iters_lc)):
        net.to(device)
        opt, sched = _optimiser(net, cfg, iters)
        net.train()
        losses = []
        bar = _bar(f"{which} {'forward' if sign > 0 else 'backward'}", iters)
        for _ in bar:
            if _stop(sched, losses, which):
                break
            batch = sampler.yearly(sign, cfg.batch)
            steps = batch["steps"]
            if which == "lu":
                prior = corrupt_classes(steps[0]["lu"], catalog.N_LU, cfg, gen)
            else:
                prior = corrupt_classes(steps[0]["lc"], catalog.N_LC, cfg, gen)
            batch, prior = refine(_to(batch, device), f), prior.to(device)
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
            _update(opt, sched, loss / cfg.unroll, losses, bar)
            _log_progress(f"{which} {'forward' if sign > 0 else 'backward'}", losses, iters)
        history[which] = {
            "iters": len(losses),
            "iters_planned": iters,
            "final_loss": float(np.mean(losses[-20:])) if losses else None,
        }
        log.info(
            "%s net (%s): loss %.4f after %d iterations",
            which,
            "forward" if sign > 0 else "backward",
            history[which]["final_loss"] or 0.0,
            len(losses),
        )
    return lu_net.cpu().eval(), lc_net.cpu().eval(), history


def train_lai(
    sampler: PatchSampler,
    sign: int,
    cfg: TrainConfig,
    norm: dict,
    gen: torch.Generator,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[UNet, dict]:
    """Train the LAI net for one direction (devices and dtypes as `train_lu_lc`)."""
    device = device or torch.device("cpu")
    net = UNet(
        features.N_LAI_INPUTS,
        1,
        base=cfg.base,
        head="softplus",
        prior_channel=features.LAI_PRIOR_CHANNEL,
        prior_gain=1.0,
    )
    with torch.no_grad():  # start from LAI ≈ prior: gain 1 on (prior - mean)/std, + mean/std
        net.head.bias.fill_(norm["lai"][0] / norm["lai"][1])
    net.to(device)
    opt, sched = _optimiser(net, cfg, cfg.iters_lai)
    net.train()
    losses = []
    bar = _bar(f"lai {'forward' if sign > 0 else 'backward'}", cfg.iters_lai)
    for _ in bar:
        if _stop(sched, losses, "lai"):
            break
        batch = sampler.monthly(sign, cfg.batch)
        steps = batch["steps"]
        prior = steps[0]["lai"] * (
            1 + cfg.noise * torch.randn(steps[0]["lai"].shape, generator=gen)
        )
        prior = prior.clamp_min(0).to(device)
        batch = refine(_to(batch, device), sampler.f)
        static = _static_inputs(batch, norm)
        land = batch["static"]["land_mask"].bool()
        steps = batch["steps"]
        loss = torch.zeros((), device=device)
        for k in range(1, cfg.unroll + 1):
            cur = steps[k]
            preds = []
            # months and CO2 differ per sample: features take scalars, so build per sample
            for i in range(cfg.batch):
                x = features.lai_inputs(
                    static[i : i + 1],
                    features.one_hot(cur["lc"][i : i + 1], catalog.N_LC),
                    prior[i : i + 1],
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
            lai = features.lai_from_output(y.float(), norm)
            err = (lai - cur["lai"]) / norm["lai"][1]
            loss = loss + (err[land] ** 2).mean()
            prior = lai
        _update(opt, sched, loss / cfg.unroll, losses, bar)
        _log_progress(f"lai {'forward' if sign > 0 else 'backward'}", losses, cfg.iters_lai)
    hist = {
        "iters": len(losses),
        "iters_planned": cfg.iters_lai,
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
    }
    log.info(
        "lai net (%s): normalised MSE %.4f after %d iterations",
        "forward" if sign > 0 else "backward",
        hist["final_loss"] or 0.0,
        len(losses),
    )
    return net.cpu().eval(), hist


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
        lu,
        lc,
        lai,
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


def reexport(src: str | Path, out: str | Path) -> Path:
    """Rebuild a bundle's steppers around its trained nets with this landbc's stepper
    code (after a change to the stepper or the features), keeping weights,
    normalisation, tiling and the training record. Metrics are not carried over:
    they were measured with the old code; run `landbc evaluate` again."""
    src, out = Path(src), Path(out)
    manifest = bundle.verify(src)
    steppers = {}
    for direction, entry in manifest["directions"].items():
        old = torch.jit.load(str(src / entry["file"]), map_location="cpu")
        nets = {n: unet_from_scripted(getattr(old, n)) for n in ("lu_net", "lc_net", "lai_net")}
        for name, net in nets.items():
            want = EXPECTED_INPUTS[name]
            if net.in_channels != want:
                raise bundle.BundleError(
                    f"{src}: {direction} {name} takes {net.in_channels} input channels, "
                    f"this landbc's features give {want}: the bundle was trained for another "
                    "input layout and must be retrained (landbc train), not re-exported"
                )
        new = Stepper(
            nets["lu_net"],
            nets["lc_net"],
            nets["lai_net"],
            manifest["normalisation"],
            DIRECTION_SIGN[direction],
            tile=manifest["tiling"]["tile"],
            stride=manifest["tiling"]["stride"],
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
        tile=manifest["tiling"]["tile"],
        stride=manifest["tiling"]["stride"],
        normalisation=manifest["normalisation"],
        training=training,
    )


def train(cfg: TrainConfig) -> Path:
    """Train every net of every direction and write the bundle to cfg.out."""
    t0 = time.time()
    cube = Cube.open(cfg.cube)
    cfg.validate(cube)
    if cfg.out.exists() and any(cfg.out.iterdir()):
        raise FileExistsError(f"output bundle {cfg.out} exists and is not empty")
    device = cfg.torch_device()
    dtype, why = precision.resolve_dtype(cfg.dtype, device, what="dtype")
    log.info("training on %s in %s autocast (%s)", device, precision.dtype_name(dtype), why)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    log.info(
        "training %s from %s (%s), years %d..%d",
        cfg.name,
        cube.path,
        cube.grid.describe(),
        *cfg.years,
    )
    norm = normalisation(cube, cfg.years)
    sampler = PatchSampler(cube, cfg, rng)
    sea_lc = catalog.LC_SEA
    steppers, history = {}, {}
    for direction in cfg.directions:
        sign = DIRECTION_SIGN[direction]
        lu, lc, h = train_lu_lc(sampler, sign, cfg, norm, gen, device, dtype)
        lai, h_lai = train_lai(sampler, sign, cfg, norm, gen, device, dtype)
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
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "history": history,
        # what training ran in, as resolved here (config.dtype is what was asked for)
        "precision": {
            "device": str(device),
            "dtype": precision.dtype_name(dtype),
            "requested": cfg.dtype,
            "reason": why,
        },
        "wall_time_s": round(time.time() - t0, 1),
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
    log.info("bundle written to %s in %.0f s", out, time.time() - t0)
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
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--base", type=int, default=16, help="U-Net base channels")
    p.add_argument("--unroll", type=int, default=2)
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
        lr=a.lr,
        change_weight=a.change_weight,
        noise=a.noise,
        seed=a.seed,
        dtype=a.dtype,
        device=a.device,
        time_budget_s=a.time_budget,
    )
    return train(cfg)
