"""Run config validation, the demo config, month arithmetic and interpolation weights."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from landbc.coupler import calendar as cal
from landbc.coupler.config import ConfigError, RunConfig, demo_config, load_config
from landbc.coupler.driver import domain_window
from landbc.emulator.grid import Grid

REPO = Path(__file__).resolve().parents[1]

VALID = """
[bundle]
path = "weights/tiny"
device = "cpu"
dtype = "float32"

[domain]
lat_south = 46.0
lat_north = 47.0
lon_west = 6.5
lon_east = 7.75

[period]
start = "2001-01"
steps = 6

[run]
direction = "forward"

[forcing]
cube = "data/tiny.zarr"

[output]
store = "out/bc.zarr"
restart_every = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


def test_valid_config_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.bundle == tmp_path / "weights" / "tiny"  # relative to the config file
    assert cfg.cube == tmp_path / "data" / "tiny.zarr"
    assert cfg.store == tmp_path / "out" / "bc.zarr"
    assert cfg.box == (46.0, 47.0, 6.5, 7.75)
    assert cfg.start == (2001, 1) and cfg.steps == 6 and cfg.direction == "forward"
    assert cfg.restart_every == 3 and cfg.overwrite is False
    assert cfg.restart_path == tmp_path / "out" / "restarts"  # default restart_dir
    assert cfg.prior_month == (2000, 12)
    assert cfg.months == [(2001, m) for m in range(1, 7)]
    back = cfg.with_(direction="backward")
    assert back.prior_month == (2001, 2)
    assert back.months[:2] == [(2001, 1), (2000, 12)]


def test_minimal_config_whole_cube(tmp_path):
    text = """
[bundle]
path = "/abs/bundle"
[period]
start = "1999-12"
steps = 1
[forcing]
cube = "c.zarr"
[output]
store = "o.zarr"
"""
    cfg = load_config(write(tmp_path, text))
    assert cfg.box is None and cfg.bundle == Path("/abs/bundle")
    assert (cfg.device, cfg.dtype, cfg.direction, cfg.restart_every) == (
        "cpu",
        "auto",  # bf16 only where native: resolved when the run starts
        "forward",
        0,
    )


def test_to_toml_round_trip(tmp_path):
    cfg = load_config(write(tmp_path, VALID))
    p = tmp_path / "again.toml"
    p.write_text(cfg.to_toml())
    assert load_config(p) == cfg.with_(restart_dir=cfg.restart_path)


