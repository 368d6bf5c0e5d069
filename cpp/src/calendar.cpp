// CF calendars, ECLand's mid-month LAI interpolation and a host model's
// coupling schedule, for the C ABI (landbc.h, "Calendars and LAI interpolation").
//
// A port of coupler/calendar.py: the same day-number formulas with Python's
// floor division, exact integer seconds, and the LAI weight computed as Python
// computes float(Fraction(t2 - t, t2 - t1)): a correctly rounded quotient of two
// integers, which is what dividing their exact double values gives (both are
// far below 2^53). Every answer is therefore bit-identical to the Python
// module's (tests/test_cpp_calendar.py checks it over whole years of steps).
//
// Pure C++17, no libtorch. Errors follow c_api.cpp: nothing throws across the
// boundary; a failure sets landbc_last_error() and returns a status code, and
// leaves every output as it was.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "landbc.h"
#include "last_error.hpp"

namespace {

using i64 = std::int64_t;

constexpr i64 kSecondsPerDay = 86400;
constexpr int kMidMonthDay = 15;   // anchor of a monthly value: day 15, 00 UTC (ECLand)
constexpr int kMaxYear = 1000000;  // |year| supported (int arithmetic of the outputs)
constexpr int kMonthDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
constexpr int kCum365[13] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
constexpr int kCum366[13] = {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366};
// The Gregorian reform of CF's "standard" calendar: 1582-10-04 (Julian) is
// followed by 1582-10-15 (Gregorian), Julian day number 2299161.
constexpr int kReformYear = 1582, kReformMonth = 10, kReformDay = 15;
constexpr i64 kReformJdn = 2299161;

enum class Cal { standard, proleptic_gregorian, julian, noleap, all_leap, day360 };

const char* cf_name(Cal c) {
  switch (c) {
    case Cal::standard:
      return "standard";
    case Cal::proleptic_gregorian:
      return "proleptic_gregorian";
    case Cal::julian:
      return "julian";
    case Cal::noleap:
      return "noleap";
    case Cal::all_leap:
      return "all_leap";
    case Cal::day360:
      return "360_day";
  }
  return "?";
}

// A bad argument: LANDBC_ERR_ARGUMENT with this message.
struct ArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Python's // and % (floor division; the remainder has the divisor's sign).
i64 floordiv(i64 a, i64 b) {
  i64 q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}
i64 floormod(i64 a, i64 b) { return a - floordiv(a, b) * b; }

std::string two(int v) { return (v < 10 && v >= 0 ? "0" : "") + std::to_string(v); }
std::string four(int v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  while (s.size() < 4) s = "0" + s;
  return (v < 0 ? "-" : "") + s;
}
std::string ym_str(int y, int m) { return four(y) + "-" + two(m); }

