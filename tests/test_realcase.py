"""The real land-cover case (emulator/realcase.py) on tiny synthetic arrays.

A tiny "globe": 36 × 72 pixels of 5°, coarse factor 4 (9 × 18 cells of 20°), so
that the regions keep their meaning (training west of 20° E = columns < 40,
scoring east of 60° E = columns ≥ 48) and the whole pipeline runs in seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from landbc.emulator import realcase as rc
from landbc.emulator.decoding import rebalance

RES, FT = 5.0, 4


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread (on a busy 2-core machine OpenMP's barriers of two
    threads cost more than the work)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_maps(seed: int = 0) -> rc.Maps:
    """Blocky classes (2 × 2-px patches, so cells are mixed), Köppen by latitude band,
    sea in the first row and a sea strip at 100-120° W."""
    rng = np.random.default_rng(seed)
    igbp = np.kron(rng.integers(0, rc.K, (18, 36)), np.ones((2, 2), int)).astype(np.uint8)
    land = np.ones((36, 72), bool)
    land[0] = False
    land[:, 12:16] = False
    lat = 90 - (np.arange(36) + 0.5) * RES
    kg = np.select([abs(lat) < 23, abs(lat) < 35, abs(lat) < 50, abs(lat) < 66], [1, 2, 3, 4], 5)
    koppen = np.where(land, kg[:, None], 0).astype(np.uint8)
    return rc.Maps(igbp, land, koppen, res=RES, f=FT)


def test_cell_counts_fractions_and_counts_from_fractions():
    labels = np.array([[0, 1, 2, 2], [1, 1, 2, 2]], np.uint8)
    mask = np.array([[1, 1, 1, 1], [0, 1, 0, 0]], bool)
    c = rc.cell_counts(labels, mask, 2, k=3)
    assert c.shape == (1, 2, 3)
    assert c[0, 0].tolist() == [1, 2, 0]  # the masked 1 at (1, 0) is not counted
    assert c[0, 1].tolist() == [0, 0, 2]
    frac = rc.fractions(np.concatenate([c, np.zeros((1, 1, 3), np.int32)], 1))
    np.testing.assert_allclose(frac[0, 0], [1 / 3, 2 / 3, 0])
    assert frac[0, 2].tolist() == [0, 0, 0]  # a cell without land: no fractions
    maps = tiny_maps()
    # the fractions times the land pixels give the counts back exactly (largest remainder)
    assert np.array_equal(rc.counts_from_fractions(maps.frac, maps.nland), maps.counts)
    assert maps.counts.sum() == maps.land.sum()
    np.testing.assert_allclose(maps.frac.sum(-1)[maps.nland > 0], 1.0, rtol=1e-6)
    # cells_np is decoding.to_cells' layout
    x = np.arange(8 * 12).reshape(8, 12)
    cells = rc.cells_np(x, 4)
    assert cells[0, 1].tolist() == rc.to_cells(torch.from_numpy(x), 4)[1].tolist()
    assert np.array_equal(rc.uncells_np(cells, 4), x)


def test_dominant_baseline_takes_the_lower_class_on_ties():
    igbp = np.zeros((4, 8), np.uint8)
    igbp[:2, :4] = 3  # cell 0: 8 × class 3, 8 × class 0: tie → 0
    igbp[:, 4:] = 5
    igbp[0, 4] = 7
    maps = rc.Maps(igbp, np.ones((4, 8), bool), np.ones((4, 8), np.uint8), res=45.0, f=4)
    dom = rc.dominant_map(maps)
    assert (dom[:, :4] == 0).all() and (dom[:, 4:] == 5).all()


def test_koppen_allocation_follows_the_table_and_keeps_the_counts():
    # one 4 × 4 cell: group 1 on the left half, group 2 on the right; 8 px each of
    # classes 4 and 9; the table says class 9 belongs to group 1, class 4 to group 2
    koppen = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    igbp = np.array([[4, 9, 4, 9]] * 4, np.uint8)
    maps = rc.Maps(igbp, np.ones((4, 4), bool), koppen, res=90.0, f=4)
    table = np.zeros((rc.N_KG + 1, rc.K), np.int64)
    table[1, 9], table[1, 4], table[2, 4], table[2, 9] = 90, 10, 90, 10
    out = rc.koppen_allocation(maps, rc.koppen_scores(table))
    assert (out[:, :2] == 9).all() and (out[:, 2:] == 4).all()
    # uneven counts: the surplus of class 9 goes to group 2, after its class-4 pixels
    # (pairs are taken best first, and a group's pixels in row-major order)
    igbp2 = igbp.copy()
    igbp2[0, 0] = 9  # 9 × class 9, 7 × class 4
    maps2 = rc.Maps(igbp2, np.ones((4, 4), bool), koppen, res=90.0, f=4)
    out2 = rc.koppen_allocation(maps2, rc.koppen_scores(table))
    assert np.array_equal(rc.cell_counts(out2, maps2.land, 4), maps2.counts)
    expected = np.array([[9, 9, 4, 4]] * 3 + [[9, 9, 4, 9]], np.uint8)
    assert np.array_equal(out2, expected)
    # on the tiny globe every cell keeps its counts
    tiny = tiny_maps()
    west = rc.regions(tiny)["west_of_20E"]
    alloc = rc.koppen_allocation(tiny, rc.koppen_scores(rc.koppen_table(tiny, west)))
    assert rc.count_mismatch(alloc, tiny) == 0


def test_decoded_cells_have_the_target_counts_and_equal_plain_rebalance():
    g = torch.Generator().manual_seed(1)
    n, k, p = 40, rc.K, 16
    logp = torch.log_softmax(torch.randn(n, k, p, generator=g), 1).round()  # ties too
    free = torch.rand(n, p, generator=g) < 0.8
    target = torch.zeros(n, k, dtype=torch.long)
    for i in range(n):
        drawn = torch.randint(0, 1 + i % 5, (int(free[i].sum()),), generator=g)
        target[i] = torch.bincount(drawn, minlength=k)
    start = logp.argmax(1)
    out = rc.decode_cells(logp, start, target, free, chunk=6)
    counts = torch.zeros(n, k, dtype=torch.long).scatter_add_(1, out, free.long())
    assert torch.equal(counts, target)
    assert torch.equal(out, rebalance(logp, start, target, free))  # compaction is exact
    assert torch.equal(out[~free], start[~free])


class FractionsNet(torch.nn.Module):
    """Logits = the cell log-fractions: argmax = dominant, decoding places the rest."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : rc.K] * 10.0


