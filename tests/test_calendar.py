"""CF calendars, mid-month LAI interpolation on every calendar, and the
coupling schedule of a host model (landbc.coupler.calendar).

Expected weights are worked out by hand in the comments; all are exact
fractions, compared with `exact_interpolation_weights`.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from landbc.coupler import calendar as cal

ALL = ("standard", "proleptic_gregorian", "julian", "noleap", "all_leap", "360_day")
HOST = ("standard", "proleptic_gregorian", "noleap", "all_leap", "360_day")


# --- names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("standard", "standard"),
        ("gregorian", "standard"),
        ("Gregorian", "standard"),
        (" proleptic_gregorian ", "proleptic_gregorian"),
        ("noleap", "noleap"),
        ("365_day", "noleap"),
        ("all_leap", "all_leap"),
        ("366_day", "all_leap"),
        ("360_day", "360_day"),
        ("julian", "julian"),
    ],
)
def test_calendar_aliases(name, canonical):
    assert cal.canonical_calendar(name) == canonical


@pytest.mark.parametrize("bad", ["360day", "no_leap", "", "none", None, 360])
def test_bad_calendar_names_are_named_in_the_error(bad):
    with pytest.raises(ValueError, match="calendar") as e:
        cal.canonical_calendar(bad)
    assert repr(bad) in str(e.value)
    with pytest.raises(ValueError, match=repr(bad)):
        cal.days_in_month(2000, 1, bad)
    with pytest.raises(ValueError, match=repr(bad)):
        cal.CouplingSchedule(bad, 3600)


# --- days per month and year ----------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "feb"),  # February in 1500, 1900, 2000, 2001, 2004
    [
        ("standard", (29, 28, 29, 28, 29)),  # Julian rule before 1582
        ("gregorian", (29, 28, 29, 28, 29)),
        ("proleptic_gregorian", (28, 28, 29, 28, 29)),
        ("julian", (29, 29, 29, 28, 29)),
        ("noleap", (28, 28, 28, 28, 28)),
        ("365_day", (28, 28, 28, 28, 28)),
        ("all_leap", (29, 29, 29, 29, 29)),
        ("366_day", (29, 29, 29, 29, 29)),
        ("360_day", (30, 30, 30, 30, 30)),
    ],
)
def test_february(calendar, feb):
    years = (1500, 1900, 2000, 2001, 2004)
    assert tuple(cal.days_in_month(y, 2, calendar) for y in years) == feb
    year_lengths = tuple(360 if calendar == "360_day" else 337 + f for f in feb)
    assert tuple(cal.days_in_year(y, calendar) for y in years) == year_lengths


def test_month_lengths_outside_february():
    for c in ALL:
        lengths = [cal.days_in_month(2001, m, c) for m in range(1, 13)]
        if c == "360_day":
            assert lengths == [30] * 12
        else:
            assert lengths == [31, 28 if c != "all_leap" else 29, 31, 30, 31, 30, 31, 31, 30, 31,
                               30, 31]  # fmt: skip


def test_1582_gap_in_standard_not_in_proleptic():
    assert cal.days_in_month(1582, 10, "standard") == 21  # 1..4 and 15..31
    assert cal.days_in_month(1582, 10, "proleptic_gregorian") == 31
    assert cal.days_in_month(1582, 10, "julian") == 31
    assert cal.days_in_year(1582, "standard") == 355
    assert cal.days_in_year(1582, "proleptic_gregorian") == 365
    # 4 October (Julian) is followed by 15 October (Gregorian).
    assert cal.day_number(1582, 10, 15, "standard") - cal.day_number(1582, 10, 4, "standard") == 1
    assert cal.ModelTime("standard", 1582, 10, 4, 12).shifted(86_400) == cal.ModelTime(
        "standard", 1582, 10, 15, 12
    )
    for day in (5, 10, 14):
        with pytest.raises(ValueError, match="does not exist in the standard"):
            cal.ModelTime("standard", 1582, 10, day)
        cal.ModelTime("proleptic_gregorian", 1582, 10, day)  # exists there


def test_invalid_dates():
    for c, (y, m, d) in [("noleap", (2000, 2, 29)), ("360_day", (2001, 1, 31)),
                         ("standard", (2001, 2, 29)), ("all_leap", (2001, 2, 30))]:  # fmt: skip
        with pytest.raises(ValueError, match="day must be"):
            cal.ModelTime(c, y, m, d)
    cal.ModelTime("360_day", 2001, 2, 30)
    cal.ModelTime("all_leap", 2001, 2, 29)
    with pytest.raises(ValueError, match="hour"):
        cal.ModelTime("noleap", 2001, 1, 1, 24)
    with pytest.raises(ValueError, match="month"):
        cal.days_in_month(2001, 13, "noleap")


def test_day_numbers_round_trip_and_match_python_ordinals():
    for c in ALL:
        start = cal.day_number(1581, 1, 1, c)
        prev = None
        for n in range(start, start + 3 * 366):
            ymd = cal.date_from_day_number(n, c)
            assert cal.day_number(*ymd, c) == n
            if prev is not None:  # consecutive and in order
                assert ymd > prev
            prev = ymd
    rng = random.Random(1)
    for _ in range(500):
        d = date.fromordinal(rng.randrange(1, 800_000))
        n = cal.day_number(d.year, d.month, d.day, "proleptic_gregorian")
        assert n - d.toordinal() == 1_721_425  # JDN of 0001-01-01 is 1721426
        if d >= date(1582, 10, 15):
            assert cal.day_number(d.year, d.month, d.day, "standard") == n


def test_day_numbers_match_cftime():
    cftime = pytest.importorskip("cftime")
    rng = random.Random(2)
    for c in ALL:
        ref = cftime.datetime(1, 1, 1, calendar=c)
        n_ref = cal.day_number(1, 1, 1, c)
        for _ in range(300):
            y, m = rng.randrange(1, 3000), rng.randrange(1, 13)
            d = rng.randrange(1, cal.days_in_month(y, m, c) + 1)
            if c == "standard" and (y, m) == (1582, 10) and 5 <= d <= 14:
                continue
            t = cftime.datetime(y, m, d, calendar=c)
            days = cftime.date2num(t, "days since 0001-01-01", calendar=c)
            assert cal.day_number(y, m, d, c) - n_ref == days, (c, y, m, d, ref)


# --- model times --------------------------------------------------------------------------


def test_model_time_inputs():
    want = cal.ModelTime("noleap", 2001, 3, 1, 6, 30, 15)
    assert cal.model_time(("365_day", 2001, 3, 1, 6, 30, 15)) == want
    assert cal.model_time(want, "noleap") is want
    assert cal.model_time(("360_day", 2001, 2, 30)) == cal.ModelTime("360_day", 2001, 2, 30)
    assert cal.model_time(datetime(2001, 3, 1, 7, tzinfo=UTC)).calendar == "proleptic_gregorian"
    with pytest.raises(ValueError, match="not on the 360_day calendar"):
        cal.model_time(want, "360_day")
    with pytest.raises(ValueError, match="calendar, y, m, d"):
        cal.model_time(("noleap", 2001, 3))
    with pytest.raises(ValueError, match="whole number"):
        cal.model_time(("noleap", 2001, 3, 1, 0.5))
    with pytest.raises(TypeError):
        cal.model_time("2001-03-01")


def test_model_time_from_cftime():
    cftime = pytest.importorskip("cftime")
    t = cftime.datetime(2001, 2, 30, 6, calendar="360_day")
    assert cal.model_time(t) == cal.ModelTime("360_day", 2001, 2, 30, 6)
    assert cal.model_time(cftime.DatetimeNoLeap(2001, 3, 1)).calendar == "noleap"
    assert cal.model_time(cftime.datetime(2001, 3, 1, calendar="gregorian")).calendar == "standard"
    # Stepping agrees with cftime's own arithmetic, across the 1582 gap too.
    for c, start in [("360_day", (2001, 2, 29, 21)), ("noleap", (2000, 2, 28, 22)),
                     ("standard", (1582, 10, 4, 20)), ("all_leap", (2001, 2, 28, 23))]:  # fmt: skip
        a = cftime.datetime(*start, calendar=c)
        m = cal.model_time(a)
        for _ in range(10):
            a, m = a + timedelta(seconds=10_800), m.shifted(10_800)
            assert cal.model_time(a) == m


# --- interpolation weights ------------------------------------------------------------------

F = Fraction


@pytest.mark.parametrize(
    ("t", "earlier", "w_earlier", "later"),
    [
        # 360_day, day 1 00 UTC of month m: 16 days after day 15 of m-1, 14 days
        # before day 15 of m, 30 days apart: w(m-1) = 14/30, w(m) = 16/30.
        (("360_day", 2001, 3, 1), (2001, 2), F(14, 30), (2001, 3)),
        (("360_day", 2001, 1, 1), (2000, 12), F(14, 30), (2001, 1)),
        # 360_day, day 30 12 UTC: 14.5 days before day 15 of m+1: 29/60.
        (("360_day", 2001, 2, 30, 12), (2001, 2), F(29, 60), (2001, 3)),
        # 360_day on an anchor: that month alone.
        (("360_day", 2001, 7, 15), (2001, 7), F(1), (2001, 8)),
        # noleap, 1 March: 15 Feb -> 15 Mar is 28 days, 14 of them left: 1/2.
        (("noleap", 2000, 3, 1), (2000, 2), F(14, 28), (2000, 3)),
        # all_leap, 1 March 2001: 29 days, 14 left: 14/29.
        (("all_leap", 2001, 3, 1), (2001, 2), F(14, 29), (2001, 3)),
        # noleap, 1 Jan 06 UTC: 15 Dec -> 15 Jan is 31 days, 13.75 left: 55/124.
        (("365_day", 2001, 1, 1, 6), (2000, 12), F(55, 124), (2001, 1)),
        # proleptic 2016-02-29 12 UTC: 29 days, 14.5 left: 1/2.
        (("proleptic_gregorian", 2016, 2, 29, 12), (2016, 2), F(1, 2), (2016, 3)),
        # julian 1900-03-01: 1900 is a Julian leap year, 14/29; Gregorian 14/28.
        (("julian", 1900, 3, 1), (1900, 2), F(14, 29), (1900, 3)),
        (("standard", 1900, 3, 1), (1900, 2), F(14, 28), (1900, 3)),
        # standard 1582-10-04: 15 Sep -> 15 Oct is only 20 days (19 to 4 Oct,
        # then 1 to 15 Oct), 1 left: 1/20; proleptic: 30 days, 11 left.
        (("standard", 1582, 10, 4), (1582, 9), F(1, 20), (1582, 10)),
        (("proleptic_gregorian", 1582, 10, 4), (1582, 9), F(11, 30), (1582, 10)),
        # standard 1582-10-15 is October's anchor; 20 Oct: 26 of 31 days left.
        (("standard", 1582, 10, 15), (1582, 10), F(1), (1582, 11)),
        (("standard", 1582, 10, 20), (1582, 10), F(26, 31), (1582, 11)),
    ],
)
def test_weights_by_hand(t, earlier, w_earlier, later):
    m1, w1, m2, w2 = cal.exact_interpolation_weights(t)
    assert (m1, w1, m2, w2) == (earlier, w_earlier, later, 1 - w_earlier)
    w = cal.interpolation_weights(t)
    assert (w.earlier, w.later) == (earlier, later)
    assert w.w_earlier == float(w_earlier)


def test_mid_month_is_day_15_00_utc_in_every_calendar():
    for c in ALL:
        assert cal.mid_month_time(2001, 2, c) == cal.ModelTime(c, 2001, 2, 15, 0, 0, 0)


@pytest.mark.parametrize("calendar", ALL)
def test_weights_sum_to_one_and_are_continuous_across_mid_month(calendar):
    f = {m: F(m * m % 7, 3) for m in range(1, 13)}  # any monthly values

    def value(t):
        m1, w1, m2, w2 = cal.exact_interpolation_weights(t)
        assert w1 + w2 == 1 and 0 < w1 <= 1
        return w1 * f[m1[1]] + w2 * f[m2[1]]

    for month in range(1, 13):
        anchor = cal.mid_month_time(2003, month, calendar)
        before = anchor.shifted(-1)
        m1, w1, m2, _ = cal.exact_interpolation_weights(before)
        length = cal.days_in_month(*m1, calendar) * cal.SECONDS_PER_DAY
        assert m2 == (2003, month) and w1 == F(1, length)  # one second to go
        assert value(anchor) == f[month]
        assert abs(value(before) - value(anchor)) <= F(7, 3) / length
        assert abs(value(anchor.shifted(1)) - value(anchor)) <= F(7, 3) / length


def test_equal_to_daily_interpolation_weights_on_the_gregorian_calendar():
    t = datetime(2015, 1, 1, tzinfo=UTC)
    while t < datetime(2017, 1, 1, tzinfo=UTC):
        old = cal.daily_interpolation_weights(t)
        for c in ("standard", "proleptic_gregorian"):
            tt = (c, t.year, t.month, t.day, t.hour)
            new = cal.interpolation_weights(tt)
            assert (new.earlier, new.later) == (old.earlier, old.later)
            assert new.w_earlier == pytest.approx(old.w_earlier, abs=1e-15)
        assert cal.interpolation_weights(t) == old  # a datetime is proleptic Gregorian
        t += timedelta(hours=7)


# --- the coupling schedule -------------------------------------------------------------------


def _anchor_offset_s(year: int, month: int, calendar: str) -> int:
    """Seconds from 1 Jan 00 UTC of `year` to day 15 of `month` (by month lengths)."""
    days = sum(cal.days_in_month(year, k, calendar) for k in range(1, month)) + 14
    return days * cal.SECONDS_PER_DAY


def _year_run(calendar: str, dt: int, direction: str, year: int = 2001):
    sched = cal.CouplingSchedule(calendar, dt, direction)
    a, b = (calendar, year, 1, 1), (calendar, year + 1, 1, 1)
    start, end = (a, b) if direction == "forward" else (b, a)
    return list(sched.run(start, end=end))


@pytest.mark.parametrize("calendar", HOST)
@pytest.mark.parametrize("dt", [3600, 86_400, 10_800])
def test_year_forward(calendar, dt):
    steps = _year_run(calendar, dt, "forward")
    year_s = cal.days_in_year(2001, calendar) * cal.SECONDS_PER_DAY
    assert len(steps) == year_s // dt
    lai = [e for e in steps if e.new_lai]
    assert [e.lai_months for e in lai] == [((2001, m + 1),) for m in range(1, 12)] + [((2002, 1),)]
    for e, month in zip(lai, range(1, 13), strict=True):
        # The step that lands on day 15 00 UTC of `month` asks for month + 1.
        assert e.end == cal.mid_month_time(2001, month, calendar)
        assert e.index == _anchor_offset_s(2001, month, calendar) // dt - 1
        assert e.weights.earlier == (2001, month) and e.weights.w_earlier == 1.0
        assert e.lai_month == e.lai_months[0]
    lulc = [e for e in steps if e.new_lulc]
    assert len(lulc) == 1 and lulc[0] is steps[-1] and lulc[0].lulc_year == 2002
    assert lulc[0].end == cal.ModelTime(calendar, 2002, 1, 1)


@pytest.mark.parametrize("calendar", HOST)
@pytest.mark.parametrize("dt", [3600, 86_400, 10_800])
def test_year_backward(calendar, dt):
    steps = _year_run(calendar, dt, "backward")
    year_s = cal.days_in_year(2001, calendar) * cal.SECONDS_PER_DAY
    assert len(steps) == year_s // dt
    lai = [e for e in steps if e.new_lai]
    # Going back, leaving day 15 00 UTC of `month` asks for month - 1.
    months = list(range(12, 0, -1))
    assert [e.lai_months for e in lai] == [((2001, m - 1),) for m in months[:-1]] + [((2000, 12),)]
    for e, month in zip(lai, months, strict=True):
        assert e.start == cal.mid_month_time(2001, month, calendar)
        assert e.index == (year_s - _anchor_offset_s(2001, month, calendar)) // dt
        assert e.weights.later == (2001, month)
    lulc = [e for e in steps if e.new_lulc]
    # The first step leaves 1 January 2002 00 UTC for 2001.
    assert len(lulc) == 1 and lulc[0] is steps[0] and lulc[0].lulc_year == 2001


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_year_at_900_s(direction):
    steps = _year_run("noleap", 900, direction)
    assert len(steps) == 365 * 96
    assert sum(e.new_lai for e in steps) == 12 and sum(e.new_lulc for e in steps) == 1


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_step_not_dividing_the_day_still_crosses_each_anchor_once(direction):
    dt = 7 * 3600 + 13  # lands on no anchor
    steps = _year_run("standard", dt, direction, year=2004)
    lai = [e for e in steps if e.new_lai]
    assert len(lai) == 12
    sign = 1 if direction == "forward" else -1
    for e in lai:
        # The crossed anchor lies in (start, end] forward, [end, start) back.
        m = e.lai_months[0]
        crossed = cal.add_months(*m, -sign)
        anchor = cal.mid_month_time(*crossed, "standard").seconds
        if sign > 0:
            assert e.start.seconds < anchor <= e.end.seconds
        else:
            assert e.end.seconds < anchor <= e.start.seconds


def test_step_method_and_initial_needs():
    sched = cal.CouplingSchedule("360_day", 3600)
    assert sched.initial_needs(("360_day", 2001, 3, 1)) == (((2001, 2), (2001, 3)), 2001)
    e = sched.step(("360_day", 2001, 3, 14, 23))
    assert e.end == cal.ModelTime("360_day", 2001, 3, 15) and e.lai_months == ((2001, 4),)
    assert not e.new_lulc
    e = sched.step(("360_day", 2001, 3, 15))
    assert not e.new_lai and e.weights.w_earlier == pytest.approx(1 - 1 / 720)
    back = cal.CouplingSchedule("360_day", 86_400, "backward")
    e = back.step(("360_day", 2001, 1, 15))
    assert e.end == cal.ModelTime("360_day", 2001, 1, 14) and e.lai_months == ((2000, 12),)
    e = back.step(("360_day", 2001, 1, 1))
    assert e.lulc_year == 2000 and e.end == cal.ModelTime("360_day", 2000, 12, 30)
    with pytest.raises(ValueError, match="not on the 360_day calendar"):
        sched.step(("noleap", 2001, 3, 1))


def test_run_by_step_count_matches_step():
    sched = cal.CouplingSchedule("all_leap", 86_400)
    run = list(sched.run(("all_leap", 2001, 2, 10), n_steps=30))
    assert len(run) == 30
    t = cal.ModelTime("all_leap", 2001, 2, 10)
    for i, e in enumerate(run):
        assert e == sched.step(t, index=i)
        t = e.end
    assert [e.index for e in run if e.new_lai] == [4]  # 10 Feb + 5 days = 15 Feb


def test_step_longer_than_a_month_asks_for_both_new_months():
    sched = cal.CouplingSchedule("360_day", 45 * 86_400)
    e = sched.step(("360_day", 2001, 1, 1))  # bracket (Dec, Jan) -> (Feb, Mar)
    assert e.lai_months == ((2001, 2), (2001, 3))


@pytest.mark.parametrize("dt", [0, -3600, 0.0, True, 0.5, "3600", None])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match="dt_seconds"):
        cal.CouplingSchedule("noleap", dt)


def test_bad_direction_and_run_arguments():
    with pytest.raises(ValueError, match="direction"):
        cal.CouplingSchedule("noleap", 3600, "sideways")
    sched = cal.CouplingSchedule("noleap", 3600, "backward")
    with pytest.raises(ValueError, match="exactly one"):
        list(sched.run(("noleap", 2001, 1, 1)))
    with pytest.raises(ValueError, match="cannot reach"):
        list(sched.run(("noleap", 2001, 1, 1), end=("noleap", 2002, 1, 1)))
    assert cal.CouplingSchedule("noleap", 3600.0).dt_seconds == 3600
