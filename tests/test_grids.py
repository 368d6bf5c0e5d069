"""Model grids (coupler/grids.py) against ecCodes, the reference for GRIB grids.

ecCodes is independent of our code here: its samples carry ECMWF's tabulated
pl, its gridName/isOctahedral keys classify a pl, and its geoiterator
(codes_grib_get_data, the "latitudes"/"longitudes" keys) places the points.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import eccodes as ec
import numpy as np
import pytest

from landbc.coupler.grids import (
    ECCODES_CLASSIC_N,
    GaussianGrid,
    ModelGrid,
    RegularLatLonGrid,
    gaussian_latitudes,
    grid_from_grib,
    grid_from_name,
    octahedral_pl,
)
from landbc.emulator.grid import EUROPE, Grid

FOUR_PI = 4.0 * math.pi


@contextmanager
def sample(name: str) -> Iterator[int]:
    h = ec.codes_grib_new_from_samples(name)
    try:
        yield h
    finally:
        ec.codes_release(h)


@contextmanager
def regular_ll_message(grid: RegularLatLonGrid, edition: int = 2) -> Iterator[int]:
    """A regular_ll message of `grid` written with plain ecCodes keys."""
    with sample(f"regular_ll_sfc_grib{edition}") as h:
        ec.codes_set_key_vals(h, {
            "Ni": grid.nlon, "Nj": grid.nlat, "jScansPositively": int(grid.south_first),
            "latitudeOfFirstGridPointInDegrees": grid.lat_first,
            "latitudeOfLastGridPointInDegrees": grid.lat_last,
            "longitudeOfFirstGridPointInDegrees": grid.lon_first,
            "longitudeOfLastGridPointInDegrees": grid.lon_last,
            "iDirectionIncrementInDegrees": grid.dlon,
            "jDirectionIncrementInDegrees": grid.dlat,
        })  # fmt: skip
        ec.codes_set_values(h, np.zeros(grid.npoints))
        yield h


@contextmanager
def o96_message() -> Iterator[int]:
    """REFERENCES.md's recipe: the N96 sample with pl set to 20, 24, ..., 400, mirrored."""
    with sample("reduced_gg_pl_96_grib2") as h:
        pl = [20 + 4 * i for i in range(96)]
        ec.codes_set_array(h, "pl", pl + pl[::-1])
        ec.codes_set_values(h, np.zeros(40320))
        yield h


def eccodes_points(h: int) -> tuple[np.ndarray, np.ndarray]:
    """ecCodes' geoiterator: codes_grib_get_data, or for big messages the "latitudes" and
    "longitudes" keys (the same iterator, without a Python dict per point)."""
    if ec.codes_get(h, "numberOfDataPoints") > 100_000:
        return ec.codes_get_array(h, "latitudes"), ec.codes_get_array(h, "longitudes")
    data = ec.codes_grib_get_data(h)
    return np.array([p["lat"] for p in data]), np.array([p["lon"] for p in data])


def lon_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| modulo 360 (ecCodes may report -180 where we keep 180, or the reverse)."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


REGULAR_CASES = {
    "1deg_from_-180_on_poles": RegularLatLonGrid.global_grid(1.0, lon_first=-180.0),
    "third_deg_south_first": RegularLatLonGrid.global_grid(
        1 / 3, lon_first=1 / 6, on_poles=False, south_first=True
    ),
    "europe_quarter_deg": RegularLatLonGrid(
        lat_first=72.0, lon_first=-25.0, dlat=0.25, dlon=0.25, nlat=149, nlon=281
    ),
    "single_row": RegularLatLonGrid(
        lat_first=10.0, lon_first=5.0, dlat=0.5, dlon=0.5, nlat=1, nlon=8
    ),
}


# -- Gaussian grids --------------------------------------------------------------


def test_o96_has_40320_points_and_the_octahedral_pl() -> None:
    g = grid_from_name("O96")
    assert isinstance(g, GaussianGrid) and g.name == "O96" and g.is_octahedral
    half = list(range(20, 401, 4))
    assert list(g.pl) == half + half[::-1]
    assert g.npoints == 40320 == 4 * 96**2 + 36 * 96
    assert g.shape == (40320,) and g.latitudes.shape == g.longitudes.shape == (40320,)


