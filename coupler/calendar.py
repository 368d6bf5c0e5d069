"""Month arithmetic and the mid-month interpolation used by land models.

The emulator works in whole months: a forward run steps month + 1, a backward
(hindcast) run month - 1. Land models that read monthly LAI (ECLand, CTSM
satellite phenology) interpolate linearly between mid-month values anchored on
day 15, 00 UTC (REFERENCES.md); `daily_interpolation_weights` gives those
weights so that a coupler can feed a daily or sub-daily model from the
emulator's monthly fields.

The second half generalises this to a host model's own CF calendar (standard,
proleptic_gregorian, julian, noleap, all_leap, 360_day): month and year
lengths, `interpolation_weights` at any model time, and `CouplingSchedule`,
which says at which time steps a new monthly LAI or yearly LU/LC field is
needed, forward or backward in time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

FORWARD, BACKWARD = "forward", "backward"
DIRECTIONS = (FORWARD, BACKWARD)

YearMonth = tuple[int, int]

_MONTH_RE = re.compile(r"^\s*(-?\d{1,4})-(\d{1,2})\s*$")


def check_direction(direction: str) -> int:
    """+1 for "forward", -1 for "backward"; a ValueError naming the value otherwise."""
    if direction == FORWARD:
        return 1
    if direction == BACKWARD:
        return -1
    raise ValueError(f"direction must be one of {DIRECTIONS}, found {direction!r}")


def parse_month(text: str, what: str = "month") -> YearMonth:
    """Parse "YYYY-MM" into (year, month); `what` names the value in errors."""
    if not isinstance(text, str):
        raise ValueError(f'{what}: expected a string "YYYY-MM", found {text!r}')
    m = _MONTH_RE.match(text)
    if not m:
        raise ValueError(f'{what}: expected "YYYY-MM" (e.g. "2015-01"), found {text!r}')
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"{what}: month must be 01..12, found {text!r}")
    return year, month


def format_month(year: int, month: int) -> str:
    """(2015, 1) -> "2015-01"."""
    return f"{year:04d}-{month:02d}"


def add_months(year: int, month: int, n: int) -> YearMonth:
    """The month `n` months after (year, month); n may be negative."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, found {month}")
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def next_month(year: int, month: int, direction: str = FORWARD) -> YearMonth:
    """The month a step in `direction` produces from (year, month)."""
    return add_months(year, month, check_direction(direction))


def previous_month(year: int, month: int, direction: str = FORWARD) -> YearMonth:
    """The month before (year, month) in `direction` (the prior of a step producing it)."""
    return add_months(year, month, -check_direction(direction))


