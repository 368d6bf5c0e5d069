"""Skill metrics (REFERENCES.md, "Metrics"), each a plain function of numpy arrays so
that it can be checked by hand (tests/test_metrics.py) apart from any model run.

- Class maps: ONE confusion matrix accumulated over all pixels of the domain (and
  all tiles, where one streams), then accuracy, macro/weighted F1, mean IoU and
  per-class IoU from it. Averaging per-tile scores instead would weight a tile
  with 3 change pixels like one with 3000.
- Continuous maps: R², RMSE and bias by streamed sums, so that no field is held
  for all time steps; SSIM as in Wang et al. (2004): Gaussian window σ = 1.5
  (11 px), K1 = 0.01, K2 = 0.03 and an explicit data range (the variable's valid
  range, not the data's own, which would change from month to month).
- Scenario consistency of land use: the pixel counts of each class in a coarse
  cell against the counts its LUH2 fractions imply — the harmonisation that a
  land-use downscaling promises and a per-pixel argmax does not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import catalog

# --- class maps --------------------------------------------------------------------


def confusion(
    target: np.ndarray, pred: np.ndarray, n: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """n×n counts, rows = target class, columns = predicted class."""
    t = target.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    if mask is not None:
        m = mask.ravel().astype(bool)
        t, p = t[m], p[m]
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """IoU of each class, tp / (tp + fp + fn); NaN for a class absent from both the
    target and the prediction (0/0: no evidence either way, not a score of 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - tp
    return np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)


def class_scores(cm: np.ndarray) -> dict:
    """Accuracy, macro F1, weighted F1 and mean IoU over the classes present in
    the target or the prediction (absent classes would score 0/0), the number of
    pixels, and the per-class IoU (a list, NaN where a class is absent)."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    if total == 0:
        nan = float("nan")
        return {
            "accuracy": nan,
            "macro_f1": nan,
            "weighted_f1": nan,
            "mean_iou": nan,
            "pixels": 0,
            "per_class_iou": [nan] * len(cm),
        }
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    iou = per_class_iou(cm)
    return {
        "accuracy": float(tp.sum() / total),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "mean_iou": float(iou[present].mean()),
        "pixels": int(total),
        "per_class_iou": [float(v) for v in iou],
    }


def row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the share of each true class predicted as each
    class, i.e. recall on the diagonal); NaN rows for classes with no target pixel."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)


# --- continuous fields -------------------------------------------------------------


@dataclass
class ContinuousStats:
    """Streamed R², RMSE and bias of prediction against target."""

    n: int = 0
    sum_t: float = 0.0
    sum_t2: float = 0.0
    sum_e: float = 0.0
    sum_e2: float = 0.0
    extra: dict = field(default_factory=dict)

    def add(self, target: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> None:
        t = target.astype(np.float64)
        p = pred.astype(np.float64)
        if mask is not None:
            t, p = t[mask], p[mask]
        e = p - t
        self.n += t.size
        self.sum_t += t.sum()
        self.sum_t2 += (t * t).sum()
        self.sum_e += e.sum()
        self.sum_e2 += (e * e).sum()

    def scores(self) -> dict[str, float]:
        if self.n == 0:
            return {"r2": float("nan"), "rmse": float("nan"), "bias": float("nan"), "pixels": 0}
        var_t = self.sum_t2 / self.n - (self.sum_t / self.n) ** 2
        mse = self.sum_e2 / self.n
        return {
            "r2": float(1 - mse / var_t) if var_t > 0 else float("nan"),
            "rmse": float(np.sqrt(mse)),
            "bias": float(self.sum_e / self.n),
            "pixels": int(self.n),
        }


@dataclass
class StreamedMean:
    """Mean of values added in batches (e.g. SSIM maps of many months over land)."""

    total: float = 0.0
    n: int = 0

    def add(self, values: np.ndarray) -> None:
        self.total += float(np.sum(values, dtype=np.float64))
        self.n += int(np.size(values))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")


SSIM_SIGMA = 1.5
SSIM_SIZE = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_kernel(sigma: float = SSIM_SIGMA, size: int = SSIM_SIZE) -> np.ndarray:
    """1-D Gaussian weights of `size` taps (odd), summing to 1."""
    if size % 2 != 1:
        raise ValueError(f"Gaussian window size must be odd, found {size}")
    x = np.arange(size, dtype=np.float64) - size // 2
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_filter(x: np.ndarray, sigma: float = SSIM_SIGMA, size: int = SSIM_SIZE) -> np.ndarray:
    """Separable Gaussian smoothing of a 2-D field in float64; the edges are
    mirrored (d c b a | a b c d), as scipy.ndimage's default, so that every pixel of
    the domain gets a full window and edge pixels are not pulled towards 0."""
    k = gaussian_kernel(sigma, size)
    r = size // 2
    a = np.pad(np.asarray(x, dtype=np.float64), r, mode="symmetric")
    ny, nx = a.shape[0] - 2 * r, a.shape[1] - 2 * r
    rows = sum(k[i] * a[i : i + ny, :] for i in range(size))
    return sum(k[j] * rows[:, j : j + nx] for j in range(size))


def ssim_map(
    target: np.ndarray,
    pred: np.ndarray,
    data_range: float,
    sigma: float = SSIM_SIGMA,
    size: int = SSIM_SIZE,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004) of two 2-D fields with Gaussian-weighted
    local means, variances and covariance; population (not sample) moments."""
    if data_range <= 0:
        raise ValueError(f"SSIM data_range must be > 0, found {data_range}")
    x = np.asarray(target, dtype=np.float64)
    y = np.asarray(pred, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"SSIM needs two 2-D fields of one shape, found {x.shape}, {y.shape}")
    g = lambda a: gaussian_filter(a, sigma, size)  # noqa: E731
    mx, my = g(x), g(y)
    vx = g(x * x) - mx * mx
    vy = g(y * y) - my * my
    cxy = g(x * y) - mx * my
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def masked_ssim(
    target: np.ndarray, pred: np.ndarray, mask: np.ndarray, data_range: float
) -> np.ndarray:
    """The SSIM map over the whole field, returned on the `mask` pixels only (the
    caller averages them, possibly over many months)."""
    return ssim_map(target, pred, data_range)[mask]