def test_predicted_map_keeps_counts_and_orientation(tmp_path):
    maps = tiny_maps()
    pred, argmax, timing = rc.predict_map(FractionsNet(), maps, tile=16, margin=4, multiple=4)
    assert pred.shape == maps.shape and pred.dtype == np.uint8
    assert rc.count_mismatch(pred, maps) == 0
    assert np.array_equal(pred[~maps.land], maps.igbp[~maps.land])  # MCD12C1 off land
    assert timing["tiles"] == 15  # 3 × 5 tiles of 16 px, all with land
    # pure cells come back exactly, in place: north-up, column 0 at 180° W
    igbp = np.zeros((36, 72), np.uint8)
    igbp[4:8, 0:4] = 7  # the cell 70-50° N, 180-160° W
    igbp[28:32, 68:72] = 12  # the cell 50-70° S, 160-180° E
    pure = rc.Maps(igbp, np.ones((36, 72), bool), maps.koppen, res=RES, f=FT)
    pred, _, _ = rc.predict_map(FractionsNet(), pure, tile=16, margin=4, multiple=4)
    assert np.array_equal(pred, igbp)
    np.save(tmp_path / "p.npy", pred)
    back = np.load(tmp_path / "p.npy")
    r, c = rc.lat_to_row(70, RES), rc.lon_to_col(-180, RES)
    assert (r, c) == (4, 0) and (back[r : r + 4, c : c + 4] == 7).all()
    r, c = rc.lat_to_row(-50, RES), rc.lon_to_col(160, RES)
    assert (r, c) == (28, 68) and (back[r : r + 4, c : c + 4] == 12).all()
    # on the real grid: 60° E is column 4800, 20° E column 4000, the equator row 1800
    assert (rc.lon_to_col(60), rc.lon_to_col(20), rc.lat_to_row(0)) == (4800, 4000, 1800)


