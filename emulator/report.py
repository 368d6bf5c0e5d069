"""The evaluation report: targets, metrics.json, report.md and its PNGs.

Everything here is a function of the metrics dict that `evaluate.evaluate` returns
(metrics.json is that dict as strict JSON, NaN written as null), so the figures and
tables are made apart from any model run, and the targets are judged in one place,
from numbers: a target is "met" only when its measured value is finite and passes;
a value that could not be measured (no change pixels, say) is "not measured",
never "met".
"""

from __future__ import annotations

import json
import logging
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .metrics import row_normalised  # noqa: E402

log = logging.getLogger(__name__)

LU_BASELINES = ("persistence", "coarse_dominant", "random_allocation")
LC_BASELINES = ("persistence",)
LAI_BASELINES = ("climatology", "bilinear_coarse_truth")

# Targets of the protocol (the numbers in one place; check_targets says how each is read).
LU_CHANGE_MARGIN = 0.10  # change-pixel first-year mean IoU / macro F1 over the best baseline
MAX_DRIFT = 0.03  # first-year minus mean overall accuracy: 3 points
MIN_CONSISTENCY = 0.99  # share of (cell, class) pairs within one pixel, every year
MIN_LAI_R2 = 0.92
MAX_LAI_RMSE_VS_CLIMATOLOGY = 0.8
MAX_LAI_ABS_BIAS = 0.05

MODEL_LABELS = {
    "emulator": "emulator",
    "persistence": "persistence",
    "coarse_dominant": "coarse dominant class",
    "random_allocation": "random allocation (coarse fractions)",
    "climatology": "monthly climatology",
    "bilinear_coarse_truth": "bilinear coarse truth (oracle)",
    "truth": "truth (reference)",
}
MODEL_COLORS = {
    "truth": "k",
    "emulator": "#1a7837",
    "persistence": "#7570b3",
    "coarse_dominant": "#d95f02",
    "random_allocation": "#e7298a",
    "climatology": "#2b83ba",
    "bilinear_coarse_truth": "#a6761d",
}

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
}
_OP_TEXT = {">=": "≥", "<=": "≤", ">": ">"}


# --- targets ---------------------------------------------------------------------------


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _best(scores: dict, models: tuple[str, ...], part: str, metric: str) -> tuple[str, float]:
    """The baseline with the highest finite score (name, value); ("", nan) if none."""
    vals = [(m, scores[m][part][metric]) for m in models if m in scores]
    vals = [(m, v) for m, v in vals if _finite(v)]
    return max(vals, key=lambda mv: mv[1]) if vals else ("", float("nan"))


def _fmt(value: float, unit: str) -> str:
    if not _finite(value):
        return "n/a"
    if unit == "pts":
        return f"{100 * value:+.2f} pts"
    if unit == "%":
        return f"{100 * value:.2f} %"
    if unit == "lai":
        return f"{value:.3f}"
    return f"{value:.4f}"


def _target(
    direction: str,
    key: str,
    name: str,
    measured: float,
    op: str,
    threshold: float,
    unit: str,
    reference: str,
) -> dict:
    if _finite(measured) and _finite(threshold):
        status = "met" if _OPS[op](measured, threshold) else "missed"
    else:
        status = "not measured"
    return {
        "direction": direction,
        "id": key,
        "target": name,
        "measured": measured,
        "comparison": op,
        "threshold": threshold,
        "unit": unit,
        "reference": reference,
        "status": status,
    }


