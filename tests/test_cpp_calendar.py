"""The calendar functions of the C ABI (cpp/src/calendar.cpp, landbc.h "Calendars
and LAI interpolation") against coupler/calendar.py, bit for bit: month and year
lengths, the LAI weights at every day of many years in every calendar, whole
CouplingSchedule runs forward and backward, and the errors.

The library is loaded with ctypes from LANDBC_LIB (default build/cpp/liblandbc.so,
which `make test` builds); without it these tests skip, or fail under
LANDBC_REQUIRE_CPP=1 as `make test` sets."""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_char_p, c_double, c_int, c_int64
from pathlib import Path

import pytest
from cabi import load_lib

from landbc.coupler.calendar import (
    CALENDAR_ALIASES,
    CF_CALENDARS,
    CouplingSchedule,
    ModelTime,
    days_in_month,
    days_in_year,
    interpolation_weights,
)

REPO = Path(__file__).resolve().parents[1]
LANDBC_OK, LANDBC_ERR_ARGUMENT = 0, 1

YEARS = (-4801, -1, 0, 1, 1581, 1582, 1583, 1599, 1600, 1601, 1899, 1900, 1901, 1999, 2000,
         2001, 2099, 2100, 2101)  # fmt: skip


class Events(ctypes.Structure):
    """landbc_coupling_events (landbc.h): 80 bytes, no padding."""

    _fields_ = [
        ("seconds_of_day", c_int64),
        ("w_a", c_double),
        ("w_b", c_double),
        ("year", c_int),
        ("month", c_int),
        ("day", c_int),
        ("n_lai", c_int),
        ("lai_year", c_int * 2),
        ("lai_month", c_int * 2),
        ("new_lulc", c_int),
        ("lulc_year", c_int),
        ("year_a", c_int),
        ("month_a", c_int),
        ("year_b", c_int),
        ("month_b", c_int),
    ]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    lib = load_lib()
    lib.landbc_calendar_days_in_month.argtypes = [c_char_p, c_int, c_int, POINTER(c_int)]
    lib.landbc_calendar_days_in_year.argtypes = [c_char_p, c_int, POINTER(c_int)]
    out = [POINTER(c_int), POINTER(c_int), POINTER(c_double)]
    lib.landbc_lai_weights.argtypes = [c_char_p, c_int, c_int, c_int, c_int64, *out, *out]
    lib.landbc_coupling_step.argtypes = [c_char_p, c_int64, c_char_p, c_int, c_int, c_int,
                                         c_int64, POINTER(Events)]  # fmt: skip
    for f in ("landbc_calendar_days_in_month", "landbc_calendar_days_in_year",
              "landbc_lai_weights", "landbc_coupling_step"):  # fmt: skip
        getattr(lib, f).restype = c_int
    return lib


def c_weights(lib, cal: str, y: int, m: int, d: int, sod: int):
    ya, ma, yb, mb = c_int(), c_int(), c_int(), c_int()
    wa, wb = c_double(), c_double()
    rc = lib.landbc_lai_weights(cal.encode(), y, m, d, sod, byref(ya), byref(ma), byref(wa),
                                byref(yb), byref(mb), byref(wb))  # fmt: skip
    assert rc == LANDBC_OK, lib.landbc_last_error()
    return (ya.value, ma.value), wa.value.hex(), (yb.value, mb.value), wb.value.hex()