def test_real_mcd12c1_is_north_up_from_180w():
    """A few unmistakable pixels of the real file, read by the same reader."""
    from landbc.emulator import staticmaps

    try:
        staticmaps.package_file(*staticmaps._IGBP)
    except FileNotFoundError as e:
        pytest.skip(str(e))

    def at(lat: float, lon: float) -> int:
        r, c = rc.lat_to_row(lat), rc.lon_to_col(lon)
        return int(staticmaps.read_igbp_window(rc.RES, r, c, 1, 1)[0, 0])

    assert at(-75.0, 0.0) == 15  # Antarctic ice sheet: snow and ice
    assert at(23.0, 10.0) == 16  # Sahara (Algeria): barren
    assert at(0.0, -30.0) == 0  # Atlantic: water
    assert at(-5.0, -65.0) == 2  # western Amazon: evergreen broadleaf forest


def test_features_layout():
    maps = tiny_maps()
    x = rc.features(maps, -4, 70, 12, 8)  # overhangs the pole and the date line
    assert x.shape == (rc.IN_CHANNELS, 12, 8) and x.dtype == np.float32
    assert np.array_equal(x[:, 0], x[:, 4])  # rows beyond the pole repeat row 0
    # column 2 of the window is column 0 of the map (wrapped)
    assert np.array_equal(x[rc.K : 2 * rc.K, 4, 2], maps.frac[0, 0])
    np.testing.assert_allclose(np.exp(x[: rc.K, 4, 2]) - rc.LOG_EPS, maps.frac[0, 0], atol=1e-6)
    kg = rc.features(maps, 0, 0, 36, 72)[2 * rc.K : 2 * rc.K + rc.N_KG]
    assert np.array_equal(kg.argmax(0)[maps.land] + 1, maps.koppen[maps.land])


def test_training_smoke_checkpoint_resume_and_bundle(tmp_path):
    maps = tiny_maps()
    common = dict(batch=2, patch=8, base=4, levels=2, warmup=1, checkpoint_every=1, tile=16,
                  margin=4, score=False)  # fmt: skip
    cfg = rc.TrainConfig(iters=2, run_dir=tmp_path / "run_a", **common)
    net_a, rec = rc.train_net(cfg, maps)
    assert rec["iterations"] == 2 and np.isfinite(rec["final_loss_mean50"])
    assert (tmp_path / "run_a" / "checkpoint.pt").is_file()
    assert (tmp_path / "run_a" / rc.LOSS_PNG).stat().st_size > 1000
    # one iteration, then --resume for the second: the same weights as two in a row
    cfg1 = rc.TrainConfig(iters=1, run_dir=tmp_path / "run_b", **common)
    rc.train_net(cfg1, maps)
    cfg2 = rc.TrainConfig(iters=2, run_dir=tmp_path / "run_b", resume=True, **common)
    net_b, _ = rc.train_net(cfg2, maps)
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # the bundle: TorchScript + manifest with the sha256 of every file, loaded back
    out = rc.export_bundle(net_a, cfg, rec, tmp_path / "bundle", tmp_path / "run_a" / "loss.png")
    net, manifest = rc.load_bundle(out)
    assert manifest["grid"]["coarse_factor"] == rc.F and len(manifest["classes"]) == rc.K
    assert set(manifest["files"]) == {rc.NET_FILE, rc.LOSS_PNG}
    assert set(manifest["provenance"]) == {"land_mask", "koppen", "igbp"}
    assert int(net.in_channels) == rc.IN_CHANNELS
    # the eager net (the scripted one re-optimises for each new tile shape: slow here)
    metrics, outs = rc.evaluate_net(net_a, maps, tile=16, margin=4, multiple=4)
    assert metrics["count_mismatch_cells"]["model"] == 0
    assert metrics["count_mismatch_cells"]["koppen_allocation"] == 0
    east = metrics["regions"]["east_of_60E"]
    assert east["model"]["pixels"] == maps.land[:, 48:].sum()
    json.dumps(metrics, allow_nan=False)
    text = rc.report_md(metrics, manifest)
    assert "East of 60° E" in text and "Köppen allocation" in text
    # a corrupted file is refused by name
    (out / rc.LOSS_PNG).write_bytes(b"x")
    with pytest.raises(ValueError, match="sha256"):
        rc.load_bundle(out)


