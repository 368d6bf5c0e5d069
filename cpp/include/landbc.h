/*
 * landbc.h — the C ABI of landbc: step-wise emulators of land use (LU), land
 * cover (LC) and leaf area index (LAI) for Earth-system models, callable
 * in-process from C, C++ and Fortran (module `landbc`, cpp/fortran/landbc.f90).
 *
 * Calling sequence (cpp/README.md has the full walk-through):
 *
 *   landbc_open(bundle, "cpu" | "cuda" | "cuda:N", "float32" | "bfloat16", &h)
 *   landbc_set_grid(h, lat_south, lat_north, lon_west, lon_east)
 *   landbc_set_field(h, name, ...)          every static and prior field
 *   landbc_initialise(h, year, month, "forward" | "backward")
 *   loop:
 *     landbc_set_field(h, name, ...)        forcing (bind once, refill each step)
 *     landbc_step(h, &year, &month)         fields of the next month
 *     landbc_get_field(h, name, buffer, ...) outputs into caller memory
 *   landbc_save_restart(h, path) / landbc_load_restart(h, path)
 *   on the host model's grid (see landbc_set_host_grid):
 *     landbc_set_host_grid(h, "O96", weights_dir)     after initialise
 *     landbc_set_host_field(h, "t2m", ...)            forcing given on it
 *     landbc_get_host_field(h, "cvh", buffer, ...)    outputs aggregated to it
 *   landbc_close(&h)
 *
 * and, with no handle, at every time step of the host (see "Calendars and LAI
 * interpolation" below):
 *   landbc_coupling_step(calendar, dt, direction, y, m, d, sec, &events)
 *   landbc_lai_weights(calendar, y, m, d, sec, &ya, &ma, &wa, &yb, &mb, &wb)
 *
 * Errors: every function returns a status code (LANDBC_OK = 0 on success);
 * landbc_last_error() gives the message of the last failure on the calling
 * thread. No C++ exception and no abort crosses this boundary. A failed call
 * leaves the emulator's state as it was.
 *
 * Memory layout: fields are row-major (C order), rows north to south, columns
 * west to east; a high-resolution field is (ny, nx), a coarse forcing field
 * (ny / f, nx / f), a channelled one (channels, ...) and a scalar has ndim 0.
 * A Fortran array declared (nx, ny) has exactly this layout (the Fortran
 * module passes its shape reversed; nothing is transposed or copied).
 *
 * Bound fields are not copied: landbc keeps a view of the caller's memory,
 * which must stay valid and unchanged during landbc_initialise / landbc_step
 * and until it is re-bound or the handle is closed. Values are validated
 * (finite, in range, integer class codes) each time they are used. Fields in
 * the variable's own dtype (landbc_variable_dtype) on the emulator's device
 * are used in place; others are converted (one copy).
 *
 * Thread safety: one handle must not be used by two threads at once; distinct
 * handles are independent.
 */
#ifndef LANDBC_H
#define LANDBC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define LANDBC_OK 0
#define LANDBC_ERR_ARGUMENT 1 /* bad input: name, shape, dtype, NaN, range, time */
#define LANDBC_ERR_IO 2       /* a file is missing, unreadable or unwritable */
#define LANDBC_ERR_BUNDLE 3   /* manifest, checksum or stepper does not match */
#define LANDBC_ERR_DEVICE 4   /* the requested device is not available */
#define LANDBC_ERR_STATE 5    /* call out of order, or a NULL / closed handle */
#define LANDBC_ERR_INTERNAL 6 /* anything else (message from libtorch) */

/* Element types of caller buffers. */
#define LANDBC_UINT8 1
#define LANDBC_INT32 2
#define LANDBC_FLOAT32 3
#define LANDBC_FLOAT64 4

/* Roles of variables (as listed in the bundle's manifest). */
#define LANDBC_STATIC 1  /* land_mask, elevation, ... : set before initialise */
#define LANDBC_FORCING 2 /* luh2_frac, t2m, ... : bound before every step */
#define LANDBC_STATE 3   /* lu, lc, lai: priors before initialise, outputs after */
#define LANDBC_DERIVED 4 /* cvh, cvl, tvh, tvl, lai_hv, lai_lv: outputs */

/* An emulator handle. Opaque: its value is an id that landbc_open hands out and
 * never reuses, not an address, so a closed handle's stale value can never name
 * a later emulator; calls with it return LANDBC_ERR_STATE. */
typedef struct landbc_emulator landbc_emulator;

