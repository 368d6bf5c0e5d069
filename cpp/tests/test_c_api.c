/*
 * test_c_api.c — exercises the C ABI of landbc (cpp/include/landbc.h) against
 * the real library and a real bundle, with synthetic in-memory inputs.
 *
 *   test_c_api <bundle_dir> <scratch_dir>
 *
 * Plain C11 (+ POSIX for files and pthreads; no libm needed). Build:
 *
 *   gcc -std=c11 -Wall -Wextra -Icpp/include cpp/tests/test_c_api.c \
 *       -Lbuild/cpp -llandbc -Wl,-rpath,$PWD/build/cpp -pthread -o test_c_api
 *   ./test_c_api weights/demo /tmp/capi_scratch
 *
 * The domain is 46..50 N x 6..10 E at the bundle's 0.05 deg (80 x 80 pixels,
 * coarse 16 x 16 with the demo bundle's factor 5): land everywhere except a
 * 20 x 20 sea corner in the north-west. Checks are grouped; one line is printed
 * per group, and every failed check prints file:line, the failed expression,
 * the last status and landbc_last_error(). The exit status is 1 if any check
 * failed. Set LANDBC_TEST_VERBOSE=1 to also print the message of every
 * expected failure.
 *
 * The program is also meant to run under AddressSanitizer / LeakSanitizer:
 * every handle it opens is closed, and a closed handle's stale value is only
 * passed back to the library (which keeps a registry of live handles), never
 * dereferenced here.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "landbc.h"

/* ------------------------------------------------------------------ checks */

static int g_checks = 0;       /* checks run in total */
static int g_failed = 0;       /* checks failed in total */
static int g_group_checks = 0; /* in the current group */
static int g_group_failed = 0;
static const char* g_group = "";
static int g_rc = LANDBC_OK; /* status of the last call made through RC() */
static int g_verbose = 0;

static const char* status_str(int rc) {
  const char* s = landbc_status_name(rc);
  return s ? s : "(null)";
}

static void report_failure(const char* file, int line, const char* what) {
  /* landbc_status_name first: the pointer of landbc_last_error() is only
   * valid until the next landbc call on this thread. */
  const char* sname = status_str(g_rc);
  const char* msg = landbc_last_error();
  fprintf(stderr, "%s:%d: FAILED [%s]: %s\n    last status %d (%s); last error: \"%s\"\n", file,
          line, g_group, what, g_rc, sname, msg ? msg : "(null)");
}

static int check_(int ok, const char* expr, const char* file, int line) {
  g_checks++;
  g_group_checks++;
  if (!ok) {
    g_failed++;
    g_group_failed++;
    report_failure(file, line, expr);
  }
  return ok;
}

/* A call whose status is expected to be `want`. */
static int expect_status_(int rc, int want, const char* call, const char* file, int line) {
  g_rc = rc;
  g_checks++;
  g_group_checks++;
  if (rc != want) {
    char what[768];
    snprintf(what, sizeof what, "%s returned %d (%s), expected %d (%s)", call, rc, status_str(rc),
             want, status_str(want));
    g_failed++;
    g_group_failed++;
    report_failure(file, line, what);
    return 0;
  }
  if (want != LANDBC_OK && g_verbose) {
    const char* msg = landbc_last_error();
    printf("      %-22s %s\n", status_str(rc), msg ? msg : "(null)");
  }
  return 1;
}

/* landbc_last_error() contains `needle` (checked right after the failing call). */
static int expect_msg_(const char* needle, const char* file, int line) {
  const char* msg = landbc_last_error();
  int ok = msg != NULL && strstr(msg, needle) != NULL;
  char what[256];
  snprintf(what, sizeof what, "landbc_last_error() contains \"%s\"", needle);
  return check_(ok, what, file, line);
}

#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define RC(call) (g_rc = (call))
#define EXPECT_STATUS(call, want) expect_status_((call), (want), #call, __FILE__, __LINE__)
#define EXPECT_OK(call) EXPECT_STATUS(call, LANDBC_OK)
#define EXPECT_MSG(needle) expect_msg_((needle), __FILE__, __LINE__)
/* A failed landbc_open must leave the handle NULL; one that wrongly opened is
 * closed so that the leak checkers stay quiet. */
#define CHECK_NOT_OPENED(hnd, sentinel)                                           \
  do {                                                                            \
    CHECK((hnd) == NULL);                                                         \
    if ((hnd) != NULL && (void*)(hnd) != (void*)(sentinel)) landbc_close(&(hnd)); \
    (hnd) = NULL;                                                                 \
  } while (0)

static void group_begin(const char* name) {
  g_group = name;
  g_group_checks = 0;
  g_group_failed = 0;
}

static void group_end(void) {
  if (g_group_failed == 0)
    printf("[ ok ] %-34s %3d checks\n", g_group, g_group_checks);
  else
    printf("[FAIL] %-34s %3d of %d checks failed\n", g_group, g_group_failed, g_group_checks);
  fflush(stdout);
}

/* ------------------------------------------------------------ the domain */

#define NY 80
#define NX 80
#define CF 5
#define CNY (NY / CF)
#define CNX (NX / CF)
#define NPIX (NY * NX)
#define NCOARSE (CNY * CNX)
#define NLUH2 12
#define SEA_ROWS 20
#define SEA_COLS 20

static const double LAT_S = 46.0, LAT_N = 50.0, LON_W = 6.0, LON_E = 10.0;

static int is_sea(int i, int j) { return i < SEA_ROWS && j < SEA_COLS; }

/* Statics and priors (bound memory must outlive the handles: file scope). */
static uint8_t g_land_mask[NPIX];
static double g_elevation64[NPIX]; /* float64: exercises conversion */
static float g_slope[NPIX];
static int32_t g_koppen32[NPIX]; /* int32: exercises conversion */
static uint8_t g_igbp[NPIX];
static uint8_t g_lu[NPIX];
static uint8_t g_lc[NPIX];
static float g_lai[NPIX];
static float g_lai_clim[12 * NPIX]; /* month m at [m * NPIX] */
static float g_lu_frac[NPIX];       /* lu as float32 with one 1.5 */

/* Forcing. */
static float g_luh2[NLUH2 * NCOARSE];
static float g_secma[NCOARSE];
static float g_secmb[NCOARSE];
static float g_co2[1];
static float g_t2m[NCOARSE];
static float g_tp[NCOARSE];
static float g_ssrd[NCOARSE];
static float g_t2m_nan[NCOARSE];
static float g_t2m_hot[NCOARSE];
static float g_t2m_narrow[CNY * (CNX - 1)];

