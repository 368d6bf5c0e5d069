"""Forcing bias adjustment (LAIDN eq. 1): hand-computed values, and a cube round trip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from landbc.coupler.cli import main as cli
from landbc.emulator import zarrstore
from landbc.emulator.bias import adjust, bias_adjust_cube, monthly_climatology
from landbc.emulator.cube import Cube


def test_climatology_and_adjustment_by_hand():
    # two years of one pixel: January 1 then 3 (mean 2), every other month 10 then 20 (15)
    model = np.array([1.0] + [10.0] * 11 + [3.0] + [20.0] * 11)
    clim = monthly_climatology(model, 2000, (2000, 2001))
    assert clim[0] == 2.0 and np.all(clim[1:] == 15.0)
    # the reference is 1 warmer in January and 5 cooler in the other months
    ref = np.array([3.0] + [10.0] * 11)
    out = adjust(model, 2000, clim, ref)
    assert out[0] == 1.0 - 2.0 + 3.0 and out[12] == 3.0 - 2.0 + 3.0  # 2 and 4
    assert out[1] == 10.0 - 15.0 + 10.0 and out[13] == 20.0 - 15.0 + 10.0  # 5 and 15
    # a year outside the historical period keeps its anomaly
    three = np.concatenate([model, model[:12] + 7.0])
    c = monthly_climatology(three, 2000, (2000, 2001))
    assert adjust(three, 2000, c, ref)[24] == 8.0 - 2.0 + 3.0


def test_climatology_refuses_a_period_outside_the_series():
    with pytest.raises(ValueError, match=r"years: expected a period within 2000\.\.2001"):
        monthly_climatology(np.zeros(24), 2000, (2001, 2002))


def _shifted_copy(src, dst, t2m_shift, tp_scale):
    """A 'model' cube: the tiny cube with a warm bias and too little rain."""
    shutil.copytree(src, dst)
    root = zarrstore.open_group(dst)
    root["t2m"][:] = root["t2m"][:] + t2m_shift
    root["tp"][:] = root["tp"][:] * tp_scale
    zarrstore.consolidate(dst)
    return dst


def test_a_biased_cube_is_moved_onto_the_reference(tiny_cube, tmp_path):
    model = _shifted_copy(tiny_cube, tmp_path / "model.zarr", 2.5, 0.5)
    out = tmp_path / "adjusted.zarr"
    assert cli(["bias-adjust", str(model), "--reference", str(tiny_cube),
                "--years", "2000", "2002", "--out", str(out)]) == 0  # fmt: skip
    ref, adj = Cube.open(tiny_cube), Cube.open(out)
    # over the period itself a pure shift is removed exactly (to float32 rounding)
    np.testing.assert_allclose(adj.root["t2m"][:], ref.root["t2m"][:], atol=1e-4)
    # a halved rainfall has the right monthly means, and never goes negative
    got = monthly_climatology(adj.root["tp"][:], 2000, (2000, 2002))
    want = monthly_climatology(ref.root["tp"][:], 2000, (2000, 2002))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert adj.root["tp"][:].min() >= 0
    # everything else is the model cube's, and the provenance is recorded
    np.testing.assert_array_equal(adj.root["lai"][:], Cube.open(model).root["lai"][:])
    record = adj.root.attrs["bias_adjustment"]
    assert record["years"] == [2000, 2002]
    assert record["variables"]["t2m"]["mean_shift"] == pytest.approx(-2.5, abs=1e-4)


def test_bad_requests_leave_nothing_behind(tiny_cube, tmp_path, capsys):
    out = tmp_path / "adjusted.zarr"
    assert cli(["bias-adjust", str(tiny_cube), "--reference", str(tiny_cube),
                "--years", "1990", "2001", "--out", str(out)]) == 2  # fmt: skip
    assert "years: expected a period within 2000..2002" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileExistsError):
        bias_adjust_cube(tiny_cube, tiny_cube, tiny_cube, (2000, 2002))