/* Message of the last failed call on this thread ("" if none). The pointer is
 * valid until the next failing landbc call on this thread; successful calls,
 * landbc_status_name and landbc_version leave it as it is. */
const char* landbc_last_error(void);
/* Name of a status code ("LANDBC_ERR_ARGUMENT", ...). */
const char* landbc_status_name(int status);
/* Version of landbc ("0.1.0"). */
const char* landbc_version(void);

/* Open a bundle folder: the manifest is parsed and the sha256 of every file is
 * checked. device: "cpu", "cuda" or "cuda:N" (each MPI rank picks its GPU).
 * dtype of the nets: "float32" or "bfloat16". NULL device / dtype mean "cpu" /
 * "float32". On success *handle is a new emulator; on failure it is NULL. */
int landbc_open(const char* bundle_dir, const char* device, const char* dtype,
                landbc_emulator** handle);
/* Free the emulator and set *handle to NULL. Closing a NULL handle is OK;
 * any later call with the old handle value returns LANDBC_ERR_STATE. */
int landbc_close(landbc_emulator** handle);

/* The domain: a lat-lon box in degrees at the bundle's resolution. Its rows,
 * columns and north-west corner must be whole multiples of the coarse cell.
 * Setting a grid drops all bound fields. Not allowed once initialised. */
int landbc_set_grid(landbc_emulator* h, double lat_south, double lat_north, double lon_west,
                    double lon_east);

/* Bind a static, prior or forcing field to caller memory (row-major, see
 * above). shape has ndim entries (may be NULL for ndim 0, a scalar); it must
 * equal landbc_variable_shape. */
int landbc_set_field(landbc_emulator* h, const char* name, const void* data, int dtype, int ndim,
                     const int64_t* shape);
/* The same for memory on the emulator's device (a CUDA pointer for a
 * GPU-resident host; on a CPU emulator the same as landbc_set_field). */
int landbc_set_field_device(landbc_emulator* h, const char* name, const void* data, int dtype,
                            int ndim, const int64_t* shape);

/* Start from the bound statics and priors, valid at (year, month): LU and LC of
 * that year, LAI of that month. direction: "forward" or "backward" (NULL means
 * forward). The first step then produces the next month in that direction. */
int landbc_initialise(landbc_emulator* h, int year, int month, const char* direction);

/* Advance one month with the bound forcing (valid at the next month, see
 * landbc_next_time). *year and *month (may be NULL) receive the new month. */
int landbc_step(landbc_emulator* h, int* year, int* month);

/* Copy a field of the current month into caller memory, converted to dtype:
 * an output (LANDBC_STATE or LANDBC_DERIVED) or a static field. count is the
 * number of elements of buffer and must equal the field's size; the buffer is
 * written row-major with the field's shape (landbc_variable_shape). */
int landbc_get_field(landbc_emulator* h, const char* name, void* buffer, int dtype, int64_t count);
/* Pointer to the emulator's own copy of a field on its device (CUDA memory on
 * a GPU) and its dtype; read-only, valid until the next initialise, step,
 * load_restart or close. */
int landbc_get_field_device(landbc_emulator* h, const char* name, const void** data, int* dtype);

/* Month of the current state, and the month the next step produces. */
int landbc_time(const landbc_emulator* h, int* year, int* month);
int landbc_next_time(const landbc_emulator* h, int* year, int* month);
/* Direction of the initialised (or restarted) run: +1 forward, -1 backward. */
int landbc_direction(const landbc_emulator* h, int* direction);

/* A block of a decomposed domain (one MPI rank's), after landbc_initialise or
 * landbc_load_restart on the block's array: the block and a halo of its
 * neighbours' data. Cuts lie on the tile lattice (multiples of `stride` in
 * global pixel indices) and each cut side has a halo of `width` px
 * (landbc_halo_width, any time after landbc_open: a host decomposes its domain
 * before it initialises its block); sides on the real domain edge have none. A step is then
 * run stage by stage: for index 0 .. landbc_stage_count - 1, landbc_run_stage
 * computes the block's new `field` (lu, lc or lai); the host sends its block's
 * strips of it to the neighbours (landbc_get_prior gives the whole array) and
 * writes theirs into its halo (landbc_fill_halo, the whole array, its block
 * ignored). After the last stage the month is complete (landbc_get_field,
 * landbc_time). The block then holds exactly the whole domain's values.
 * landbc_step refuses a block with halos. */