def check_targets(metrics: dict) -> list[dict]:
    """The protocol's targets for each direction, judged on the metrics."""
    out = []
    for d in metrics["directions"]:
        r = metrics["results"][d]
        t = lambda *a, d=d: out.append(_target(d, *a))  # noqa: E731
        for field, baselines in (("lu", LU_BASELINES), ("lc", LC_BASELINES)):
            F = field.upper()
            fy, mo = r[field]["first_year"], r[field]["mean_over_years"]
            for when, s, label in (
                ("first_year", fy, "first year"),
                ("mean", mo, "mean over years"),
            ):
                ref = s["persistence"]["overall"]["accuracy"]
                t(
                    f"{field}_overall_{when}",
                    f"{F} overall accuracy, {label} ≥ persistence",
                    s["emulator"]["overall"]["accuracy"],
                    ">=",
                    ref,
                    "acc",
                    f"persistence {_fmt(ref, 'acc')}",
                )
            if field == "lu":
                for metric, mname in (("mean_iou", "mean IoU"), ("macro_f1", "macro F1")):
                    b, v = _best(fy, baselines, "change", metric)
                    t(
                        f"lu_change_first_year_{metric}",
                        f"LU change-pixel {mname}, first year ≥ best baseline + "
                        f"{LU_CHANGE_MARGIN:.2f}",
                        fy["emulator"]["change"][metric],
                        ">=",
                        v + LU_CHANGE_MARGIN,
                        "acc",
                        f"{MODEL_LABELS.get(b, b)} {_fmt(v, 'acc')} + {LU_CHANGE_MARGIN:.2f}",
                    )
                t(
                    "lu_drift",
                    f"LU drift (first-year minus mean overall accuracy) ≤ "
                    f"{100 * MAX_DRIFT:.0f} points",
                    r["lu"]["drift"]["emulator"],
                    "<=",
                    MAX_DRIFT,
                    "pts",
                    f"first year {_fmt(fy['emulator']['overall']['accuracy'], 'acc')}, mean "
                    f"{_fmt(mo['emulator']['overall']['accuracy'], 'acc')}",
                )
                c = r["consistency"]
                t(
                    "lu_consistency",
                    f"LU scenario consistency: (cell, class) pairs within "
                    f"{c['tolerance_px']:g} pixel ≥ {100 * MIN_CONSISTENCY:.0f} %, every year",
                    c["emulator"]["min_share_within"],
                    ">=",
                    MIN_CONSISTENCY,
                    "%",
                    f"worst year; truth {_fmt(c['truth']['min_share_within'], '%')}",
                )
            else:
                for when, s, label in (
                    ("first_year", fy, "first year"),
                    ("mean", mo, "mean over years"),
                ):
                    b, v = _best(s, baselines, "change", "mean_iou")
                    t(
                        f"lc_change_{when}_mean_iou",
                        f"LC change-pixel mean IoU, {label} > every baseline",
                        s["emulator"]["change"]["mean_iou"],
                        ">",
                        v,
                        "acc",
                        f"{MODEL_LABELS.get(b, b)} {_fmt(v, 'acc')}",
                    )
        lai = r["lai"]["all_months"]
        e, clim = lai["emulator"], lai["climatology"]
        t("lai_r2", f"LAI R², all months ≥ {MIN_LAI_R2}", e["r2"], ">=", MIN_LAI_R2, "lai", "")
        t(
            "lai_rmse",
            f"LAI RMSE, all months ≤ {MAX_LAI_RMSE_VS_CLIMATOLOGY} × climatology's",
            e["rmse"],
            "<=",
            MAX_LAI_RMSE_VS_CLIMATOLOGY * clim["rmse"],
            "lai",
            f"climatology {_fmt(clim['rmse'], 'lai')}",
        )
        t(
            "lai_abs_bias",
            f"LAI absolute bias, all months ≤ {MAX_LAI_ABS_BIAS}",
            abs(e["bias"]) if _finite(e["bias"]) else float("nan"),
            "<=",
            MAX_LAI_ABS_BIAS,
            "lai",
            f"bias {e['bias']:+.3f}" if _finite(e["bias"]) else "",
        )
    return out


# --- JSON ------------------------------------------------------------------------------


