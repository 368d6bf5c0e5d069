"""Metrics and the held-out evaluation with baselines."""

import numpy as np
import pytest

from landbc.emulator.evaluate import bilinear_coarse, coarse_dominant_lu, evaluate, summary_table
from landbc.emulator.grid import Grid
from landbc.emulator.metrics import ContinuousStats, class_scores, confusion


def test_confusion_and_scores_on_a_known_case():
    target = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    cm = confusion(target, pred, 4)
    assert cm.sum() == 6 and cm[0, 1] == 1 and cm[2, 0] == 1
    s = class_scores(cm)
    assert s["accuracy"] == pytest.approx(4 / 6)
    # F1: class 0 = 2*1/(2+2)=0.5, class 1 = 2*2/(2+3)=0.8, class 2 = 2*1/(2+1)=2/3; class 3 absent
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert s["weighted_f1"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 2 / 3 * 2) / 6)
    assert s["mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert np.isnan(class_scores(np.zeros((3, 3)))["accuracy"])


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


def test_evaluation_runs_and_persistence_scores_zero_on_change(tiny_bundle, tiny_cube):
    report = evaluate(tiny_bundle, tiny_cube, years=(2001, 2001), progress=False)
    lu = report["lu"]["first_year"]
    assert lu["persistence"]["change"]["accuracy"] in (0.0,) or np.isnan(
        lu["persistence"]["change"]["accuracy"]
    )
    assert 0 <= lu["emulator"]["overall"]["accuracy"] <= 1
    lai = report["lai"]["all_months"]
    assert set(lai) == {"emulator", "climatology", "bilinear_coarse_truth"}
    assert report["timing"]["steps"] == 12
    assert "| LU first year | emulator | overall |" in summary_table(report)
