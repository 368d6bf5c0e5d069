"""`landbc evaluate`: the BSC evaluation protocol of a bundle, beside baselines, with a report.

The protocol of the Barcelona Supercomputing Center's land-use emulator work: a
bundle trained on 1960–2000 is scored on 2001–2015 in both directions,

- forward: initialised from the truth of 2000-12, it runs 2001-01 → 2015-12 on
  its own priors (as in a coupled run, it never sees the truth again);
- backward: initialised from the truth of 2016-01, it runs 2015-12 → 2001-01.

Measured for each direction (`emulator/metrics.py` holds the formulas):

- LU and LC, yearly, from one confusion matrix per year over the whole domain:
  accuracy, macro/weighted F1, mean and per-class IoU, on all land pixels
  ("overall") and on the pixels whose truth changed from the previous year's
  truth, previous in the run's direction ("change"); the first emulated year
  (from the true prior) and the mean of the yearly scores over the period (on the
  emulator's own priors), and their difference, the drift.
- Scenario consistency of LU: the pixel counts of each class in each coarse cell
  against the counts that the LUH2 fractions imply, for the emulator and, as a
  reference, for the truth.
- LAI, monthly, on land: R², RMSE, bias, SSIM per month and over all months, and
  the domain-mean series.

Baselines on the same pixels: persistence (the initial truth copied), the coarse
dominant LUH2 class upsampled, a coarse-fraction-weighted random allocation, the
per-pixel monthly LAI climatology of the training years, and bilinear
interpolation of the TRUE coarse (0.25°) LAI — an oracle that knows each month's
coarse LAI, which the emulator does not.

`landbc evaluate BUNDLE CUBE --out DIR` writes DIR/metrics.json (everything,
machine-readable), DIR/report.md (tables, targets) and PNGs (`emulator/report.py`).
Memory stays bounded by a few fields of the domain: scores are streamed month by
month, never holding the period's high-resolution fields.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import catalog, precision
from .api import BoundaryConditionEmulator
from .bundle import update_metrics
from .cube import Cube
from .grid import Grid, box_window
from .metrics import (
    BARE_IGBP,
    CHANGEABLE_LU,
    ContinuousStats,
    StreamedMean,
    class_scores,
    confusion,
    consistency,
    implied_counts,
    land_cells,
    masked_ssim,
)

log = logging.getLogger(__name__)

FORMAT = "landbc-evaluation"
FORMAT_VERSION = 2
DEFAULT_YEARS = (2001, 2015)
DIRECTIONS = ("forward", "backward")
PARTS = ("overall", "change")
LU_MODELS = ("emulator", "persistence", "coarse_dominant", "random_allocation")
LC_MODELS = ("emulator", "persistence")
LAI_MODELS = ("emulator", "climatology", "bilinear_coarse_truth")
CONSISTENCY_MAPS = ("emulator", "truth")
CONSISTENCY_TOLERANCE_PX = 1.0

MODEL_DESCRIPTIONS = {
    "emulator": (
        "the bundle, autoregressive on its own priors after the initial truth; its LAI "
        "net is given the monthly climatology below and predicts the departure from it"
    ),
    "persistence": "the initial truth copied to every year (0 on change pixels by definition)",
    "coarse_dominant": "the dominant LU class of each coarse cell's LUH2 fractions, upsampled; "
    "sea and water kept from the initial truth",
    "random_allocation": "in each coarse cell the changeable pixels (LU 1-5) of the initial "
    "truth get classes at random (seeded), with counts from that year's LUH2 fractions by "
    "largest remainder; classes 0/6/7 kept from the initial truth",
    "climatology": "per-pixel mean LAI of each calendar month over the training years",
    "bilinear_coarse_truth": "ORACLE: bilinear interpolation of each month's TRUE coarse land-mean "
    "LAI, which the emulator does not know",
}


# --- baselines ------------------------------------------------------------------------

# (N_LU, 12): LUH2 states summed into LU classes, as the stepper's decoding does
LUH2_TO_LU = np.array(catalog.luh2_to_lu_matrix(), dtype=np.float32)


def coarse_dominant_lu(luh2_frac: np.ndarray, grid: Grid, prior_truth: np.ndarray) -> np.ndarray:
    """Baseline: the dominant LU class of each coarse cell from LUH2, upsampled;
    sea and inland water (static) taken from the prior truth."""
    frac = np.tensordot(LUH2_TO_LU, luh2_frac, axes=1)  # (N_LU, h, w)
    dom = grid.refine(frac.argmax(axis=0).astype(np.uint8))
    keep = (prior_truth == 0) | (prior_truth == catalog.LU["water"])
    return np.where(keep, prior_truth, dom).astype(np.uint8)


def largest_remainder(x: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Integer rows (N, K) summing to `total` (N,) nearest to the real rows x, which
    must sum to `total`: floors, then one more for the largest remainders (ties to
    the lower class), the rounding that keeps each cell's pixel total."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, None)
    fl = np.floor(x + 1e-9).astype(np.int64)
    left = np.clip(np.asarray(total, dtype=np.int64) - fl.sum(1), 0, x.shape[1])
    order = np.argsort(-(x - fl), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(x.shape[1]), x.shape), axis=1)
    return fl + (rank < left[:, None])


def _to_cells(a: np.ndarray, f: int) -> np.ndarray:
    """(H, W) → (N cells, f*f), cells in row-major order."""
    h, w = a.shape[0] // f, a.shape[1] // f
    return a.reshape(h, f, w, f).transpose(0, 2, 1, 3).reshape(h * w, f * f)


def _from_cells(c: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape[0] // f, shape[1] // f
    return c.reshape(h, w, f, f).transpose(0, 2, 1, 3).reshape(shape)


def random_allocation_lu(
    luh2_frac: np.ndarray,
    grid: Grid,
    prior_truth: np.ndarray,
    igbp: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Baseline: a map that follows the coarse scenario exactly and knows nothing else.

    In each coarse cell the changeable pixels of the prior truth (LU 1..5) are given
    classes at random, with counts from the LUH2 fractions by largest remainder;
    the fixed classes 0/6/7 stay. Natural's LUH2 share also covers the vegetated
    LU-6 pixels (metrics.map_counts), which are fixed, so they are taken off class
    5's count first. A cell whose fractions are all 0 keeps its prior counts."""
    f = grid.coarse_factor
    prior = np.asarray(prior_truth)
    cells = _to_cells(prior, f)
    free = np.isin(cells, CHANGEABLE_LU)
    n_free = free.sum(1)
    x = implied_counts(luh2_frac, f).reshape(len(CHANGEABLE_LU), -1).T  # (N, 5)
    veg6 = _to_cells((prior == catalog.LU["sparse/no vegetation"]) & ~np.isin(igbp, BARE_IGBP), f)
    x[:, -1] = np.maximum(x[:, -1] - veg6.sum(1), 0.0)
    prior_counts = np.stack([(cells == k).sum(1) for k in CHANGEABLE_LU], 1).astype(np.float64)
    s = x.sum(1, keepdims=True)
    x = np.where(s > 0, x * n_free[:, None] / np.where(s > 0, s, 1.0), prior_counts)
    counts = largest_remainder(x, n_free)
    keys = rng.random(cells.shape)
    keys[~free] = 2.0  # fixed pixels sort after every free one
    order = np.argsort(keys, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(cells.shape[1]), cells.shape), axis=1)
    bounds = np.cumsum(counts, axis=1)[:, :-1]  # pixels of rank < bounds[k-1] get class <= k
    cls = np.asarray(CHANGEABLE_LU)[(rank[:, :, None] >= bounds[:, None, :]).sum(-1)]
    return _from_cells(np.where(free, cls, cells).astype(np.uint8), f, prior.shape)


