"""The evaluation protocol with baselines, its report and its targets."""

import copy
import json
import math
import shutil

import numpy as np
import pytest

from landbc.emulator import bundle as bundle_mod
from landbc.emulator.evaluate import (
    LAI_MODELS,
    LU_MODELS,
    bilinear_coarse,
    coarse_dominant_lu,
    largest_remainder,
    main,
    random_allocation_lu,
)
from landbc.emulator.grid import Grid
from landbc.emulator.metrics import ContinuousStats, consistency, map_counts
from landbc.emulator.report import check_targets, report_markdown


def test_continuous_stats():
    st = ContinuousStats()
    t = np.array([1.0, 2.0, 3.0, 4.0])
    st.add(t, t + 1)
    s = st.scores()
    assert s["bias"] == pytest.approx(1) and s["rmse"] == pytest.approx(1)
    assert s["r2"] == pytest.approx(1 - 1 / 1.25)


def test_baselines_keep_static_classes_and_interpolate_on_land():
    g = Grid(0.0, 0.5, 0.0, 0.5, 0.05, 5)
    luh2 = np.zeros((12, 2, 2), np.float32)
    luh2[0] = 0.9  # primf: forest everywhere
    prior = np.full((10, 10), 2, np.uint8)
    prior[0, 0], prior[1, 1] = 0, 7
    dom = coarse_dominant_lu(luh2, g, prior)
    assert dom[0, 0] == 0 and dom[1, 1] == 7 and (dom[2:, 2:] == 4).all()
    land = np.ones((10, 10), bool)
    land[:, 0] = False
    field = np.full((10, 10), 2.0, np.float32)
    up = bilinear_coarse(field, land, g)
    assert (up[:, 0] == 0).all() and np.allclose(up[:, 1:], 2.0)


def test_largest_remainder_keeps_totals():
    x = np.array([[1.4, 1.4, 1.2], [0.5, 0.5, 0.0], [2.0, 0.0, 1.0]])
    n = largest_remainder(x, np.array([4, 1, 3]))
    assert n.tolist() == [[2, 1, 1], [1, 0, 0], [2, 0, 1]]  # ties to the lower class


def test_random_allocation_follows_the_fractions_and_keeps_fixed_classes():
    g = Grid(0.0, 0.5, 0.0, 0.5, 0.05, 5)  # 10 × 10 px, 2 × 2 cells of 25 px
    prior = np.full((10, 10), 4, np.uint8)
    prior[0, :] = 7  # water
    prior[5, 5:] = 6  # sparse: vegetated in one cell, barren in the next
    igbp = np.full((10, 10), 10, np.uint8)
    igbp[5, 5:8] = 16
    land = prior != 0
    frac = np.zeros((12, 2, 2), np.float32)
    frac[5] = 0.4  # c3ann: crop
    frac[10] = 0.3  # pastr
    frac[1] = 0.3  # primn: natural (with the vegetated LU-6 pixels)
    frac[[5, 10, 1], 0] *= 20 / 25  # the top cells have 5 water pixels: 20 px of land
    frac[[5, 10, 1], 1, 1] *= 22 / 25  # 5 LU-6 px, 2 of them vegetated: in natural's share
    a = random_allocation_lu(frac, g, prior, igbp, np.random.default_rng(3))
    b = random_allocation_lu(frac, g, prior, igbp, np.random.default_rng(3))
    assert (a == b).all()  # seeded
    fixed = np.isin(prior, (0, 6, 7))
    assert (a[fixed] == prior[fixed]).all()
    assert set(np.unique(a[~fixed])) <= {2, 3, 5}
    assert consistency(a, igbp, frac, land, 5, tolerance=1.0)["share_within"] == 1.0
    n = map_counts(a, igbp, 5)
    assert n[:, 0, 0].tolist() == [0, 8, 6, 0, 6]  # 20 free pixels: 0.4 / 0.3 / 0.3
    # x = 8.8 / 6.6 / 6.6, natural less the 2 vegetated LU-6 pixels: 4.6 → 9 / 7 / 4 (+2)
    assert n[:, 1, 1].tolist() == [0, 9, 7, 0, 6]
    c = random_allocation_lu(frac, g, prior, igbp, np.random.default_rng(4))
    assert (c != a).any()


@pytest.fixture(scope="module")
def evaluation(tiny_bundle, tiny_cube, tmp_path_factory):
    """One `landbc evaluate` run on the tiny world, both directions, one year, with
    --update-manifest on a copy of the tiny bundle."""
    tmp = tmp_path_factory.mktemp("evaluation")
    bundle = tmp / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    out = tmp / "report"
    # fmt: off
    metrics = main([str(bundle), str(tiny_cube), "--years", "2001", "2001",
                    "--directions", "forward", "backward", "--dtype", "float32",
                    "--out", str(out), "--update-manifest"])
    # fmt: on
    return metrics, out, bundle


