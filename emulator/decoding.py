"""Scenario-consistent decoding: class maps whose coarse-cell counts follow the scenario.

Land-use downscaling promises harmonisation: aggregated back to the coarse grid,
the high-resolution map reproduces the coarse scenario (LUH2 fractions). An
argmax of per-pixel probabilities does not keep that promise (it flips every
pixel whose change probability passes a threshold, however many the scenario
allows), so the nets say only *which* pixels change and this module decides
*how many*:

* `target_counts` turns real-valued class counts per coarse cell into integers
  with the cell's total, by largest remainder (the rounding the coarse
  fractions call for), and returns the sub-pixel remainder that a stepper
  carries to the next year, so that slow trends of a tenth of a pixel a year
  still add up to whole-pixel changes;
* `rebalance` starts from a class map (last year's, or an argmax) and makes
  the fewest conversions that bring every cell to its target counts, choosing
  each conversion greedily by the gain in log-probability, log p(new) - log p(old).
  A pixel is converted only from a class the cell must lose to a class it must
  gain, so cells whose counts already match keep their map exactly.

Everything works in a "cells" layout: (N cells, ..., P pixels per cell); `to_cells`
and `from_cells` convert a (..., H, W) field with coarse factor f to it and back.
These are TorchScript functions: the stepper compiles them into the bundle.
"""

import torch
from torch import Tensor