@pytest.mark.parametrize("n", [32, 96, 320])
def test_eccodes_calls_our_o_grid_octahedral(n: int) -> None:
    g = GaussianGrid.octahedral(n)
    with sample(f"reduced_gg_pl_{n}_grib2") as h:
        ec.codes_set_array(h, "pl", list(g.pl))
        ec.codes_set_values(h, np.zeros(g.npoints))
        assert ec.codes_get(h, "isOctahedral") == 1
        assert ec.codes_get(h, "gridName") == f"O{n}"
        assert ec.codes_get(h, "numberOfDataPoints") == g.npoints


@pytest.mark.parametrize("n", ECCODES_CLASSIC_N)
def test_classic_n_grids_are_ecCodes_samples(n: int) -> None:
    g = grid_from_name(f"N{n}")
    with sample(f"reduced_gg_pl_{n}_grib2") as h:
        assert list(g.pl) == ec.codes_get_array(h, "pl").tolist()
        assert g.npoints == ec.codes_get(h, "numberOfDataPoints")
        assert ec.codes_get(h, "gridName") == g.name == f"N{n}"
    assert g.pl == g.pl[::-1] and not g.is_octahedral


def test_classic_grid_sizes_known_from_ecmwf() -> None:
    """Point counts of well-known ECMWF grids (ERA-40, ERA-Interim, ERA5, TL1279)."""
    for n, npoints in {80: 35718, 128: 88838, 320: 542080, 640: 2140702}.items():
        assert GaussianGrid.classic(n).npoints == npoints


@pytest.mark.parametrize("n", [32, 96, 320, 1280])
def test_gaussian_latitudes_match_eccodes(n: int) -> None:
    lats, w = gaussian_latitudes(n)
    ref = np.array(list(ec.codes_get_gaussian_latitudes(n)))
    assert lats.shape == w.shape == (2 * n,)
    np.testing.assert_allclose(lats, ref, rtol=0, atol=1e-10)
    assert np.all(np.diff(lats) < 0)
    assert abs(w.sum() - 2.0) < 1e-13


def test_gaussian_latitudes_and_weights_match_numpy_leggauss() -> None:
    x, w = np.polynomial.legendre.leggauss(192)  # ascending sin(lat)
    lats, weights = gaussian_latitudes(96)
    np.testing.assert_allclose(lats, np.degrees(np.arcsin(x))[::-1], rtol=0, atol=1e-11)
    # leggauss' weights nearest the poles are off by ~4e-11 (relative); ours by ~3e-13
    np.testing.assert_allclose(weights, w[::-1], rtol=1e-10, atol=0)


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="no extended precision here")
def test_gaussian_weights_match_an_extended_precision_newton() -> None:
    m = 192
    x = np.cos(np.longdouble(math.pi) * (np.arange(1, 97, dtype=np.longdouble) - 0.25) / (m + 0.5))
    for _ in range(8):
        p0, p1 = np.ones_like(x), x.copy()
        for j in range(2, m + 1):
            p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
        dp = m * (x * p1 - p0) / (x * x - 1)
        x = x - p1 / dp
    w = (2 / ((1 - x * x) * dp * dp)).astype(np.float64)
    lats, weights = gaussian_latitudes(96)
    np.testing.assert_allclose(weights[:96], w, rtol=1e-12, atol=0)
    np.testing.assert_allclose(lats[:96], np.degrees(np.arcsin(x.astype(np.float64))), atol=1e-12)


def test_gaussian_latitudes_of_an_eccodes_message() -> None:
    with sample("reduced_gg_pl_96_grib2") as h:
        distinct = ec.codes_get_array(h, "distinctLatitudes")
    np.testing.assert_allclose(
        np.sort(distinct), np.sort(GaussianGrid.classic(96).row_latitudes), rtol=0, atol=1e-6
    )


