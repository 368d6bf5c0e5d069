"""Month arithmetic and the mid-month interpolation used by land models.

The emulator works in whole months: a forward run steps month + 1, a backward
(hindcast) run month - 1. Land models that read monthly LAI (ECLand, CTSM
satellite phenology) interpolate linearly between mid-month values anchored on
day 15, 00 UTC (REFERENCES.md); `daily_interpolation_weights` gives those
weights so that a coupler can feed a daily or sub-daily model from the
emulator's monthly fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

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