def _strict_json(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def test_evaluation_writes_metrics_report_and_figures(evaluation):
    metrics, out, _ = evaluation
    on_disk = _strict_json((out / "metrics.json").read_text())
    for key in ("bundle_name", "cube", "period", "directions", "domain", "dtype", "device",
                "cpu", "timing", "results", "targets", "training_years", "files"):  # fmt: skip
        assert key in on_disk, key
    assert on_disk["period"] == [2001, 2001] and on_disk["directions"] == ["forward", "backward"]
    assert on_disk["dtype"] == "float32" and on_disk["cpu"]
    for fn in on_disk["files"]:
        assert (out / fn).stat().st_size > 0, fn
    pngs = {fn for fn in on_disk["files"] if fn.endswith(".png")}
    assert "confusion_lu_forward_first_year.png" in pngs and "lai_series_backward.png" in pngs
    assert len(pngs) == 2 * 7
    report = (out / "report.md").read_text()
    assert "## Targets" in report
    assert "| forward | LU overall accuracy, first year ≥ persistence |" in report
    assert "| backward | LAI R², all months ≥ 0.92 |" in report
    assert "| emulator | first year |" in report and "random allocation" in report
    for fn in pngs:
        assert f"]({fn})" in report, fn


def test_evaluation_scores_both_directions(evaluation):
    metrics, _, _ = evaluation
    fwd, bwd = metrics["results"]["forward"], metrics["results"]["backward"]
    assert fwd["initialised_from"] == "2000-12" and bwd["initialised_from"] == "2002-01"
    assert fwd["first_step"] == "2001-01" and bwd["first_step"] == "2001-12"
    for r in (fwd, bwd):
        assert r["timing"]["steps"] == 12
        lu = r["lu"]["first_year"]
        assert set(lu) == set(LU_MODELS)
        change = lu["persistence"]["change"]["accuracy"]
        assert change == 0.0 or np.isnan(change)  # persistence never predicts a change
        assert 0 <= lu["emulator"]["overall"]["accuracy"] <= 1
        assert len(lu["emulator"]["overall"]["per_class_iou"]) == 8
        assert r["lu"]["drift"]["emulator"] == pytest.approx(0.0)  # one year: first = mean
        assert set(r["lai"]["all_months"]) == set(LAI_MODELS)
        assert len(r["lai"]["per_month"]["emulator"]["ssim"]) == 12
        assert len(r["lai"]["domain_mean"]["truth"]) == 12
        e = r["lai"]["all_months"]["emulator"]
        assert -1 <= e["ssim"] <= 1 and e["rmse"] >= 0
        # the truth follows its own scenario almost to the pixel (reference line)
        assert r["consistency"]["truth"]["min_share_within"] > 0.95
        assert r["consistency"]["years"] == [2001]
        cm = np.asarray(r["lu"]["confusion"]["sum"]["emulator"]["overall"])
        assert cm.sum() == metrics["domain"]["land_pixels"]


def test_targets_are_judged_from_the_numbers(evaluation):
    metrics, _, _ = evaluation
    targets = metrics["targets"]
    assert {t["direction"] for t in targets} == {"forward", "backward"}
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b}
    for t in targets:
        finite = math.isfinite(t["measured"]) and math.isfinite(t["threshold"])
        expected = ("met" if ops[t["comparison"]](t["measured"], t["threshold"]) else "missed"
                    ) if finite else "not measured"  # fmt: skip
        assert t["status"] == expected, t

    def status(m, key):
        return next(t["status"] for t in check_targets(m) if t["id"] == key
                    and t["direction"] == "forward")  # fmt: skip

    m = copy.deepcopy(metrics)
    fy = m["results"]["forward"]["lu"]["first_year"]
    fy["emulator"]["overall"]["accuracy"] = fy["persistence"]["overall"]["accuracy"] - 0.001
    assert status(m, "lu_overall_first_year") == "missed"
    fy["emulator"]["overall"]["accuracy"] = fy["persistence"]["overall"]["accuracy"]
    assert status(m, "lu_overall_first_year") == "met"
    fy["emulator"]["overall"]["accuracy"] = float("nan")
    assert status(m, "lu_overall_first_year") == "not measured"  # never "met"
    m["results"]["forward"]["lai"]["all_months"]["emulator"]["bias"] = -0.06
    assert status(m, "lai_abs_bias") == "missed"
    m["results"]["forward"]["consistency"]["emulator"]["min_share_within"] = 0.995
    assert status(m, "lu_consistency") == "met"
    m["results"]["forward"]["lu"]["drift"]["emulator"] = 0.031
    assert status(m, "lu_drift") == "missed"
    # a report of such numbers says so
    m["targets"] = check_targets(m)
    figs = {d: {k: f"{k}.png" for k in ("confusion_lu_first_year", "confusion_lu_sum",
                                        "confusion_lc_first_year", "confusion_lc_sum",
                                        "yearly", "lai_series", "lai_scores")}
            for d in m["directions"]}  # fmt: skip
    text = report_markdown(m, figs)
    assert "| forward | LU overall accuracy, first year ≥ persistence | n/a |" in text
    assert "| not measured |" in text and "| **missed** |" in text


def test_update_manifest_records_a_summary_that_inspect_reads(evaluation):
    metrics, _, bundle = evaluation
    manifest = bundle_mod.verify(bundle)
    for d in ("forward", "backward"):
        rec = manifest["metrics"][f"heldout_{d}"]
        assert rec["period"] == [2001, 2001] and rec["direction"] == d
        assert "per_year" not in rec["lu"] and "targets" in rec
    assert "heldout_forward (2001-2001): LU first-year accuracy" in bundle_mod.inspect(bundle)