def month_range(start: YearMonth, steps: int, direction: str = FORWARD) -> list[YearMonth]:
    """The `steps` months produced by a run whose first produced month is `start`,
    in step order (ascending forward, descending backward)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, found {steps}")
    d = check_direction(direction)
    return [add_months(*start, d * i) for i in range(steps)]


def months_between(a: YearMonth, b: YearMonth) -> int:
    """Number of months from a to b (negative when b is before a)."""
    return (b[0] * 12 + b[1]) - (a[0] * 12 + a[1])


def mid_month(year: int, month: int) -> datetime:
    """The anchor of a monthly mean value: day 15, 00 UTC (ECLand convention)."""
    return datetime(year, month, 15, tzinfo=UTC)


def first_of_month(year: int, month: int) -> date:
    return date(year, month, 1)


@dataclass(frozen=True)
class InterpolationWeights:
    """Linear interpolation between two mid-month values:
    value(t) = w_earlier * value(earlier) + w_later * value(later)."""

    earlier: YearMonth
    later: YearMonth
    w_earlier: float

    @property
    def w_later(self) -> float:
        return 1.0 - self.w_earlier


def _as_utc(t: date | datetime) -> datetime:
    if isinstance(t, datetime):
        # Naive datetimes are taken as UTC, the land model's clock.
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    if isinstance(t, date):
        return datetime(t.year, t.month, t.day, tzinfo=UTC)
    raise TypeError(f"expected a date or datetime, found {type(t).__name__}")


def daily_interpolation_weights(t: date | datetime) -> InterpolationWeights:
    """Weights of the two mid-month values bracketing `t` (ECLand/CTSM):

        w1 = (t2 - t) / (t2 - t1),  LAI(t) = w1 LAI(m1) + (1 - w1) LAI(m2)

    with t1 <= t < t2 the day-15 00 UTC anchors of months m1 and m2. A date is
    taken at 00 UTC; exactly on an anchor the weight of that month is 1.
    """
    tu = _as_utc(t)
    here = (tu.year, tu.month)
    if tu >= mid_month(*here):
        m1, m2 = here, add_months(*here, 1)
    else:
        m1, m2 = add_months(*here, -1), here
    t1, t2 = mid_month(*m1), mid_month(*m2)
    w1 = (t2 - tu).total_seconds() / (t2 - t1).total_seconds()
    return InterpolationWeights(m1, m2, w1)


# =============================================================================
# CF calendars and the coupling cadence of a host model
# =============================================================================
#
# A host model (ECLand inside an IFS-like model, a climate model on a 360-day
# year) steps in seconds on its own calendar and needs two things from landbc:
# the weights of the two monthly LAI fields to use at the current time, and to
# know at which steps a new monthly LAI or yearly LU/LC field must be produced.
#
# The arithmetic below is exact integer arithmetic (day numbers and seconds),
# not cftime: the answers are needed every time step, must be bit-identical
# across machines, and the only calendar facts required are month lengths and
# one day-number formula per calendar. cftime's datetimes are accepted as input
# (duck-typed on their `calendar` attribute); the tests check the day numbers
# against cftime.
#
# Years are astronomical (year 0 = 1 BC) in every calendar; cftime's real-world
# calendars have no year 0 by default, so the two differ only before year 1.

Calendar = str

STANDARD = "standard"
PROLEPTIC_GREGORIAN = "proleptic_gregorian"
JULIAN = "julian"
NOLEAP = "noleap"
ALL_LEAP = "all_leap"
DAY360 = "360_day"

#: Every accepted spelling (lower case) -> the CF name used here.
CALENDAR_ALIASES: dict[str, Calendar] = {
    STANDARD: STANDARD,
    "gregorian": STANDARD,  # CF: deprecated alias of "standard"
    PROLEPTIC_GREGORIAN: PROLEPTIC_GREGORIAN,
    JULIAN: JULIAN,
    NOLEAP: NOLEAP,
    "365_day": NOLEAP,
    ALL_LEAP: ALL_LEAP,
    "366_day": ALL_LEAP,
    DAY360: DAY360,
}
#: The CF names, one per calendar.
CF_CALENDARS: tuple[Calendar, ...] = (
    STANDARD,
    PROLEPTIC_GREGORIAN,
    JULIAN,
    NOLEAP,
    ALL_LEAP,
    DAY360,
)

SECONDS_PER_DAY = 86_400
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_CUM_365 = tuple(sum(_MONTH_DAYS[:i]) for i in range(13))
_CUM_366 = tuple(c + (1 if i >= 2 else 0) for i, c in enumerate(_CUM_365))

# The Gregorian reform in CF's "standard" calendar: 1582-10-04 (Julian) is
# followed by 1582-10-15 (Gregorian); Julian day numbers 2299160 and 2299161.
_REFORM = (1582, 10, 15)
_REFORM_JDN = 2_299_161


def canonical_calendar(name: str) -> Calendar:
    """The CF name of calendar `name` ("gregorian" -> "standard", "365_day" ->
    "noleap", "366_day" -> "all_leap"); case and surrounding blanks are ignored,
    as in CF attributes. A ValueError naming the calendar otherwise, because a
    misspelt calendar silently read as "standard" shifts every date."""
    if not isinstance(name, str):
        raise ValueError(f"calendar must be a string, found {name!r}")
    key = name.strip().lower()
    try:
        return CALENDAR_ALIASES[key]
    except KeyError:
        raise ValueError(
            f"unknown calendar {name!r}; expected one of {sorted(CALENDAR_ALIASES)}"
        ) from None


def is_leap_year(year: int, calendar: str = STANDARD) -> bool:
    """Whether `year` has a 29 February in `calendar` (never in 360_day, whose
    February has 30 days; 1582 in "standard" follows the Julian rule)."""
    cal = canonical_calendar(calendar)
    if cal == NOLEAP or cal == DAY360:
        return False
    if cal == ALL_LEAP:
        return True
    if cal == JULIAN or (cal == STANDARD and year < _REFORM[0]):
        return year % 4 == 0
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int, calendar: str = STANDARD) -> int:
    """Days of (year, month) in `calendar`. October 1582 has 21 days in the
    "standard" calendar (4 October is followed by 15 October) and 31 in
    "proleptic_gregorian"."""
    cal = canonical_calendar(calendar)
    _check_month(month)
    if cal == DAY360:
        return 30
    if cal == STANDARD and (year, month) == _REFORM[:2]:
        return 21
    if month == 2:
        return 29 if is_leap_year(year, cal) else 28
    return _MONTH_DAYS[month - 1]


def days_in_year(year: int, calendar: str = STANDARD) -> int:
    """Days of `year` in `calendar` (355 for 1582 in "standard")."""
    return sum(days_in_month(year, m, calendar) for m in range(1, 13))


def _check_month(month: int) -> None:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, found {month}")


def _jdn_gregorian(y: int, m: int, d: int) -> int:
    # Julian day number of a proleptic Gregorian date (valid for y > -4800).
    a = (14 - m) // 12
    yy, mm = y + 4800 - a, m + 12 * a - 3
    return d + (153 * mm + 2) // 5 + 365 * yy + yy // 4 - yy // 100 + yy // 400 - 32045


def _jdn_julian(y: int, m: int, d: int) -> int:
    a = (14 - m) // 12
    yy, mm = y + 4800 - a, m + 12 * a - 3
    return d + (153 * mm + 2) // 5 + 365 * yy + yy // 4 - 32083


def _from_jdn(jdn: int, gregorian: bool) -> tuple[int, int, int]:
    # Inverse of the two functions above (Richards' algorithm).
    if gregorian:
        a = jdn + 32044
        b = (4 * a + 3) // 146097
        c = a - 146097 * b // 4
    else:
        b, c = 0, jdn + 32082
    d = (4 * c + 3) // 1461
    e = c - 1461 * d // 4
    m = (5 * e + 2) // 153
    day = e - (153 * m + 2) // 5 + 1
    month = m + 3 - 12 * (m // 10)
    year = 100 * b + d - 4800 + m // 10
    return year, month, day


def day_number(year: int, month: int, day: int, calendar: str = STANDARD) -> int:
    """Days from a calendar's fixed origin to (year, month, day): consecutive
    days have consecutive numbers, so differences are exact elapsed days. For
    the real-world calendars it is the Julian day number (noon-based JDN of
    that date); for the idealised ones, days since year 0, 1 January."""
    cal = canonical_calendar(calendar)
    _check_month(month)
    n = days_in_month(year, month, cal)
    if cal == STANDARD and (year, month) == _REFORM[:2]:
        if 5 <= day <= 14:
            raise ValueError(
                f"{year:04d}-{month:02d}-{day:02d} does not exist in the standard "
                "calendar (4 October 1582 is followed by 15 October)"
            )
        if not 1 <= day <= 31:
            raise ValueError(f"day must be 1..31 in {year}-{month:02d}, found {day}")
    elif not 1 <= day <= n:
        raise ValueError(f"day must be 1..{n} in {year}-{month:02d} ({cal}), found {day}")
    if cal == DAY360:
        return year * 360 + (month - 1) * 30 + day - 1
    if cal == NOLEAP:
        return year * 365 + _CUM_365[month - 1] + day - 1
    if cal == ALL_LEAP:
        return year * 366 + _CUM_366[month - 1] + day - 1
    if cal == JULIAN or (cal == STANDARD and (year, month, day) < _REFORM):
        return _jdn_julian(year, month, day)
    return _jdn_gregorian(year, month, day)


def date_from_day_number(n: int, calendar: str = STANDARD) -> tuple[int, int, int]:
    """(year, month, day) of day number `n` (inverse of `day_number`)."""
    cal = canonical_calendar(calendar)
    if cal in (DAY360, NOLEAP, ALL_LEAP):
        length = {DAY360: 360, NOLEAP: 365, ALL_LEAP: 366}[cal]
        year, doy = divmod(n, length)
        if cal == DAY360:
            return year, doy // 30 + 1, doy % 30 + 1
        cum = _CUM_365 if cal == NOLEAP else _CUM_366
        month = next(m for m in range(12, 0, -1) if cum[m - 1] <= doy)
        return year, month, doy - cum[month - 1] + 1
    gregorian = cal == PROLEPTIC_GREGORIAN or (cal == STANDARD and n >= _REFORM_JDN)
    return _from_jdn(n, gregorian)


@dataclass(frozen=True, order=True)
class ModelTime:
    """A model time in whole seconds on a CF calendar, in UTC (the land
    model's clock). Validated on construction: the day must exist in the
    calendar (no 30 February in "standard", no 10 October 1582 either).

    Ordering compares fields, so it is chronological only between times of
    one calendar (the schedule never mixes calendars)."""

    calendar: Calendar
    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "calendar", canonical_calendar(self.calendar))
        day_number(self.year, self.month, self.day, self.calendar)  # validates the date
        for what, value, top in (("hour", self.hour, 23), ("minute", self.minute, 59),
                                 ("second", self.second, 59)):  # fmt: skip
            if not 0 <= value <= top:
                raise ValueError(f"{what} must be 0..{top}, found {value}")

    @property
    def seconds(self) -> int:
        """Seconds since the calendar's day-number origin (exact)."""
        days = day_number(self.year, self.month, self.day, self.calendar)
        return days * SECONDS_PER_DAY + self.hour * 3600 + self.minute * 60 + self.second

    @classmethod
    def from_seconds(cls, seconds: int, calendar: str) -> ModelTime:
        """Inverse of `seconds`."""
        days, s = divmod(seconds, SECONDS_PER_DAY)
        y, m, d = date_from_day_number(days, calendar)
        return cls(calendar, y, m, d, s // 3600, s % 3600 // 60, s % 60)

    def shifted(self, seconds: int) -> ModelTime:
        """This time moved by `seconds` (negative: back in time)."""
        return ModelTime.from_seconds(self.seconds + seconds, self.calendar)

    def __str__(self) -> str:
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d} "
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d} ({self.calendar})"
        )