int landbc_halo_width(const landbc_emulator* h, int* stride, int* width);
int landbc_set_halo(landbc_emulator* h, int top, int bottom, int left, int right);
int landbc_stage_count(const landbc_emulator* h, int* count);
int landbc_run_stage(landbc_emulator* h, int index, char* field, size_t field_len);
int landbc_get_prior(landbc_emulator* h, const char* name, void* buffer, int dtype, int64_t count);
int landbc_fill_halo(landbc_emulator* h, const char* name, const void* data, int dtype,
                     int64_t count);

/* Restart files: safetensors with the statics, priors, time, origin and
 * direction; the same format as the Python API (either reads the other's).
 * Writing is atomic (temporary file, then rename). Loading replaces the grid,
 * direction, time and state; on failure nothing changes. Bound fields stay
 * bound if the restart's grid equals the current one, else they are dropped. */
int landbc_save_restart(const landbc_emulator* h, const char* path);
int landbc_load_restart(landbc_emulator* h, const char* path);

/* The host model's own grid (regular lat-lon or reduced Gaussian, e.g. "O96",
 * "N320", "1/1"). The remap weights are computed once, in Python, by
 *
 *   landbc remap-weights --cube <cube> [--box S N W E] --grid O96 --out <weights_dir>
 *
 * (land-masked conservative weights from this domain to the host grid, and
 * host grid to the coarse forcing grid); the core loads and applies them with
 * the same arithmetic as the Python front, so fields are bit-identical.
 *
 * landbc_set_host_grid: after landbc_initialise / landbc_load_restart (the
 * files are checked against the domain and its land mask; a restart with
 * another domain or mask drops the host grid). A failed call keeps the
 * previous host grid. name is compared case-insensitively with the name given
 * to `landbc remap-weights`. */
int landbc_set_host_grid(landbc_emulator* h, const char* name, const char* weights_dir);
/* Number of points of the host grid (a reduced Gaussian grid's npoints, a
 * regular grid's nlat * nlon, row-major from the north-west). */
int landbc_host_grid_size(const landbc_emulator* h, int64_t* npoints);
/* Bind a coarse forcing field given on the host grid (float32 or float64):
 * shape (npoints) or (channels, npoints), or the host grid's own 2-D shape.
 * A view of caller memory like landbc_set_field; each landbc_step remaps it to
 * the coarse grid (area-weighted mean). Replaces a landbc_set_field binding of
 * the same variable and vice versa. */
int landbc_set_host_field(landbc_emulator* h, const char* name, const void* data, int dtype,
                          int ndim, const int64_t* shape);
/* A high-resolution output (or static) of the current month on the host grid,
 * by ECLand's rules: the mean over each cell's land for continuous fields
 * (cvh, cvl, lai_hv, lai_lv, lai), the dominant class (largest land area; ties
 * to the smallest code) for class maps (tvh, tvl, lu, lc); NaN where a cell
 * has no land of the domain. dtype LANDBC_FLOAT64 or LANDBC_FLOAT32; count
 * must equal landbc_host_grid_size. */
int landbc_get_host_field(landbc_emulator* h, const char* name, void* buffer, int dtype,
                          int64_t count);

/* Queries. Names and units come from the bundle's manifest. */
int landbc_grid_shape(const landbc_emulator* h, int64_t* ny, int64_t* nx, int64_t* coarse_ny,
                      int64_t* coarse_nx);
int landbc_resolution(const landbc_emulator* h, double* res, int* coarse_factor);
int landbc_variable_count(const landbc_emulator* h, int role, int* count);
/* Name of the index-th (0-based) variable of a role, NUL-terminated into buf.
 * A buffer too small for the string (and its NUL) is LANDBC_ERR_ARGUMENT, with
 * nothing written; 64 bytes hold every name and unit of the catalog. */
int landbc_variable_name(const landbc_emulator* h, int role, int index, char* buf, size_t buflen);
int landbc_variable_units(const landbc_emulator* h, const char* name, char* buf, size_t buflen);
/* Native dtype (LANDBC_UINT8 for class codes, LANDBC_FLOAT32 otherwise). */
int landbc_variable_dtype(const landbc_emulator* h, const char* name, int* dtype);
/* Expected shape on the current grid into shape[0 .. ndim-1]; `capacity` is the
 * number of entries shape holds (3 suffice for every variable): fewer than the
 * variable's rank is LANDBC_ERR_ARGUMENT, with nothing written. */
int landbc_variable_shape(const landbc_emulator* h, const char* name, int* ndim, int64_t* shape,
                          int capacity);