def test_example_demo_toml_is_the_demo():
    assert load_config(REPO / "examples" / "demo.toml") == demo_config(REPO)


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# (description, edit of VALID, substring that must name the key, other substrings)
BAD = [
    ("unknown section", lambda t: t + "\n[extra]\nx = 1\n", "[extra]", []),
    (
        "unknown key",
        lambda t: _edit(t, "restart_every = 3", "restart_evry = 3"),
        "output.restart_evry",
        ["restart_every"],
    ),
    (
        "missing section",
        lambda t: _edit(t, '[forcing]\ncube = "data/tiny.zarr"', ""),
        "[forcing]",
        [],
    ),
    ("missing key", lambda t: _edit(t, 'store = "out/bc.zarr"', ""), "output.store", []),
    ("steps type", lambda t: _edit(t, "steps = 6", 'steps = "6"'), "period.steps", ["'6'"]),
    ("steps zero", lambda t: _edit(t, "steps = 6", "steps = 0"), "period.steps", [">= 1", "0"]),
    ("steps bool", lambda t: _edit(t, "steps = 6", "steps = true"), "period.steps", ["True"]),
    (
        "start format",
        lambda t: _edit(t, '"2001-01"', '"2001/01"'),
        "period.start",
        ["YYYY-MM", "2001/01"],
    ),
    ("start month", lambda t: _edit(t, '"2001-01"', '"2001-13"'), "period.start", ["2001-13"]),
    ("start type", lambda t: _edit(t, '"2001-01"', "2001"), "period.start", ["2001"]),
    (
        "direction",
        lambda t: _edit(t, '"forward"', '"sideways"'),
        "run.direction",
        ["forward", "sideways"],
    ),
    ("device", lambda t: _edit(t, 'device = "cpu"', 'device = "gpu"'), "bundle.device", ["gpu"]),
    (
        "dtype",
        lambda t: _edit(t, 'dtype = "float32"', 'dtype = "float16"'),
        "bundle.dtype",
        ['"auto"', "bfloat16", "float16"],
    ),
    (
        "restart_every",
        lambda t: _edit(t, "restart_every = 3", "restart_every = -1"),
        "output.restart_every",
        ["-1"],
    ),
    ("overwrite", lambda t: t + 'overwrite = "yes"\n', "output.overwrite", ["yes"]),
    ("path type", lambda t: _edit(t, 'path = "weights/tiny"', "path = 3"), "bundle.path", ["3"]),
    (
        "grid value",
        lambda t: _edit(t, "lat_south = 46.0", 'grid = "world"'),
        "domain.grid",
        ["world"],
    ),
    ("box partial", lambda t: _edit(t, "lat_south = 46.0", ""), "domain.lat_south", []),
    (
        "grid and box",
        lambda t: _edit(t, "lat_south = 46.0", 'lat_south = 46.0\ngrid = "cube"'),
        "domain",
        ["both"],
    ),
    (
        "box order",
        lambda t: _edit(t, "lat_north = 47.0", "lat_north = 45.0"),
        "domain.lat_north",
        ["45.0"],
    ),
    (
        "box type",
        lambda t: _edit(t, "lon_west = 6.5", 'lon_west = "6.5"'),
        "domain.lon_west",
        ["'6.5'"],
    ),
    ("not toml", lambda t: t + "\n[[[", "not valid TOML", []),
]


@pytest.mark.parametrize("what,edit,key,others", BAD, ids=[b[0] for b in BAD])
def test_config_errors_name_the_key(tmp_path, what, edit, key, others):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, edit(VALID)))
    msg = str(e.value)
    assert key in msg, msg
    for o in others:
        assert o in msg, msg
    assert "run.toml" in msg  # and the file


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_configs_built_in_code_are_validated(tmp_path):
    cfg = demo_config(tmp_path)
    with pytest.raises(ConfigError, match="bundle.dtype"):
        cfg.with_(dtype="int8")
    with pytest.raises(ConfigError, match="run.direction"):
        RunConfig(
            bundle=tmp_path, cube=tmp_path, store=tmp_path, start=(2000, 1), steps=1, direction="up"
        ).with_()


# --- domain windows --------------------------------------------------------------

CUBE = Grid(46.0, 48.0, 6.0, 8.0, 0.05, 5)


def test_domain_window_whole_cube_and_box():
    g, win, cwin = domain_window(CUBE, None)
    assert g == CUBE and win == (slice(0, 40), slice(0, 40)) and cwin == (slice(0, 8),) * 2
    g, win, cwin = domain_window(CUBE, (46.5, 47.75, 6.25, 7.5))
    assert g == Grid(46.5, 47.75, 6.25, 7.5, 0.05, 5)
    assert win == (slice(5, 30), slice(5, 30))
    assert cwin == (slice(1, 6), slice(1, 6))
    assert g.origin == (CUBE.origin[0] + 5, CUBE.origin[1] + 5)


@pytest.mark.parametrize(
    "box,key,why",
    [
        ((46.5, 47.75, 6.26, 7.5), "domain.lon_west", "edge of the cube grid"),
        ((46.5, 47.7, 6.25, 7.5), "domain.lat_north", "coarse forcing grid"),
        ((45.0, 47.75, 6.25, 7.5), "domain.lat_south", "inside the cube grid"),
        ((46.5, 47.75, 6.25, 9.0), "domain.lon_east", "inside the cube grid"),
    ],
)
def test_domain_window_errors(box, key, why):
    with pytest.raises(ConfigError) as e:
        domain_window(CUBE, box)
    assert key in str(e.value) and why in str(e.value)


# --- calendar --------------------------------------------------------------------


