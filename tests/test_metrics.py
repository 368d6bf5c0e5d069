"""The skill metrics against values computed by hand (no model, a few milliseconds)."""

import numpy as np
import pytest

from landbc.emulator.metrics import (
    StreamedMean,
    class_scores,
    confusion,
    consistency,
    gaussian_filter,
    gaussian_kernel,
    implied_counts,
    map_counts,
    masked_ssim,
    per_class_iou,
    row_normalised,
    ssim_map,
)

# rows = truth, columns = prediction
CM3 = np.array([[3, 1, 0], [1, 2, 1], [0, 0, 2]])


def test_three_class_confusion_matrix_scores_by_hand():
    # the same matrix from pixels, with a masked-out pixel that would change it
    target = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 0, 1, 1, 2, 2, 2, 0])
    mask = np.ones(11, bool)
    mask[-1] = False
    assert (confusion(target, pred, 3, mask) == CM3).all()

    s = class_scores(CM3)
    # 10 pixels, 7 on the diagonal; support (rows) 4 4 2, predicted (columns) 4 3 3
    assert s["accuracy"] == pytest.approx(0.7)
    f1 = [2 * 3 / (4 + 4), 2 * 2 / (4 + 3), 2 * 2 / (2 + 3)]  # 0.75, 4/7, 0.8
    assert s["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert s["weighted_f1"] == pytest.approx((f1[0] * 4 + f1[1] * 4 + f1[2] * 2) / 10)
    iou = [3 / (4 + 4 - 3), 2 / (4 + 3 - 2), 2 / (2 + 3 - 2)]  # 0.6, 0.4, 2/3
    assert s["mean_iou"] == pytest.approx(sum(iou) / 3)
    assert s["per_class_iou"] == pytest.approx(iou)
    assert s["pixels"] == 10


def test_absent_class_has_no_iou_and_is_left_out_of_the_means():
    cm = np.zeros((4, 4), int)
    cm[:3, :3] = CM3
    iou = per_class_iou(cm)
    assert np.isnan(iou[3]) and iou[:3] == pytest.approx([0.6, 0.4, 2 / 3])
    s4, s3 = class_scores(cm), class_scores(CM3)
    for k in ("accuracy", "macro_f1", "weighted_f1", "mean_iou"):
        assert s4[k] == pytest.approx(s3[k])
    empty = class_scores(np.zeros((3, 3)))
    assert np.isnan(empty["accuracy"]) and empty["pixels"] == 0


def test_row_normalised_confusion():
    cm = np.zeros((4, 4))
    cm[:3, :3] = CM3
    r = row_normalised(cm)
    assert r[0] == pytest.approx([0.75, 0.25, 0, 0]) and r[2, 2] == 1
    assert np.isnan(r[3]).all()  # no true pixel of class 3


def test_streamed_mean():
    m = StreamedMean()
    assert np.isnan(m.mean)
    m.add(np.array([1.0, 2.0]))
    m.add(np.array([6.0]))
    assert m.mean == pytest.approx(3.0) and m.n == 3


def test_gaussian_kernel_and_filter():
    k = gaussian_kernel(1.5, 11)
    assert k.shape == (11,) and k.sum() == pytest.approx(1) and (k == k[::-1]).all()
    assert k[5] / k[6] == pytest.approx(np.exp(0.5 / 1.5**2))
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(1.5, 10)
    # a constant field stays constant up to the edges (mirrored, not zero-padded)
    assert np.allclose(gaussian_filter(np.full((7, 9), 4.0)), 4.0)


def _ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM written out pixel by pixel: an explicit 11×11 Gaussian window (σ 1.5) on
    mirrored copies of the fields, weighted moments, Wang et al.'s formula."""
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    w = np.outer(g, g)
    w /= w.sum()
    xp, yp = np.pad(x, 5, mode="symmetric"), np.pad(y, 5, mode="symmetric")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = np.empty(x.shape)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            a, b = xp[i : i + 11, j : j + 11], yp[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            out[i, j] = ((2 * ma * mb + c1) * (2 * cov + c2)) / (
                (ma**2 + mb**2 + c1) * (va + vb + c2)
            )
    return out


def test_ssim_of_identical_fields_is_one():
    x = np.random.default_rng(0).uniform(0, 6, (20, 24)).astype(np.float32)
    assert np.allclose(ssim_map(x, x, 15.0), 1.0)


def test_ssim_of_two_constant_fields_by_hand():
    # no variance anywhere: SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01 · 15)²
    s = ssim_map(np.full((12, 12), 2.0), np.full((12, 12), 3.0), 15.0)
    c1 = (0.01 * 15) ** 2
    assert np.allclose(s, (2 * 2 * 3 + c1) / (4 + 9 + c1))


def test_ssim_against_a_direct_implementation():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 6, (14, 17))
    y = 0.7 * x + rng.normal(0, 0.8, x.shape) + 0.3
    ref = _ssim_reference(x, y, 15.0)
    assert np.allclose(ssim_map(x, y, 15.0), ref, atol=1e-10)
    mask = np.zeros(x.shape, bool)
    mask[3:9, 2:5] = True
    assert masked_ssim(x, y, mask, 15.0) == pytest.approx(ref[mask])
    assert ssim_map(x, y, 15.0).mean() < 0.9  # and not trivially 1
    with pytest.raises(ValueError, match="data_range"):
        ssim_map(x, y, 0.0)


def _tiny_scenario():
    """A 4 × 4-pixel map in 2 × 2 coarse cells (f = 2) with LUH2 fractions.

    LUH2 states: 0 primf, 1 primn, 2 secdf, 3 secdn, 4 urban, 5 c3ann, ..., 10 pastr.
    """
    lu = np.array(
        [
            [1, 2, 3, 5],
            [2, 4, 6, 2],
            [0, 0, 4, 6],
            [0, 0, 6, 6],
        ],
        np.uint8,
    )
    igbp = np.full((4, 4), 10, np.uint8)
    igbp[2:, 2:] = 16  # cell (1, 1): its LU-6 pixels are barren
    land = np.ones((4, 4), bool)
    land[2:, :2] = False  # cell (1, 0) is sea
    frac = np.zeros((12, 2, 2), np.float32)
    frac[[4, 5, 0], 0, 0] = (0.25, 0.5, 0.25)  # x = urban 1, crop 2, forest 1
    frac[[10, 1], 0, 1] = (0.5, 0.5)  # x = pasture 2, natural 2
    frac[5, 1, 0] = 1.0  # sea cell: never counted
    frac[[2, 3], 1, 1] = (0.25, 0.75)  # x = forest 1, natural 3
    return lu, igbp, land, frac


def test_consistency_count_error_on_a_two_by_two_cell_map():
    lu, igbp, land, frac = _tiny_scenario()
    x = implied_counts(frac, 2)
    assert x[:, 0, 0] == pytest.approx([1, 2, 0, 1, 0])
    assert x[:, 0, 1] == pytest.approx([0, 0, 2, 0, 2])
    assert x[:, 1, 1] == pytest.approx([0, 0, 0, 1, 3])
    n = map_counts(lu, igbp, 2)
    assert n[:, 0, 0].tolist() == [1, 2, 0, 1, 0]
    # pasture 1, crop 1, natural 1 + the LU-6 pixel on vegetated IGBP land
    assert n[:, 0, 1].tolist() == [0, 1, 1, 0, 2]
    # barren LU-6 pixels are not natural
    assert n[:, 1, 1].tolist() == [0, 0, 0, 1, 0]
    # errors over the 3 land cells × 5 classes: (0,0) none; (0,1) crop 1, pasture 1;
    # (1,1) natural 3 → 14 of 15 pairs within one pixel, mean error 5/15
    c = consistency(lu, igbp, frac, land, 2)
    assert c["pairs"] == 15
    assert c["share_within"] == pytest.approx(14 / 15)
    assert c["mae"] == pytest.approx(5 / 15)
    strict = consistency(lu, igbp, frac, land, 2, tolerance=0.0)
    assert strict["share_within"] == pytest.approx(12 / 15)
    none = consistency(lu, igbp, frac, np.zeros_like(land), 2)
    assert none["pairs"] == 0 and np.isnan(none["share_within"])