/* ---------------------------------------------------------------------------
 * Calendars and LAI interpolation (no handle, no bundle, no libtorch involved)
 *
 * A host model steps in seconds on its own CF calendar and needs, at every
 * step, the weights of the two monthly LAI fields (ECLand's linear
 * interpolation between mid-month values anchored on day 15, 00 UTC) and, at
 * some steps, a new monthly LAI (landbc_step) or yearly LU/LC. These functions
 * answer both, bit-identical to the Python module landbc.coupler.calendar
 * (interpolation_weights, CouplingSchedule.step): exact integer seconds, and
 * w_a = (t2 - t) / (t2 - t1) correctly rounded, where t1 <= t < t2 are the
 * anchors of month a and month b.
 *
 * calendar: "standard" (alias "gregorian": Julian before 1582-10-15, 4 October
 * 1582 followed by 15 October), "proleptic_gregorian", "julian", "noleap"
 * ("365_day"), "all_leap" ("366_day") or "360_day"; case and surrounding
 * blanks are ignored, as in CF attributes. Years are astronomical (year 0 =
 * 1 BC), |year| <= 1000000. A time is (year, month, day, seconds_of_day),
 * seconds_of_day in 0..86399 (UTC, the land model's clock), and must exist in
 * the calendar (no 29 February in noleap, no day 31 in 360_day).
 * Bad arguments give LANDBC_ERR_ARGUMENT, with landbc_last_error() naming the
 * argument, what was expected and what was found; outputs are then unchanged.
 * -------------------------------------------------------------------------- */

/* Days of (year, month), of year, in calendar (October 1582 has 21 days and
 * 1582 has 355 in "standard"). */
int landbc_calendar_days_in_month(const char* calendar, int year, int month, int* days);
int landbc_calendar_days_in_year(const char* calendar, int year, int* days);

/* Weights of monthly LAI at a time: LAI(t) = w_a * LAI(year_a, month_a) +
 * w_b * LAI(year_b, month_b), month_a the earlier of the two months whose
 * day-15 00 UTC anchors bracket t (t1 <= t < t2; exactly on an anchor, that
 * month is month a with w_a = 1). w_b = 1 - w_a, computed in double. Any output
 * pointer may be NULL. Also what a run needs before its first step: the LAI of
 * months a and b, and the LU/LC of the start's year. */
int landbc_lai_weights(const char* calendar, int year, int month, int day, int64_t seconds_of_day,
                       int* year_a, int* month_a, double* w_a, int* year_b, int* month_b,
                       double* w_b);

/* What one host step needs (CouplingSchedule.step). 80 bytes, no padding
 * (offsets in comments); Fortran: type(landbc_coupling_events), bind(C). */
typedef struct landbc_coupling_events {
  int64_t seconds_of_day; /*  0: end of the step: seconds since 00 UTC */
  double w_a;             /*  8: LAI weights at the end of the step ... */
  double w_b;             /* 16: ... w_b = 1 - w_a */
  int year;               /* 24: end of the step (start + dt forward, start - dt backward) */
  int month;              /* 28 */
  int day;                /* 32 */
  int n_lai;              /* 36: number of months whose LAI is needed now: 0, 1 or 2 */
  int lai_year[2];        /* 40: those months, in the run's order (the LAI bracket at the */
  int lai_month[2];       /* 48: end minus the bracket at the start); entries >= n_lai are 0 */
  int new_lulc;           /* 56: 1 when the step changed the calendar year (crossed 1 January
                                 00 UTC): LU/LC of lulc_year is needed now; else 0 */
  int lulc_year;          /* 60: year of the end of the step (always set) */
  int year_a, month_a;    /* 64, 68: the months of w_a and w_b at the end of the step */
  int year_b, month_b;    /* 72, 76 */
} landbc_coupling_events;

/* The step of a host stepping by dt_seconds (> 0) in direction ("forward" or
 * "backward"; NULL means forward) from the start time (year, month, day,
 * seconds_of_day): its end time, the LAI months to produce now (forward: the
 * later month of the new bracket, so the emulator steps month + 1; backward:
 * the earlier one), whether a new year's LU/LC is needed, and the LAI weights
 * at the end. Call it every step with the previous step's end as start. */
int landbc_coupling_step(const char* calendar, int64_t dt_seconds, const char* direction, int year,
                         int month, int day, int64_t seconds_of_day,
                         landbc_coupling_events* events);

#ifdef __cplusplus
}
#endif
#endif /* LANDBC_H */