def bilinear_coarse(field: np.ndarray, land: np.ndarray, grid: Grid) -> np.ndarray:
    """Coarse land mean of a field, bilinearly interpolated back; 0 off land."""
    num = grid.coarsen(field * land)
    den = grid.coarsen(land.astype(np.float32))
    coarse = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    up = F.interpolate(
        torch.from_numpy(coarse.astype(np.float32))[None, None],
        scale_factor=grid.coarse_factor,
        mode="bilinear",
        align_corners=False,
    )[0, 0].numpy()
    return np.where(land, up, 0.0)


# --- accumulators ---------------------------------------------------------------------


class _ClassScores:
    """Confusion matrices per model, part (overall/change) and year; scores from them."""

    def __init__(self, n: int, models: tuple[str, ...], first_year: int) -> None:
        self.n = n
        self.models = models
        self.first_year = first_year
        self.cm: dict[int, dict[str, dict[str, np.ndarray]]] = {}

    def add(self, year: int, model: str, target, pred, land, prev_truth) -> None:
        entry = self.cm.setdefault(year, {}).setdefault(model, {})
        entry["overall"] = confusion(target, pred, self.n, land)
        entry["change"] = confusion(target, pred, self.n, land & (target != prev_truth))

    def report(self) -> dict:
        """Scores of the first emulated year, the mean of the yearly scores, the drift,
        the yearly series and the confusion matrices (first year, sum, per year)."""
        years = sorted(self.cm)
        first = self.first_year
        out: dict = {
            "years": years,
            "first_year": {},
            "mean_over_years": {},
            "drift": {},
            "per_year": {},
            "confusion": {"first_year": {}, "sum": {}, "per_year": {}},
        }
        for model in self.models:
            for part in PARTS:
                cms = [self.cm[y][model][part] for y in years]
                per = [class_scores(c) for c in cms]
                series = {k: [p[k] for p in per] for k in per[0]}
                out["per_year"].setdefault(model, {})[part] = series
                out["first_year"].setdefault(model, {})[part] = per[years.index(first)]
                mean = {
                    k: _nanmean(v)
                    for k, v in series.items()
                    if k not in ("pixels", "per_class_iou")
                }
                mean["pixels_per_year"] = float(np.mean(series["pixels"]))
                mean["per_class_iou"] = [
                    _nanmean(col) for col in np.asarray(series["per_class_iou"], float).T
                ]
                out["mean_over_years"].setdefault(model, {})[part] = mean
                conf = out["confusion"]
                conf["first_year"].setdefault(model, {})[part] = cms[years.index(first)].tolist()
                conf["sum"].setdefault(model, {})[part] = np.sum(cms, axis=0).tolist()
                conf["per_year"].setdefault(model, {})[part] = [c.tolist() for c in cms]
            out["drift"][model] = (
                out["first_year"][model]["overall"]["accuracy"]
                - out["mean_over_years"][model]["overall"]["accuracy"]
            )
        return out