def test_o96_points_match_eccodes_iterator() -> None:
    g = GaussianGrid.octahedral(96)
    with o96_message() as h:
        lat, lon = eccodes_points(h)
        assert ec.codes_get(h, "gridName") == "O96"
        assert grid_from_grib(h) == g
    np.testing.assert_allclose(g.latitudes, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(g.longitudes, lon, rtol=0, atol=1e-9)


def test_regular_gaussian_f_grid() -> None:
    g = grid_from_name("F32")
    assert g.name == "F32" and g.shape == (64, 128) and g.npoints == 8192
    with sample("regular_gg_sfc_grib2") as h:
        assert ec.codes_get(h, "gridName") == "F32"
        assert grid_from_grib(h) == g
        np.testing.assert_allclose(g.latitudes, ec.codes_get_array(h, "latitudes"), atol=1e-9)
        np.testing.assert_allclose(g.longitudes, ec.codes_get_array(h, "longitudes"), atol=1e-9)


# -- regular lat-lon grids -----------------------------------------------------------


@pytest.mark.parametrize("case", REGULAR_CASES)
def test_regular_ll_points_match_eccodes_and_read_back(case: str) -> None:
    g = REGULAR_CASES[case]
    with regular_ll_message(g) as h:
        lat, lon = eccodes_points(h)
        back = grid_from_grib(h)
        assert ec.codes_get(h, "numberOfDataPoints") == g.npoints
    assert back == g and back.key() == g.key() and hash(back) == hash(g)
    lat_tol = 1e-6
    if case == "third_deg_south_first":
        # ecCodes 2.50 steps latitudes by the stored jDirectionIncrement (0.333333) and puts
        # the last row on latitudeOfLastGridPoint, so its rows drift by up to 539 * 3.3e-7
        # and the last step is 0.333512; ours are the even 1/3-degree rows the message means.
        lat_tol = 539 * (1 / 3 - 0.333333) + 1e-6
        rows = lat.reshape(g.shape)[:, 0]
        np.testing.assert_allclose(rows[[0, 1, -1]], g.row_latitudes[[0, 1, -1]], atol=1e-6)
    np.testing.assert_allclose(g.latitudes, lat, rtol=0, atol=lat_tol)
    assert lon_diff(g.longitudes, lon).max() < 1e-6


def test_regular_ll_rows_and_scanning() -> None:
    g = grid_from_name("1/1")
    assert g.name == "regular_ll 1x1 global" and g.shape == (181, 360) and g.is_global
    assert g.latitudes[0] == 90 and g.latitudes[-1] == -90 and g.longitudes[359] == 359
    s = REGULAR_CASES["third_deg_south_first"]
    assert s.latitudes[0] < s.latitudes[-1] and s.is_global and s.shape == (540, 1080)
    assert not REGULAR_CASES["europe_quarter_deg"].is_global


def test_regular_bounds_are_half_increments_clipped_at_poles() -> None:
    g = grid_from_name("1/1")
    np.testing.assert_array_equal(g.lat_bounds[0], [89.5, 90.0])
    np.testing.assert_array_equal(g.lat_bounds[-1], [-90.0, -89.5])
    np.testing.assert_array_equal(g.lat_bounds[360], [88.5, 89.5])
    np.testing.assert_array_equal(g.lon_bounds[:2], [[-0.5, 0.5], [0.5, 1.5]])


def test_emulator_grid_converts_both_ways() -> None:
    r = RegularLatLonGrid.from_emulator_grid(EUROPE)
    assert r.shape == EUROPE.shape and not r.is_global
    np.testing.assert_allclose(r.row_latitudes, EUROPE.lat, atol=1e-9)
    np.testing.assert_allclose(r.longitudes[: EUROPE.shape[1]], EUROPE.lon, atol=1e-9)
    np.testing.assert_allclose(r.row_lat_edges[[0, -1]], [EUROPE.lat_north, EUROPE.lat_south])
    assert r.to_emulator_grid(EUROPE.coarse_factor) == EUROPE
    c = RegularLatLonGrid.from_emulator_grid(EUROPE, coarse=True)
    assert c.shape == EUROPE.coarse_shape and c.dlat == EUROPE.coarse_res
    whole = Grid(-90.0, 90.0, -180.0, 180.0, 0.5)
    assert RegularLatLonGrid.from_emulator_grid(whole).is_global
    assert RegularLatLonGrid.global_grid(0.5, lon_first=180.25, on_poles=False).to_emulator_grid() \
        == whole  # fmt: skip


# -- cells and areas ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "grid",
    [
        grid_from_name("O96"),
        grid_from_name("N320"),
        grid_from_name("F96"),
        grid_from_name("1/1"),
        grid_from_name("0.25/0.25"),
        REGULAR_CASES["third_deg_south_first"],
        RegularLatLonGrid.global_grid(0.5, on_poles=False, lon_first=-179.75),
    ],
    ids=lambda g: g.name,
)
def test_global_cell_areas_sum_to_4pi(grid: ModelGrid) -> None:
    assert grid.is_global
    assert abs(grid.cell_areas.sum() / FOUR_PI - 1.0) < 1e-12
    lo, hi = grid.lat_bounds.T
    assert np.all(lo <= grid.latitudes) and np.all(grid.latitudes <= hi)
    w, e = grid.lon_bounds.T
    assert np.all(w < grid.longitudes) and np.all(grid.longitudes < e)
    # cells bounded by parallels and meridians: area = dlon (rad) * d(sin lat)
    areas = np.radians(e - w) * (np.sin(np.radians(hi)) - np.sin(np.radians(lo)))
    np.testing.assert_allclose(grid.cell_areas, areas, rtol=1e-9)