# --- scenario consistency of land use ----------------------------------------------

CHANGEABLE_LU = catalog.LU_CHANGEABLE  # urban, crop, pasture, forest, natural
# IGBP classes whose sparse (LU 6) pixels are not in LUH2's natural share: snow and
# ice, barren. The surrogate world (emulator/world.py, _LandUse.luh2) puts the other
# LU-6 pixels into primn/secdn, so they count towards class 5 here.
BARE_IGBP: tuple[int, ...] = (15, 16)


def luh2_to_lu_matrix() -> np.ndarray:
    """(5, 12) matrix summing the LUH2 states into the changeable LU classes 1..5
    (primn/secdn → 5, natural)."""
    return np.array(catalog.luh2_to_lu_matrix(), dtype=np.float64)[list(CHANGEABLE_LU)]


def implied_counts(luh2_frac: np.ndarray, f: int) -> np.ndarray:
    """(5, h, w) pixel counts of LU classes 1..5 that the LUH2 fractions (12, h, w)
    of each coarse cell of f×f pixels imply: x_k = f² Σ_{s → k} frac_s."""
    frac = np.asarray(luh2_frac, dtype=np.float64)
    return f * f * np.tensordot(luh2_to_lu_matrix(), frac, axes=1)


def _cell_sum(x: np.ndarray, f: int) -> np.ndarray:
    h, w = x.shape[0] // f, x.shape[1] // f
    return x.reshape(h, f, w, f).sum(axis=(1, 3))


def map_counts(lu: np.ndarray, igbp: np.ndarray, f: int) -> np.ndarray:
    """(5, h, w) pixel counts per coarse cell of LU classes 1..5 in a map, class 5
    with the sparse (LU 6) pixels whose IGBP class is not bare (see BARE_IGBP)."""
    lu = np.asarray(lu)
    counts = np.stack([_cell_sum((lu == k).astype(np.int64), f) for k in CHANGEABLE_LU])
    veg6 = (lu == catalog.LU["sparse/no vegetation"]) & ~np.isin(igbp, BARE_IGBP)
    counts[-1] += _cell_sum(veg6.astype(np.int64), f)
    return counts


def land_cells(land: np.ndarray, f: int) -> np.ndarray:
    """(h, w) mask of the coarse cells with at least one land pixel."""
    return _cell_sum(np.asarray(land, dtype=bool).astype(np.int64), f) > 0


def consistency(
    lu: np.ndarray,
    igbp: np.ndarray,
    luh2_frac: np.ndarray,
    land: np.ndarray,
    f: int,
    tolerance: float = 1.0,
) -> dict[str, float]:
    """How well a LU map's cell counts follow the LUH2 fractions: over the (cell,
    class) pairs of the cells with any land, the share with |count − x_k| ≤
    `tolerance` pixels (+1e-6 for rounding of the stored fractions), the mean
    absolute count error (pixels) and the number of pairs."""
    cells = land_cells(land, f)
    err = np.abs(map_counts(lu, igbp, f) - implied_counts(luh2_frac, f))[:, cells]
    if err.size == 0:
        return {"share_within": float("nan"), "mae": float("nan"), "pairs": 0}
    return {
        "share_within": float(np.mean(err <= tolerance + 1e-6)),
        "mae": float(err.mean()),
        "pairs": int(err.size),
    }