def _nanmean(values) -> float:
    a = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


class _LaiScores:
    """R², RMSE, bias and SSIM per model: per month, over the first year, over all."""

    def __init__(self, models: tuple[str, ...], first_year: int, data_range: float) -> None:
        self.models = models
        self.first_year = first_year
        self.data_range = data_range
        self.months: list[str] = []
        self.all = {k: (ContinuousStats(), StreamedMean()) for k in models}
        self.first = {k: (ContinuousStats(), StreamedMean()) for k in models}
        self.per_month: dict[str, dict[str, list[float]]] = {
            k: {"r2": [], "rmse": [], "bias": [], "ssim": []} for k in models
        }
        self.domain_mean: dict[str, list[float]] = {k: [] for k in ("truth", *models)}

    def add(self, year: int, month: int, truth: np.ndarray, preds: dict, land: np.ndarray) -> None:
        self.months.append(f"{year:04d}-{month:02d}")
        # Off land every field is set to 0, so that what a model writes over the sea
        # (where nothing is scored) cannot move the SSIM windows of coastal pixels.
        t = np.where(land, truth, 0.0)
        self.domain_mean["truth"].append(float(truth[land].mean()) if land.any() else np.nan)
        for k in self.models:
            p = np.where(land, preds[k], 0.0)
            ssim = masked_ssim(t, p, land, self.data_range)
            month = ContinuousStats()
            month.add(t, p, land)
            s = month.scores()
            for key in ("r2", "rmse", "bias"):
                self.per_month[k][key].append(s[key])
            self.per_month[k]["ssim"].append(float(ssim.mean()) if ssim.size else np.nan)
            self.domain_mean[k].append(float(p[land].mean()) if land.any() else np.nan)
            targets = [self.all[k]] + ([self.first[k]] if year == self.first_year else [])
            for stats, ssim_mean in targets:
                stats.add(t, p, land)
                ssim_mean.add(ssim)

    @staticmethod
    def _scores(pair: tuple[ContinuousStats, StreamedMean]) -> dict:
        return {**pair[0].scores(), "ssim": pair[1].mean}

    def report(self) -> dict:
        """Scores over all months and the first year; the monthly series in time order
        (a backward run produces them last month first)."""
        order = np.argsort(self.months, kind="stable")
        months = [self.months[i] for i in order]
        per_month = {
            k: {key: [v[i] for i in order] for key, v in s.items()}
            for k, s in self.per_month.items()
        }
        means = {k: [v[i] for i in order] for k, v in self.domain_mean.items()}
        return {
            "all_months": {k: self._scores(self.all[k]) for k in self.models},
            "first_year": {k: self._scores(self.first[k]) for k in self.models},
            "per_month": {"months": months, **per_month},
            "domain_mean": {"months": months, **means},
        }


