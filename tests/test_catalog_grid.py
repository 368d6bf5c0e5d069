"""Catalog tables and the Grid / global tile lattice."""

import numpy as np
import pytest

from landbc.emulator import catalog
from landbc.emulator.grid import EUROPE, Grid
from landbc.emulator.tiling import plan_axis


def test_lu_lc_tables_are_consistent():
    assert [c.index for c in catalog.LU_CLASSES] == list(range(catalog.N_LU)) == list(range(8))
    assert [c.index for c in catalog.LC_CLASSES] == list(range(21))
    assert not set(catalog.LC_HIGH_VEGETATION) & set(catalog.LC_LOW_VEGETATION)
    assert len(catalog.LC_VEGETATION_COVER) == catalog.N_LC
    # every vegetation type has cover, non-vegetation types none
    for t in catalog.LC_HIGH_VEGETATION + catalog.LC_LOW_VEGETATION:
        assert catalog.LC_VEGETATION_COVER[t] > 0
    for t in (0, 8, 12, 14, 15):
        assert catalog.LC_VEGETATION_COVER[t] == 0
    # HILDA+ codes map onto the 8 consolidated states
    assert catalog.LU_CLASSES[4].source_codes == (40, 41, 42, 43, 44, 45)
    assert set(catalog.LUH2_TO_LU) == set(catalog.LUH2_STATES)


def test_variables_have_units_ranges_and_grib_codes():
    for v in catalog.VARIABLES.values():
        assert (
            v.units and v.valid_min < v.valid_max and v.cadence in ("static", "yearly", "monthly")
        )
    assert {catalog.variable(n).grib_param_id for n in ("cvl", "cvh", "tvl", "tvh")} == {
        27,
        28,
        29,
        30,
    }
    assert catalog.variable("lai_lv").grib_param_id == 66
    assert catalog.variable("lai_hv").grib_param_id == 67
    assert catalog.variable("luh2_frac").shape((10, 10), (2, 2)) == (12, 2, 2)
    assert catalog.variable("co2").shape((10, 10), (2, 2)) == ()
    with pytest.raises(KeyError, match="unknown variable 'nope'"):
        catalog.variable("nope")


def test_europe_grid():
    assert EUROPE.shape == (740, 1400)
    assert EUROPE.coarse_shape == (148, 280)
    assert EUROPE.origin == (360, 3100)
    assert EUROPE.lat[0] == pytest.approx(71.975) and EUROPE.lat[-1] == pytest.approx(35.025)
    assert EUROPE.lon[0] == pytest.approx(-24.975)
    assert Grid.from_dict(EUROPE.to_dict()) == EUROPE


def test_any_box_and_resolution():
    g = Grid(-10.0, 10.0, 100.0, 120.0, 0.25, coarse_factor=4)
    assert g.shape == (80, 80) and g.coarse_shape == (20, 20) and g.origin == (320, 1120)
    x = np.arange(80 * 80, dtype=float).reshape(80, 80)
    assert g.coarsen(x).shape == (20, 20)
    assert g.refine(g.coarsen(x)).shape == (80, 80)
    w = g.window(4, 12, 8, 24)
    assert w.shape == (8, 16) and w.origin == (324, 1128)
    assert np.allclose(w.lat, g.lat[4:12]) and np.allclose(w.lon, g.lon[8:24])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(lat_south=10, lat_north=5, lon_west=0, lon_east=1, res=0.05),
            "lat_south < lat_north",
        ),
        (dict(lat_south=0, lat_north=1, lon_west=0, lon_east=1, res=0.0), "res must be > 0"),
        (dict(lat_south=0, lat_north=1.01, lon_west=0, lon_east=1, res=0.05), "whole number"),
        (
            dict(lat_south=0, lat_north=1.05, lon_west=0, lon_east=1, res=0.05, coarse_factor=5),
            "multiple of coarse_factor",
        ),
    ],
)
def test_bad_grids_are_refused_with_a_clear_message(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs)


@pytest.mark.parametrize(
    "start, length, stride, margin",
    [(0, 64, 48, 8), (360, 740, 480, 16), (7, 33, 20, 6), (3100, 1400, 480, 16), (5, 1, 16, 0)],
)
def test_tile_cores_cover_each_pixel_once_from_the_global_lattice(start, length, stride, margin):
    tiles = plan_axis(start, length, 0, 0, stride, margin, 16)
    cover = np.zeros(length, int)
    for lo, hi, w_lo, w_hi in tiles:
        cover[lo:hi] += 1
        assert (start + w_lo) % 16 == 0 and (start + w_hi) % 16 == 0  # one pooling phase
        assert w_lo <= lo - margin and w_hi >= hi + margin
        assert lo == 0 or (start + lo) % stride == 0  # cores start on the lattice
    assert (cover == 1).all()
    # a block cut on the lattice, with a halo, plans the big domain's tiles there
    cut = next((lo for lo, *_ in tiles if lo > 0), None)
    if cut is not None:
        halo = margin + 16
        block = plan_axis(start + cut - halo, length - cut + halo, halo, 0, stride, margin, 16)
        shifted = [[x + cut - halo for x in t] for t in block]
        assert shifted == [t for t in tiles if t[0] >= cut]


def test_batches_hold_tiles_of_one_window_shape_up_to_the_batch_size():
    from landbc.emulator.tiling import batches

    a, b = [0, 1, 0, 1, 0, 16, 0, 16], [0, 1, 0, 1, 0, 32, 0, 16]
    got = batches([a, a, a, b, b], 2)
    assert got == [[a, a], [a], [b, b]]
    assert batches([], 4) == []
