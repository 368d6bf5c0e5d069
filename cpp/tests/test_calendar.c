/*
 * test_calendar.c — the calendar functions of the C ABI (landbc.h, "Calendars
 * and LAI interpolation") on hand-checked values: month lengths, LAI weights,
 * a year of coupling steps and the errors. No bundle is needed.
 *
 *   test_calendar
 *
 * tests/test_cpp_calendar.py compares the same functions with the Python module
 * bit for bit over many more times. Every failed check prints file:line, the
 * expression and landbc_last_error(); the exit status is 1 if any failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "landbc.h"

static int g_checks = 0, g_failed = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    ++g_checks;                                                                                \
    if (!(cond)) {                                                                             \
      ++g_failed;                                                                              \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              landbc_last_error());                                                            \
    }                                                                                          \
  } while (0)

/* An expected LANDBC_ERR_ARGUMENT whose message contains every word. */
static void check_refused(int rc, const char* w1, const char* w2, const char* w3, int line) {
  const char* msg = landbc_last_error();
  const char* words[3] = {w1, w2, w3};
  ++g_checks;
  if (rc != LANDBC_ERR_ARGUMENT) {
    ++g_failed;
    fprintf(stderr, "%s:%d: expected LANDBC_ERR_ARGUMENT, got %d\n", __FILE__, line, rc);
    return;
  }
  for (int i = 0; i < 3; ++i) {
    if (words[i] && !strstr(msg, words[i])) {
      ++g_failed;
      fprintf(stderr, "%s:%d: message '%s' lacks '%s'%s\n", __FILE__, line, msg, words[i],
              msg[0] ? "" : " (c_api.cpp must define landbc::set_last_error)");
      return;
    }
  }
}
#define REFUSED(rc, w1, w2, w3) check_refused((rc), (w1), (w2), (w3), __LINE__)

static int days(const char* cal, int year, int month) {
  int n = -1;
  CHECK(landbc_calendar_days_in_month(cal, year, month, &n) == LANDBC_OK);
  return n;
}

static void test_facts(void) {
  int n = 0;
  CHECK(days("noleap", 2000, 2) == 28);
  CHECK(days("365_day", 2000, 2) == 28);
  CHECK(days("all_leap", 1900, 2) == 29);
  CHECK(days("360_day", 2001, 2) == 30);
  CHECK(days("360_day", 2001, 12) == 30);
  CHECK(days("standard", 2000, 2) == 29);
  CHECK(days("standard", 1900, 2) == 28);
  CHECK(days("standard", 1500, 2) == 29); /* Julian before the reform */
  CHECK(days("proleptic_gregorian", 1500, 2) == 28);
  CHECK(days("julian", 1900, 2) == 29);
  CHECK(days("standard", 1582, 10) == 21);
  CHECK(days("proleptic_gregorian", 1582, 10) == 31);
  CHECK(days(" Gregorian ", 2100, 2) == 28);
  CHECK(landbc_calendar_days_in_year("standard", 1582, &n) == LANDBC_OK && n == 355);
  CHECK(landbc_calendar_days_in_year("360_day", 2000, &n) == LANDBC_OK && n == 360);
  CHECK(landbc_calendar_days_in_year("366_day", 2001, &n) == LANDBC_OK && n == 366);
  CHECK(landbc_calendar_days_in_year("standard", 2000, &n) == LANDBC_OK && n == 366);
}