def test_committed_bundle_loads_and_recovers_pure_cells():
    """weights/realcase (what `make realcase` scores): files match their sha256, the net
    has this code's layout, its recorded scores are strict JSON, and on a toy map it
    returns a count-consistent map that keeps pure cells."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "weights" / "realcase"
    net, manifest = rc.load_bundle(folder)
    json.dumps(manifest, allow_nan=False)
    east = manifest["metrics"]["east_of_60E"]
    assert {"model", "dominant", "koppen_allocation"} <= set(east)
    maps = tiny_maps()
    multiple = 2 ** int(manifest["net"]["levels"])
    pred, _, _ = rc.predict_map(net, maps, tile=16, margin=8, multiple=multiple)
    assert rc.count_mismatch(pred, maps) == 0
    pure = maps.counts.max(-1) == maps.nland
    pure_px = rc.upsample(pure & (maps.nland > 0), maps.f) & maps.land
    assert np.array_equal(pred[pure_px], maps.igbp[pure_px])


def test_count_calibration_matches_the_cell_fractions():
    """After the offsets, the mean softmax over each cell's land pixels is the cell's
    fraction (to the iteration's tolerance), an absent class is pushed to ~0, sea pixels
    do not count, and within a cell the ranking of pixels for a class is kept."""
    torch.manual_seed(0)
    f, k = 4, 5
    logits = 3 * torch.randn(1, k, 8, 8)
    land = torch.ones(1, 8, 8, dtype=torch.bool)
    land[0, :2, :4] = False  # the first cell: 8 of 16 pixels are land
    frac = torch.zeros(1, k, 2, 2)
    frac[0, :, 0, 0] = torch.tensor([0.5, 0.25, 0.25, 0.0, 0.0])
    frac[0, :, 0, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])  # a pure cell
    frac[0, :, 1, 0] = torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0])
    frac[0, :, 1, 1] = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5])
    up = frac.repeat_interleave(f, -2).repeat_interleave(f, -1)
    z = rc.count_calibrate(logits, up, land, f, iters=50)
    p = torch.softmax(z, 1)
    mean = torch.nn.functional.avg_pool2d(p * land[:, None], f) / torch.nn.functional.avg_pool2d(
        land[:, None].float(), f
    )
    torch.testing.assert_close(mean, frac, atol=2e-3, rtol=0)
    assert (p[0, :, :4, 4:].argmax(0) == 2).all()  # the pure cell is its class everywhere
    # one offset per cell and class: differences between pixels of a cell are unchanged
    d = (z - logits)[0, :, 4:, 4:]
    assert torch.allclose(d, d[:, :1, :1].expand_as(d), atol=1e-5)


def test_bilinear_fractions_between_cell_centres():
    """Linear between cell centres (4-px cells: centres at pixel 1.5, 5.5, 9.5), flat
    beyond the first and last row of centres, wrapped across the date line."""
    jj, ii = np.meshgrid(np.arange(3), np.arange(2))
    by_col = rc.bilinear_cells(jj[..., None].astype(np.float32), np.arange(8), np.arange(12), 4)
    np.testing.assert_allclose(by_col[0, 0, [3, 4, 5, 6]], [0.375, 0.625, 0.875, 1.125])
    # pixel 11 (v = 2.375) lies between cell 2 and cell 0 across the date line
    np.testing.assert_allclose(by_col[0, :, 11], 0.625 * 2 + 0.375 * 0)
    by_row = rc.bilinear_cells(ii[..., None].astype(np.float32), np.arange(8), np.arange(12), 4)
    np.testing.assert_allclose(by_row[0, :, 7], [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1])