// canonical_calendar: case and surrounding blanks ignored, aliases resolved.
Cal parse_calendar(const char* fn, const char* name) {
  if (!name) throw ArgumentError(std::string(fn) + ": calendar: expected a string, found NULL");
  std::string s(name);
  // Python's str.strip(): the ASCII blanks are \t \n \v \f \r, \x1c..\x1f and space.
  auto blank = [](unsigned char c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  };
  size_t b = 0, e = s.size();
  while (b < e && blank(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && blank(static_cast<unsigned char>(s[e - 1]))) --e;
  std::string key = s.substr(b, e - b);
  for (char& c : key)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  static const struct {
    const char* name;
    Cal cal;
  } aliases[] = {{"standard", Cal::standard},
                 {"gregorian", Cal::standard},
                 {"proleptic_gregorian", Cal::proleptic_gregorian},
                 {"julian", Cal::julian},
                 {"noleap", Cal::noleap},
                 {"365_day", Cal::noleap},
                 {"all_leap", Cal::all_leap},
                 {"366_day", Cal::all_leap},
                 {"360_day", Cal::day360}};
  for (const auto& a : aliases)
    if (key == a.name) return a.cal;
  throw ArgumentError(std::string(fn) +
                      ": calendar: expected one of 360_day, 365_day, 366_day, all_leap, "
                      "gregorian, julian, noleap, proleptic_gregorian, standard (any case), "
                      "found '" +
                      s + "'");
}

int direction_sign(const char* fn, const char* direction) {
  if (!direction) return 1;  // NULL: forward, as in landbc_initialise
  const std::string d(direction);
  if (d == "forward") return 1;
  if (d == "backward") return -1;
  throw ArgumentError(std::string(fn) + ": direction: expected 'forward' or 'backward', found '" +
                      d + "'");
}

void check_year(const char* fn, int year) {
  if (year < -kMaxYear || year > kMaxYear)
    throw ArgumentError(std::string(fn) + ": year: expected " + std::to_string(-kMaxYear) + ".." +
                        std::to_string(kMaxYear) + ", found " + std::to_string(year));
}

void check_month(const char* fn, int month) {
  if (month < 1 || month > 12)
    throw ArgumentError(std::string(fn) + ": month: expected 1..12, found " +
                        std::to_string(month));
}

bool is_leap_year(Cal cal, i64 year) {
  if (cal == Cal::noleap || cal == Cal::day360) return false;
  if (cal == Cal::all_leap) return true;
  if (cal == Cal::julian || (cal == Cal::standard && year < kReformYear))
    return floormod(year, 4) == 0;
  return floormod(year, 4) == 0 && (floormod(year, 100) != 0 || floormod(year, 400) == 0);
}

int days_in_month(Cal cal, i64 year, int month) {
  if (cal == Cal::day360) return 30;
  if (cal == Cal::standard && year == kReformYear && month == kReformMonth) return 21;
  if (month == 2) return is_leap_year(cal, year) ? 29 : 28;
  return kMonthDays[month - 1];
}

i64 jdn_gregorian(i64 y, i64 m, i64 d) {
  const i64 a = floordiv(14 - m, 12);
  const i64 yy = y + 4800 - a, mm = m + 12 * a - 3;
  return d + floordiv(153 * mm + 2, 5) + 365 * yy + floordiv(yy, 4) - floordiv(yy, 100) +
         floordiv(yy, 400) - 32045;
}

i64 jdn_julian(i64 y, i64 m, i64 d) {
  const i64 a = floordiv(14 - m, 12);
  const i64 yy = y + 4800 - a, mm = m + 12 * a - 3;
  return d + floordiv(153 * mm + 2, 5) + 365 * yy + floordiv(yy, 4) - 32083;
}

struct Date {
  i64 year;
  int month, day;
};

// Inverse of the two functions above (Richards' algorithm), as _from_jdn.
Date from_jdn(i64 jdn, bool gregorian) {
  i64 b, c;
  if (gregorian) {
    const i64 a = jdn + 32044;
    b = floordiv(4 * a + 3, 146097);
    c = a - floordiv(146097 * b, 4);
  } else {
    b = 0;
    c = jdn + 32082;
  }
  const i64 d = floordiv(4 * c + 3, 1461);
  const i64 e = c - floordiv(1461 * d, 4);
  const i64 m = floordiv(5 * e + 2, 153);
  const i64 day = e - floordiv(153 * m + 2, 5) + 1;
  const i64 month = m + 3 - 12 * floordiv(m, 10);
  const i64 year = 100 * b + d - 4800 + floordiv(m, 10);
  return {year, static_cast<int>(month), static_cast<int>(day)};
}

bool before_reform(i64 y, int m, int d) {
  if (y != kReformYear) return y < kReformYear;
  if (m != kReformMonth) return m < kReformMonth;
  return d < kReformDay;
}

// day_number without validation (the date is known to exist).
i64 day_number(Cal cal, i64 y, int m, int d) {
  switch (cal) {
    case Cal::day360:
      return y * 360 + (m - 1) * 30 + d - 1;
    case Cal::noleap:
      return y * 365 + kCum365[m - 1] + d - 1;
    case Cal::all_leap:
      return y * 366 + kCum366[m - 1] + d - 1;
    case Cal::julian:
      return jdn_julian(y, m, d);
    case Cal::standard:
      return before_reform(y, m, d) ? jdn_julian(y, m, d) : jdn_gregorian(y, m, d);
    case Cal::proleptic_gregorian:
      return jdn_gregorian(y, m, d);
  }
  return 0;
}

Date date_from_day_number(Cal cal, i64 n) {
  if (cal == Cal::day360 || cal == Cal::noleap || cal == Cal::all_leap) {
    const i64 length = cal == Cal::day360 ? 360 : cal == Cal::noleap ? 365 : 366;
    const i64 year = floordiv(n, length);
    const int doy = static_cast<int>(n - year * length);
    if (cal == Cal::day360) return {year, doy / 30 + 1, doy % 30 + 1};
    const int* cum = cal == Cal::noleap ? kCum365 : kCum366;
    int month = 12;
    while (cum[month - 1] > doy) --month;
    return {year, month, doy - cum[month - 1] + 1};
  }
  const bool gregorian =
      cal == Cal::proleptic_gregorian || (cal == Cal::standard && n >= kReformJdn);
  return from_jdn(n, gregorian);
}

// A model time: a date of the calendar and whole seconds since 00 UTC.
struct Time {
  i64 year;
  int month, day;
  i64 seconds_of_day;
};

// ModelTime's validation: the date must exist in the calendar (no 29 February
// in noleap, no 31st in 360_day, nothing between 4 and 15 October 1582 in
// "standard") and 0 <= seconds_of_day < 86400.
Time checked_time(const char* fn, Cal cal, int year, int month, int day, i64 seconds_of_day) {
  const std::string f(fn);
  check_year(fn, year);
  check_month(fn, month);
  const int n = days_in_month(cal, year, month);
  if (cal == Cal::standard && year == kReformYear && month == kReformMonth) {
    if (day >= 5 && day <= 14)
      throw ArgumentError(f + ": day: " + ym_str(year, month) + "-" + two(day) +
                          " does not exist in the standard calendar (4 October 1582 is "
                          "followed by 15 October)");
    if (day < 1 || day > 31)
      throw ArgumentError(f + ": day: expected 1..4 or 15..31 in 1582-10 (standard calendar), " +
                          "found " + std::to_string(day));
  } else if (day < 1 || day > n) {
    throw ArgumentError(f + ": day: expected 1.." + std::to_string(n) + " in " +
                        ym_str(year, month) + " (" + cf_name(cal) + " calendar), found " +
                        std::to_string(day));
  }
  if (seconds_of_day < 0 || seconds_of_day >= kSecondsPerDay)
    throw ArgumentError(f + ": seconds_of_day: expected 0..86399, found " +
                        std::to_string(seconds_of_day));
  return {year, month, day, seconds_of_day};
}

i64 seconds(Cal cal, const Time& t) {
  return day_number(cal, t.year, t.month, t.day) * kSecondsPerDay + t.seconds_of_day;
}

Time from_seconds(Cal cal, i64 s) {
  const i64 days = floordiv(s, kSecondsPerDay);
  const Date d = date_from_day_number(cal, days);
  return {d.year, d.month, d.day, s - days * kSecondsPerDay};
}

struct YearMonth {
  i64 year;
  int month;
  bool operator==(const YearMonth& o) const { return year == o.year && month == o.month; }
};

YearMonth add_months(YearMonth ym, int n) {
  const i64 k = ym.year * 12 + (ym.month - 1) + n;
  return {floordiv(k, 12), static_cast<int>(floormod(k, 12)) + 1};
}

i64 mid_seconds(Cal cal, YearMonth ym) {
  return day_number(cal, ym.year, ym.month, kMidMonthDay) * kSecondsPerDay;
}

// _bracket: months m1, m2 and their anchors t1 <= t < t2.
struct Bracket {
  YearMonth m1, m2;
  i64 t1, t2;
};

Bracket bracket(Cal cal, const Time& t) {
  const YearMonth here{t.year, t.month};
  const i64 s = seconds(cal, t);
  const i64 t_here = mid_seconds(cal, here);
  if (s >= t_here) {
    const YearMonth next = add_months(here, 1);
    return {here, next, t_here, mid_seconds(cal, next)};
  }
  const YearMonth prev = add_months(here, -1);
  return {prev, here, mid_seconds(cal, prev), t_here};
}

// float(Fraction(t2 - s, t2 - t1)): 0 < t2 - s <= t2 - t1 < 2^53, so both are
// exact doubles and IEEE division rounds their quotient correctly, as Python's
// int / int does.
double weight_a(const Bracket& b, i64 s) {
  return static_cast<double>(b.t2 - s) / static_cast<double>(b.t2 - b.t1);
}

// landbc_last_error() := message (kept as it was if even that runs out of memory).
void set_error(const char* message) noexcept {
  try {
    landbc::set_last_error(message);
  } catch (...) {
  }
}

template <class F>
int guarded(F&& body) {
  try {
    body();
    return LANDBC_OK;
  } catch (const ArgumentError& e) {
    set_error(e.what());
    return LANDBC_ERR_ARGUMENT;
  } catch (const std::bad_alloc&) {
    set_error("out of memory");
  } catch (const std::exception& e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown error");
  }
  return LANDBC_ERR_INTERNAL;
}

}  // namespace

