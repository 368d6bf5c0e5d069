"""Remap weights (coupler/remap.py): hand-computed overlaps, conservation, bilinear
exactness, ECLand's categorical rules, the weight file, and MIR as a reference."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pytest
import torch

from landbc.coupler import remap
from landbc.coupler.grids import GaussianGrid, ModelGrid, RegularLatLonGrid, grid_from_name
from landbc.emulator.grid import Grid

GLOBAL_HALF = grid_from_name("0.5/0.5")  # MIR's 0.5/0.5: 361 x 720, rows 90..-90


def analytic(g: ModelGrid) -> np.ndarray:
    """A smooth field with a non-trivial mean (2 + 1/3): 2 + cos(lat) sin(2 lon) + sin²(lat)."""
    lat, lon = np.radians(g.latitudes), np.radians(g.longitudes)
    return (2 + np.cos(lat) * np.sin(2 * lon) + np.sin(lat) ** 2).reshape(g.shape)


def area_mean(g: ModelGrid, x: np.ndarray) -> float:
    return float(np.sum(g.cell_areas * x.reshape(-1)) / np.sum(g.cell_areas))


def sin_d(deg: float) -> float:
    return math.sin(math.radians(deg))


# -- a 2 x 2 source of 1° cells (0..2N, 0..2E), by hand ----------------------

SRC_2X2 = RegularLatLonGrid(lat_first=1.5, lon_first=0.5, dlat=1, dlon=1, nlat=2, nlon=2)


def dense(w: remap.RemapWeights) -> np.ndarray:
    m = np.zeros((w.n_target, w.n_source))
    np.add.at(m, (w.row_of_entry, w.indices), w.weights)
    return m


def test_conservative_by_hand_aligned_and_shifted():
    # one 2° cell covering the four source cells exactly: weights are band shares / 2
    aligned = RegularLatLonGrid(lat_first=1, lon_first=1, dlat=2, dlon=2, nlat=1, nlon=1)
    w = remap.conservative_weights(SRC_2X2, aligned)
    north = (sin_d(2) - sin_d(1)) / sin_d(2) / 2
    south = (sin_d(1) - sin_d(0)) / sin_d(2) / 2
    np.testing.assert_allclose(dense(w), [[north, north, south, south]], rtol=1e-13)
    np.testing.assert_allclose(w.coverage, [1.0], rtol=1e-13)

    # shifted by half a degree north and east: it covers 0.5..2N x 0.5..2E of the source
    shifted = RegularLatLonGrid(lat_first=1.5, lon_first=1.5, dlat=2, dlon=2, nlat=1, nlon=1)
    w = remap.conservative_weights(SRC_2X2, shifted)
    covered = (sin_d(2) - sin_d(0.5)) * 1.5
    expected = [
        (sin_d(2) - sin_d(1)) * 0.5 / covered,  # NW: 0.5 of its 1° width
        (sin_d(2) - sin_d(1)) * 1.0 / covered,  # NE
        (sin_d(1) - sin_d(0.5)) * 0.5 / covered,  # SW: half its band, half its width
        (sin_d(1) - sin_d(0.5)) * 1.0 / covered,  # SE
    ]
    np.testing.assert_allclose(dense(w), [expected], rtol=1e-12)
    np.testing.assert_allclose(w.coverage, [covered / ((sin_d(2.5) - sin_d(0.5)) * 2)], rtol=1e-12)
    assert w.valid_fraction[0] == pytest.approx(w.coverage[0], rel=1e-12)
    # a field is the covered part's average, and a constant stays constant
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert remap.apply(w, x)[0, 0] == pytest.approx(np.dot(expected, x.reshape(-1)), rel=1e-13)
    assert remap.apply(w, np.full((2, 2), 7.0))[0, 0] == pytest.approx(7.0, rel=1e-14)


def test_conservative_wraps_longitude():
    # a target cell across the 0° meridian, the source given from -180: 1° source
    # cells 359..1 E feed it in equal parts whatever the longitude convention
    src = RegularLatLonGrid.global_grid(1.0, lon_first=-179.5, on_poles=False)
    tgt = RegularLatLonGrid(lat_first=0.5, lon_first=0, dlat=1, dlon=1, nlat=1, nlon=1)
    w = remap.conservative_weights(src, tgt)
    cols = np.unravel_index(w.indices, src.shape)
    assert sorted(src.longitudes[w.indices].tolist()) == [-0.5, 0.5]
    assert set(cols[0].tolist()) == {89}
    np.testing.assert_allclose(w.weights, [0.5, 0.5], rtol=1e-12)


# -- conservation ------------------------------------------------------------


@pytest.mark.parametrize("name", ["O32", "N32", "1/1"])
def test_conservative_preserves_area_mean_both_ways(name):
    tgt = grid_from_name(name)
    x = analytic(GLOBAL_HALF)
    there = remap.conservative_weights(GLOBAL_HALF, tgt)
    back = remap.conservative_weights(tgt, GLOBAL_HALF)
    y = remap.apply(there, x)
    z = remap.apply(back, y)
    ref = area_mean(GLOBAL_HALF, x)
    assert ref == pytest.approx(2 + 1 / 3, rel=1e-4)
    assert abs(area_mean(tgt, y) / ref - 1) < 1e-6
    assert abs(area_mean(GLOBAL_HALF, z) / ref - 1) < 1e-6
    assert y.shape == tgt.shape and z.shape == GLOBAL_HALF.shape
    for w in (there, back):
        np.testing.assert_allclose(w.coverage, 1.0, rtol=1e-12)
        np.testing.assert_allclose(remap.apply(w, np.full(w.source_shape, 3.5)), 3.5, rtol=1e-13)
    # the remapped field is close to the field sampled at the target points
    assert np.max(np.abs(y - analytic(tgt))) < 0.1


def test_regional_source_coverage_and_conservation():
    # 0.05° Europe from the emulator's Grid, onto O96: the cells it covers, partly at its edges
    eu = Grid(lat_south=35, lat_north=72, lon_west=-25, lon_east=45, res=0.05)
    tgt = grid_from_name("O96")
    src = remap.as_model_grid(eu)
    w = remap.grid_box_average_weights(eu, tgt)
    x = analytic(src)
    y = remap.apply(w, x)
    covered = w.coverage > 0
    assert np.all(np.isnan(y[~covered])) and not np.any(np.isnan(y[covered]))
    assert np.any((w.coverage > 0) & (w.coverage < 1 - 1e-9))  # edge cells, partly covered
    # what the cells receive, weighted by their covered area, is what the source holds
    total_src = np.sum(src.cell_areas * x.reshape(-1))
    total_tgt = np.sum((tgt.cell_areas * w.coverage * y)[covered])
    assert abs(total_tgt / total_src - 1) < 1e-12
    assert np.sum(tgt.cell_areas * w.coverage) == pytest.approx(np.sum(src.cell_areas), rel=1e-12)
    # the covered cells overlap Europe (-25..45 E), on both sides of the 0° meridian
    lon = (tgt.longitudes[covered] + 180) % 360 - 180
    half = 0.5 * np.diff(tgt.lon_bounds[covered], axis=1)[:, 0]
    assert np.all(lon - half < 45) and np.all(lon + half > -25) and lon.min() < 0 < lon.max()


def test_masked_average_and_land_fraction():
    src, tgt = GLOBAL_HALF, grid_from_name("O32")
    lat, lon = src.latitudes.reshape(src.shape), src.longitudes.reshape(src.shape)
    land = (np.sin(np.radians(3 * lon)) + np.cos(np.radians(2 * lat))) > 0.3
    land[np.abs(lat) > 80] = False  # whole target rows without land
    plain = remap.conservative_weights(src, tgt)
    masked = remap.conservative_weights(src, tgt, source_mask=land)
    assert masked.masked and not plain.masked
    frac = remap.land_fraction(plain, land)
    assert np.all((frac >= 0) & (frac <= 1 + 1e-12))
    np.testing.assert_allclose(masked.valid_fraction, frac, atol=1e-12)
    # a land-only field: constant over land stays constant, cells without land are NaN
    field = np.where(land, 5.0, 1e6)
    y = remap.grid_box_average(masked, field)
    has_land = frac > 0
    np.testing.assert_allclose(y[has_land], 5.0, rtol=1e-13)
    assert np.all(np.isnan(y[~has_land])) and np.any(~has_land)
    with pytest.raises(ValueError, match="unmasked"):
        remap.land_fraction(masked, land)
    with pytest.raises(ValueError, match="shape"):
        remap.conservative_weights(src, tgt, source_mask=land[:-1])


# -- ECLand's categorical rules ----------------------------------------------


def test_dominant_type_by_hand():
    one = RegularLatLonGrid(lat_first=1, lon_first=1, dlat=2, dlon=2, nlat=1, nlon=1)
    w = remap.conservative_weights(SRC_2X2, one)
    # the southern row (0..1N) is a little larger than the northern one (1..2N)
    assert remap.dominant_type(w, np.array([[1, 1], [2, 2]]))[0, 0] == 2
    assert remap.dominant_type(w, np.array([[7, 7], [3, 3]]))[0, 0] == 3
    # three cells beat one; an exact tie goes to the smaller code
    assert remap.dominant_type(w, np.array([[4, 9], [9, 9]]))[0, 0] == 9
    assert remap.dominant_type(w, np.array([[1, 2], [2, 1]]))[0, 0] == 1
    # a cell whose only source is masked out is `missing`
    wm = remap.conservative_weights(SRC_2X2, one, source_mask=np.zeros((2, 2), bool))
    assert remap.dominant_type(wm, np.array([[1, 2], [2, 1]]), missing=-9)[0, 0] == -9
    fr = remap.class_fractions(w, np.array([[1, 1], [2, 2]]), [1, 2])
    assert fr.shape == (2, 1, 1)
    assert fr[0, 0, 0] == pytest.approx((sin_d(2) - sin_d(1)) / sin_d(2), rel=1e-12)


def test_class_fractions_sum_to_one_over_land():
    src, tgt = GLOBAL_HALF, grid_from_name("N32")
    rng = np.random.default_rng(0)
    lat = src.latitudes.reshape(src.shape)
    codes = rng.choice(np.array([1, 2, 5, 11]), size=src.shape)
    land = np.abs(lat - 20) < 40
    codes[~land] = 0  # ocean: not a class over land
    w = remap.conservative_weights(src, tgt, source_mask=land)
    fr = remap.class_fractions(w, codes, [1, 2, 5, 11])
    assert fr.shape == (4, tgt.npoints)
    has_land = w.valid_fraction > 0
    assert np.all((fr[:, has_land] >= 0) & (fr[:, has_land] <= 1 + 1e-12))
    np.testing.assert_allclose(fr[:, has_land].sum(axis=0), 1.0, rtol=1e-12)
    assert np.all(np.isnan(fr[:, ~has_land]))
    dom = remap.dominant_type(w, codes)
    np.testing.assert_array_equal(dom[has_land], np.array([1, 2, 5, 11])[fr[:, has_land].argmax(0)])
    assert np.all(dom[~has_land] == -1)
    with pytest.raises(ValueError, match="not in class_values"):
        remap.class_fractions(remap.conservative_weights(src, tgt), codes, [1, 2, 5, 11])


# -- bilinear ----------------------------------------------------------------


def linear(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return 3.0 + 0.02 * lon - 0.05 * lat


def test_bilinear_exact_for_linear_fields_regional_regular():
    # a regional 1° source across the 0° meridian; targets in it, and one outside
    src = RegularLatLonGrid(lat_first=60, lon_first=-20, dlat=1, dlon=1, nlat=31, nlon=61)
    tgt = RegularLatLonGrid(lat_first=59.93, lon_first=339.9, dlat=0.37, dlon=0.29, nlat=81,
                            nlon=205)  # fmt: skip
    w = remap.bilinear_weights(src, tgt)
    x = linear(src.latitudes, src.longitudes)
    y = remap.apply(w, x.reshape(src.shape)).reshape(-1)
    lon_t = (tgt.longitudes + 180) % 360 - 180  # the source's frame
    inside = (tgt.latitudes >= 30) & (lon_t >= -20) & (lon_t <= 40)
    np.testing.assert_allclose(y[inside], linear(tgt.latitudes, lon_t)[inside], atol=1e-12)
    assert np.all(np.isnan(y[~inside])) and np.any(~inside)
    np.testing.assert_array_equal(w.coverage, inside.astype(float))


def test_bilinear_exact_within_reduced_gaussian_rows_and_poles():
    src = grid_from_name("O32")
    # longitudes 10.1..340.3: away from the seam, where longitude itself jumps (and the
    # rows nearest the poles have a point every 18°, the last at 342)
    tgt = RegularLatLonGrid(lat_first=-85.3, lon_first=10.1, dlat=0.7, dlon=1.3, nlat=244,
                            nlon=255, south_first=True)  # fmt: skip
    w = remap.bilinear_weights(src, tgt)
    y = remap.apply(w, linear(src.latitudes, src.longitudes))
    np.testing.assert_allclose(y.reshape(-1), linear(tgt.latitudes, tgt.longitudes), atol=1e-11)
    # all of the globe, poles included: constants stay constant, weights are >= 0
    everywhere = grid_from_name("1/1")
    wg = remap.bilinear_weights(src, everywhere)
    assert np.all(wg.coverage == 1) and np.all(wg.weights >= 0)
    np.testing.assert_allclose(remap.apply(wg, np.full(src.npoints, 4.0)), 4.0, rtol=1e-13)
    # at the pole, the mean of the last row
    x = np.sin(np.radians(src.longitudes)) + src.latitudes
    pole = remap.apply(wg, x)[0]
    first_row = x[: src.points_per_row[0]]
    np.testing.assert_allclose(pole, first_row.mean(), rtol=1e-13)


def test_bilinear_between_regular_grids_and_masks():
    src, tgt = GLOBAL_HALF, grid_from_name("1/1")
    w = remap.bilinear_weights(src, tgt)
    x = analytic(src)
    np.testing.assert_allclose(remap.apply(w, x), analytic(tgt), atol=1e-12)  # points coincide
    lat = src.latitudes.reshape(src.shape)
    wm = remap.bilinear_weights(tgt, src, source_mask=grid_lat(tgt) > 0)
    y = remap.apply(wm, np.full(tgt.shape, 2.0))
    np.testing.assert_allclose(y[lat > 1], 2.0, rtol=1e-13)
    assert np.all(np.isnan(y[lat < -1]))


def grid_lat(g: ModelGrid) -> np.ndarray:
    return g.latitudes.reshape(g.shape)


# -- applying ----------------------------------------------------------------


def test_apply_batched_numpy_and_torch():
    src, tgt = GLOBAL_HALF, grid_from_name("O32")
    w = remap.conservative_weights(src, tgt)
    x = np.stack([analytic(src), 2 * analytic(src), np.ones(src.shape)])[None]  # (1, 3, ny, nx)
    y = remap.apply(w, x)
    assert y.shape == (1, 3, tgt.npoints) and y.dtype == np.float64
    np.testing.assert_allclose(y[0, 1], 2 * y[0, 0], rtol=1e-14)
    np.testing.assert_allclose(remap.apply(w, x.reshape(1, 3, -1)), y, rtol=0)  # flat input
    yt = remap.apply(w, torch.from_numpy(x))
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float64
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-13)
    y32 = remap.apply(w, torch.from_numpy(x).float())
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.numpy(), y, rtol=1e-6)
    # empty rows are NaN on both paths
    land = grid_lat(src) > 0
    wm = remap.conservative_weights(src, tgt, source_mask=land)
    a, b = remap.apply(wm, x[0, 0]), remap.apply(wm, torch.from_numpy(x[0, 0])).numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-13)
    with pytest.raises(ValueError, match="not on the source grid"):
        remap.apply(w, np.ones((10, 10)))


# -- the weight file -----------------------------------------------------------


def test_cache_round_trip_reuse_and_refusal(tmp_path, caplog):
    src, tgt = GLOBAL_HALF, grid_from_name("O32")
    land = grid_lat(src) > 10
    caplog.set_level(logging.INFO, logger="landbc.coupler.remap")
    w1 = remap.cached_weights(src, tgt, "conservative", source_mask=land, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    assert path.name == remap.weights_filename(src, tgt, "conservative", source_mask=land)
    assert path.name.startswith(f"remap-conservative-{src.key()[:16]}-{tgt.key()[:16]}-mask-")
    stamp = path.stat().st_mtime_ns
    caplog.clear()
    w2 = remap.cached_weights(src, tgt, "conservative", source_mask=land, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == stamp and "from" in caplog.text
    for name in ("indptr", "indices", "weights", "coverage", "valid_fraction"):
        np.testing.assert_array_equal(getattr(w1, name), getattr(w2, name))
    assert w2.masked and w2.source_shape == src.shape and w2.target_shape == tgt.shape
    _, meta = remap.load_weights(path)
    assert meta["method"] == "conservative" and meta["target_grid"] == tgt.canonical_json()
    assert meta["format_version"] == str(remap.FORMAT_VERSION) and meta["nnz"] == str(w1.nnz)

    # a file whose metadata does not match (here: another method) is refused and replaced
    other = remap.bilinear_weights(src, tgt, source_mask=land)
    remap.save_weights(path, other, {**meta, "method": "bilinear"})
    caplog.clear()
    w3 = remap.cached_weights(src, tgt, "conservative", source_mask=land, cache_dir=tmp_path)
    assert "does not match (method differ)" in caplog.text
    np.testing.assert_array_equal(w3.weights, w1.weights)
    assert remap.load_weights(path)[1]["method"] == "conservative"

    # a truncated file is refused too
    path.write_bytes(path.read_bytes()[:1000])
    caplog.clear()
    w4 = remap.cached_weights(src, tgt, "conservative", source_mask=land, cache_dir=tmp_path)
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(w4.weights, w1.weights)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_weights_without_cache_dir_and_bad_method():
    with pytest.raises(ValueError, match="unknown remap method"):
        remap.cached_weights(SRC_2X2, SRC_2X2, "nearest")
    w = remap.cached_weights(SRC_2X2, SRC_2X2, "bilinear")
    np.testing.assert_allclose(dense(w), np.eye(4), atol=1e-15)


# -- size: the emulator's 0.05° Europe onto O96 -------------------------------------


def test_high_res_europe_to_o96_timing(record_property):
    eu = Grid(lat_south=35, lat_north=85, lon_west=-25, lon_east=45, res=0.05)  # 1000 x 1400
    tgt = GaussianGrid.octahedral(96)
    t0 = time.perf_counter()
    w = remap.grid_box_average_weights(eu, tgt)
    t_weights = time.perf_counter() - t0
    x = np.random.default_rng(1).random((2, *eu.shape)).astype(np.float32)
    t0 = time.perf_counter()
    y = remap.apply(w, x)
    t_apply = time.perf_counter() - t0
    assert y.shape == (2, tgt.npoints) and y.dtype == np.float32
    record_property("weights_s", round(t_weights, 3))
    record_property("apply_s", round(t_apply, 3))
    print(f"0.05° Europe {eu.shape} -> O96: {w.nnz} weights in {t_weights:.2f} s, "
          f"apply 2 fields {t_apply:.3f} s")  # fmt: skip


# -- MIR, ECMWF's interpolation package, as the reference --------------------------


@pytest.fixture(scope="module")
def mir(tmp_path_factory):
    """MIR, with its weight cache in a temporary folder (it writes one under the working
    directory's parent otherwise)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIR_CACHE_PATH", str(tmp_path_factory.mktemp("mir-cache")))
        try:
            import mir
        except (ImportError, OSError) as e:  # mir-python brings mirlib, the binary library
            pytest.skip(f"MIR cannot be imported (pip install mir-python): {e}")
        yield mir


@pytest.mark.parametrize("name", ["O32", "O96", "1/1"])
def test_grid_box_average_matches_mir(mir, name):
    x = analytic(GLOBAL_HALF).reshape(-1)
    out = mir.ArrayOutput()
    job = mir.Job(grid=name, interpolation="grid-box-average")
    job.execute(mir.ArrayInput(x, {"grid": [0.5, 0.5]}), out)
    ref = np.asarray(out.values()).reshape(-1)
    tgt = grid_from_name(name)
    ours = remap.apply(remap.conservative_weights(GLOBAL_HALF, tgt), x).reshape(-1)
    assert ref.shape == ours.shape
    diff = np.abs(ours - ref)
    print(f"grid-box average 0.5/0.5 -> {name}: max |ours - MIR| {diff.max():.2e}, "
          f"mean {diff.mean():.2e}")  # fmt: skip
    assert diff.max() < 1e-10