static void test_weights(void) {
  int ya = 0, ma = 0, yb = 0, mb = 0;
  double wa = -1, wb = -1;
  /* on the anchor: that month alone */
  CHECK(landbc_lai_weights("noleap", 2001, 3, 15, 0, &ya, &ma, &wa, &yb, &mb, &wb) == LANDBC_OK);
  CHECK(ya == 2001 && ma == 3 && yb == 2001 && mb == 4 && wa == 1.0 && wb == 0.0);
  /* 360_day: day 30 00 UTC is half-way between 15 March and 15 April */
  CHECK(landbc_lai_weights("360_day", 2001, 3, 30, 0, &ya, &ma, &wa, &yb, &mb, &wb) == LANDBC_OK);
  CHECK(ya == 2001 && ma == 3 && yb == 2001 && mb == 4 && wa == 0.5 && wb == 0.5);
  /* one second before the anchor */
  CHECK(landbc_lai_weights("360_day", 2001, 3, 14, 86399, &ya, &ma, &wa, &yb, &mb, &wb) ==
        LANDBC_OK);
  CHECK(ya == 2001 && ma == 2 && yb == 2001 && mb == 3 && wa == 1.0 / (30 * 86400.0));
  /* across the year: 31 December, 15 days before 15 January (31 days after 15 December) */
  CHECK(landbc_lai_weights("standard", 2000, 12, 31, 0, &ya, &ma, &wa, &yb, &mb, &wb) == LANDBC_OK);
  CHECK(ya == 2000 && ma == 12 && yb == 2001 && mb == 1 && wa == 15.0 / 31.0 &&
        wb == 1.0 - 15.0 / 31.0);
  /* noleap, 30 March 12:00: 15.5 of 31 days from 15 March */
  CHECK(landbc_lai_weights("noleap", 2001, 3, 30, 43200, &ya, &ma, &wa, &yb, &mb, &wb) ==
        LANDBC_OK);
  CHECK(ya == 2001 && ma == 3 && yb == 2001 && mb == 4 && wa == 15.5 / 31.0);
  /* the reform: 4 October 1582 is 1 day before 15 October, 19 after 15 September */
  CHECK(landbc_lai_weights("standard", 1582, 10, 4, 0, &ya, &ma, &wa, &yb, &mb, &wb) == LANDBC_OK);
  CHECK(ya == 1582 && ma == 9 && yb == 1582 && mb == 10 && wa == 1.0 / 20.0);
  /* NULL outputs are allowed */
  CHECK(landbc_lai_weights("noleap", 2001, 3, 30, 0, NULL, NULL, &wa, NULL, NULL, NULL) ==
        LANDBC_OK);
  CHECK(wa == 16.0 / 31.0);
}

static void test_schedule(void) {
  /* A noleap year of 900 s steps from 2000-01-01 00 UTC asks for each month
   * Feb 2000 .. Jan 2001 exactly once, on the step reaching the previous month's
   * day 15 00 UTC (where it becomes month b, of weight 0), and for the LU/LC of
   * 2001 on the last step. */
  int y = 2000, m = 1, d = 1, months = 0, lulc = 0, ok = 1;
  int64_t s = 0;
  landbc_coupling_events ev;
  CHECK(sizeof(landbc_coupling_events) == 80);
  for (int i = 0; i < 365 * 96; ++i) {
    if (landbc_coupling_step("noleap", 900, "forward", y, m, d, s, &ev) != LANDBC_OK) {
      ok = 0;
      break;
    }
    y = ev.year, m = ev.month, d = ev.day, s = ev.seconds_of_day;
    if (ev.n_lai) {
      const int want_y = months < 11 ? 2000 : 2001, want_m = months < 11 ? months + 2 : 1;
      if (ev.n_lai != 1 || ev.lai_year[0] != want_y || ev.lai_month[0] != want_m || d != 15 ||
          s != 0 || ev.w_a != 1.0 || ev.year_b != want_y || ev.month_b != want_m)
        ok = 0;
      ++months;
    }
    if (ev.new_lulc) {
      if (ev.lulc_year != 2001 || i != 365 * 96 - 1) ok = 0;
      ++lulc;
    }
  }
  CHECK(ok);
  CHECK(months == 12 && lulc == 1);
  CHECK(y == 2001 && m == 1 && d == 1 && s == 0);

  /* backward, one day from 2001-01-15 in 360_day: 2000-12 is new */
  CHECK(landbc_coupling_step("360_day", 86400, "backward", 2001, 1, 15, 0, &ev) == LANDBC_OK);
  CHECK(ev.year == 2001 && ev.month == 1 && ev.day == 14 && ev.n_lai == 1 &&
        ev.lai_year[0] == 2000 && ev.lai_month[0] == 12 && ev.new_lulc == 0 &&
        ev.w_a == 1.0 / 30.0);
  /* leaving 1 January 00 UTC backward needs the previous year's LU/LC */
  CHECK(landbc_coupling_step("360_day", 60, "backward", 2001, 1, 1, 0, &ev) == LANDBC_OK);
  CHECK(ev.year == 2000 && ev.month == 12 && ev.day == 30 && ev.seconds_of_day == 86340 &&
        ev.new_lulc == 1 && ev.lulc_year == 2000 && ev.n_lai == 0);
  /* a step longer than a month can need two months */
  CHECK(landbc_coupling_step("360_day", 40 * 86400, NULL, 2000, 1, 14, 0, &ev) == LANDBC_OK);
  CHECK(ev.year == 2000 && ev.month == 2 && ev.day == 24 && ev.n_lai == 2 && ev.lai_month[0] == 2 &&
        ev.lai_month[1] == 3);
}