#: What `model_time` accepts: a ModelTime, a cftime datetime, a tuple
#: (calendar, y, m, d[, h, mi, s]) or a Python date/datetime.
TimeLike = Any


def model_time(t: TimeLike, calendar: str | None = None) -> ModelTime:
    """A ModelTime from what a host has: a ModelTime; a cftime datetime (its
    own calendar); a tuple (calendar, y, m, d[, h, mi, s]); or a Python
    date/datetime (proleptic Gregorian, aware ones converted to UTC, naive
    ones taken as UTC). `calendar`, when given, must agree with the time's."""
    if isinstance(t, ModelTime):
        out = t
    elif isinstance(t, tuple):
        if len(t) < 4 or len(t) > 7:
            raise ValueError(f"expected (calendar, y, m, d[, h, mi, s]), found {t!r}")
        cal, *fields = t
        out = ModelTime(cal, *(_as_int(v, "time field") for v in fields))
    elif hasattr(t, "calendar") and hasattr(t, "year") and not isinstance(t, date):
        # cftime.datetime (any subclass); "" means calendar-less, not usable.
        if not t.calendar:
            raise ValueError(f"time {t!r} has no calendar")
        if getattr(t, "microsecond", 0):
            raise ValueError(f"model times are whole seconds, found {t!r}")
        out = ModelTime(t.calendar, t.year, t.month, t.day, t.hour, t.minute, t.second)
    elif isinstance(t, (datetime, date)):
        tu = _as_utc(t)
        if tu.microsecond:
            raise ValueError(f"model times are whole seconds, found {t!r}")
        out = ModelTime(PROLEPTIC_GREGORIAN, tu.year, tu.month, tu.day, tu.hour, tu.minute,
                        tu.second)  # fmt: skip
    else:
        raise TypeError(f"expected a model time, found {type(t).__name__}: {t!r}")
    if calendar is not None and canonical_calendar(calendar) != out.calendar:
        raise ValueError(f"time {out} is not on the {canonical_calendar(calendar)} calendar")
    return out


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{what} must be a whole number, found {value!r}")
    return int(value)


