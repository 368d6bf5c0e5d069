"""Bias adjustment of monthly forcing to a reference climatology (LAIDN, eq. 1).

A climate model's monthly forcing has its own climate: a cold bias in spring
shifts every phenology the LAI net learned from the reference (ERA5-like)
forcing it was trained on. Before inference the forcing is moved onto the
reference climate, per variable and calendar month, by the mean-shift of the
LAIDN work (REFERENCES.md):

    x_BA(t) = x_model(t) - mean_model,month(t) + mean_ref,month(t)

with both means taken over a common historical period. The anomalies of the
model (its interannual variability and its trend beyond that period) are kept.
A shift can push a bounded variable out of its range (precipitation below 0);
such values are clipped to the variable's valid range and counted.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import catalog, zarrstore
from .cube import MONTHLY_FORCING, Cube

log = logging.getLogger(__name__)


def monthly_climatology(values: np.ndarray, first_year: int, years: tuple[int, int]) -> np.ndarray:
    """Mean per calendar month over the inclusive `years` of a monthly series.

    `values` has the month axis first, starting in January of `first_year`;
    returns float64 of shape (12, *values.shape[1:])."""
    y0, y1 = years
    start, stop = (y0 - first_year) * 12, (y1 - first_year + 1) * 12
    if y1 < y0 or start < 0 or stop > len(values):
        last = first_year + len(values) // 12 - 1
        raise ValueError(f"years: expected a period within {first_year}..{last}, found {years}")
    period = values[start:stop].astype(np.float64)
    return period.reshape(y1 - y0 + 1, 12, *values.shape[1:]).mean(axis=0)


def adjust(
    values: np.ndarray, first_year: int, model_clim: np.ndarray, reference_clim: np.ndarray
) -> np.ndarray:
    """LAIDN eq. 1 on a monthly series starting in January of `first_year`
    (before clipping): the model's climatology replaced by the reference's."""
    months = np.arange(len(values)) % 12
    shift = reference_clim - model_clim  # (12, ...)
    return values.astype(np.float64) + shift[months]


def bias_adjust_cube(
    cube_path: str | Path,
    reference_path: str | Path,
    out: str | Path,
    years: tuple[int, int],
    variables: tuple[str, ...] = MONTHLY_FORCING,
) -> dict:
    """Write `out`: a copy of the cube at `cube_path` whose monthly forcing
    `variables` are adjusted to the climatology of the cube at `reference_path`
    over the inclusive `years` (in both cubes; the coarse grids must agree).

    Written to a temporary sibling and renamed when complete, so a failure
    leaves no half-adjusted cube. Returns a summary per variable (mean shift,
    clipped values), also stored in the new cube's attribute `bias_adjustment`.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists already; remove it or choose another path")
    model, ref = Cube.open(cube_path), Cube.open(reference_path)
    if model.grid.coarse_shape != ref.grid.coarse_shape or not np.allclose(
        (model.grid.lat_coarse, model.grid.lon_coarse), (ref.grid.lat_coarse, ref.grid.lon_coarse)
    ):
        raise ValueError(
            f"reference {reference_path}: coarse grid {ref.grid.describe()} differs from the "
            f"cube's {model.grid.describe()}; regrid one of them first"
        )
    for name in variables:
        if name not in MONTHLY_FORCING:
            raise ValueError(f"variables: expected names from {MONTHLY_FORCING}, found {name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    tmp = tmpdir / out.name
    try:
        shutil.copytree(model.path, tmp)
        root = zarrstore.open_group(tmp)
        summary = {}
        for name in variables:
            var = catalog.variable(name)
            values = np.asarray(model.root[name][:])
            model_clim = monthly_climatology(values, model.first_year, years)
            ref_clim = monthly_climatology(np.asarray(ref.root[name][:]), ref.first_year, years)
            adjusted = adjust(values, model.first_year, model_clim, ref_clim)
            clipped = int(((adjusted < var.valid_min) | (adjusted > var.valid_max)).sum())
            adjusted = np.clip(adjusted, var.valid_min, var.valid_max)
            root[name][:] = adjusted.astype(values.dtype)
            summary[name] = {
                "mean_shift": float((ref_clim - model_clim).mean()),
                "units": var.units,
                "clipped_values": clipped,
            }
            log.info("%s: mean shift %+.4g %s, %d values clipped to [%g, %g]", name,
                     summary[name]["mean_shift"], var.units, clipped, var.valid_min,
                     var.valid_max)  # fmt: skip
        root.attrs["bias_adjustment"] = {
            "method": "LAIDN eq. 1: x - mean_model,month + mean_reference,month, "
            "clipped to the valid range",
            "reference": str(reference_path),
            "source": str(cube_path),
            "years": list(years),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "variables": summary,
        }
        zarrstore.consolidate(tmp)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return summary