static void test_errors(void) {
  int n = -7;
  double wa = -1;
  landbc_coupling_events ev;
  ev.year = -5;
  REFUSED(landbc_calendar_days_in_month("gregorain", 2000, 1, &n), "calendar", "noleap",
          "gregorain");
  REFUSED(landbc_calendar_days_in_month(NULL, 2000, 1, &n), "calendar", "NULL", NULL);
  REFUSED(landbc_calendar_days_in_month("noleap", 2000, 13, &n), "month", "1..12", "13");
  REFUSED(landbc_calendar_days_in_month("noleap", 2000, 1, NULL), "days", "NULL", NULL);
  REFUSED(landbc_calendar_days_in_year("noleap", 2000001, &n), "year", "1000000", "2000001");
  CHECK(n == -7);
  REFUSED(landbc_lai_weights("noleap", 2000, 2, 29, 0, NULL, NULL, &wa, NULL, NULL, NULL), "day",
          "1..28", "29");
  REFUSED(landbc_lai_weights("360_day", 2000, 1, 31, 0, NULL, NULL, &wa, NULL, NULL, NULL), "day",
          "1..30", "31");
  REFUSED(landbc_lai_weights("standard", 1582, 10, 10, 0, NULL, NULL, &wa, NULL, NULL, NULL), "day",
          "1582-10-10", "does not exist");
  REFUSED(landbc_lai_weights("noleap", 2000, 1, 1, -1, NULL, NULL, &wa, NULL, NULL, NULL),
          "seconds_of_day", "0..86399", "-1");
  REFUSED(landbc_lai_weights("noleap", 2000, 1, 1, 86400, NULL, NULL, &wa, NULL, NULL, NULL),
          "seconds_of_day", "0..86399", "86400");
  CHECK(wa == -1);
  REFUSED(landbc_coupling_step("noleap", 0, "forward", 2000, 1, 1, 0, &ev), "dt_seconds", "> 0",
          "0");
  REFUSED(landbc_coupling_step("noleap", -900, "forward", 2000, 1, 1, 0, &ev), "dt_seconds", "> 0",
          "-900");
  REFUSED(landbc_coupling_step("noleap", 900, "sideways", 2000, 1, 1, 0, &ev), "direction",
          "backward", "sideways");
  REFUSED(landbc_coupling_step("noleap", 900, "forward", 2000, 2, 29, 0, &ev), "day", "1..28",
          "29");
  REFUSED(landbc_coupling_step("noleap", 900, "forward", 2000, 1, 1, 0, NULL), "events", "NULL",
          NULL);
  CHECK(ev.year == -5);
}

int main(void) {
  test_facts();
  test_weights();
  test_schedule();
  test_errors();
  printf("test_calendar: %d checks, %d failed\n", g_checks, g_failed);
  return g_failed ? 1 : 0;
}