def py_weights(cal: str, y: int, m: int, d: int, sod: int):
    w = interpolation_weights((cal, y, m, d, sod // 3600, sod % 3600 // 60, sod % 60))
    return w.earlier, w.w_earlier.hex(), w.later, w.w_later.hex()


def c_step(lib, cal: str, dt: int, direction: str, t: tuple[int, int, int, int]) -> Events:
    ev = Events()
    rc = lib.landbc_coupling_step(cal.encode(), dt, direction.encode(), *t, byref(ev))
    assert rc == LANDBC_OK, lib.landbc_last_error()
    return ev


def sod_of(t: ModelTime) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def fail_message(lib, rc: int) -> str:
    assert rc == LANDBC_ERR_ARGUMENT
    msg = lib.landbc_last_error().decode()
    assert msg, (
        "landbc_last_error() is empty after a calendar error: c_api.cpp must define "
        "landbc::set_last_error (cpp/src/last_error.hpp)"
    )
    return msg


# --- calendar facts ----------------------------------------------------------------------


def test_struct_layout():
    assert ctypes.sizeof(Events) == 80
    assert (Events.w_a.offset, Events.year.offset, Events.n_lai.offset, Events.new_lulc.offset,
            Events.month_b.offset) == (8, 24, 36, 56, 76)  # fmt: skip


@pytest.mark.parametrize("name", [*sorted(CALENDAR_ALIASES), "  NoLeap\t", "GREGORIAN", "360_DAY"])
def test_days_in_month_and_year(lib, name):
    n = c_int()
    for y in YEARS:
        for m in range(1, 13):
            assert lib.landbc_calendar_days_in_month(name.encode(), y, m, byref(n)) == LANDBC_OK
            assert n.value == days_in_month(y, m, name), (name, y, m)
        assert lib.landbc_calendar_days_in_year(name.encode(), y, byref(n)) == LANDBC_OK
        assert n.value == days_in_year(y, name), (name, y)


def test_hand_checked_facts(lib):
    n = c_int()
    for cal, y, m, want in [("noleap", 2000, 2, 28), ("all_leap", 1900, 2, 29),
                            ("360_day", 2001, 2, 30), ("standard", 1582, 10, 21),
                            ("proleptic_gregorian", 1582, 10, 31), ("standard", 1500, 2, 29),
                            ("proleptic_gregorian", 1500, 2, 28), ("julian", 1900, 2, 29),
                            ("gregorian", 1900, 2, 28), ("standard", 2000, 2, 29)]:  # fmt: skip
        assert lib.landbc_calendar_days_in_month(cal.encode(), y, m, byref(n)) == LANDBC_OK
        assert n.value == want, (cal, y, m)
    assert lib.landbc_calendar_days_in_year(b"standard", 1582, byref(n)) == LANDBC_OK
    assert n.value == 355


# --- LAI weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("cal", CF_CALENDARS)
def test_lai_weights_equal_python_bit_for_bit(lib, cal):
    """Every day of every month of years around 1582/1600/1900/2000/2100 (and
    negative years, for floor division), at 00:00:00 and 23:59:59 every day and
    at more seconds around the day-15 anchor and the month's ends."""
    count = 0
    for y in YEARS:
        for m in range(1, 13):
            last = days_in_month(y, m, cal)
            days = range(1, 32) if (cal, y, m) == ("standard", 1582, 10) else range(1, last + 1)
            for d in days:
                if (cal, y, m) == ("standard", 1582, 10) and 5 <= d <= 14:
                    continue
                secs = (0, 86399)
                if d in (1, 14, 15, 16, last):
                    secs = (0, 1, 43200, 54321, 86399)
                for s in secs:
                    assert c_weights(lib, cal, y, m, d, s) == py_weights(cal, y, m, d, s), (
                        cal, y, m, d, s)  # fmt: skip
                    count += 1
    assert count > 7000


def test_lai_weights_hand_checked(lib):
    # On the anchor: that month alone.
    assert c_weights(lib, "noleap", 2001, 3, 15, 0) == ((2001, 3), (1.0).hex(), (2001, 4),
                                                        (0.0).hex())  # fmt: skip
    # 360_day: anchors 30 days apart; day 30 00 UTC is 15 days after 15 March.
    assert c_weights(lib, "360_day", 2001, 3, 30, 0)[1] == (0.5).hex()
    # One second before the anchor: the earlier month has weight 1 / (30 * 86400).
    (a, wa, b, _) = c_weights(lib, "360_day", 2001, 3, 14, 86399)
    assert (a, b) == ((2001, 2), (2001, 3)) and float.fromhex(wa) == 1 / (30 * 86400)
    # Across the year: 2000-12-31 lies between 15 December and 15 January.
    (a, wa, b, wb) = c_weights(lib, "standard", 2000, 12, 31, 0)
    assert (a, b) == ((2000, 12), (2001, 1))
    assert float.fromhex(wa) == 15 / 31 and float.fromhex(wb) == 1 - 15 / 31
    # The Gregorian reform: 1582-10-04 is 1 day before 1582-10-15 and 19 days after
    # 15 September; the two anchors are 20 days apart.
    (a, wa, b, _) = c_weights(lib, "standard", 1582, 10, 4, 0)
    assert (a, b) == ((1582, 9), (1582, 10)) and float.fromhex(wa) == 1 / 20


def test_lai_weights_null_outputs_are_allowed(lib):
    wa = c_double()
    assert lib.landbc_lai_weights(b"noleap", 2001, 3, 30, 0, None, None, byref(wa), None, None,
                                  None) == LANDBC_OK  # fmt: skip
    assert wa.value == 16 / 31


# --- the coupling schedule -----------------------------------------------------------------

RUNS = [
    ("noleap", 900, "forward", (2000, 1, 1, 0), 365 * 96),
    ("noleap", 900, "backward", (2001, 1, 1, 0), 365 * 96),
    ("360_day", 900, "forward", (1999, 12, 30, 85500), 360 * 96 + 5),
    ("360_day", 3600, "backward", (2001, 1, 1, 0), 360 * 24 + 3),
    ("standard", 3600, "forward", (2000, 1, 1, 0), 366 * 24 + 2),
    ("standard", 3600, "backward", (2001, 1, 1, 0), 366 * 24 + 2),
    ("standard", 3600, "forward", (1582, 1, 1, 0), 355 * 24 + 1),  # across the reform
    ("standard", 5400, "backward", (1583, 1, 1, 0), 355 * 16 + 1),
    ("proleptic_gregorian", 3600, "forward", (1899, 12, 1, 0), 400 * 24),
    ("julian", 3600, "backward", (1900, 3, 20, 0), 400 * 24),
    ("all_leap", 1800, "forward", (2099, 11, 30, 0), 100 * 48),
    ("noleap", 7 * 86400 - 1, "forward", (2000, 1, 1, 12345), 120),
    ("360_day", 40 * 86400, "forward", (2000, 1, 14, 0), 40),  # longer than a month
    ("standard", 50 * 86400 + 17, "backward", (2001, 1, 15, 0), 40),
    ("noleap", 365 * 86400, "forward", (2000, 1, 1, 0), 5),
]


@pytest.mark.parametrize("cal, dt, direction, start, n_steps", RUNS)
def test_coupling_runs_equal_python(lib, cal, dt, direction, start, n_steps):
    y, m, d, s = start
    t = (y, m, d, s)
    py = CouplingSchedule(cal, dt, direction).run((cal, y, m, d, s // 3600, s % 3600 // 60, s % 60),
                                                  n_steps=n_steps)  # fmt: skip
    n_lai = n_lulc = 0
    for ev in py:
        c = c_step(lib, cal, dt, direction, t)
        end = ev.end
        assert (c.year, c.month, c.day, c.seconds_of_day) == (end.year, end.month, end.day,
                                                              sod_of(end)), ev  # fmt: skip
        got = tuple((c.lai_year[i], c.lai_month[i]) for i in range(c.n_lai))
        assert got == ev.lai_months, ev
        assert all(c.lai_year[i] == 0 and c.lai_month[i] == 0 for i in range(c.n_lai, 2))
        assert (c.new_lulc == 1) == ev.new_lulc and c.new_lulc in (0, 1), ev
        assert c.lulc_year == end.year
        if ev.new_lulc:
            assert c.lulc_year == ev.lulc_year
        w = ev.weights
        assert ((c.year_a, c.month_a), (c.year_b, c.month_b)) == (w.earlier, w.later), ev
        assert (c.w_a.hex(), c.w_b.hex()) == (w.w_earlier.hex(), w.w_later.hex()), ev
        # the weights of a step's end are those of landbc_lai_weights at that time
        assert c_weights(lib, cal, c.year, c.month, c.day, c.seconds_of_day)[1] == c.w_a.hex()
        n_lai += c.n_lai
        n_lulc += c.new_lulc
        t = (c.year, c.month, c.day, c.seconds_of_day)
    assert n_lai > 0


def test_a_year_of_steps_asks_for_each_month_once(lib):
    """noleap, 900 s forward from 2000-01-01: 12 new months (Feb 2000 .. Jan 2001)
    on the steps that reach the previous month's day 15 00 UTC, and LU/LC of 2001 on the
    last step."""
    t, months, lulc = (2000, 1, 1, 0), [], []
    for _ in range(365 * 96):
        ev = c_step(lib, "noleap", 900, "forward", t)
        t = (ev.year, ev.month, ev.day, ev.seconds_of_day)
        if ev.n_lai:
            assert ev.n_lai == 1 and (ev.day, ev.seconds_of_day) == (15, 0)
            assert (ev.w_a, ev.w_b) == (1.0, 0.0)
            months.append((ev.lai_year[0], ev.lai_month[0]))
        if ev.new_lulc:
            lulc.append((ev.lulc_year, t))
    assert months == [(2000, m) for m in range(2, 13)] + [(2001, 1)]
    assert lulc == [(2001, (2001, 1, 1, 0))]


def test_backward_asks_for_earlier_months(lib):
    # 360_day, one day backward from 2001-01-15 00 UTC to 2001-01-14: month 2000-12 is new.
    ev = c_step(lib, "360_day", 86400, "backward", (2001, 1, 15, 0))
    assert (ev.year, ev.month, ev.day) == (2001, 1, 14)
    assert (ev.n_lai, ev.lai_year[0], ev.lai_month[0], ev.new_lulc) == (1, 2000, 12, 0)
    assert (ev.w_a, ev.w_b) == (1 / 30, 1 - 1 / 30)
    # leaving 1 January 00 UTC backward: the previous year's LU/LC
    ev = c_step(lib, "360_day", 60, "backward", (2001, 1, 1, 0))
    assert (ev.year, ev.month, ev.day, ev.seconds_of_day) == (2000, 12, 30, 86340)
    assert (ev.new_lulc, ev.lulc_year, ev.n_lai) == (1, 2000, 0)


def test_long_step_can_need_two_months(lib):
    ev = c_step(lib, "360_day", 40 * 86400, "forward", (2000, 1, 14, 0))
    assert (ev.year, ev.month, ev.day) == (2000, 2, 24)
    assert ev.n_lai == 2
    assert [(ev.lai_year[i], ev.lai_month[i]) for i in range(2)] == [(2000, 2), (2000, 3)]


def test_null_direction_is_forward(lib):
    a, b = Events(), Events()
    assert lib.landbc_coupling_step(b"noleap", 900, None, 2000, 1, 1, 0, byref(a)) == LANDBC_OK
    assert lib.landbc_coupling_step(b"noleap", 900, b"forward", 2000, 1, 1, 0, byref(b)) == 0
    assert bytes(a) == bytes(b)


# --- errors --------------------------------------------------------------------------------


def test_errors_name_argument_expected_and_found(lib):
    n = c_int(-7)
    cases = [
        (lambda: lib.landbc_calendar_days_in_month(b"gregorain", 2000, 1, byref(n)),
         ["calendar", "noleap", "gregorain"]),
        (lambda: lib.landbc_calendar_days_in_month(None, 2000, 1, byref(n)),
         ["calendar", "NULL"]),
        (lambda: lib.landbc_calendar_days_in_month(b"noleap", 2000, 13, byref(n)),
         ["month", "1..12", "13"]),
        (lambda: lib.landbc_calendar_days_in_month(b"noleap", 2000, 0, byref(n)),
         ["month", "1..12", "0"]),
        (lambda: lib.landbc_calendar_days_in_month(b"noleap", 2000, 1, None),
         ["days", "NULL"]),
        (lambda: lib.landbc_calendar_days_in_year(b"noleap", 2000001, byref(n)),
         ["year", "1000000", "2000001"]),
    ]  # fmt: skip
    for call, words in cases:
        msg = fail_message(lib, call())
        assert all(w in msg for w in words), (msg, words)
    assert n.value == -7  # outputs unchanged on failure


@pytest.mark.parametrize(
    "cal, y, m, d, s, words",
    [
        ("noleap", 2000, 2, 29, 0, ["day", "1..28", "2000-02", "noleap", "29"]),
        ("360_day", 2001, 1, 31, 0, ["day", "1..30", "360_day", "31"]),
        ("standard", 1582, 10, 10, 0, ["day", "1582-10-10", "does not exist"]),
        ("standard", 2001, 2, 29, 0, ["day", "1..28", "29"]),
        ("noleap", 2000, 1, 0, 0, ["day", "1..31", "0"]),
        ("noleap", 2000, 1, 1, -1, ["seconds_of_day", "0..86399", "-1"]),
        ("noleap", 2000, 1, 1, 86400, ["seconds_of_day", "0..86399", "86400"]),
        ("noleap", 2000, 13, 1, 0, ["month", "1..12", "13"]),
        ("365 day", 2000, 1, 1, 0, ["calendar", "365 day"]),
    ],
)
def test_invalid_times_are_refused_as_python_refuses_them(lib, cal, y, m, d, s, words):
    with pytest.raises(ValueError):
        interpolation_weights((cal, y, m, d, s // 3600 if s >= 0 else -1, 0, s % 60))
    wa = c_double(-1.0)
    ev = Events(year=-5)
    for rc in (
        lib.landbc_lai_weights(cal.encode(), y, m, d, s, None, None, byref(wa), None, None, None),
        lib.landbc_coupling_step(cal.encode(), 900, b"forward", y, m, d, s, byref(ev)),
    ):
        msg = fail_message(lib, rc)
        assert all(w in msg for w in words), (msg, words)
    assert wa.value == -1.0 and ev.year == -5


def test_coupling_step_argument_errors(lib):
    ev = Events(year=-5)
    cases = [
        (0, b"forward", ["dt_seconds", "> 0", "0"]),
        (-900, b"forward", ["dt_seconds", "> 0", "-900"]),
        (900, b"sideways", ["direction", "backward", "sideways"]),
        (900, b"Forward", ["direction", "Forward"]),
        (2**62, b"forward", ["dt_seconds", "supported years"]),
    ]
    for dt, direction, words in cases:
        rc = lib.landbc_coupling_step(b"noleap", dt, direction, 2000, 1, 1, 0, byref(ev))
        msg = fail_message(lib, rc)
        assert all(w in msg for w in words), (msg, words)
    msg = fail_message(lib, lib.landbc_coupling_step(b"noleap", 900, b"forward", 2000, 1, 1, 0,
                                                     None))  # fmt: skip
    assert "events" in msg and "NULL" in msg
    assert ev.year == -5
    with pytest.raises(ValueError):
        CouplingSchedule("noleap", 0)
    with pytest.raises(ValueError):
        CouplingSchedule("noleap", 900, "sideways")