def test_gaussian_row_bands_have_the_quadrature_weights() -> None:
    g = grid_from_name("O96")
    _, w = np.polynomial.legendre.leggauss(192)
    row_area = np.add.reduceat(g.cell_areas, np.r_[0, np.cumsum(g.pl)[:-1]])
    np.testing.assert_allclose(row_area, 2 * math.pi * g.row_weights, rtol=1e-12)
    np.testing.assert_allclose(row_area, 2 * math.pi * w[::-1], rtol=1e-10)
    edges = g.row_lat_edges
    assert edges[0] == 90 and edges[96] == 0 and edges[-1] == -90
    np.testing.assert_array_equal(edges, -edges[::-1])
    np.testing.assert_allclose(g.lon_bounds[:, 1] - g.lon_bounds[:, 0], 360 / np.repeat(g.pl, g.pl))
    assert np.all((edges[1:] < g.row_latitudes) & (g.row_latitudes < edges[:-1]))


def test_regional_area_is_the_spherical_box() -> None:
    g = REGULAR_CASES["europe_quarter_deg"]  # points 72..35 N, -25..45 E: cells half a step out
    box = math.radians(70.25) * (math.sin(math.radians(72.125)) - math.sin(math.radians(34.875)))
    assert abs(g.cell_areas.sum() / box - 1) < 1e-12


# -- identity ------------------------------------------------------------------------------


def test_equality_and_key_follow_the_geometry() -> None:
    o96 = grid_from_name("O96")
    assert o96 == GaussianGrid.octahedral(96) == GaussianGrid(96, octahedral_pl(96))
    assert len({o96, grid_from_name("o96"), grid_from_name("N96"), grid_from_name("F96")}) == 3
    assert {o96.key(): 1}[GaussianGrid.octahedral(96).key()] == 1
    assert o96 != grid_from_name("N96") and o96 != "O96"
    # the same points: -180 and 180 are one meridian
    a = RegularLatLonGrid.global_grid(1.0, lon_first=-180.0)
    assert a == RegularLatLonGrid.global_grid(1.0, lon_first=180.0)
    assert a != RegularLatLonGrid.global_grid(1.0) and a != grid_from_name("F90")
    # stable across versions: a documented canonical description and its sha256
    f1 = GaussianGrid.regular(1)
    assert f1.canonical_json() == '{"N":1,"pl":[4,4],"type":"gaussian"}'
    assert f1.key() == hashlib.sha256(f1.canonical_json().encode()).hexdigest()
    assert grid_from_name("1/1").canonical_json() == (
        '{"dlat":1.0,"dlon":1.0,"lat_first":90.0,"lat_last":-90.0,"lon_first":0.0,'
        '"nlat":181,"nlon":360,"type":"regular_ll"}'
    )


def test_arrays_are_read_only() -> None:
    g = grid_from_name("F8")
    with pytest.raises(ValueError):
        g.latitudes[0] = 0.0
    with pytest.raises(ValueError):
        gaussian_latitudes(8)[0][0] = 0.0


# -- GRIB files ----------------------------------------------------------------------------


