"""Skill metrics (REFERENCES.md, "Metrics"): one confusion matrix accumulated over
all pixels, then accuracy, macro/weighted F1 and mean IoU; continuous fields by
streamed sums (R², RMSE, bias) so that no field is held for all time steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


def class_scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1, weighted F1 and mean IoU over the classes present in
    the target or the prediction (absent classes would score 0/0)."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    if total == 0:
        return {
            "accuracy": float("nan"),
            "macro_f1": float("nan"),
            "weighted_f1": float("nan"),
            "mean_iou": float("nan"),
            "pixels": 0,
        }
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    iou = np.divide(tp, support + predicted - tp, out=np.zeros_like(tp), where=present)
    return {
        "accuracy": float(tp.sum() / total),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "mean_iou": float(iou[present].mean()),
        "pixels": int(total),
    }


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
