"""PNG quicklooks of a run: LU and LC maps, an LAI map, and the domain-mean LAI
of the emulator against the surrogate truth in the cube.

Categorical maps use fixed colours per class (the same class has the same
colour in every figure) and a legend of the class names from the catalog,
listing only the classes present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from landbc.emulator import catalog  # noqa: E402
from landbc.emulator.cube import Cube  # noqa: E402
from landbc.emulator.grid import Grid  # noqa: E402

from . import calendar as cal  # noqa: E402
from .output import OutputStore  # noqa: E402

log = logging.getLogger(__name__)

LU_COLORS: tuple[str, ...] = (
    "#cfe8f3",  # 0 ocean/no data
    "#d7191c",  # 1 urban
    "#fdd835",  # 2 cropland
    "#a6d96a",  # 3 pasture/rangeland
    "#1a7837",  # 4 forest
    "#c2a5cf",  # 5 unmanaged grass/shrubland
    "#bdbdbd",  # 6 sparse/no vegetation
    "#2b83ba",  # 7 water
)
LC_COLORS: tuple[str, ...] = (
    "#cfe8f3", "#fdd835", "#b8e186", "#00441b", "#41ab5d", "#74c476", "#006d2c",
    "#d9f0a3", "#f6e8c3", "#c7eae5", "#ff7f00", "#dfc27d", "#ffffff", "#80cdc1",
    "#2b83ba", "#08306b", "#8c510a", "#bf812d", "#238b45", "#78c679", "#9ecae1",
)  # fmt: skip


def _extent(grid: Grid) -> list[float]:
    return [grid.lon_west, grid.lon_east, grid.lat_south, grid.lat_north]


def plot_class_map(data: np.ndarray, grid: Grid, classes: tuple[catalog.LandClass, ...],
                   colors: tuple[str, ...], title: str, path: str | Path) -> Path:  # fmt: skip
    """A categorical map with a legend of the class names present."""
    n = len(classes)
    cmap = ListedColormap(list(colors[:n]))
    norm = BoundaryNorm(np.arange(-0.5, n + 0.5), n)
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    ax.imshow(data, cmap=cmap, norm=norm, extent=_extent(grid), interpolation="nearest",
              origin="upper")  # fmt: skip
    present = set(np.unique(data).tolist())
    handles = [
        Patch(facecolor=colors[c.index], edgecolor="k", linewidth=0.3, label=f"{c.index} {c.name}")
        for c in classes
        if c.index in present
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
              frameon=False)  # fmt: skip
    return _save_map(fig, ax, title, path)


def _save_map(fig, ax, title: str, path: str | Path) -> Path:
    ax.set_title(title)
    ax.set_xlabel("longitude (deg E)")
    ax.set_ylabel("latitude (deg N)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lai_map(data: np.ndarray, grid: Grid, title: str, path: str | Path,
                 land: np.ndarray | None = None) -> Path:  # fmt: skip
    d = np.asarray(data, dtype=np.float32)
    if land is not None:
        d = np.where(land, d, np.nan)
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    vmax = max(1.0, float(np.nanpercentile(d, 99.5))) if np.isfinite(d).any() else 1.0
    im = ax.imshow(d, cmap="YlGn", vmin=0, vmax=vmax, extent=_extent(grid),
                   interpolation="nearest")  # fmt: skip
    fig.colorbar(im, ax=ax, label="leaf area index (m2 m-2)", shrink=0.8)
    return _save_map(fig, ax, title, path)


@dataclass(frozen=True)
class LaiSeries:
    """Domain-mean (land only, cos(lat)-weighted) LAI per month, in time order."""

    months: list[tuple[int, int]]
    emulated: np.ndarray
    truth: np.ndarray

    @property
    def mae(self) -> float:
        return float(np.mean(np.abs(self.emulated - self.truth)))

    @property
    def bias(self) -> float:
        return float(np.mean(self.emulated - self.truth))

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean((self.emulated - self.truth) ** 2)))


def cube_window(cube: Cube, grid: Grid) -> tuple[slice, slice]:
    """The window of the cube that is `grid` (a window of the cube's grid)."""
    (r0, c0), (cr, cc) = grid.origin, cube.grid.origin
    ny, nx = grid.shape
    if grid.res != cube.grid.res or r0 < cr or c0 < cc:
        raise ValueError(f"grid {grid.describe()} is not a window of cube {cube.path}")
    return slice(r0 - cr, r0 - cr + ny), slice(c0 - cc, c0 - cc + nx)


def area_weighted_mean(field: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(field) & (weights > 0)
    w = np.where(ok, weights, 0.0)
    return float(np.sum(np.where(ok, field, 0.0) * w) / max(np.sum(w), 1e-300))


def domain_mean_lai(store: str | Path | OutputStore, cube: str | Path | Cube) -> LaiSeries:
    """Domain-mean LAI of the completed steps of `store` and of the cube's truth."""
    st = store if isinstance(store, OutputStore) else OutputStore.open(store, mode="r")
    cb = cube if isinstance(cube, Cube) else Cube.open(cube)
    win = cube_window(cb, st.grid)
    land = cb.root["land_mask"][win] == 1
    weights = np.cos(np.radians(st.grid.lat))[:, None] * land
    months = sorted(st.months[: st.completed_steps])
    emu, truth = [], []
    for ym in months:
        emu.append(area_weighted_mean(st.root["lai"][st.time_index(*ym)], weights))
        truth.append(area_weighted_mean(cb.truth(*ym, window=win)["lai"], weights))
    return LaiSeries(months, np.array(emu), np.array(truth))


def plot_lai_series(series: LaiSeries, path: str | Path, title: str = "") -> Path:
    t = [np.datetime64(cal.first_of_month(*m), "D") + np.timedelta64(14, "D")
         for m in series.months]  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    ax.plot(t, series.truth, "k-o", ms=3, label="surrogate truth (cube)")
    ax.plot(t, series.emulated, "-o", color="#1a7837", ms=3, label="emulator")
    ax.set_ylabel("domain-mean land LAI (m2 m-2)")
    ax.set_title(title or f"Domain-mean LAI: MAE {series.mae:.3f}, bias {series.bias:+.3f}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def quicklooks(store: str | Path, cube: str | Path | None = None, outdir: str | Path | None = None,
               lai_month: tuple[int, int] | None = None) -> list[Path]:  # fmt: skip
    """Write the quicklook PNGs of a run's output store; return their paths.

    LU and LC are shown for the last completed month, LAI for `lai_month`
    (default: the last July of the run, else its last month). With a cube,
    the LAI time series against the cube's truth is drawn too.
    """
    st = OutputStore.open(store, mode="r")
    n = st.completed_steps
    if n == 0:
        raise ValueError(f"{store}: no completed steps to plot")
    out = Path(outdir) if outdir is not None else Path(store).parent
    out.mkdir(parents=True, exist_ok=True)
    done = sorted(st.months[:n])
    last = st.months[n - 1]
    if lai_month is None:
        julys = [m for m in done if m[1] == 7]
        lai_month = julys[-1] if julys else last
    if lai_month not in done:
        raise ValueError(f"lai_month {cal.format_month(*lai_month)} is not a completed month "
                         f"of {store}")  # fmt: skip
    g = st.grid
    ti = st.time_index(*last)
    tag = cal.format_month(*last)
    paths = [
        plot_class_map(st.root["lu"][ti], g, catalog.LU_CLASSES, LU_COLORS,
                       f"Land use {tag} (emulated)", out / f"lu_{tag}.png"),
        plot_class_map(st.root["lc"][ti], g, catalog.LC_CLASSES, LC_COLORS,
                       f"Land cover {tag} (emulated)", out / f"lc_{tag}.png"),
    ]  # fmt: skip
    land = None
    cb = Cube.open(cube) if cube is not None else None
    if cb is not None:
        land = cb.root["land_mask"][cube_window(cb, g)] == 1
    ltag = cal.format_month(*lai_month)
    paths.append(plot_lai_map(st.root["lai"][st.time_index(*lai_month)], g,
                              f"Leaf area index {ltag} (emulated)", out / f"lai_{ltag}.png",
                              land))  # fmt: skip
    if cb is not None:
        series = domain_mean_lai(st, cb)
        paths.append(plot_lai_series(series, out / "lai_series.png"))
    for p in paths:
        log.info("wrote %s", p)
    return paths
