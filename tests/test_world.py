"""The surrogate-world generator and the static-map readers, on small real cubes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

from landbc.emulator import catalog, cube, staticmaps, world
from landbc.emulator.grid import Grid

# 2 x 2 degrees of central Europe (Alps foreland, Bohemia), 40 x 40 px, coarse 8 x 8,
# spanning the scenario transition around 1995.
GRID = Grid(lat_south=47.0, lat_north=49.0, lon_west=11.0, lon_east=13.0, res=0.05, coarse_factor=5)
YEARS = (1993, 1998)
ARRAYS = (
    cube.MAP_NAMES
    + cube.YEARLY_FORCING
    + cube.MONTHLY_FORCING
    + cube.YEARLY_TRUTH
    + (cube.MONTHLY_TRUTH)
)


def _load(path) -> dict[str, np.ndarray]:
    root = zarr.open_consolidated(str(path), mode="r")
    return {n: root[n][...] for n in ARRAYS}


@pytest.fixture(scope="module")
def world_cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "w.zarr"
    world.generate_world(path, GRID, YEARS, seed=3, progress=False)
    return path


@pytest.fixture(scope="module")
def world_arrays(world_cube):
    return _load(world_cube)


# --- static maps -------------------------------------------------------------------


@pytest.mark.parametrize(
    "lat, lon, land, koppen",
    [
        (48.85, 2.35, 1, 3),  # Paris: land, temperate
        (45.0, -30.0, 0, 0),  # North Atlantic: sea
        (23.0, 10.0, 1, 2),  # Sahara: land, arid
        (-5.0, -65.0, 1, 1),  # Amazon: land, tropical
        (75.0, -40.0, 1, 5),  # Greenland: land, polar
    ],
)
def test_static_maps_known_points(lat, lon, land, koppen):
    g = Grid(lat - 0.05, lat + 0.05, lon - 0.05, lon + 0.05, 0.05)
    m = staticmaps.read_static_maps(g)
    assert m["land_mask"].shape == (2, 2)
    assert (m["land_mask"] == land).all()
    assert (m["koppen"] == koppen).all()
    if lat == -5.0:
        assert (m["igbp"] == 2).all()  # evergreen broadleaf forest


def test_static_maps_aggregation_matches_fine_sampling():
    coarse = staticmaps.read_static_maps(Grid(50.0, 50.5, 4.0, 4.5, 0.05))
    fine = staticmaps.read_static_maps(Grid(50.0, 50.5, 4.0, 4.5, 1.0 / 120.0))
    frac = fine["land_mask"].reshape(10, 6, 10, 6).mean(axis=(1, 3))
    np.testing.assert_array_equal(coarse["land_mask"], (frac >= 0.5).astype(np.uint8))
    assert set(PROVENANCE_KEYS) <= set(staticmaps.PROVENANCE["koppen"])


PROVENANCE_KEYS = ("source", "version", "citation", "licence", "url")


def test_provenance_complete():
    for name in ("land_mask", "koppen", "igbp"):
        for key in PROVENANCE_KEYS:
            assert staticmaps.PROVENANCE[name][key], (name, key)


# --- the cube -----------------------------------------------------------------------


def test_opens_with_xarray(world_cube):
    ds = xr.open_zarr(world_cube)
    assert ds["lai"].dims == ("time", "lat", "lon")
    assert ds["luh2_frac"].dims == ("year", "luh2_state", "lat_coarse", "lon_coarse")
    assert ds.sizes["time"] == 12 * (YEARS[1] - YEARS[0] + 1)
    assert ds["lai"].attrs["units"] == "m2 m-2"
    np.testing.assert_array_equal(ds["lu"].values, cube.Cube.open(world_cube).root["lu"][...])


def test_opens_with_cube(world_cube):
    c = cube.Cube.open(world_cube)
    assert c.grid == GRID and (c.first_year, c.last_year) == YEARS
    t = c.truth(YEARS[1], 7)
    assert t["lai"].shape == GRID.shape
    attrs = c.root.attrs
    assert (
        "SURROGATE" in attrs["description"] and "not observations" in attrs["description"].lower()
    )
    assert attrs["generator"].startswith("landbc.emulator.world v")
    assert attrs["seed"] == 3
    assert set(attrs["provenance"]) == {"land_mask", "koppen", "igbp"}
    assert "lu_change_fraction" in attrs["stats"]


def test_values_in_valid_ranges_and_flags(world_arrays):
    for name, a in world_arrays.items():
        v = catalog.variable(name)
        assert a.dtype == np.dtype(v.dtype), name
        assert np.isfinite(a).all(), name
        assert a.min() >= v.valid_min and a.max() <= v.valid_max, (name, a.min(), a.max())
        if v.flag_values:
            assert set(np.unique(a)) <= set(v.flag_values), name
    frac = world_arrays["luh2_frac"]
    assert (frac.sum(axis=1) <= 1 + 1e-5).all()
    co2 = world_arrays["co2"]
    assert (np.diff(co2) > 0).all() and 350 < co2[0] < 365


def test_consistency_rules(world_arrays):
    a = world_arrays
    sea = a["land_mask"] == 0
    for name in ("koppen", "igbp", "elevation", "slope"):
        assert (a[name][sea] == 0).all(), name
    land = ~sea
    assert (a["elevation"][land] > 0).all() and (a["koppen"][land] > 0).all()
    inland_water = land & (a["igbp"] == 0)
    lu, lc = a["lu"], a["lc"]
    assert (lu[:, sea] == 0).all() and (lc[:, sea] == 15).all()
    assert (lu[:, inland_water] == 7).all() and (lc[:, inland_water] == 14).all()
    assert (lu[:, land & ~inland_water] != 7).all()
    assert (lc != 0).all()
    for k, allowed in world.LU_LC_ALLOWED.items():
        sel = lu == k
        assert np.isin(lc[sel], allowed).all(), (k, np.unique(lc[sel]))
    # fixed classes never change
    for k in (0, 6, 7):
        assert ((lu[0] == k) == (lu == k)).all(), k
    # LAI 0 exactly on non-vegetated types, positive on vegetated ones
    nyear = lu.shape[0]
    lai = a["lai"].reshape(nyear, 12, *lu.shape[1:])
    veg = world.VEGETATED[lc][:, None]
    assert (np.where(veg, 0, lai) == 0).all()
    assert (np.where(veg, lai, 1) > 0).all()
    # LAI is quantised
    np.testing.assert_array_equal(lai, np.round(lai / world.LAI_QUANTUM) * world.LAI_QUANTUM)


def test_lai_seasonality_differs_by_class(world_arrays):
    a = world_arrays
    lai = a["lai"][:12]
    lc = a["lc"][0]
    amp = {
        k: float((lai.max(0) - lai.min(0))[lc == k].mean())
        for k in (1, 3, 5, 18)
        if (lc == k).sum() > 5
    }
    assert len(amp) >= 2
    assert max(amp.values()) - min(amp.values()) > 0.5
    july, january = lai[6][lc != 15].mean(), lai[0][lc != 15].mean()
    assert july > january + 1.0


def test_change_rate_in_documented_band(world_cube):
    stats = world.world_stats(world_cube)
    ch = stats["lu_change_fraction"]
    # DESIGN.md: "a few tenths of a percent of land pixels a year"; small box, so wide band
    assert 0.0005 <= ch["mean"] <= 0.02, ch
    assert ch["max"] < 0.05
    assert 0.1 <= stats["lu_random_share"] <= 0.45
    assert 0 < stats["lc_change_fraction"]["mean"] < 0.05
    stored = zarr.open_consolidated(str(world_cube), mode="r").attrs["stats"]
    assert stored["lu_change_fraction"] == ch
    assert stored["lai_seasonal_amplitude_by_lc"] == stats["lai_seasonal_amplitude_by_lc"]


def test_climate_plausible(world_arrays):
    t = world_arrays["t2m"].mean(axis=(1, 2)).reshape(-1, 12) - 273.15
    assert (t[:, 6] > t[:, 0] + 10).all()  # July warmer than January
    assert -10 < t.mean() < 15
    assert 0.3 < world_arrays["tp"].mean() < 6
    ssrd = world_arrays["ssrd"].mean(axis=(1, 2)).reshape(-1, 12)
    assert (ssrd[:, 5] > 3 * ssrd[:, 11]).all()


# --- determinism, windows, failures ---------------------------------------------------


def test_deterministic_for_a_seed(world_cube, world_arrays, tmp_path):
    again = world.generate_world(tmp_path / "again.zarr", GRID, YEARS, seed=3, progress=False)
    b = _load(again)
    for n in ARRAYS:
        np.testing.assert_array_equal(world_arrays[n], b[n], err_msg=n)
    other = _load(
        world.generate_world(tmp_path / "other.zarr", GRID, YEARS, seed=4, progress=False)
    )
    for n in ("elevation", "lu", "lai", "t2m", "luh2_frac"):
        assert not np.array_equal(world_arrays[n], other[n]), n
    for n in ("land_mask", "koppen", "igbp", "co2"):
        np.testing.assert_array_equal(world_arrays[n], other[n], err_msg=n)


def test_window_equals_window_of_bigger_domain(world_arrays, tmp_path):
    r0, r1, c0, c1 = 10, 30, 15, 40  # coarse-aligned (multiples of 5)
    sub = GRID.window(r0, r1, c0, c1)
    b = _load(world.generate_world(tmp_path / "win.zarr", sub, YEARS, seed=3, progress=False))
    f = GRID.coarse_factor
    for n in ARRAYS:
        v = catalog.variable(n)
        a = world_arrays[n]
        if v.grid == catalog.HIGH:
            a = a[..., r0:r1, c0:c1]
        elif v.grid == catalog.COARSE:
            a = a[..., r0 // f : r1 // f, c0 // f : c1 // f]
        np.testing.assert_array_equal(a, b[n], err_msg=n)


def test_failure_leaves_no_store(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = world._Climate.month

    def failing(self, year, m):
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("simulated failure")
        return original(self, year, m)

    monkeypatch.setattr(world._Climate, "month", failing)
    target = tmp_path / "broken.zarr"
    with pytest.raises(RuntimeError, match="simulated failure"):
        world.generate_world(target, GRID, YEARS, seed=1, progress=False)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        cube.Cube.open(target)


def test_refuses_existing_path(world_cube):
    with pytest.raises(FileExistsError):
        world.generate_world(world_cube, GRID, YEARS, progress=False)


@pytest.mark.parametrize(
    "grid, years, seed, err, match",
    [
        ("europe", YEARS, 0, TypeError, "Grid"),
        (GRID, (2000, 1990), 0, ValueError, "last >= first"),
        (GRID, (1700, 1710), 0, ValueError, "within"),
        (GRID, (1990,), 0, ValueError, "pair"),
        (GRID, (1990.0, 1991), 0, TypeError, "integers"),
        (GRID, YEARS, -1, ValueError, "seed"),
        (GRID, YEARS, "1", TypeError, "seed"),
        (Grid(40, 44, 0, 4, 2.0), YEARS, 0, ValueError, "res"),
    ],
)
def test_validates_arguments(tmp_path, grid, years, seed, err, match):
    with pytest.raises(err, match=match):
        world.generate_world(tmp_path / "x.zarr", grid, years, seed=seed, progress=False)
    assert not (tmp_path / "x.zarr").exists()


def test_co2_curve():
    assert abs(world.co2_ppm(1960) - 317) < 2
    assert abs(world.co2_ppm(2020) - 412) < 3
    assert 278 < world.co2_ppm(1850) < 290
    ys = np.arange(1850, 2101)
    c = np.array([world.co2_ppm(y) for y in ys])
    assert (np.diff(c) > 0).all() and abs(np.diff(c)[2020 - 1850] - np.diff(c)[2019 - 1850]) < 0.2


def test_noise_is_window_independent():
    ys = (np.arange(100) + 0.5) * 0.05
    xs = (np.arange(120) + 0.5) * 0.05
    full = world.fbm(ys, xs, 1.0, 3, 5, 1)
    part = world.fbm(ys[30:70], xs[7:50], 1.0, 3, 5, 1)
    np.testing.assert_array_equal(full[30:70, 7:50], part)
    assert -1 <= full.min() and full.max() <= 1 and full.std() > 0.1