# --- mid-month interpolation on any calendar -------------------------------------

#: Day of month of the mid-month anchor, 00 UTC, in every calendar (ECLand).
MID_MONTH_DAY = 15


def mid_month_time(year: int, month: int, calendar: str = STANDARD) -> ModelTime:
    """The anchor of a monthly LAI value: day 15, 00 UTC, in every calendar.

    This is ECLand's convention, not the centre of the month: in a 31-day
    month the centre is day 16 12 UTC, in 360_day day 16 00 UTC. Anchoring on
    day 15 keeps landbc's weights equal to the host's own."""
    return ModelTime(calendar, year, month, MID_MONTH_DAY)


def _mid_seconds(ym: YearMonth, calendar: str) -> int:
    return day_number(ym[0], ym[1], MID_MONTH_DAY, calendar) * SECONDS_PER_DAY


_Bracket = tuple[YearMonth, YearMonth, int, int]


def _bracket(t: ModelTime) -> _Bracket:
    """Months (m1, m2) and anchors t1 <= t < t2 bracketing t (seconds)."""
    here = (t.year, t.month)
    s = t.seconds
    t_here = _mid_seconds(here, t.calendar)
    if s >= t_here:
        m1, m2 = here, add_months(*here, 1)
        return m1, m2, t_here, _mid_seconds(m2, t.calendar)
    m1 = add_months(*here, -1)
    return m1, here, _mid_seconds(m1, t.calendar), t_here