def to_cells(x: Tensor, f: int) -> Tensor:
    """(..., H, W) → (N, ..., f*f) with N = (H/f)(W/f), cells in row-major order."""
    lead: list[int] = list(x.shape[:-2])
    h = x.shape[-2]
    w = x.shape[-1]
    nd = len(lead)
    y = x.reshape(lead + [h // f, f, w // f, f])
    # (..., hc, f, wc, f) → (hc, wc, ..., f, f)
    perm = [nd, nd + 2] + list(range(nd)) + [nd + 1, nd + 3]
    y = y.permute(perm)
    return y.reshape([(h // f) * (w // f)] + lead + [f * f])


def from_cells(c: Tensor, f: int, h: int, w: int) -> Tensor:
    """Inverse of `to_cells`: (N, ..., f*f) → (..., H, W)."""
    lead: list[int] = list(c.shape[1:-1])
    nd = len(lead)
    y = c.reshape([h // f, w // f] + lead + [f, f])
    # (hc, wc, ..., f, f) → (..., hc, f, wc, f)
    perm = list(range(2, 2 + nd)) + [0, nd + 2, 1, nd + 3]
    return y.permute(perm).reshape(lead + [h, w])


def cells_at(x: Tensor, f: int, cells: Tensor) -> Tensor:
    """The cells `cells` (indices in `to_cells` order) of a (H, W) or (K, H, W)
    field, as (N, f*f) or (N, K, f*f), without converting the whole field."""
    h = x.shape[-2]
    w = x.shape[-1]
    wc = w // f
    cy = torch.div(cells, wc, rounding_mode="floor")
    cx = cells % wc
    if x.dim() == 2:
        return x.reshape(h // f, f, wc, f)[cy, :, cx, :].reshape(-1, f * f)
    k = x.shape[0]
    # advanced indices split by a slice: the cell dimension comes first
    return x.reshape(k, h // f, f, wc, f)[:, cy, :, cx, :].reshape(-1, k, f * f)


def put_cells(x: Tensor, f: int, cells: Tensor, values: Tensor) -> None:
    """Write (N, f*f) `values` into the cells `cells` of the (H, W) field `x`, in place."""
    h = x.shape[0]
    w = x.shape[1]
    wc = w // f
    cy = torch.div(cells, wc, rounding_mode="floor")
    cx = cells % wc
    x.reshape(h // f, f, wc, f)[cy, :, cx, :] = values.reshape(-1, f, f)


def target_counts(real: Tensor, total: Tensor) -> tuple[Tensor, Tensor]:
    """Integer counts (N, K) with row sums `total` (N,) nearest to the real counts
    (N, K), by largest remainder (ties to the lower class); and the remainder
    real' - counts, where real' is `real` clipped at 0 and rescaled to the total
    (a scenario whose classes do not add up to the cell's free pixels is read
    as shares of them)."""
    x = real.double().clamp_min(0.0)
    s = x.sum(1, keepdim=True)
    t = total.double()[:, None]
    # rows that sum to nothing (no free pixel, or no scenario): all to class 0 of K
    x = torch.where(s > 0, x * t / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(x))
    fl = torch.floor(x + 1e-9)
    left = (t[:, 0] - fl.sum(1)).round().long()
    rem = x - fl
    k = x.shape[1]
    order = torch.argsort(-rem, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(k, device=x.device).expand_as(order).contiguous())
    counts = fl.long() + (rank < left[:, None]).long()
    return counts, (x - counts.double()).float()


def rebalance(logp: Tensor, classes: Tensor, target: Tensor, free: Tensor) -> Tensor:
    """The class map (N, P) with the fewest conversions that gives each cell the
    counts `target` (N, K) over its `free` pixels (N, P), starting from `classes`.

    logp (N, K, P): log-probabilities (or any score where more is likelier) of
    each class at each pixel. Each round converts, in every cell that still has
    a need, the one pixel and gaining class with the largest logp(new) - logp(old),
    among pixels of a class the cell must lose. A need that cannot be met (no pixel
    left of a losing class) stays unmet. Ties go to the lower class, then the lower
    pixel index, so the result is deterministic.
    """
    n = logp.shape[0]
    k = logp.shape[1]
    p = logp.shape[2]
    out = classes.long().clone()
    if n == 0:
        return out
    free_f = free.to(torch.int64)
    count = torch.zeros(n, k, dtype=torch.int64, device=out.device)
    count.scatter_add_(1, out, free_f)
    need = target.long() - count
    act = (need != 0).any(1).nonzero()[:, 0]
    if act.numel() == 0:
        return out
    lp = logp[act].float()
    cl = out[act]
    nd = need[act]
    fr = free[act].to(torch.bool)
    rows = torch.arange(act.numel(), device=out.device)
    neg = torch.tensor(float("-inf"), device=out.device)
    for _ in range(p):
        gain = nd > 0
        cand = fr & (nd < 0).gather(1, cl)
        if not bool((cand.any(1) & gain.any(1)).any()):
            break
        score = lp - lp.gather(1, cl[:, None, :])
        ok = gain[:, :, None] & cand[:, None, :]
        flat = torch.where(ok, score, neg).reshape(-1, k * p)
        best = flat.argmax(1)
        valid = ok.reshape(-1, k * p).gather(1, best[:, None])[:, 0]
        r = rows[valid]
        g = torch.div(best[valid], p, rounding_mode="floor")
        px = best[valid] % p
        old = cl[r, px]
        cl[r, px] = g
        nd[r, g] -= 1
        nd[r, old] += 1
    out[act] = cl
    return out


def scenario_counts(
    prior: Tensor, implied: Tensor, changeable: Tensor, residual: int, tolerance: float
) -> Tensor:
    """This year's class counts per cell (N, K) from last year's `prior` counts and
    the counts the coarse fractions imply (`implied`, real-valued).

    A changeable class keeps last year's count while that lies within `tolerance`
    pixels of the implied count, and otherwise moves to the nearest whole count
    inside the band: the fractions fix a cell's counts only to within the
    rounding (the year a cell's count steps is not knowable from them), so a map
    changes only when the scenario forces it, and then by the fewest pixels.
    The `residual` class takes what the changeable pixels leave (its scenario
    share may hold pixels of other classes, e.g. natural land of LUH2 covers
    sparse vegetation too); fixed classes keep their counts. A cell whose bands
    cannot be met within its pixels gets the largest-remainder counts instead.
    """
    k = prior.shape[1]
    others = changeable.clone()
    others[residual] = False
    lo = torch.ceil(implied - tolerance - 1e-6).clamp_min(0).long()
    hi = torch.floor(implied + tolerance + 1e-6).long()
    hi = torch.maximum(hi, lo)
    want = torch.where(others[None, :], torch.minimum(torch.maximum(prior, lo), hi), prior)
    total = (prior * changeable[None, :].long()).sum(1)
    rest = total - (want * others[None, :].long()).sum(1)
    want[:, residual] = rest
    bad = rest < 0
    if bool(bad.any()):
        ch = changeable[None, :].expand(int(bad.sum()), k)
        real = torch.where(ch, implied[bad], torch.zeros_like(implied[bad]))
        lr, _ = target_counts(real, total[bad])
        want[bad] = torch.where(ch, lr, prior[bad])
    return want