def test_round_trip_through_grib_files(tmp_path: Path) -> None:
    grids = {
        "o96.grib2": (o96_message(), grid_from_name("O96")),
        "europe.grib2": (regular_ll_message(REGULAR_CASES["europe_quarter_deg"]),
                         REGULAR_CASES["europe_quarter_deg"]),
        "one_deg.grib1": (regular_ll_message(grid_from_name("1/1"), edition=1),
                          grid_from_name("1/1")),
    }  # fmt: skip
    for name, (message, grid) in grids.items():
        with message as h, open(tmp_path / name, "wb") as f:
            ec.codes_write(h, f)
        assert grid_from_grib(tmp_path / name) == grid
        assert grid_from_grib(str(tmp_path / name)) == grid
    with sample("reduced_gg_pl_96_grib2") as h:
        assert grid_from_grib(h) == grid_from_name("N96")


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("O0", r"'O0'.*integer >= 1.*found '0'"),
        ("O-5", r"'O-5'.*integer >= 1.*found '-5'"),
        ("N96.5", r"integer >= 1.*found '96.5'"),
        ("O", r"integer >= 1.*found ''"),
        ("X96", r"unknown grid name 'X96': expected O<N>"),
        ("", r"unknown grid name ''"),
        ("-1/1", r"'-1/1': increments must be > 0 degrees"),
        ("1/0", r"increments must be > 0"),
        ("a/b", r"expected 'dlon/dlat'"),
        ("0.7/0.7", r"dlat must divide 180"),
        ("N24", r"N24: ecCodes has no sample 'reduced_gg_pl_24_grib2'.*O24"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        grid_from_name(name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dlat": -1.0}, r"dlat must be > 0 degrees, found -1.0"),
        ({"dlon": 0.0}, r"dlon must be > 0 degrees"),
        ({"nlat": 0}, r"nlat must be an integer >= 1, found 0"),
        ({"nlon": 2.5}, r"nlon must be an integer"),
        ({"nlon": 361}, r"nlon \* dlon must be <= 360"),
        ({"lat_first": 91.0}, r"lat_first must be within -90..90"),
        ({"nlat": 182}, r"last latitude must be within -90..90"),
        ({"lon_first": float("nan")}, r"lon_first must be a finite number"),
    ],
)
def test_bad_regular_grids_say_what_is_wrong(kwargs: dict, match: str) -> None:
    args = dict(lat_first=90.0, lon_first=0.0, dlat=1.0, dlon=1.0, nlat=181, nlon=360) | kwargs
    with pytest.raises(ValueError, match=match):
        RegularLatLonGrid(**args)


def test_bad_gaussian_grids_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"must have 2N = 4 rows, found 3"):
        GaussianGrid(2, (4, 4, 4))
    with pytest.raises(ValueError, match=r"pl must be >= 1 in every row"):
        GaussianGrid(1, (4, 0))
    with pytest.raises(ValueError, match=r"Gaussian number N must be an integer >= 1, found 0"):
        GaussianGrid.octahedral(0)
    with pytest.raises(ValueError, match=r"dlat must be > 0 degrees, found -0.5"):
        RegularLatLonGrid.global_grid(-0.5)
    with pytest.raises(ValueError, match=r"runs north to south"):
        REGULAR_CASES["third_deg_south_first"].to_emulator_grid()


@pytest.mark.parametrize("sample_name", ["sh_ml_grib2", "rotated_ll_sfc_grib2",
                                         "polar_stereographic_sfc_grib2"])  # fmt: skip
def test_unsupported_grib_grid_types_are_named(sample_name: str) -> None:
    with sample(sample_name) as h:
        grid_type = ec.codes_get(h, "gridType")
        with pytest.raises(ValueError, match=rf"gridType '{grid_type}' is not supported"):
            grid_from_grib(h)


def test_bad_grib_sources_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read GRIB file .*missing.grib"):
        grid_from_grib(tmp_path / "missing.grib")
    (tmp_path / "empty.grib").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no GRIB message"):
        grid_from_grib(tmp_path / "empty.grib")
    with pytest.raises(TypeError, match=r"ecCodes handle or a path"):
        grid_from_grib(3.5)  # type: ignore[arg-type]
    with sample("reduced_gg_pl_96_grib2") as h:  # a sub-area: the northern hemisphere only
        ec.codes_set_array(h, "pl", list(ec.codes_get_array(h, "pl")[:96]))
        ec.codes_set(h, "latitudeOfLastGridPointInDegrees", 0.467)
        with pytest.raises(ValueError, match=r"only global Gaussian grids"):
            grid_from_grib(h)
    with sample("regular_ll_sfc_grib2") as h:
        ec.codes_set(h, "iScansNegatively", 1)
        with pytest.raises(ValueError, match=r"iScansNegatively = 1 is not supported"):
            grid_from_grib(h)