def jsonable(obj):
    """The metrics with NaN/inf as null (strict JSON) and numpy scalars as Python ones."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


_SCALAR = r'(?:-?\d[\d.eE+-]*|null|true|false|"[^"\\\n]*")'
_FLAT_LIST = re.compile(r"\[\s*(" + _SCALAR + r"(?:,\s*" + _SCALAR + r")*)\s*\]")
_SEPARATOR = re.compile(r'("[^"\\\n]*")|,\s+')


def dumps(metrics: dict) -> str:
    """Indented JSON with each list of scalars on one line (a confusion-matrix row, a
    yearly series), so that the file is read by eye as well as by programs."""
    text = json.dumps(jsonable(metrics), indent=1, ensure_ascii=False, allow_nan=False)
    flat = lambda m: "[" + _SEPARATOR.sub(lambda s: s.group(1) or ", ", m.group(1)) + "]"  # noqa: E731
    return _FLAT_LIST.sub(flat, text) + "\n"


# --- figures ---------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(
    matrices: dict[str, np.ndarray], classes: list[str], title: str, path: str | Path
) -> Path:
    """Row-normalised confusion matrices side by side (e.g. all land pixels, change
    pixels), showing only the classes present in any of them."""
    mats = {k: np.asarray(v, dtype=np.float64) for k, v in matrices.items()}
    used = np.zeros(len(classes), bool)
    for m in mats.values():
        used |= (m.sum(0) + m.sum(1)) > 0
    idx = np.nonzero(used)[0] if used.any() else np.arange(len(classes))
    labels = [f"{i} {classes[i][:28]}" for i in idx]
    n = len(idx)
    side = max(4.0, 0.42 * n + 2.5)
    fig, axes = plt.subplots(
        1, len(mats), figsize=(side * len(mats), side), layout="constrained", squeeze=False
    )
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#e0e0e0")  # rows with no true pixel
    im = None
    for ax, (name, m) in zip(axes[0], mats.items(), strict=True):
        sub = m[np.ix_(idx, idx)]
        norm = row_normalised(sub)
        im = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                if np.isfinite(norm[i, j]) and sub[i, j] > 0:
                    pct = 100 * norm[i, j]
                    ax.text(
                        j,
                        i,
                        f"{pct:.0f}" if pct >= 0.5 else "<1",
                        ha="center",
                        va="center",
                        fontsize=7 if n > 10 else 8,
                        color="white" if norm[i, j] > 0.6 else "black",
                    )
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_xlabel("emulated class")
        ax.set_ylabel("true class")
        ax.set_title(f"{name} ({int(sub.sum()):,} px)", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.7, label="share of the true class's pixels")
    fig.suptitle(title)
    return _save(fig, Path(path))


def _month_axis(months: list[str]) -> np.ndarray:
    return np.array([np.datetime64(m, "D") + np.timedelta64(14, "D") for m in months])


def plot_lai_series(series: dict, title: str, path: str | Path) -> Path:
    """Domain-mean land LAI per month: truth, emulator and the baselines."""
    t = _month_axis(series["months"])
    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    for k, v in series.items():
        if k == "months":
            continue
        ax.plot(
            t,
            np.asarray(v, dtype=float),
            lw=2.0 if k in ("truth", "emulator") else 1.0,
            color=MODEL_COLORS.get(k),
            label=MODEL_LABELS.get(k, k),
            ls="--" if k == "bilinear_coarse_truth" else "-",
        )
    ax.set_ylabel("domain-mean land LAI (m2 m-2)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def plot_lai_scores(per_month: dict, title: str, path: str | Path) -> Path:
    """R² and SSIM of each month, per model."""
    t = _month_axis(per_month["months"])
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, layout="constrained")
    for ax, key, label in ((axes[0], "r2", "R² (land)"), (axes[1], "ssim", "SSIM (land)")):
        for k, s in per_month.items():
            if k == "months":
                continue
            ax.plot(
                t,
                np.asarray(s[key], dtype=float),
                "-",
                color=MODEL_COLORS.get(k),
                label=MODEL_LABELS.get(k, k),
                lw=1.5 if k == "emulator" else 1.0,
            )
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title(title)
    return _save(fig, Path(path))


def _year_axis(ax, years: list[int]) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if years:
        ax.set_xlim(min(years) - 0.5, max(years) + 0.5)
    ax.grid(alpha=0.3)


def plot_yearly(result: dict, title: str, path: str | Path) -> Path:
    """Yearly LU/LC overall accuracy and change mean IoU per model, and the LU
    scenario consistency of the emulator and the truth."""
    fig, axes = plt.subplots(2, 3, figsize=(14, 7), layout="constrained")
    for row, field in enumerate(("lu", "lc")):
        rep = result[field]
        years = rep["years"]
        for col, (part, metric, label) in enumerate(
            (("overall", "accuracy", "overall accuracy"), ("change", "mean_iou", "change mean IoU"))
        ):
            ax = axes[row, col]
            for model, parts in rep["per_year"].items():
                ax.plot(
                    years,
                    np.asarray(parts[part][metric], dtype=float),
                    "-o",
                    ms=3,
                    color=MODEL_COLORS.get(model),
                    label=MODEL_LABELS.get(model, model),
                )
            ax.set_title(f"{field.upper()} {label}", fontsize=10)
            _year_axis(ax, years)
        axes[row, 0].legend(fontsize=7)
    c = result["consistency"]
    for ax, key, label in (
        (axes[0, 2], "share_within", "share within 1 px"),
        (axes[1, 2], "mae", "mean abs count error (px)"),
    ):
        for model in ("emulator", "truth"):
            ax.plot(
                c["years"],
                np.asarray(c[model][key], dtype=float),
                "-o",
                ms=3,
                color=MODEL_COLORS[model],
                label=MODEL_LABELS[model],
            )
        ax.set_title(f"LU scenario consistency: {label}", fontsize=10)
        _year_axis(ax, c["years"])
    axes[0, 2].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, Path(path))


def write_figures(metrics: dict, out: Path) -> dict[str, dict[str, str]]:
    """All PNGs of the report; returns {direction: {figure key: file name}}."""
    names = metrics["classes"]
    figures: dict[str, dict[str, str]] = {}
    for d in metrics["directions"]:
        r = metrics["results"][d]
        figs = figures.setdefault(d, {})
        for field in ("lu", "lc"):
            conf = r[field]["confusion"]
            first = r["first_year"]
            y0, y1 = r[field]["years"][0], r[field]["years"][-1]
            for when, label in (
                ("first_year", f"first year ({first})"),
                ("sum", f"sum of {y0}-{y1}"),
            ):
                fn = f"confusion_{field}_{d}_{when}.png"
                plot_confusion(
                    {
                        "all land pixels": conf[when]["emulator"]["overall"],
                        "change pixels": conf[when]["emulator"]["change"],
                    },
                    names[field],
                    f"Emulator {field.upper()} ({d}), {label}: row-normalised confusion (%)",
                    out / fn,
                )
                figs[f"confusion_{field}_{when}"] = fn
        fn = f"lai_series_{d}.png"
        plot_lai_series(r["lai"]["domain_mean"], f"Domain-mean land LAI ({d})", out / fn)
        figs["lai_series"] = fn
        fn = f"lai_scores_{d}.png"
        plot_lai_scores(r["lai"]["per_month"], f"LAI skill per month ({d})", out / fn)
        figs["lai_scores"] = fn
        fn = f"yearly_{d}.png"
        plot_yearly(r, f"Yearly LU/LC skill and scenario consistency ({d})", out / fn)
        figs["yearly"] = fn
    return figures


# --- markdown --------------------------------------------------------------------------


def _row(*cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _header(*cells) -> list[str]:
    return [_row(*cells), "|" + "---|" * len(cells)]


def _status(s: str) -> str:
    return {"met": "met", "missed": "**missed**", "not measured": "not measured"}[s]


def targets_markdown(targets: list[dict]) -> list[str]:
    lines = _header("direction", "target", "measured", "target value", "result")
    for t in targets:
        ref = f" ({t['reference']})" if t["reference"] else ""
        lines.append(
            _row(
                t["direction"],
                t["target"],
                _fmt(t["measured"], t["unit"]),
                f"{_OP_TEXT[t['comparison']]} {_fmt(t['threshold'], t['unit'])}{ref}",
                _status(t["status"]),
            )
        )
    n_met = sum(t["status"] == "met" for t in targets)
    n_missed = sum(t["status"] == "missed" for t in targets)
    n_na = len(targets) - n_met - n_missed
    lines += [
        "",
        f"{n_met} of {len(targets)} targets met, {n_missed} missed"
        + (f", {n_na} not measured." if n_na else "."),
    ]
    return lines


def _class_tables(field: str, rep: dict, classes: list[str], period: str) -> list[str]:
    lines = []
    for part, what in (
        ("overall", "all land pixels"),
        ("change", "change pixels (truth differs from the previous year's)"),
    ):
        lines += [f"{field.upper()}, {what}:", ""]
        lines += _header(
            "model", "when", "accuracy", "macro F1", "weighted F1", "mean IoU", "pixels / year"
        )
        for model in rep["first_year"]:
            for when, label in (("first_year", "first year"), ("mean_over_years", period)):
                s = rep[when][model][part]
                px = s.get("pixels", s.get("pixels_per_year"))
                lines.append(
                    _row(
                        MODEL_LABELS.get(model, model),
                        label,
                        *(
                            _fmt(s[k], "acc")
                            for k in ("accuracy", "macro_f1", "weighted_f1", "mean_iou")
                        ),
                        f"{px:,.0f}" if _finite(px) else "n/a",
                    )
                )
        lines.append("")
    drift = ", ".join(f"{MODEL_LABELS.get(m, m)} {_fmt(v, 'pts')}" for m, v in rep["drift"].items())
    lines += [f"Drift (first-year minus {period} overall accuracy): {drift}.", ""]
    # per-class IoU of the emulator, classes with any pixel
    fy, mo = rep["first_year"]["emulator"], rep["mean_over_years"]["emulator"]
    lines += [f"{field.upper()} per-class IoU of the emulator (n/a: class absent):", ""]
    lines += _header(
        "class",
        "all land, first year",
        f"all land, {period}",
        "change, first year",
        f"change, {period}",
    )
    total = np.asarray(rep["confusion"]["sum"]["emulator"]["overall"], dtype=float)
    for k, name in enumerate(classes):
        if total[k].sum() + total[:, k].sum() == 0:
            continue
        lines.append(
            _row(
                f"{k} {name}",
                *(
                    _fmt(s["per_class_iou"][k], "acc")
                    for s in (fy["overall"], mo["overall"], fy["change"], mo["change"])
                ),
            )
        )
    lines.append("")
    return lines


def _direction_markdown(metrics: dict, d: str, figs: dict[str, str]) -> list[str]:
    r = metrics["results"][d]
    first, last = metrics["period"]
    n_years = last - first + 1
    period = f"{n_years}-year mean"
    lines = [
        f"## {d.capitalize()}",
        "",
        f"Initialised from the truth of {r['initialised_from']}; {r['timing']['steps']} monthly "
        f"steps {r['first_step']} … {r['last_step']} on the emulator's own priors; first "
        f"emulated year {r['first_year']}.",
        "",
        "### Land use",
        "",
    ]
    lines += _class_tables("lu", r["lu"], metrics["classes"]["lu"], period)
    lines += [
        f"![LU confusion, first year]({figs['confusion_lu_first_year']})",
        f"![LU confusion, sum]({figs['confusion_lu_sum']})",
        "",
    ]
    c = r["consistency"]
    lines += [
        "### Scenario consistency of land use",
        "",
        f"Per coarse cell with land ({c['cells_with_land']:,} cells) and LU class 1–5, the "
        f"pixel count against the count the year's LUH2 fractions imply (f² × the sum of "
        f"the fractions mapping to the class; natural also counts the LU-6 pixels whose "
        f"IGBP class is not snow/ice or barren). Share of (cell, class) pairs within "
        f"{c['tolerance_px']:g} pixel, and the mean absolute count error:",
        "",
    ]
    lines += _header(
        "year",
        "emulator within 1 px",
        "emulator error (px)",
        "truth within 1 px",
        "truth error (px)",
    )
    for i, y in enumerate(c["years"]):
        lines.append(
            _row(
                y,
                _fmt(c["emulator"]["share_within"][i], "%"),
                f"{c['emulator']['mae'][i]:.3f}",
                _fmt(c["truth"]["share_within"][i], "%"),
                f"{c['truth']['mae'][i]:.3f}",
            )
        )
    lines.append(
        _row(
            "**worst / mean**",
            f"**{_fmt(c['emulator']['min_share_within'], '%')}**",
            f"{c['emulator']['mean_mae']:.3f}",
            _fmt(c["truth"]["min_share_within"], "%"),
            f"{c['truth']['mean_mae']:.3f}",
        )
    )
    lines += ["", "### Land cover", ""]
    lines += _class_tables("lc", r["lc"], metrics["classes"]["lc"], period)
    lines += [
        f"![LC confusion, first year]({figs['confusion_lc_first_year']})",
        f"![LC confusion, sum]({figs['confusion_lc_sum']})",
        "",
    ]
    lines += [f"![Yearly skill]({figs['yearly']})", "", "### Leaf area index (land)", ""]
    lines += _header("model", "months", "R²", "RMSE (m² m⁻²)", "bias", "SSIM")
    n_months = len(r["lai"]["per_month"]["months"])
    for when, label in (("all_months", f"all {n_months}"), ("first_year", "first year")):
        for model, s in r["lai"][when].items():
            lines.append(
                _row(
                    MODEL_LABELS.get(model, model),
                    label,
                    _fmt(s["r2"], "lai"),
                    _fmt(s["rmse"], "lai"),
                    f"{s['bias']:+.3f}" if _finite(s["bias"]) else "n/a",
                    _fmt(s["ssim"], "lai"),
                )
            )
    lines += [
        "",
        "The bilinear coarse truth is an oracle: it interpolates each month's TRUE coarse "
        "LAI, which the emulator does not know. Per-month scores are in metrics.json "
        "(`results.<direction>.lai.per_month`).",
        "",
        f"![LAI series]({figs['lai_series']})",
        f"![LAI scores]({figs['lai_scores']})",
        "",
    ]
    return lines


def report_markdown(metrics: dict, figures: dict[str, dict[str, str]]) -> str:
    first, last = metrics["period"]
    dom = metrics["domain"]
    t = metrics["timing"]
    lines = [
        f"# Evaluation of bundle `{metrics['bundle_name']}` on `{metrics['cube']}`",
        "",
        f"BSC protocol on {first}–{last}: forward from the truth of {first - 1}-12, backward "
        f"from the truth of {last + 1}-01, each on its own priors after that. Directions: "
        f"{', '.join(metrics['directions'])}. Bundle trained on "
        f"{metrics['training_years'][0]}–{metrics['training_years'][1]} (its manifest).",
        "",
        f"- domain: {dom['description']}, {dom['land_pixels']:,} land pixels, "
        f"{dom['coarse_cells_with_land']:,} coarse cells with land"
        + (f" (box {dom['box']})" if dom["box"] else ""),
        f"- nets: {metrics['dtype']} (requested {metrics['dtype_requested']}) on "
        f"{metrics['device']}, CPU {metrics['cpu']}, {metrics['torch_threads']} torch threads",
        f"- wall time {t['total_s']:.0f} s ("
        + ", ".join(f"{d} {t[f'{d}_s']:.0f} s" for d in metrics["directions"])
        + f", LAI climatology {t['climatology_s']:.0f} s); landbc "
        f"{metrics['versions']['landbc']}, torch {metrics['versions']['torch']}; "
        f"{metrics['created']}",
        "",
    ]
    for w in metrics["warnings"]:
        lines += [f"> **Warning:** {w}.", ""]
    lines += ["## Targets", ""] + targets_markdown(metrics["targets"]) + [""]
    lines += ["## Models", ""]
    for k, v in metrics["protocol"]["models"].items():
        lines.append(f"- **{MODEL_LABELS.get(k, k)}**: {v}.")
    lines += [
        "",
        f'Scores: "first year" is the first emulated year (from the true prior), the '
        f"{last - first + 1}-year mean is the mean of the yearly scores (on the emulator's own "
        f"priors); each year's scores come from one confusion matrix over the whole domain. "
        f'"Change" pixels are those whose truth differs from the previous year\'s truth, '
        f"previous in the run's direction. Mean IoU and macro F1 average over the classes "
        f"present in the truth or the prediction.",
        "",
    ]
    for d in metrics["directions"]:
        lines += _direction_markdown(metrics, d, figures[d])
    return "\n".join(lines).rstrip() + "\n"


def write_report(metrics: dict, out: str | Path) -> list[Path]:
    """Write the PNGs, report.md and metrics.json into `out`; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(metrics, out)
    metrics["files"] = ["report.md", "metrics.json"] + sorted(
        fn for figs in figures.values() for fn in figs.values()
    )
    (out / "report.md").write_text(report_markdown(metrics, figures))
    (out / "metrics.json").write_text(dumps(metrics))
    paths = [out / fn for fn in metrics["files"]]
    log.info("evaluation report written to %s (%d files)", out, len(paths))
    return paths