extern "C" {

int landbc_calendar_days_in_month(const char* calendar, int year, int month, int* days) {
  return guarded([&] {
    const char* fn = "landbc_calendar_days_in_month";
    const Cal cal = parse_calendar(fn, calendar);
    check_year(fn, year);
    check_month(fn, month);
    if (!days) throw ArgumentError(std::string(fn) + ": days: expected a pointer, found NULL");
    *days = days_in_month(cal, year, month);
  });
}

int landbc_calendar_days_in_year(const char* calendar, int year, int* days) {
  return guarded([&] {
    const char* fn = "landbc_calendar_days_in_year";
    const Cal cal = parse_calendar(fn, calendar);
    check_year(fn, year);
    if (!days) throw ArgumentError(std::string(fn) + ": days: expected a pointer, found NULL");
    int n = 0;
    for (int m = 1; m <= 12; ++m) n += days_in_month(cal, year, m);
    *days = n;
  });
}

int landbc_lai_weights(const char* calendar, int year, int month, int day, int64_t seconds_of_day,
                       int* year_a, int* month_a, double* w_a, int* year_b, int* month_b,
                       double* w_b) {
  return guarded([&] {
    const char* fn = "landbc_lai_weights";
    const Cal cal = parse_calendar(fn, calendar);
    const Time t = checked_time(fn, cal, year, month, day, seconds_of_day);
    const Bracket b = bracket(cal, t);
    const double w = weight_a(b, seconds(cal, t));
    if (year_a) *year_a = static_cast<int>(b.m1.year);
    if (month_a) *month_a = b.m1.month;
    if (w_a) *w_a = w;
    if (year_b) *year_b = static_cast<int>(b.m2.year);
    if (month_b) *month_b = b.m2.month;
    if (w_b) *w_b = 1.0 - w;
  });
}

int landbc_coupling_step(const char* calendar, int64_t dt_seconds, const char* direction, int year,
                         int month, int day, int64_t seconds_of_day,
                         landbc_coupling_events* events) {
  return guarded([&] {
    const char* fn = "landbc_coupling_step";
    const std::string f(fn);
    const Cal cal = parse_calendar(fn, calendar);
    if (dt_seconds <= 0)
      throw ArgumentError(f + ": dt_seconds: expected > 0, found " + std::to_string(dt_seconds));
    const int sign = direction_sign(fn, direction);
    const Time start = checked_time(fn, cal, year, month, day, seconds_of_day);
    if (!events) throw ArgumentError(f + ": events: expected a pointer, found NULL");

    // |seconds| < 2^45 for supported years, so no overflow below 2^62.
    const i64 s0 = seconds(cal, start);
    const i64 limit = i64(1) << 62;
    const Time end = from_seconds(cal, dt_seconds < limit ? s0 + sign * dt_seconds : 0);
    if (dt_seconds >= limit || end.year < -kMaxYear || end.year > kMaxYear)
      throw ArgumentError(f + ": dt_seconds: a step of " + std::to_string(dt_seconds) + " s from " +
                          ym_str(year, month) + "-" + two(day) +
                          " ends outside the supported years " + std::to_string(-kMaxYear) + ".." +
                          std::to_string(kMaxYear));

    const Bracket a = bracket(cal, start), b = bracket(cal, end);
    landbc_coupling_events ev{};
    ev.seconds_of_day = end.seconds_of_day;
    ev.w_a = weight_a(b, seconds(cal, end));
    ev.w_b = 1.0 - ev.w_a;
    ev.year = static_cast<int>(end.year);
    ev.month = end.month;
    ev.day = end.day;
    // The months of the new bracket that were not in the old one, in the
    // run's order (forward: earlier first; backward: later first).
    const YearMonth order[2] = {sign > 0 ? b.m1 : b.m2, sign > 0 ? b.m2 : b.m1};
    for (const YearMonth& m : order) {
      if (m == a.m1 || m == a.m2) continue;
      ev.lai_year[ev.n_lai] = static_cast<int>(m.year);
      ev.lai_month[ev.n_lai] = m.month;
      ++ev.n_lai;
    }
    ev.new_lulc = end.year != start.year ? 1 : 0;
    ev.lulc_year = static_cast<int>(end.year);
    ev.year_a = static_cast<int>(b.m1.year);
    ev.month_a = b.m1.month;
    ev.year_b = static_cast<int>(b.m2.year);
    ev.month_b = b.m2.month;
    *events = ev;
  });
}

}  // extern "C"

// The layout landbc.h documents (and the Fortran module's bind(C) type mirrors).
static_assert(sizeof(landbc_coupling_events) == 80, "landbc_coupling_events: 80 bytes");
static_assert(offsetof(landbc_coupling_events, w_a) == 8, "landbc_coupling_events layout");
static_assert(offsetof(landbc_coupling_events, year) == 24, "landbc_coupling_events layout");
static_assert(offsetof(landbc_coupling_events, n_lai) == 36, "landbc_coupling_events layout");
static_assert(offsetof(landbc_coupling_events, new_lulc) == 56, "landbc_coupling_events layout");
static_assert(offsetof(landbc_coupling_events, month_b) == 76, "landbc_coupling_events layout");