def test_parse_and_format_month():
    assert cal.parse_month("2015-01") == (2015, 1)
    assert cal.parse_month(" 1850-12 ") == (1850, 12)
    assert cal.format_month(2015, 1) == "2015-01"
    for bad in ("2015", "2015-00", "2015-13", "15-1-1", "", "jan 2015"):
        with pytest.raises(ValueError, match="start"):
            cal.parse_month(bad, "start")
    with pytest.raises(ValueError, match="expected a string"):
        cal.parse_month(201501)  # type: ignore[arg-type]


def test_month_arithmetic():
    assert cal.add_months(2015, 1, -1) == (2014, 12)
    assert cal.add_months(2015, 12, 1) == (2016, 1)
    assert cal.add_months(2015, 6, 30) == (2017, 12)
    assert cal.add_months(2015, 6, -30) == (2012, 12)
    assert cal.next_month(2015, 12) == (2016, 1)
    assert cal.next_month(2015, 1, "backward") == (2014, 12)
    assert cal.previous_month(2015, 1, "forward") == (2014, 12)
    assert cal.previous_month(2015, 12, "backward") == (2016, 1)
    assert cal.month_range((2014, 11), 4) == [(2014, 11), (2014, 12), (2015, 1), (2015, 2)]
    assert cal.month_range((2015, 2), 3, "backward") == [(2015, 2), (2015, 1), (2014, 12)]
    assert cal.month_range((2015, 2), 0) == []
    assert cal.months_between((2014, 11), (2016, 1)) == 14
    with pytest.raises(ValueError, match="direction"):
        cal.next_month(2015, 1, "sideways")
    with pytest.raises(ValueError, match="month"):
        cal.add_months(2015, 13, 1)


def test_mid_month_anchor():
    assert cal.mid_month(2015, 2) == datetime(2015, 2, 15, 0, tzinfo=UTC)


def test_interpolation_weights_at_anchors_and_between():
    w = cal.daily_interpolation_weights(date(2015, 3, 15))
    assert w.earlier == (2015, 3) and w.later == (2015, 4) and w.w_earlier == 1.0
    # Halfway between 15 Jan and 15 Feb (31 days): 30 Jan 12 UTC.
    w = cal.daily_interpolation_weights(datetime(2015, 1, 30, 12))
    assert (w.earlier, w.later) == ((2015, 1), (2015, 2))
    assert w.w_earlier == pytest.approx(0.5) and w.w_later == pytest.approx(0.5)
    # Before the 15th: between the previous month and this one, across a year end.
    w = cal.daily_interpolation_weights(date(2015, 1, 1))
    assert (w.earlier, w.later) == ((2014, 12), (2015, 1))
    assert w.w_earlier == pytest.approx(14 / 31)  # 1 Jan is 14 of the 31 days to 15 Jan
    # Leap February: 15 Feb -> 15 Mar is 29 days in 2016.
    w = cal.daily_interpolation_weights(date(2016, 3, 1))
    assert (w.earlier, w.later) == ((2016, 2), (2016, 3))
    assert w.w_earlier == pytest.approx(14 / 29)
    # Time zones: 15 Mar 01:00 at UTC+2 is 14 Mar 23:00 UTC, before the anchor.
    w = cal.daily_interpolation_weights(
        datetime(2015, 3, 15, 1, tzinfo=timezone(timedelta(hours=2)))
    )
    assert w.later == (2015, 3) and w.w_earlier == pytest.approx(1 / (28 * 24))


def test_interpolation_weights_are_linear_and_continuous():
    t0 = datetime(2015, 1, 15, tzinfo=UTC)
    prev = None
    for h in range(0, 24 * 70, 6):
        t = t0 + timedelta(hours=h)
        w = cal.daily_interpolation_weights(t)
        assert 0.0 < w.w_earlier <= 1.0
        # value of a field that is 0 in odd months and 1 in even ones (by month index)
        v = w.w_earlier * (w.earlier[1] % 2) + w.w_later * (w.later[1] % 2)
        if prev is not None:
            assert abs(v - prev) < 6 / (24 * 27)  # no jumps at the anchors
        prev = v