def exact_interpolation_weights(
    t: TimeLike, calendar: str | None = None
) -> tuple[YearMonth, Fraction, YearMonth, Fraction]:
    """(month_a, w_a, month_b, w_b) as exact fractions, with month_a the
    earlier anchor: w_a = (t2 - t) / (t2 - t1), w_b = 1 - w_a, where
    t1 <= t < t2 are the day-15 00 UTC anchors of month_a and month_b in the
    time's calendar. Exactly on an anchor, that month's weight is 1."""
    mt = model_time(t, calendar)
    m1, m2, t1, t2 = _bracket(mt)
    w1 = Fraction(t2 - mt.seconds, t2 - t1)
    return m1, w1, m2, 1 - w1


def interpolation_weights(t: TimeLike, calendar: str | None = None) -> InterpolationWeights:
    """ECLand's linear interpolation of monthly LAI between mid-month (day 15,
    00 UTC) values, on any CF calendar, for a host to call every time step:
    LAI(t) = w.w_earlier * LAI(w.earlier) + w.w_later * LAI(w.later).
    Equals `daily_interpolation_weights` on the Gregorian calendar."""
    m1, w1, m2, _ = exact_interpolation_weights(t, calendar)
    return InterpolationWeights(m1, m2, float(w1))


# --- the coupling schedule ---------------------------------------------------------


@dataclass(frozen=True)
class StepEvents:
    """What one host step needs from landbc, for the step that goes from
    `start` to `end` (end = start +- dt): the fields to evaluate LAI at `end`.

    lai_months: emulator months whose LAI must be produced now, in the order
    of the run: the months of the bracket at `end` that were not in the
    bracket at `start` (one month when a mid-month was crossed; none
    otherwise). Forward this is the later month, backward the earlier one.
    lulc_year: the year whose LU/LC is needed now, when 1 January 00 UTC was
    crossed (forward: arriving in the new year at 00 UTC exactly; backward:
    leaving 1 January 00 UTC for the previous year), else None.
    weights: the interpolation weights at `end`."""

    index: int
    start: ModelTime
    end: ModelTime
    lai_months: tuple[YearMonth, ...]
    lulc_year: int | None
    weights: InterpolationWeights

    @property
    def new_lai(self) -> bool:
        return bool(self.lai_months)

    @property
    def new_lulc(self) -> bool:
        return self.lulc_year is not None

    @property
    def lai_month(self) -> YearMonth | None:
        """The (last) emulator month to ask for, or None."""
        return self.lai_months[-1] if self.lai_months else None