# --- the run --------------------------------------------------------------------------


def _ym(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def evaluate_direction(
    emu: BoundaryConditionEmulator,
    cube: Cube,
    direction: str,
    years: tuple[int, int],
    window: tuple[slice, slice] | None,
    grid: Grid,
    static: dict[str, np.ndarray],
    clim: np.ndarray,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Run one direction over `years` from the truth just outside them; score every
    year (LU, LC, consistency) and month (LAI) as it is produced."""
    first, last = years
    sign = 1 if direction == "forward" else -1
    start = (first - 1, 12) if sign > 0 else (last + 1, 1)
    first_emulated = first if sign > 0 else last
    land = static["land_mask"].astype(bool)
    igbp = static["igbp"]
    f = grid.coarse_factor
    init = cube.truth(*start, window=window)
    emu.initialise(grid, static, init, *start, direction=direction)

    lu = _ClassScores(catalog.N_LU, LU_MODELS, first_emulated)
    lc = _ClassScores(catalog.N_LC, LC_MODELS, first_emulated)
    lai_var = catalog.variable("lai")
    lai = _LaiScores(LAI_MODELS, first_emulated, float(lai_var.valid_max - lai_var.valid_min))
    cons: dict[str, dict[int, dict]] = {k: {} for k in CONSISTENCY_MAPS}
    n_steps = 12 * (last - first + 1)
    step_times: list[float] = []
    t_start = time.perf_counter()
    bar = tqdm(range(n_steps), desc=f"evaluate {direction}", disable=None if progress else True)
    for _ in bar:
        y, m = emu.next_time
        fc = cube.forcing(y, m, window)
        t0 = time.perf_counter()
        out = emu.step(fc, time=(y, m)).numpy()
        step_times.append(time.perf_counter() - t0)
        truth = cube.truth(y, m, window=window, names=("lai",))
        if m == (1 if sign > 0 else 12):  # the step entered a new year: LU/LC were produced
            truth.update(cube.truth(y, m, window=window, names=("lu", "lc")))
            prev = cube.truth(y - sign, m, window=window, names=("lu", "lc"))
            for name, acc in (("lu", lu), ("lc", lc)):
                acc.add(y, "emulator", truth[name], out[name], land, prev[name])
                acc.add(y, "persistence", truth[name], init[name], land, prev[name])
            dom = coarse_dominant_lu(fc["luh2_frac"], grid, init["lu"])
            lu.add(y, "coarse_dominant", truth["lu"], dom, land, prev["lu"])
            rnd = random_allocation_lu(
                fc["luh2_frac"], grid, init["lu"], igbp, np.random.default_rng([seed, y])
            )
            lu.add(y, "random_allocation", truth["lu"], rnd, land, prev["lu"])
            for name, lu_map in (("emulator", out["lu"]), ("truth", truth["lu"])):
                cons[name][y] = consistency(
                    lu_map, igbp, fc["luh2_frac"], land, f, CONSISTENCY_TOLERANCE_PX
                )
        preds = {
            "emulator": out["lai"],
            "climatology": clim[m - 1],
            "bilinear_coarse_truth": bilinear_coarse(truth["lai"], land, grid),
        }
        lai.add(y, m, truth["lai"], preds, land)
    wall = time.perf_counter() - t_start

    cyears = sorted(cons["emulator"])
    consistency_report: dict = {
        "tolerance_px": CONSISTENCY_TOLERANCE_PX,
        "cells_with_land": int(land_cells(land, f).sum()),
        "classes": [catalog.LU_CLASSES[k].name for k in CHANGEABLE_LU],
        "years": cyears,
    }
    for name in CONSISTENCY_MAPS:
        share = [cons[name][y]["share_within"] for y in cyears]
        mae = [cons[name][y]["mae"] for y in cyears]
        consistency_report[name] = {
            "share_within": share,
            "mae": mae,
            "pairs": [cons[name][y]["pairs"] for y in cyears],
            "min_share_within": float(np.min(share)) if share else float("nan"),
            "mean_share_within": _nanmean(share),
            "mean_mae": _nanmean(mae),
        }
    year_steps = [t for i, t in enumerate(step_times) if i % 12 == 0]
    month_steps = [t for i, t in enumerate(step_times) if i % 12]
    return {
        "direction": direction,
        "initialised_from": _ym(*start),
        "first_step": _ym(first, 1) if sign > 0 else _ym(last, 12),
        "last_step": _ym(last, 12) if sign > 0 else _ym(first, 1),
        "first_year": first_emulated,
        "lu": lu.report(),
        "lc": lc.report(),
        "consistency": consistency_report,
        "lai": lai.report(),
        "timing": {
            "steps": n_steps,
            "wall_s": wall,
            "emulator_s": float(np.sum(step_times)),
            "mean_step_s": float(np.mean(step_times)),
            "year_step_s": float(np.mean(year_steps)),
            "month_step_s": float(np.mean(month_steps)) if month_steps else float("nan"),
            "scoring_and_io_s": wall - float(np.sum(step_times)),
        },
    }


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else lscpu, else the platform's word):
    timings mean little without it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("model name", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and value.strip():
                return value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown"


def _landbc_version() -> str:
    try:
        from importlib.metadata import version

        return version("landbc")
    except Exception:  # noqa: BLE001 - a source tree without an installed distribution
        return "unknown"


def evaluate(
    bundle: str | Path,
    cube_path: str | Path,
    years: tuple[int, int] = DEFAULT_YEARS,
    directions: tuple[str, ...] = DIRECTIONS,
    box: tuple[float, float, float, float] | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Run the protocol for each of `directions` over `years` of the cube; return the
    metrics (what metrics.json holds), targets included.

    `dtype` as in `BoundaryConditionEmulator.from_bundle` (float32 by default here
    too, so that scores are reproducible across machines; `landbc evaluate`
    defaults to "auto"); the metrics record the dtype actually used."""
    from .report import check_targets

    t_total = time.perf_counter()
    first, last = years
    if last < first:
        raise ValueError(f"years must be (first, last) with last >= first, found {years}")
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"direction: expected one of {DIRECTIONS}, found {d!r}")
    cube = Cube.open(cube_path)
    # the priors and the "previous" truth of the first emulated year lie outside the period
    needed = {first, last}
    needed |= {first - 1} if "forward" in directions else set()
    needed |= {last + 1} if "backward" in directions else set()
    for y in sorted(needed):
        cube._check_year(y)
    emu = BoundaryConditionEmulator.from_bundle(bundle, device=device, dtype=dtype)
    grid, window = cube.grid, None
    if box is not None:
        window = box_window(cube.grid, box)
        grid = cube.grid.window(window[0].start, window[0].stop, window[1].start, window[1].stop)
    static = cube.maps(window)
    land = static["land_mask"].astype(bool)

    warnings: list[str] = []
    train = emu.lai_climatology_years
    if train is None:
        train_years = (cube.first_year, first - 1)
        warnings.append(
            f"the bundle's manifest has no training.data.years; the LAI climatology uses "
            f"{train_years[0]}-{train_years[1]}"
        )
    else:
        train_years = train
    if train_years[0] <= last and first <= train_years[1]:
        warnings.append(
            f"the evaluation years {first}-{last} overlap the bundle's training years "
            f"{train_years[0]}-{train_years[1]}: these are not held-out scores, and the LAI "
            f"climatology baseline has seen the evaluation years too"
        )
    clim_years = cube.climatology_years(train_years)
    if clim_years != train_years:
        warnings.append(
            f"the cube holds {cube.first_year}-{cube.last_year}; the LAI climatology uses "
            f"{clim_years[0]}-{clim_years[1]}, not the training years"
        )
    for w in warnings:
        log.warning("%s", w)
    t0 = time.perf_counter()
    clim = cube.lai_climatology(clim_years, window, progress=progress)
    clim_s = time.perf_counter() - t0
    # the climatology baseline is also the emulator's input (it predicts the departure)
    static[catalog.LAI_CLIMATOLOGY] = clim

    results = {}
    for d in directions:
        results[d] = evaluate_direction(
            emu, cube, d, years, window, grid, static, clim, seed=seed, progress=progress
        )
    metrics = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bundle": str(bundle),
        "bundle_name": emu.manifest.get("name", Path(bundle).name),
        "cube": str(cube_path),
        "period": [first, last],
        "directions": list(directions),
        "protocol": {
            "name": "BSC land-use emulator evaluation",
            "forward": f"initialised from the truth of {_ym(first - 1, 12)}, "
            f"runs {_ym(first, 1)} to {_ym(last, 12)} on its own priors",
            "backward": f"initialised from the truth of {_ym(last + 1, 1)}, "
            f"runs {_ym(last, 12)} back to {_ym(first, 1)} on its own priors",
            "first_year": "the first emulated year (forward: the first year, backward: the "
            "last), from the true prior",
            "mean_over_years": "the mean of the yearly scores over the period, on the "
            "emulator's own priors",
            "drift": "first-year overall accuracy minus the mean over the years",
            "overall": "all land pixels",
            "change": "land pixels whose truth differs from the previous year's truth, "
            "previous in the run's direction",
            "consistency": "per coarse cell with land and LU class k in 1..5: |count - x_k| "
            "<= 1 pixel, x_k = f^2 * sum of the LUH2 fractions mapping to k; for k = 5 the "
            f"count includes LU-6 pixels whose IGBP class is not in {list(BARE_IGBP)}",
            "ssim": "Gaussian window sigma 1.5 (11 px), K1 0.01, K2 0.03, data range = the "
            "LAI valid range; map over the field (0 off land, mirrored edges), mean over land",
            "lai_domain_mean": "unweighted mean over the land pixels of each month",
            "models": MODEL_DESCRIPTIONS,
        },
        "seed": seed,
        "training_years": list(train_years),
        "climatology_years": list(clim_years),
        "domain": {
            "description": grid.describe(),
            "box": list(box) if box is not None else None,
            "grid": grid.to_dict(),
            "land_pixels": int(land.sum()),
            "coarse_cells_with_land": int(land_cells(land, grid.coarse_factor).sum()),
        },
        "classes": {
            "lu": [c.name for c in catalog.LU_CLASSES],
            "lc": [c.name for c in catalog.LC_CLASSES],
        },
        "dtype": precision.dtype_name(emu.dtype),  # as resolved; "auto" is machine-dependent
        "dtype_requested": dtype if isinstance(dtype, str) else precision.dtype_name(dtype),
        "dtype_reason": emu.dtype_reason,
        "device": str(emu.device),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"landbc": _landbc_version(), "torch": torch.__version__},
        "warnings": warnings,
        "results": results,
        "timing": {
            "total_s": time.perf_counter() - t_total,
            "climatology_s": clim_s,
            **{f"{d}_s": results[d]["timing"]["wall_s"] for d in directions},
        },
    }
    metrics["targets"] = check_targets(metrics)
    return metrics