def summary_text(metrics: dict, out: str | Path | None = None) -> str:
    """What `landbc evaluate` prints: the headline scores and the targets table."""
    first, last = metrics["period"]
    lines = [
        f"{metrics['bundle_name']} on {metrics['cube']}, {first}-{last}, "
        f"{metrics['domain']['description']}, {metrics['domain']['land_pixels']} land pixels, "
        f"{metrics['dtype']} on {metrics['device']}",
        "",
    ]
    for w in metrics["warnings"]:
        lines.append(f"WARNING: {w}")
    lines += _header(
        "direction",
        "LU acc first / mean",
        "persistence",
        "LU change mIoU first",
        "LC acc first / mean",
        "LAI R2",
        "LAI RMSE",
        "LAI SSIM",
    )
    for d in metrics["directions"]:
        r = metrics["results"][d]
        lu, lc = r["lu"], r["lc"]
        e = r["lai"]["all_months"]["emulator"]
        lines.append(
            _row(
                d,
                f"{_fmt(lu['first_year']['emulator']['overall']['accuracy'], 'acc')} / "
                f"{_fmt(lu['mean_over_years']['emulator']['overall']['accuracy'], 'acc')}",
                f"{_fmt(lu['first_year']['persistence']['overall']['accuracy'], 'acc')} / "
                f"{_fmt(lu['mean_over_years']['persistence']['overall']['accuracy'], 'acc')}",
                _fmt(lu["first_year"]["emulator"]["change"]["mean_iou"], "acc"),
                f"{_fmt(lc['first_year']['emulator']['overall']['accuracy'], 'acc')} / "
                f"{_fmt(lc['mean_over_years']['emulator']['overall']['accuracy'], 'acc')}",
                _fmt(e["r2"], "lai"),
                _fmt(e["rmse"], "lai"),
                _fmt(e["ssim"], "lai"),
            )
        )
    lines += [""] + targets_markdown(metrics["targets"])
    if out is not None:
        lines += ["", f"report: {Path(out) / 'report.md'}, metrics: {Path(out) / 'metrics.json'}"]
    return "\n".join(lines)