static const int64_t SHAPE_HI[2] = {NY, NX};
static const int64_t SHAPE_CLIM[3] = {12, NY, NX};
static const int64_t SHAPE_CO[2] = {CNY, CNX};
static const int64_t SHAPE_CO_NARROW[2] = {CNY, CNX - 1};
static const int64_t SHAPE_CO_3D[3] = {1, CNY, CNX};
static const int64_t SHAPE_LUH2[3] = {NLUH2, CNY, CNX};
static const int64_t SHAPE_SCALAR[1] = {0}; /* not read: ndim 0 */

static void make_inputs(void) {
  for (int i = 0; i < NY; i++) {
    for (int j = 0; j < NX; j++) {
      int k = i * NX + j;
      int sea = is_sea(i, j);
      g_land_mask[k] = sea ? 0 : 1;
      g_elevation64[k] = sea ? 0.0 : 200.0 + 6.0 * i + 4.0 * j + 0.05 * (i - 40) * (j - 40);
      g_slope[k] = sea ? 0.0f : (float)(1.0 + 0.04 * (i + j));
      g_koppen32[k] = sea ? 0 : (i < 50 ? 3 : 4);
      /* land use by stripes: forest / cropland / pasture */
      int band = (j / 10) % 3;
      static const uint8_t lu_of_band[3] = {4, 2, 3};
      static const uint8_t lc_of_band[3] = {5, 1, 2};
      static const uint8_t igbp_of_band[3] = {4, 12, 10};
      g_lu[k] = sea ? 0 : lu_of_band[band];
      g_lc[k] = sea ? 15 : lc_of_band[band];
      g_igbp[k] = sea ? 0 : igbp_of_band[band];
      g_lai[k] = 1.0f;
      for (int m = 0; m < 12; m++) /* a seasonal cycle around the prior's 1.0 */
        g_lai_clim[m * NPIX + k] = sea ? 0.0f : (float)(1.0 + 0.5 * sin(0.5236 * (m - 3)));
      g_lu_frac[k] = (float)g_lu[k];
    }
  }
  g_lu_frac[NPIX / 2 + 7] = 1.5f;

  static const float frac[NLUH2] = {0.10f, 0.05f, 0.20f, 0.05f, 0.05f, 0.20f,
                                    0.02f, 0.02f, 0.01f, 0.02f, 0.15f, 0.05f}; /* sum 0.92 */
  for (int c = 0; c < NLUH2; c++)
    for (int k = 0; k < NCOARSE; k++) g_luh2[c * NCOARSE + k] = frac[c];
  for (int k = 0; k < NCOARSE; k++) {
    g_secma[k] = 50.0f;
    g_secmb[k] = 10.0f;
    g_t2m[k] = 285.0f;
    g_tp[k] = 2.0f;
    g_ssrd[k] = 150.0f;
    g_t2m_nan[k] = 285.0f;
    g_t2m_hot[k] = 285.0f;
  }
  g_t2m_nan[3] = NAN;
  g_t2m_nan[100] = NAN;
  g_t2m_nan[200] = INFINITY;
  g_t2m_hot[17] = 500.0f;
  for (int k = 0; k < CNY * (CNX - 1); k++) g_t2m_narrow[k] = 285.0f;
  g_co2[0] = 400.0f;
}

/* ------------------------------------------------------------- helpers */

static int bind_statics(landbc_emulator* h, int skip_slope) {
  int ok = 1;
  ok &= EXPECT_OK(landbc_set_field(h, "land_mask", g_land_mask, LANDBC_UINT8, 2, SHAPE_HI));
  ok &= EXPECT_OK(landbc_set_field(h, "elevation", g_elevation64, LANDBC_FLOAT64, 2, SHAPE_HI));
  if (!skip_slope)
    ok &= EXPECT_OK(landbc_set_field(h, "slope", g_slope, LANDBC_FLOAT32, 2, SHAPE_HI));
  ok &= EXPECT_OK(landbc_set_field(h, "koppen", g_koppen32, LANDBC_INT32, 2, SHAPE_HI));
  ok &= EXPECT_OK(landbc_set_field(h, "igbp", g_igbp, LANDBC_UINT8, 2, SHAPE_HI));
  ok &=
      EXPECT_OK(landbc_set_field(h, "lai_climatology", g_lai_clim, LANDBC_FLOAT32, 3, SHAPE_CLIM));
  return ok;
}

static int bind_priors(landbc_emulator* h) {
  int ok = 1;
  ok &= EXPECT_OK(landbc_set_field(h, "lu", g_lu, LANDBC_UINT8, 2, SHAPE_HI));
  ok &= EXPECT_OK(landbc_set_field(h, "lc", g_lc, LANDBC_UINT8, 2, SHAPE_HI));
  ok &= EXPECT_OK(landbc_set_field(h, "lai", g_lai, LANDBC_FLOAT32, 2, SHAPE_HI));
  return ok;
}

/* Bind every forcing variable except `skip` (NULL: none). */
static int bind_forcing(landbc_emulator* h, const char* skip) {
  int ok = 1;
#define BINDF(name, data, nd, shape)    \
  if (!skip || strcmp(skip, name) != 0) \
    ok &= EXPECT_OK(landbc_set_field(h, name, data, LANDBC_FLOAT32, nd, shape));
  BINDF("luh2_frac", g_luh2, 3, SHAPE_LUH2)
  BINDF("secma", g_secma, 2, SHAPE_CO)
  BINDF("secmb", g_secmb, 2, SHAPE_CO)
  BINDF("co2", g_co2, 0, SHAPE_SCALAR)
  BINDF("t2m", g_t2m, 2, SHAPE_CO)
  BINDF("tp", g_tp, 2, SHAPE_CO)
  BINDF("ssrd", g_ssrd, 2, SHAPE_CO)
#undef BINDF
  return ok;
}

static int time_is(const landbc_emulator* h, int year, int month) {
  int y = -1, m = -1;
  if (RC(landbc_time(h, &y, &m)) != LANDBC_OK) return 0;
  return y == year && m == month;
}

static int next_time_is(const landbc_emulator* h, int year, int month) {
  int y = -1, m = -1;
  if (RC(landbc_next_time(h, &y, &m)) != LANDBC_OK) return 0;
  return y == year && m == month;
}

static int get_lai(landbc_emulator* h, float* buf) {
  return RC(landbc_get_field(h, "lai", buf, LANDBC_FLOAT32, NPIX)) == LANDBC_OK;
}