def manifest_summary(metrics: dict, direction: str) -> dict:
    """The part of one direction's metrics worth keeping in a bundle's manifest (no
    per-year series or confusion matrices), in the shape `landbc inspect` reads."""
    r = metrics["results"][direction]
    return {
        "bundle": metrics["bundle"],
        "cube": metrics["cube"],
        "direction": direction,
        "period": metrics["period"],
        "domain": metrics["domain"]["description"],
        "dtype": metrics["dtype"],
        "land_pixels": metrics["domain"]["land_pixels"],
        "lu": {k: r["lu"][k] for k in ("first_year", "mean_over_years", "drift")},
        "lc": {k: r["lc"][k] for k in ("first_year", "mean_over_years", "drift")},
        "consistency": {
            k: {s: r["consistency"][k][s] for s in ("min_share_within", "mean_mae")}
            for k in CONSISTENCY_MAPS
        },
        "lai": {k: r["lai"][k] for k in ("all_months", "first_year")},
        "targets": [t for t in metrics["targets"] if t["direction"] == direction],
        "evaluated": metrics["created"],
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="landbc evaluate",
        description="Score a bundle with the BSC protocol (forward and backward over held-out "
        "years, beside baselines); write DIR/report.md, DIR/metrics.json and PNGs",
    )
    p.add_argument("bundle", type=Path)
    p.add_argument("cube", type=Path)
    p.add_argument(
        "--years",
        type=int,
        nargs=2,
        default=DEFAULT_YEARS,
        metavar=("FIRST", "LAST"),
        help=f"evaluation period, inclusive (default {DEFAULT_YEARS[0]} {DEFAULT_YEARS[1]}); "
        "the cube must also hold the year before it (forward) and after it (backward)",
    )
    p.add_argument(
        "--directions",
        nargs="+",
        choices=DIRECTIONS,
        default=list(DIRECTIONS),
        help="which runs (default: both)",
    )
    p.add_argument(
        "--box",
        type=float,
        nargs=4,
        metavar=("S", "N", "W", "E"),
        help="evaluate on a window of the cube (edges on the coarse grid)",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=precision.DTYPE_CHOICES,
        help="nets' precision (default auto: bfloat16 only where the device does it "
        "natively and fast, else float32)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the random-allocation baseline (default 0)"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for report.md, metrics.json and the PNGs "
        "(default output/evaluation/<bundle name>)",
    )
    p.add_argument(
        "--update-manifest",
        action="store_true",
        help="record a summary of each direction as the bundle's metrics heldout_<direction>",
    )
    a = p.parse_args(argv)
    from .report import jsonable, summary_text, write_report

    directions = tuple(dict.fromkeys(a.directions))  # in the order given, once each
    metrics = evaluate(
        a.bundle,
        a.cube,
        tuple(a.years),
        directions,
        tuple(a.box) if a.box else None,
        a.dtype,
        a.device,
        seed=a.seed,
    )
    out = a.out if a.out is not None else Path("output/evaluation") / metrics["bundle_name"]
    write_report(metrics, out)
    print(summary_text(metrics, out))
    if a.update_manifest:
        update_metrics(
            a.bundle, jsonable({f"heldout_{d}": manifest_summary(metrics, d) for d in directions})
        )
        log.info("metrics recorded in %s/manifest.json", a.bundle)
    return metrics
