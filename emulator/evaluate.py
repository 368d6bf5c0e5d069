"""`landbc evaluate`: skill of a bundle on held-out years of a cube, beside baselines.

The emulator runs autoregressively from the truth of the month before the
period (as in a coupled run, it never sees the truth again) and is scored
against the cube's truth:

- LU and LC, yearly: accuracy, macro/weighted F1, mean IoU, overall and on the
  pixels that changed from the previous year's truth. Baselines: persistence
  (the initial truth copied; it scores 0 on change pixels by definition) and,
  for LU, the dominant LUH2 class of the coarse cell upsampled.
- LAI, monthly: R², RMSE, bias on land. Baselines: the per-pixel monthly
  climatology of the training years, and bilinear interpolation of the coarse
  (0.25°) mean of the TRUE LAI — an oracle that knows each month's coarse LAI,
  which the emulator does not.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import catalog, precision
from .api import BoundaryConditionEmulator
from .bundle import update_metrics
from .cube import Cube, month_index
from .grid import Grid, box_window
from .metrics import ContinuousStats, class_scores, confusion

log = logging.getLogger(__name__)


def _luh2_to_lu_matrix() -> np.ndarray:
    """(N_LU, 12) matrix summing LUH2 states into LU classes; natural non-forest → class 5."""
    m = np.zeros((catalog.N_LU, catalog.N_LUH2), dtype=np.float32)
    for j, state in enumerate(catalog.LUH2_STATES):
        m[catalog.LUH2_TO_LU[state][0], j] = 1.0
    return m


def coarse_dominant_lu(luh2_frac: np.ndarray, grid: Grid, prior_truth: np.ndarray) -> np.ndarray:
    """Baseline: the dominant LU class of each coarse cell from LUH2, upsampled;
    sea and inland water (static) taken from the prior truth."""
    frac = np.tensordot(_luh2_to_lu_matrix(), luh2_frac, axes=1)  # (N_LU, h, w)
    dom = grid.refine(frac.argmax(axis=0).astype(np.uint8))
    keep = (prior_truth == 0) | (prior_truth == catalog.LU["water"])
    return np.where(keep, prior_truth, dom).astype(np.uint8)


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


def monthly_climatology(cube: Cube, years: tuple[int, int], window) -> np.ndarray:
    """Per-pixel mean LAI of each calendar month over `years` (12, ny, nx)."""
    sl = window or (slice(None), slice(None))
    clim = None
    n = 0
    for y in tqdm(range(years[0], years[1] + 1), desc="LAI climatology", leave=False, disable=None):
        block = np.asarray(
            cube.root["lai"][
                (
                    slice(
                        month_index(y, 1, cube.first_year), month_index(y, 12, cube.first_year) + 1
                    ),
                    *sl,
                )
            ],
            dtype=np.float64,
        )
        clim = block if clim is None else clim + block
        n += 1
    return (clim / n).astype(np.float32)


class _ClassScores:
    def __init__(self, n: int) -> None:
        self.n = n
        self.per_year: dict[int, dict[str, np.ndarray]] = {}

    def add(self, year: int, name: str, target, pred, land, prior_truth) -> None:
        entry = self.per_year.setdefault(year, {})
        changed = land & (target != prior_truth)
        entry[f"{name}/overall"] = confusion(target, pred, self.n, land)
        entry[f"{name}/change"] = confusion(target, pred, self.n, changed)

    def report(self) -> dict:
        years = sorted(self.per_year)
        out: dict = {"years": years, "first_year": {}, "mean_over_years": {}}
        keys = sorted(self.per_year[years[0]]) if years else []
        for key in keys:
            name, part = key.split("/")
            first = class_scores(self.per_year[years[0]][key])
            per = [class_scores(self.per_year[y][key]) for y in years]
            mean = {m: float(np.nanmean([p[m] for p in per])) for m in first if m != "pixels"}
            mean["pixels_per_year"] = int(np.mean([p["pixels"] for p in per]))
            out["first_year"].setdefault(name, {})[part] = first
            out["mean_over_years"].setdefault(name, {})[part] = mean
        return out


def evaluate(
    bundle: str | Path,
    cube_path: str | Path,
    years: tuple[int, int] = (2016, 2020),
    direction: str = "forward",
    box: tuple[float, float, float, float] | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Run the bundle over `years` of the cube and score it; return the report.

    `dtype` as in `BoundaryConditionEmulator.from_bundle` (float32 by default here
    too, so that scores are reproducible across machines; `landbc evaluate`
    defaults to "auto"); the report records the dtype actually used."""
    cube = Cube.open(cube_path)
    emu = BoundaryConditionEmulator.from_bundle(bundle, device=device, dtype=dtype)
    first, last = years
    sign = 1 if direction == "forward" else -1
    start = (first - 1, 12) if sign > 0 else (last + 1, 1)
    for y in (start[0], first, last):
        cube._check_year(y)
    grid, window = cube.grid, None
    if box is not None:
        window = box_window(cube.grid, box)
        grid = cube.grid.window(window[0].start, window[0].stop, window[1].start, window[1].stop)

    static = cube.static(window)
    land = static["land_mask"].astype(bool)
    init = cube.truth(*start, window=window)
    emu.initialise(grid, static, init, *start, direction=direction)
    train_years = tuple(emu.manifest["training"]["data"]["years"])
    clim = monthly_climatology(cube, train_years, window)

    lu_scores, lc_scores = _ClassScores(catalog.N_LU), _ClassScores(catalog.N_LC)
    lai_stats = {k: ContinuousStats() for k in ("emulator", "climatology", "bilinear_coarse_truth")}
    lai_first = {k: ContinuousStats() for k in lai_stats}
    n_steps = 12 * (last - first + 1)
    step_times = []
    for _ in tqdm(range(n_steps), desc="evaluate", disable=None if progress else True):
        y, m = emu.next_time
        t0 = time.perf_counter()
        fc = cube.forcing(y, m, window)
        res = emu.step(fc, time=(y, m))
        out = res.numpy()
        step_times.append(time.perf_counter() - t0)
        truth = cube.truth(y, m, window=window, names=("lai",))
        if m == (1 if sign > 0 else 12):  # the step entered a new year: LU/LC were produced
            truth.update(cube.truth(y, m, window=window, names=("lu", "lc")))
            prev = cube.truth(y - sign, m, window=window, names=("lu", "lc"))
            for sc, name in ((lu_scores, "lu"), (lc_scores, "lc")):
                sc.add(y, "emulator", truth[name], out[name], land, prev[name])
                sc.add(y, "persistence", truth[name], init[name], land, prev[name])
            dom = coarse_dominant_lu(fc["luh2_frac"], grid, init["lu"])
            lu_scores.add(y, "coarse_dominant", truth["lu"], dom, land, prev["lu"])
        preds = {
            "emulator": out["lai"],
            "climatology": clim[m - 1],
            "bilinear_coarse_truth": bilinear_coarse(truth["lai"], land, grid),
        }
        for k, p in preds.items():
            lai_stats[k].add(truth["lai"], p, land)
            if y == (first if sign > 0 else last):
                lai_first[k].add(truth["lai"], p, land)
    report = {
        "bundle": str(bundle),
        "cube": str(cube_path),
        "direction": direction,
        "period": [first, last],
        "domain": grid.describe(),
        "dtype": precision.dtype_name(emu.dtype),  # as resolved; "auto" is machine-dependent
        "dtype_requested": dtype if isinstance(dtype, str) else precision.dtype_name(dtype),
        "device": str(emu.device),
        "land_pixels": int(land.sum()),
        "lu": lu_scores.report(),
        "lc": lc_scores.report(),
        "lai": {
            "all_months": {k: s.scores() for k, s in lai_stats.items()},
            "first_year": {k: s.scores() for k, s in lai_first.items()},
        },
        "timing": {
            "steps": n_steps,
            "mean_step_s": float(np.mean(step_times)),
            "year_step_s": float(np.mean(step_times[::12])),
            "month_step_s": float(np.mean([t for i, t in enumerate(step_times) if i % 12])),
        },
    }
    return report