static int same_lai(landbc_emulator* h, const float* ref) {
  static float buf[NPIX];
  if (!get_lai(h, buf)) return 0;
  return memcmp(buf, ref, sizeof buf) == 0;
}

static int mkdir_p(const char* path) {
  char tmp[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (char* p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
  return 0;
}

static char* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  char* buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 65536;
      char* nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, 4096, f);
    n += got;
    if (got == 0) break;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static int write_file(const char* path, const void* data, size_t len) {
  FILE* f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  int rc = fclose(f);
  return (w == len && rc == 0) ? 0 : -1;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Change one hex digit of every `"<fname>": "<64 hex>"` entry (the manifest's
 * "files" checksums; "directions" has "file": "<fname>", which does not match
 * because the name is followed by a comma there, not a colon). The demo
 * manifest also lists the checksums of an earlier export under
 * "reexported_from"; changing those too is harmless and makes sure the entry
 * that counts is changed whatever the order. Returns how many were changed. */
static int corrupt_checksums(char* text, const char* fname) {
  char key[256];
  snprintf(key, sizeof key, "\"%s\"", fname);
  int changed = 0;
  for (char* p = strstr(text, key); p; p = strstr(p + 1, key)) {
    char* q = p + strlen(key);
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
    if (*q != ':') continue;
    q++;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
    if (*q != '"') continue;
    q++;
    int n = 0;
    while (n < 64 && is_hex(q[n])) n++;
    if (n != 64 || q[64] != '"') continue;
    q[10] = (q[10] == '0') ? '1' : '0';
    changed++;
  }
  return changed;
}

/* Make `dir` a bundle folder with symlinks to the real .pt files and the given
 * manifest text (NULL: no manifest). */
static int make_bundle(const char* dir, const char* real_bundle, const char* manifest) {
  static const char* const files[] = {"stepper_forward.pt", "stepper_backward.pt", "manifest.json"};
  char path[4096], target[4096];
  if (mkdir_p(dir) != 0) return -1;
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (unlink(path) != 0 && errno != ENOENT) return -1;
  }
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    snprintf(target, sizeof target, "%s/%s", real_bundle, files[i]);
    if (symlink(target, path) != 0) return -1;
  }
  if (manifest) {
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (write_file(path, manifest, strlen(manifest)) != 0) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- threads */

struct error_probe {
  char before[256]; /* last error of a fresh thread before any failure */
  int rc;
  char after[512];
};

static void* error_probe_thread(void* arg) {
  struct error_probe* p = arg;
  const char* e = landbc_last_error();
  snprintf(p->before, sizeof p->before, "%s", e ? e : "(null)");
  p->rc = landbc_step(NULL, NULL, NULL);
  e = landbc_last_error();
  snprintf(p->after, sizeof p->after, "%s", e ? e : "(null)");
  return NULL;
}

struct stepper_job {
  landbc_emulator* h;
  int rc, year, month;
  float lai[NPIX];
};

static void* step_thread(void* arg) {
  struct stepper_job* j = arg;
  j->rc = landbc_step(j->h, &j->year, &j->month);
  if (j->rc == LANDBC_OK) j->rc = landbc_get_field(j->h, "lai", j->lai, LANDBC_FLOAT32, NPIX);
  return NULL;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <bundle_dir> <scratch_dir>\n", argv[0]);
    return 2;
  }
  const char* bundle = argv[1];
  const char* scratch = argv[2];
  const char* verbose = getenv("LANDBC_TEST_VERBOSE");
  g_verbose = verbose && *verbose && strcmp(verbose, "0") != 0;
  if (mkdir_p(scratch) != 0) {
    fprintf(stderr, "cannot create scratch folder %s: %s\n", scratch, strerror(errno));
    return 2;
  }
  char real_bundle[4096];
  if (!realpath(bundle, real_bundle)) {
    fprintf(stderr, "bundle folder %s: %s\n", bundle, strerror(errno));
    return 2;
  }
  make_inputs();

  char restart[8192], path[8192];
  snprintf(restart, sizeof restart, "%s/restart.safetensors", scratch);
  unlink(restart);

  static float lai[NPIX], lai2[NPIX], cvh[NPIX], elev32[NPIX];
  static double lai64[NPIX];
  static uint8_t lu[NPIX], lc[NPIX], mask_back[NPIX];
  static float lai_ref[NPIX]; /* lai of 2001-04, stepped from the restart's 2001-03 */
  static uint8_t lu_ref[NPIX], lc_ref[NPIX];
  int y = 0, m = 0;

  landbc_emulator* h = NULL;  /* main handle */
  landbc_emulator* h2 = NULL; /* initialise-time failures */
  landbc_emulator* h3 = NULL; /* restart into a fresh handle (also the reference) */

  /* ================================================== happy path */
  group_begin("open + queries");
  {
    const char* v = landbc_version();
    CHECK(v != NULL && v[0] != '\0');
    CHECK(strcmp(status_str(LANDBC_OK), "LANDBC_OK") == 0);
    CHECK(strcmp(status_str(LANDBC_ERR_ARGUMENT), "LANDBC_ERR_ARGUMENT") == 0);
    CHECK(strcmp(status_str(LANDBC_ERR_STATE), "LANDBC_ERR_STATE") == 0);
    CHECK(landbc_last_error() != NULL);

    EXPECT_OK(landbc_open(bundle, "cpu", "float32", &h));
    CHECK(h != NULL);
    if (!h) {
      group_end();
      fprintf(stderr, "cannot open %s; stopping\n", bundle);
      return 1;
    }

    static const int roles[4] = {LANDBC_STATIC, LANDBC_FORCING, LANDBC_STATE, LANDBC_DERIVED};
    static const int counts[4] = {6, 7, 3, 6};
    static const char* const names[4][7] = {
        {"land_mask", "elevation", "slope", "koppen", "igbp", "lai_climatology"},
        {"luh2_frac", "secma", "secmb", "co2", "t2m", "tp", "ssrd"},
        {"lu", "lc", "lai"},
        {"cvh", "cvl", "tvh", "tvl", "lai_hv", "lai_lv"},
    };
    for (int r = 0; r < 4; r++) {
      int n = -1;
      EXPECT_OK(landbc_variable_count(h, roles[r], &n));
      CHECK(n == counts[r]);
      for (int i = 0; i < counts[r] && i < n; i++) {
        char buf[64] = "";
        EXPECT_OK(landbc_variable_name(h, roles[r], i, buf, sizeof buf));
        if (!CHECK(strcmp(buf, names[r][i]) == 0))
          fprintf(stderr, "    role %d index %d: \"%s\", expected \"%s\"\n", roles[r], i, buf,
                  names[r][i]);
      }
    }
    char units[64] = "";
    EXPECT_OK(landbc_variable_units(h, "lai", units, sizeof units));
    CHECK(strcmp(units, "m2 m-2") == 0);
    EXPECT_OK(landbc_variable_units(h, "t2m", units, sizeof units));
    CHECK(strcmp(units, "K") == 0);
    int dt = 0;
    EXPECT_OK(landbc_variable_dtype(h, "lu", &dt));
    CHECK(dt == LANDBC_UINT8);
    EXPECT_OK(landbc_variable_dtype(h, "lai", &dt));
    CHECK(dt == LANDBC_FLOAT32);
    EXPECT_OK(landbc_variable_dtype(h, "land_mask", &dt));
    CHECK(dt == LANDBC_UINT8);
    double res = 0;
    int cf = 0;
    EXPECT_OK(landbc_resolution(h, &res, &cf));
    CHECK(res > 0.05 - 1e-12 && res < 0.05 + 1e-12);
    CHECK(cf == CF);
  }
  group_end();

  group_begin("set grid + shapes");
  {
    EXPECT_OK(landbc_set_grid(h, LAT_S, LAT_N, LON_W, LON_E));
    int64_t ny = 0, nx = 0, cny = 0, cnx = 0;
    EXPECT_OK(landbc_grid_shape(h, &ny, &nx, &cny, &cnx));
    CHECK(ny == NY && nx == NX && cny == CNY && cnx == CNX);
    int nd = -1;
    int64_t s[3] = {-1, -1, -1};
    EXPECT_OK(landbc_variable_shape(h, "t2m", &nd, s, 3));
    CHECK(nd == 2 && s[0] == CNY && s[1] == CNX);
    EXPECT_OK(landbc_variable_shape(h, "luh2_frac", &nd, s, 3));
    CHECK(nd == 3 && s[0] == NLUH2 && s[1] == CNY && s[2] == CNX);
    EXPECT_OK(landbc_variable_shape(h, "co2", &nd, s, 3));
    CHECK(nd == 0);
    EXPECT_OK(landbc_variable_shape(h, "lai", &nd, s, 3));
    CHECK(nd == 2 && s[0] == NY && s[1] == NX);
    EXPECT_OK(landbc_variable_shape(h, "cvh", &nd, s, 3));
    CHECK(nd == 2 && s[0] == NY && s[1] == NX);
    /* a shape buffer too small for the rank: refused, nothing written */
    int64_t two[2] = {-7, -7};
    EXPECT_STATUS(landbc_variable_shape(h, "luh2_frac", &nd, two, 2), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("rank is 3");
    CHECK(two[0] == -7 && two[1] == -7);
  }
  group_end();

  group_begin("initialise + first step");
  {
    bind_statics(h, 0);
    bind_priors(h);
    EXPECT_OK(landbc_initialise(h, 2000, 12, "forward"));
    {
      int dir = 0;
      EXPECT_OK(landbc_direction(h, &dir));
      CHECK(dir == 1);
    }
    CHECK(time_is(h, 2000, 12));
    CHECK(next_time_is(h, 2001, 1));
    bind_forcing(h, NULL);
    y = m = 0;
    EXPECT_OK(landbc_step(h, &y, &m));
    CHECK(y == 2001 && m == 1);
    CHECK(time_is(h, 2001, 1));
    CHECK(next_time_is(h, 2001, 2));

    EXPECT_OK(landbc_get_field(h, "lai", lai, LANDBC_FLOAT32, NPIX));
    EXPECT_OK(landbc_get_field(h, "lu", lu, LANDBC_UINT8, NPIX));
    EXPECT_OK(landbc_get_field(h, "lc", lc, LANDBC_UINT8, NPIX));
    EXPECT_OK(landbc_get_field(h, "cvh", cvh, LANDBC_FLOAT32, NPIX));
    int finite = 1, in_range = 1, sea_lai = 1, sea_lc = 1, sea_lu = 1, codes = 1, cvh_ok = 1;
    int land_lai_pos = 0;
    for (int i = 0; i < NY; i++)
      for (int j = 0; j < NX; j++) {
        int k = i * NX + j;
        if (!isfinite(lai[k])) finite = 0;
        if (!(lai[k] >= 0.0f && lai[k] <= 15.0f)) in_range = 0;
        if (lu[k] > 7 || lc[k] > 20) codes = 0;
        if (!(cvh[k] >= 0.0f && cvh[k] <= 1.0f)) cvh_ok = 0;
        if (is_sea(i, j)) {
          if (lai[k] != 0.0f) sea_lai = 0;
          if (lc[k] != 15) sea_lc = 0;
          if (lu[k] != 0) sea_lu = 0;
          if (cvh[k] != 0.0f) cvh_ok = 0;
        } else if (lai[k] > 0.0f) {
          land_lai_pos++;
        }
      }
    CHECK(finite);
    CHECK(in_range);
    CHECK(codes);
    CHECK(sea_lai);
    CHECK(sea_lc);
    CHECK(sea_lu);
    CHECK(cvh_ok);
    CHECK(land_lai_pos > 0);

    /* conversions on the way out; statics can be read back */
    EXPECT_OK(landbc_get_field(h, "lai", lai64, LANDBC_FLOAT64, NPIX));
    int conv = 1;
    for (int k = 0; k < NPIX; k++)
      if (lai64[k] != (double)lai[k]) conv = 0;
    CHECK(conv);
    EXPECT_OK(landbc_get_field(h, "land_mask", mask_back, LANDBC_UINT8, NPIX));
    CHECK(memcmp(mask_back, g_land_mask, NPIX) == 0);
    EXPECT_OK(landbc_get_field(h, "elevation", elev32, LANDBC_FLOAT32, NPIX));
    conv = 1;
    for (int k = 0; k < NPIX; k++)
      if (elev32[k] != (float)g_elevation64[k]) conv = 0;
    CHECK(conv);

    const void* dev = NULL;
    int dt = 0;
    EXPECT_OK(landbc_get_field_device(h, "lai", &dev, &dt));
    CHECK(dev != NULL);
    CHECK(dt == LANDBC_FLOAT32);
    /* a CPU emulator: the device pointer is host memory */
    CHECK(dev != NULL && memcmp(dev, lai, sizeof lai) == 0);
    dev = NULL;
    EXPECT_OK(landbc_get_field_device(h, "lu", &dev, &dt));
    CHECK(dev != NULL && dt == LANDBC_UINT8);
  }
  group_end();

  group_begin("two more steps");
  {
    EXPECT_OK(landbc_step(h, &y, &m));
    CHECK(y == 2001 && m == 2);
    EXPECT_OK(landbc_step(h, NULL, NULL)); /* year/month may be NULL */
    CHECK(time_is(h, 2001, 3));
    EXPECT_OK(landbc_get_field(h, "lai", lai, LANDBC_FLOAT32, NPIX));
    int ok = 1;
    for (int k = 0; k < NPIX; k++)
      if (!(lai[k] >= 0.0f && lai[k] <= 15.0f)) ok = 0;
    CHECK(ok);
  }
  group_end();

  /* ================================================== restart */
  group_begin("restart: exact on the same handle");
  {
    EXPECT_OK(landbc_save_restart(h, restart));
    CHECK(access(restart, R_OK) == 0);
    CHECK(time_is(h, 2001, 3));
    EXPECT_OK(landbc_step(h, &y, &m));
    CHECK(y == 2001 && m == 4);
    EXPECT_OK(landbc_get_field(h, "lai", lai_ref, LANDBC_FLOAT32, NPIX));
    EXPECT_OK(landbc_get_field(h, "lu", lu_ref, LANDBC_UINT8, NPIX));
    EXPECT_OK(landbc_get_field(h, "lc", lc_ref, LANDBC_UINT8, NPIX));

    EXPECT_OK(landbc_load_restart(h, restart));
    CHECK(time_is(h, 2001, 3));
    CHECK(next_time_is(h, 2001, 4));
    bind_forcing(h, NULL); /* the contract does not say whether bindings survive a load */
    EXPECT_OK(landbc_step(h, &y, &m));
    CHECK(y == 2001 && m == 4);
    EXPECT_OK(landbc_get_field(h, "lai", lai, LANDBC_FLOAT32, NPIX));
    CHECK(memcmp(lai, lai_ref, sizeof lai) == 0);
    EXPECT_OK(landbc_get_field(h, "lu", lu, LANDBC_UINT8, NPIX));
    CHECK(memcmp(lu, lu_ref, NPIX) == 0);
    EXPECT_OK(landbc_get_field(h, "lc", lc, LANDBC_UINT8, NPIX));
    CHECK(memcmp(lc, lc_ref, NPIX) == 0);
  }
  group_end();

  group_begin("restart: into a fresh handle");
  {
    /* NULL device and dtype mean "cpu" and "float32" */
    EXPECT_OK(landbc_open(bundle, NULL, NULL, &h3));
    CHECK(h3 != NULL);
    if (h3) {
      EXPECT_STATUS(landbc_time(h3, &y, &m), LANDBC_ERR_STATE); /* not initialised yet */
      EXPECT_OK(landbc_load_restart(h3, restart));              /* no set_grid before */
      CHECK(time_is(h3, 2001, 3));
      int64_t ny = 0, nx = 0, cny = 0, cnx = 0;
      EXPECT_OK(landbc_grid_shape(h3, &ny, &nx, &cny, &cnx));
      CHECK(ny == NY && nx == NX && cny == CNY && cnx == CNX);
      bind_forcing(h3, NULL);
      EXPECT_OK(landbc_step(h3, &y, &m));
      CHECK(y == 2001 && m == 4);
      EXPECT_OK(landbc_get_field(h3, "lai", lai2, LANDBC_FLOAT32, NPIX));
      CHECK(memcmp(lai2, lai_ref, sizeof lai2) == 0);
      EXPECT_OK(landbc_get_field(h3, "lc", lc, LANDBC_UINT8, NPIX));
      CHECK(memcmp(lc, lc_ref, NPIX) == 0);
      /* the statics came with the restart */
      EXPECT_OK(landbc_get_field(h3, "land_mask", mask_back, LANDBC_UINT8, NPIX));
      CHECK(memcmp(mask_back, g_land_mask, NPIX) == 0);
    }
  }
  group_end();

  /* ================================================== failures: open */
  group_begin("open failures");
  {
    landbc_emulator* bad = NULL;
    int sentinel = 0;

    snprintf(path, sizeof path, "%s/no_such_bundle", scratch);
    rmdir(path);
    bad = (landbc_emulator*)(void*)&sentinel; /* must be overwritten with NULL */
    /* a missing bundle folder is an I/O error */
    EXPECT_STATUS(landbc_open(path, "cpu", "float32", &bad), LANDBC_ERR_IO);
    EXPECT_MSG("no_such_bundle");
    CHECK_NOT_OPENED(bad, &sentinel);

    /* folder exists, no manifest.json: the bundle is malformed */
    snprintf(path, sizeof path, "%s/nomanifest", scratch);
    CHECK(make_bundle(path, real_bundle, NULL) == 0);
    bad = (landbc_emulator*)(void*)&sentinel;
    EXPECT_STATUS(landbc_open(path, "cpu", "float32", &bad), LANDBC_ERR_BUNDLE);
    EXPECT_MSG("manifest");
    CHECK_NOT_OPENED(bad, &sentinel);

    size_t len = 0;
    snprintf(path, sizeof path, "%s/manifest.json", real_bundle);
    char* manifest = read_file(path, &len);
    CHECK(manifest != NULL);
    if (manifest) {
      /* control: symlinked files and a verbatim manifest copy open fine */
      snprintf(path, sizeof path, "%s/goodbundle", scratch);
      CHECK(make_bundle(path, real_bundle, manifest) == 0);
      landbc_emulator* good = NULL;
      EXPECT_OK(landbc_open(path, "cpu", "float32", &good));
      CHECK(good != NULL);
      EXPECT_OK(landbc_close(&good));

      /* one hex digit of the stepper_forward.pt checksum changed */
      CHECK(corrupt_checksums(manifest, "stepper_forward.pt") >= 1);
      snprintf(path, sizeof path, "%s/badbundle", scratch);
      CHECK(make_bundle(path, real_bundle, manifest) == 0);
      bad = (landbc_emulator*)(void*)&sentinel;
      EXPECT_STATUS(landbc_open(path, "cpu", "float32", &bad), LANDBC_ERR_BUNDLE);
      EXPECT_MSG("sha256");
      EXPECT_MSG("stepper_forward.pt");
      CHECK_NOT_OPENED(bad, &sentinel);
      free(manifest);
    }

    /* devices: a CUDA device that does not exist here (this assumes fewer
     * than 8 GPUs), and a string that is not a device at all */
    bad = (landbc_emulator*)(void*)&sentinel;
    EXPECT_STATUS(landbc_open(bundle, "cuda:7", "float32", &bad), LANDBC_ERR_DEVICE);
    EXPECT_MSG("cuda");
    CHECK_NOT_OPENED(bad, &sentinel);
    bad = (landbc_emulator*)(void*)&sentinel;
    EXPECT_STATUS(landbc_open(bundle, "tpu", "float32", &bad), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("tpu");
    CHECK_NOT_OPENED(bad, &sentinel);
    bad = (landbc_emulator*)(void*)&sentinel;
    EXPECT_STATUS(landbc_open(bundle, "cpu", "float16", &bad), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("float16");
    CHECK_NOT_OPENED(bad, &sentinel);
    /* NULL bundle folder or handle pointer */
    bad = (landbc_emulator*)(void*)&sentinel;
    EXPECT_STATUS(landbc_open(NULL, "cpu", "float32", &bad), LANDBC_ERR_ARGUMENT);
    CHECK_NOT_OPENED(bad, &sentinel);
    EXPECT_STATUS(landbc_open(bundle, "cpu", "float32", NULL), LANDBC_ERR_ARGUMENT);

    /* bfloat16 nets open */
    landbc_emulator* bf = NULL;
    EXPECT_OK(landbc_open(bundle, "cpu", "bfloat16", &bf));
    CHECK(bf != NULL);
    EXPECT_OK(landbc_close(&bf));
    CHECK(bf == NULL);
  }
  group_end();

  /* ================================================== failures: call order, initialise */
  group_begin("initialise failures");
  {
    EXPECT_OK(landbc_open(bundle, "cpu", "float32", &h2));
    if (!h2) {
      CHECK(h2 != NULL);
    } else {
      EXPECT_STATUS(landbc_step(h2, &y, &m), LANDBC_ERR_STATE); /* before initialise */
      EXPECT_STATUS(landbc_initialise(h2, 2000, 12, "forward"), LANDBC_ERR_STATE); /* no grid */
      /* grids that are not whole coarse cells, or not a box */
      EXPECT_STATUS(landbc_set_grid(h2, LAT_S, LAT_N, LON_W, LON_E + 0.1), LANDBC_ERR_ARGUMENT);
      EXPECT_STATUS(landbc_set_grid(h2, LAT_N, LAT_S, LON_W, LON_E), LANDBC_ERR_ARGUMENT);
      EXPECT_OK(landbc_set_grid(h2, LAT_S, LAT_N, LON_W, LON_E));

      /* a static never bound */
      bind_statics(h2, 1);
      bind_priors(h2);
      EXPECT_STATUS(landbc_initialise(h2, 2000, 12, "forward"), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("slope");
      EXPECT_STATUS(landbc_time(h2, &y, &m), LANDBC_ERR_STATE); /* still not initialised */
      EXPECT_OK(landbc_set_field(h2, "slope", g_slope, LANDBC_FLOAT32, 2, SHAPE_HI));

      /* a fractional class code: validated at bind or (the contract) at use */
      int rc = RC(landbc_set_field(h2, "lu", g_lu_frac, LANDBC_FLOAT32, 2, SHAPE_HI));
      CHECK(rc == LANDBC_OK || rc == LANDBC_ERR_ARGUMENT);
      if (rc == LANDBC_OK) {
        EXPECT_STATUS(landbc_initialise(h2, 2000, 12, "forward"), LANDBC_ERR_ARGUMENT);
      }
      EXPECT_MSG("lu");
      EXPECT_STATUS(landbc_time(h2, &y, &m), LANDBC_ERR_STATE);
      EXPECT_OK(landbc_set_field(h2, "lu", g_lu, LANDBC_UINT8, 2, SHAPE_HI));

      EXPECT_STATUS(landbc_initialise(h2, 2000, 13, "forward"), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("month");
      EXPECT_STATUS(landbc_initialise(h2, 2000, 0, "forward"), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("month");
      EXPECT_STATUS(landbc_initialise(h2, 2000, 12, "sideways"), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("direction");
      EXPECT_STATUS(landbc_time(h2, &y, &m), LANDBC_ERR_STATE);

      EXPECT_OK(landbc_initialise(h2, 2000, 12, NULL)); /* NULL: forward */
      CHECK(next_time_is(h2, 2001, 1));
      EXPECT_STATUS(landbc_set_grid(h2, LAT_S, LAT_N, LON_W, LON_E), LANDBC_ERR_STATE);
      CHECK(time_is(h2, 2000, 12));

      /* forcing with tp never bound */
      bind_forcing(h2, "tp");
      EXPECT_STATUS(landbc_step(h2, &y, &m), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("tp");
      EXPECT_MSG("missing");
      CHECK(time_is(h2, 2000, 12));
      /* and the same step once tp is there: equals the main handle's first step */
      EXPECT_OK(landbc_set_field(h2, "tp", g_tp, LANDBC_FLOAT32, 2, SHAPE_CO));
      EXPECT_OK(landbc_step(h2, &y, &m));
      CHECK(y == 2001 && m == 1);
    }
  }
  group_end();

  group_begin("backward direction");
  {
    landbc_emulator* hb = NULL;
    EXPECT_OK(landbc_open(bundle, "cpu", "float32", &hb));
    if (hb) {
      EXPECT_OK(landbc_set_grid(hb, LAT_S, LAT_N, LON_W, LON_E));
      bind_statics(hb, 0);
      bind_priors(hb);
      EXPECT_OK(landbc_initialise(hb, 2001, 1, "backward"));
      CHECK(time_is(hb, 2001, 1));
      CHECK(next_time_is(hb, 2000, 12));
      {
        int dir = 0;
        EXPECT_OK(landbc_direction(hb, &dir));
        CHECK(dir == -1);
      }
      bind_forcing(hb, "t2m");
      /* on a CPU emulator set_field_device is set_field */
      EXPECT_OK(landbc_set_field_device(hb, "t2m", g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO));
      EXPECT_OK(landbc_step(hb, &y, &m));
      CHECK(y == 2000 && m == 12);
      CHECK(next_time_is(hb, 2000, 11));
      EXPECT_OK(landbc_get_field(hb, "lai", lai2, LANDBC_FLOAT32, NPIX));
      int ok = 1;
      for (int k = 0; k < NPIX; k++)
        if (!(lai2[k] >= 0.0f && lai2[k] <= 15.0f) || (is_sea(k / NX, k % NX) && lai2[k] != 0))
          ok = 0;
      CHECK(ok);
      EXPECT_OK(landbc_close(&hb));
    }
    CHECK(hb == NULL);
  }
  group_end();

  /* ================================================== failures: binding, step, get */
  /* h is at 2001-04; h3 (a clean copy of it, from the restart) too. Every failure
   * below must leave h as it is: its time, its fields, its bindings. */
  group_begin("bind/step/get failures");
  {
    static float before[NPIX];
    CHECK(time_is(h, 2001, 4));
    CHECK(get_lai(h, before));
    CHECK(memcmp(before, lai_ref, sizeof before) == 0);

    EXPECT_STATUS(landbc_set_field(h, "t2m", g_t2m_narrow, LANDBC_FLOAT32, 2, SHAPE_CO_NARROW),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2m");
    EXPECT_MSG("shape");
    EXPECT_STATUS(landbc_set_field(h, "t2m", g_t2m, LANDBC_FLOAT32, 3, SHAPE_CO_3D),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2m");
    EXPECT_STATUS(landbc_set_field(h, "luh2_frac", g_luh2, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("luh2_frac");
    EXPECT_STATUS(landbc_set_field(h, "t2", g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2");
    EXPECT_STATUS(landbc_set_field(h, "t2m", g_t2m, 99, 2, SHAPE_CO), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_set_field(h, NULL, g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_set_field(h, "t2m", NULL, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_set_field(h, "t2m", g_t2m, LANDBC_FLOAT32, 2, NULL), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_set_grid(h, LAT_S, LAT_N, LON_W, LON_E), LANDBC_ERR_STATE);
    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));

    /* NaN / inf: the bind may succeed (values are validated at use) */
    int rc = RC(landbc_set_field(h, "t2m", g_t2m_nan, LANDBC_FLOAT32, 2, SHAPE_CO));
    CHECK(rc == LANDBC_OK || rc == LANDBC_ERR_ARGUMENT);
    if (rc == LANDBC_OK) EXPECT_STATUS(landbc_step(h, &y, &m), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2m");
    EXPECT_MSG("NaN");
    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));

    /* out of range */
    rc = RC(landbc_set_field(h, "t2m", g_t2m_hot, LANDBC_FLOAT32, 2, SHAPE_CO));
    CHECK(rc == LANDBC_OK || rc == LANDBC_ERR_ARGUMENT);
    if (rc == LANDBC_OK) EXPECT_STATUS(landbc_step(h, &y, &m), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2m");
    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));
    EXPECT_OK(landbc_set_field(h, "t2m", g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO));

    /* get_field */
    EXPECT_STATUS(landbc_get_field(h, "lai", lai2, LANDBC_FLOAT32, NPIX - 1), LANDBC_ERR_ARGUMENT);
    CHECK(strstr(landbc_last_error(), "count") || strstr(landbc_last_error(), "lai"));
    EXPECT_STATUS(landbc_get_field(h, "lai", NULL, LANDBC_FLOAT32, NPIX), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_get_field(h, "lai", lai2, 99, NPIX), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_get_field(h, NULL, lai2, LANDBC_FLOAT32, NPIX), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_get_field(h, "t2", lai2, LANDBC_FLOAT32, NPIX), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2");
    /* forcing is neither an output nor a static */
    EXPECT_STATUS(landbc_get_field(h, "t2m", lai2, LANDBC_FLOAT32, NCOARSE), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2m");
    const void* dev = NULL;
    int dt = 0;
    EXPECT_STATUS(landbc_get_field_device(h, "t2", &dev, &dt), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_get_field_device(h, "lai", NULL, &dt), LANDBC_ERR_ARGUMENT);

    /* queries */
    int n = 0, dtype = 0, nd = 0;
    int64_t s[3];
    char buf[64];
    EXPECT_STATUS(landbc_variable_count(h, 99, &n), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_variable_name(h, LANDBC_STATIC, 6, buf, sizeof buf), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_variable_name(h, LANDBC_STATIC, -1, buf, sizeof buf), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_variable_units(h, "t2", buf, sizeof buf), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("t2");
    EXPECT_STATUS(landbc_variable_dtype(h, "t2", &dtype), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_variable_shape(h, "t2", &nd, s, 3), LANDBC_ERR_ARGUMENT);
    EXPECT_STATUS(landbc_variable_dtype(h, NULL, &dtype), LANDBC_ERR_ARGUMENT);

    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));
  }
  group_end();

  group_begin("restart failures");
  {
    static float before[NPIX];
    CHECK(get_lai(h, before));

    snprintf(path, sizeof path, "%s/no_such_restart.safetensors", scratch);
    unlink(path);
    EXPECT_STATUS(landbc_load_restart(h, path), LANDBC_ERR_IO);
    EXPECT_MSG("no_such_restart.safetensors");
    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));

    /* 100 pseudo-random bytes: not a safetensors file -> bad input */
    unsigned char junk[100];
    uint32_t x = 12345u;
    for (int i = 0; i < 100; i++) {
      x = x * 1664525u + 1013904223u;
      junk[i] = (unsigned char)(x >> 24);
    }
    snprintf(path, sizeof path, "%s/garbage.safetensors", scratch);
    CHECK(write_file(path, junk, sizeof junk) == 0);
    EXPECT_STATUS(landbc_load_restart(h, path), LANDBC_ERR_ARGUMENT);
    EXPECT_MSG("garbage.safetensors");
    CHECK(time_is(h, 2001, 4));
    CHECK(same_lai(h, before));

    /* a truncated restart: the real header, half the data */
    size_t len = 0;
    char* whole = read_file(restart, &len);
    CHECK(whole != NULL && len > 16);
    if (whole && len > 16) {
      snprintf(path, sizeof path, "%s/truncated.safetensors", scratch);
      CHECK(write_file(path, whole, len / 2) == 0);
      EXPECT_STATUS(landbc_load_restart(h, path), LANDBC_ERR_ARGUMENT);
      EXPECT_MSG("truncated.safetensors");
      CHECK(time_is(h, 2001, 4));
      CHECK(same_lai(h, before));
    }
    free(whole);

    EXPECT_STATUS(landbc_load_restart(h, NULL), LANDBC_ERR_ARGUMENT);

    /* unwritable: the parent "folder" is a regular file */
    snprintf(path, sizeof path, "%s/plainfile", scratch);
    CHECK(write_file(path, "x", 1) == 0);
    snprintf(path, sizeof path, "%s/plainfile/restart.safetensors", scratch);
    EXPECT_STATUS(landbc_save_restart(h, path), LANDBC_ERR_IO);
    CHECK(time_is(h, 2001, 4));

    /* saving from a handle that was never initialised */
    landbc_emulator* fresh = NULL;
    EXPECT_OK(landbc_open(bundle, "cpu", "float32", &fresh));
    if (fresh) {
      snprintf(path, sizeof path, "%s/never.safetensors", scratch);
      EXPECT_STATUS(landbc_save_restart(fresh, path), LANDBC_ERR_STATE);
      EXPECT_OK(landbc_close(&fresh));
    }
  }
  group_end();

  group_begin("state untouched by the failures");
  {
    /* h went through every failure above; h3 is a clean copy of its state.
     * With the same forcing the next month must be bit-identical. */
    CHECK(time_is(h, 2001, 4));
    CHECK(h3 != NULL && time_is(h3, 2001, 4));
    EXPECT_OK(landbc_step(h, &y, &m));
    CHECK(y == 2001 && m == 5);
    EXPECT_OK(landbc_get_field(h, "lai", lai, LANDBC_FLOAT32, NPIX));
    if (h3) {
      EXPECT_OK(landbc_step(h3, &y, &m));
      CHECK(y == 2001 && m == 5);
      EXPECT_OK(landbc_get_field(h3, "lai", lai2, LANDBC_FLOAT32, NPIX));
      CHECK(memcmp(lai, lai2, sizeof lai) == 0);
    }
  }
  group_end();

  /* ================================================== threads */
  group_begin("last error is thread-local");
  {
    EXPECT_STATUS(landbc_set_field(h, "t2", g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_ARGUMENT);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", landbc_last_error());
    CHECK(mine[0] != '\0');

    struct error_probe probe;
    memset(&probe, 0, sizeof probe);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, error_probe_thread, &probe) == 0 && pthread_join(t, NULL) == 0);
    CHECK(probe.before[0] == '\0');      /* a fresh thread has no error */
    CHECK(probe.rc == LANDBC_ERR_STATE); /* NULL handle */
    CHECK(probe.after[0] != '\0');
    CHECK(strcmp(probe.after, mine) != 0);
    CHECK(strcmp(landbc_last_error(), mine) == 0); /* main thread's message unchanged */

    /* after a successful call the message is kept or cleared, never garbage */
    EXPECT_OK(landbc_time(h, &y, &m));
    const char* e = landbc_last_error();
    CHECK(e != NULL && (e[0] == '\0' || strcmp(e, mine) == 0));
  }
  group_end();

  group_begin("distinct handles in two threads");
  {
    /* both back to the restart's 2001-03, stepped at the same time */
    static struct stepper_job a, b;
    int ok = 1;
    ok &= EXPECT_OK(landbc_load_restart(h, restart));
    ok &= h3 && EXPECT_OK(landbc_load_restart(h3, restart));
    ok &= bind_forcing(h, NULL);
    ok &= h3 && bind_forcing(h3, NULL);
    if (ok) {
      a.h = h;
      b.h = h3;
      pthread_t ta, tb;
      int c1 = pthread_create(&ta, NULL, step_thread, &a);
      int c2 = pthread_create(&tb, NULL, step_thread, &b);
      if (c1 == 0) pthread_join(ta, NULL);
      if (c2 == 0) pthread_join(tb, NULL);
      CHECK(c1 == 0 && c2 == 0);
      g_rc = a.rc;
      CHECK(a.rc == LANDBC_OK && a.year == 2001 && a.month == 4);
      g_rc = b.rc;
      CHECK(b.rc == LANDBC_OK && b.year == 2001 && b.month == 4);
      CHECK(memcmp(a.lai, lai_ref, sizeof a.lai) == 0);
      CHECK(memcmp(b.lai, lai_ref, sizeof b.lai) == 0);
    } else {
      CHECK(ok);
    }
  }
  group_end();

  /* ================================================== closed handles */
  group_begin("closed handles");
  {
    landbc_emulator* copy = h2;
    EXPECT_OK(landbc_close(&h2));
    CHECK(h2 == NULL);
    /* the stale value: the library keeps a registry of live handles (no other
     * handle is opened before these calls, so the address cannot be reused) */
    EXPECT_STATUS(landbc_step(copy, &y, &m), LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_time(copy, &y, &m), LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_set_field(copy, "t2m", g_t2m, LANDBC_FLOAT32, 2, SHAPE_CO),
                  LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_get_field(copy, "lai", lai2, LANDBC_FLOAT32, NPIX), LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_step(NULL, &y, &m), LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_time(NULL, &y, &m), LANDBC_ERR_STATE);
    EXPECT_STATUS(landbc_variable_count(NULL, LANDBC_STATIC, &y), LANDBC_ERR_STATE);
    EXPECT_OK(landbc_close(&h2)); /* closing a NULL handle is OK */
    CHECK(h2 == NULL);
    EXPECT_STATUS(landbc_close(&copy), LANDBC_ERR_STATE); /* closing twice is refused */

    /* a later handle never takes a closed one's value, though the allocator
     * reuses the closed emulators' memory (with address handles, 8 open/close
     * cycles here gave the same value again and again): handles are ids */
    {
      enum { CYCLES = 8 };
      landbc_emulator* values[CYCLES];
      int repeats = 0;
      for (int i = 0; i < CYCLES; ++i) {
        landbc_emulator* h4 = NULL;
        EXPECT_OK(landbc_open(bundle, "cpu", "float32", &h4));
        values[i] = h4;
        repeats += h4 == copy;
        for (int j = 0; j < i; ++j) repeats += values[j] == h4;
        EXPECT_STATUS(landbc_time(copy, &y, &m), LANDBC_ERR_STATE);
        if (i > 0)
          EXPECT_STATUS(landbc_variable_count(values[i - 1], LANDBC_STATIC, &y), LANDBC_ERR_STATE);
        EXPECT_OK(landbc_variable_count(h4, LANDBC_STATIC, &y));
        EXPECT_OK(landbc_close(&h4));
      }
      CHECK(repeats == 0);
    }

    EXPECT_OK(landbc_close(&h3));
    CHECK(h3 == NULL);
    EXPECT_OK(landbc_close(&h));
    CHECK(h == NULL);
  }
  group_end();

  if (g_failed == 0)
    printf("test_c_api: all %d checks passed\n", g_checks);
  else
    printf("test_c_api: %d of %d checks FAILED\n", g_failed, g_checks);
  return g_failed ? 1 : 0;
}