class CouplingSchedule:
    """When a host stepping by `dt_seconds` on `calendar` needs new fields.

    The LAI bracket of a time t is the pair of months whose day-15 anchors
    satisfy t1 <= t < t2 (as in the interpolation). A step needs a new monthly
    LAI when its bracket changes, i.e. when it crosses a mid-month; the month
    to ask for is the bracket's new month (forward: the later one, so the
    emulator runs month + 1; backward: the earlier one, month - 1). A step
    needs a new yearly LU/LC when the calendar year changes (crossing
    1 January 00 UTC). Integer seconds throughout, so a year of 900 s steps
    crosses each anchor exactly once with no rounding drift.
    """

    def __init__(self, calendar: str, dt_seconds: int | float, direction: str = FORWARD):
        self.calendar: Calendar = canonical_calendar(calendar)
        if isinstance(dt_seconds, bool) or not isinstance(dt_seconds, (int, float)):
            raise ValueError(f"dt_seconds must be a number of seconds, found {dt_seconds!r}")
        if not dt_seconds > 0:
            raise ValueError(f"dt_seconds must be > 0, found {dt_seconds!r}")
        self.dt_seconds: int = _as_int(dt_seconds, "dt_seconds")
        self.direction: str = direction
        self._sign = check_direction(direction)

    def __repr__(self) -> str:
        return (
            f"CouplingSchedule({self.calendar!r}, dt_seconds={self.dt_seconds}, "
            f"direction={self.direction!r})"
        )

    def initial_needs(self, t: TimeLike) -> tuple[tuple[YearMonth, YearMonth], int]:
        """The fields a run starting at `t` needs before its first step: both
        months of the LAI bracket at t and the LU/LC year of t."""
        mt = model_time(t, self.calendar)
        m1, m2, _, _ = _bracket(mt)
        return (m1, m2), mt.year

    def step(self, t: TimeLike, index: int = 0) -> StepEvents:
        """The events of the step that starts at `t` (ends at t +- dt)."""
        start = model_time(t, self.calendar)
        end = start.shifted(self._sign * self.dt_seconds)
        return self._events(index, start, end, _bracket(start), _bracket(end))

    def _events(
        self, index: int, start: ModelTime, end: ModelTime, before: _Bracket, after: _Bracket
    ) -> StepEvents:
        (a1, a2, _, _), (b1, b2, t1, t2) = before, after
        order = (b1, b2) if self._sign > 0 else (b2, b1)
        # A step longer than a month can skip brackets; only the new bracket's
        # months matter for LAI at `end`.
        lai = tuple(m for m in order if m not in (a1, a2))
        lulc = end.year if end.year != start.year else None
        w = InterpolationWeights(b1, b2, float(Fraction(t2 - end.seconds, t2 - t1)))
        return StepEvents(index, start, end, lai, lulc, w)

    def run(
        self, start: TimeLike, n_steps: int | None = None, end: TimeLike | None = None
    ) -> Iterator[StepEvents]:
        """The events of each step of a run from `start`: `n_steps` steps, or
        up to `end` (inclusive when a step lands on it; forward end must not be
        before start, backward not after). The start itself is not a step;
        see `initial_needs`."""
        t = model_time(start, self.calendar)
        if (n_steps is None) == (end is None):
            raise ValueError("give exactly one of n_steps and end")
        if n_steps is not None:
            if n_steps < 0:
                raise ValueError(f"n_steps must be >= 0, found {n_steps}")
            count = n_steps
        else:
            span = self._sign * (model_time(end, self.calendar).seconds - t.seconds)
            if span < 0:
                raise ValueError(f"a {self.direction} run cannot reach end {end} from start {t}")
            count = span // self.dt_seconds
        delta = self._sign * self.dt_seconds
        before = _bracket(t)
        for i in range(count):
            nxt = t.shifted(delta)
            after = _bracket(nxt)
            yield self._events(i, t, nxt, before, after)
            t, before = nxt, after