def summary_table(report: dict) -> str:
    """Markdown tables of a report, as in the README."""
    lines = [
        f"Held-out {report['period'][0]}–{report['period'][1]}, {report['direction']}, "
        f"{report['domain']}, {report['land_pixels']} land pixels.",
        "",
        "| field | model | part | accuracy | macro F1 | weighted F1 | mean IoU |",
        "|---|---|---|---|---|---|---|",
    ]
    for field in ("lu", "lc"):
        for when in ("first_year", "mean_over_years"):
            for model, parts in report[field][when].items():
                for part, s in parts.items():
                    lines.append(
                        f"| {field.upper()} {when.replace('_', ' ')} | {model} | {part} | "
                        f"{s['accuracy']:.4f} | {s['macro_f1']:.4f} | "
                        f"{s['weighted_f1']:.4f} | {s['mean_iou']:.4f} |"
                    )
    lines += ["", "| LAI | model | R² | RMSE | bias |", "|---|---|---|---|---|"]
    for when in ("first_year", "all_months"):
        for model, s in report["lai"][when].items():
            lines.append(
                f"| {when.replace('_', ' ')} | {model} | {s['r2']:.4f} | "
                f"{s['rmse']:.4f} | {s['bias']:+.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="landbc evaluate", description="Score a bundle on held-out years of a cube"
    )
    p.add_argument("bundle", type=Path)
    p.add_argument("cube", type=Path)
    p.add_argument("--years", type=int, nargs=2, default=(2016, 2020), metavar=("FIRST", "LAST"))
    p.add_argument("--direction", choices=("forward", "backward"), default="forward")
    p.add_argument(
        "--box",
        type=float,
        nargs=4,
        metavar=("S", "N", "W", "E"),
        help="evaluate on a window of the cube",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=precision.DTYPE_CHOICES,
        help="nets' precision (default auto: bfloat16 only where the device does it "
        "natively and fast, else float32)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="write the report as JSON here")
    p.add_argument(
        "--update-manifest", action="store_true", help="record the report as the bundle's metrics"
    )
    a = p.parse_args(argv)
    report = evaluate(
        a.bundle,
        a.cube,
        tuple(a.years),
        a.direction,
        tuple(a.box) if a.box else None,
        a.dtype,
        a.device,
    )
    table = summary_table(report)
    print(table)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=1) + "\n")
        a.out.with_suffix(".md").write_text(table + "\n")
        log.info("report written to %s", a.out)
    if a.update_manifest:
        update_metrics(a.bundle, {f"heldout_{a.direction}": report})
    return report
