!> landbc — Fortran 2008 interface to the landbc C ABI (cpp/include/landbc.h).
!>
!> Two layers:
!>
!>  * `landbc_<name>_c`: one bind(C) interface per C function, the C signature
!>    exactly (C strings NUL-terminated, handles and buffers as type(c_ptr)).
!>  * `landbc_<name>`: Fortran-friendly wrappers, one per C function: Fortran
!>    character strings (trailing blanks trimmed), optional arguments where C
!>    takes NULL, generic `landbc_set_field` / `landbc_get_field` over typed
!>    arrays, shapes in Fortran order and strings returned as allocatable
!>    character. Every one returns the C status code.
!>
!> Memory layout: landbc fields are row-major (C order), rows north to south.
!> A Fortran array declared a(nx, ny) (column index first) has exactly that
!> layout, so the wrappers pass its shape reversed and nothing is transposed
!> or copied. A coarse field is declared (cnx, cny), luh2_frac (cnx, cny, 12),
!> a scalar (co2) is a plain real(c_float).
!>
!> Bound fields are NOT copied: landbc keeps a view of the array you pass to
!> landbc_set_field and reads it at every landbc_initialise / landbc_step. Pass
!> contiguous variables with the TARGET (or ALLOCATABLE with TARGET, or POINTER)
!> attribute that stay alive, and refill them in place between steps. Never
!> pass an expression, an array section or anything the compiler would copy
!> into a temporary. A non-contiguous array (a strided section) is refused with
!> LANDBC_ERR_ARGUMENT rather than silently bound as a temporary copy.
!>
!>     use landbc
!>     type(c_ptr) :: h
!>     real(c_float), allocatable, target :: lai(:,:)
!>     if (landbc_open('weights/demo', 'cpu', 'float32', h) /= LANDBC_OK) &
!>        error stop landbc_error_message()
!>
!> Errors: a status other than LANDBC_OK means the call failed and changed
!> nothing; landbc_error_message() says why (the C library's message, or the
!> message of a check done in this module). Shapes in the library's messages
!> are C shapes, (ny, nx): the reverse of the Fortran declaration.
module landbc
  use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_char, c_null_char, c_int, &
                                         c_int8_t, c_int32_t, c_int64_t, c_size_t, &
                                         c_float, c_double, c_loc, c_f_pointer, c_associated
  implicit none
  private

  ! --- constants of landbc.h ---------------------------------------------------------------
  !> Status codes (see landbc.h for their meaning).
  integer(c_int), parameter, public :: LANDBC_OK = 0
  integer(c_int), parameter, public :: LANDBC_ERR_ARGUMENT = 1  !< name, shape, dtype, range, time
  integer(c_int), parameter, public :: LANDBC_ERR_IO = 2        !< file missing or unreadable
  integer(c_int), parameter, public :: LANDBC_ERR_BUNDLE = 3    !< manifest/checksum mismatch
  integer(c_int), parameter, public :: LANDBC_ERR_DEVICE = 4    !< device not available
  integer(c_int), parameter, public :: LANDBC_ERR_STATE = 5     !< out of order, null handle
  integer(c_int), parameter, public :: LANDBC_ERR_INTERNAL = 6  !< anything else
  !> Element types of caller buffers.
  integer(c_int), parameter, public :: LANDBC_UINT8 = 1
  integer(c_int), parameter, public :: LANDBC_INT32 = 2
  integer(c_int), parameter, public :: LANDBC_FLOAT32 = 3
  integer(c_int), parameter, public :: LANDBC_FLOAT64 = 4
  !> Roles of variables.
  integer(c_int), parameter, public :: LANDBC_STATIC = 1   !< set before initialise
  integer(c_int), parameter, public :: LANDBC_FORCING = 2  !< bound before every step
  integer(c_int), parameter, public :: LANDBC_STATE = 3    !< priors before initialise; outputs
  integer(c_int), parameter, public :: LANDBC_DERIVED = 4  !< outputs

  !> Length of the buffers for names and units returned by the library.
  integer, parameter :: NAME_BUFLEN = 256

  ! --- the C ABI, one interface per function ----------------------------------------------
  public :: landbc_last_error_c, landbc_status_name_c, landbc_version_c, landbc_open_c, &
            landbc_close_c, landbc_set_grid_c, landbc_set_field_c, landbc_set_field_device_c, &
            landbc_initialise_c, landbc_step_c, landbc_get_field_c, landbc_get_field_device_c, &
            landbc_time_c, landbc_next_time_c, landbc_direction_c, landbc_save_restart_c, landbc_load_restart_c, &
            landbc_grid_shape_c, landbc_resolution_c, landbc_variable_count_c, &
            landbc_variable_name_c, landbc_variable_units_c, landbc_variable_dtype_c, &
            landbc_variable_shape_c

  interface
    function landbc_last_error_c() bind(C, name="landbc_last_error") result(message)
      import :: c_ptr
      type(c_ptr) :: message
    end function

    function landbc_status_name_c(status) bind(C, name="landbc_status_name") result(name)
      import :: c_ptr, c_int
      integer(c_int), value :: status
      type(c_ptr) :: name
    end function

    function landbc_version_c() bind(C, name="landbc_version") result(version)
      import :: c_ptr
      type(c_ptr) :: version
    end function

    function landbc_open_c(bundle_dir, device, dtype, handle) bind(C, name="landbc_open") &
        result(status)
      import :: c_ptr, c_char, c_int
      character(kind=c_char), dimension(*), intent(in) :: bundle_dir, device, dtype
      type(c_ptr), intent(out) :: handle
      integer(c_int) :: status
    end function

    function landbc_close_c(handle) bind(C, name="landbc_close") result(status)
      import :: c_ptr, c_int
      type(c_ptr), intent(inout) :: handle
      integer(c_int) :: status
    end function

    function landbc_set_grid_c(h, lat_south, lat_north, lon_west, lon_east) &
        bind(C, name="landbc_set_grid") result(status)
      import :: c_ptr, c_int, c_double
      type(c_ptr), value :: h
      real(c_double), value :: lat_south, lat_north, lon_west, lon_east
      integer(c_int) :: status
    end function

    function landbc_set_field_c(h, name, data, dtype, ndim, shape) &
        bind(C, name="landbc_set_field") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: data
      integer(c_int), value :: dtype, ndim
      integer(c_int64_t), dimension(*), intent(in) :: shape
      integer(c_int) :: status
    end function

    function landbc_set_field_device_c(h, name, data, dtype, ndim, shape) &
        bind(C, name="landbc_set_field_device") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: data
      integer(c_int), value :: dtype, ndim
      integer(c_int64_t), dimension(*), intent(in) :: shape
      integer(c_int) :: status
    end function

    function landbc_initialise_c(h, year, month, direction) bind(C, name="landbc_initialise") &
        result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: year, month
      character(kind=c_char), dimension(*), intent(in) :: direction
      integer(c_int) :: status
    end function

    function landbc_step_c(h, year, month) bind(C, name="landbc_step") result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: year, month
      integer(c_int) :: status
    end function

    function landbc_get_field_c(h, name, buffer, dtype, count) &
        bind(C, name="landbc_get_field") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: buffer
      integer(c_int), value :: dtype
      integer(c_int64_t), value :: count
      integer(c_int) :: status
    end function

    function landbc_get_field_device_c(h, name, data, dtype) &
        bind(C, name="landbc_get_field_device") result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), intent(out) :: data
      integer(c_int), intent(out) :: dtype
      integer(c_int) :: status
    end function

    function landbc_time_c(h, year, month) bind(C, name="landbc_time") result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: year, month
      integer(c_int) :: status
    end function

    function landbc_next_time_c(h, year, month) bind(C, name="landbc_next_time") result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: year, month
      integer(c_int) :: status
    end function
    function landbc_direction_c(h, direction) bind(C, name="landbc_direction") result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: direction
      integer(c_int) :: status
    end function

    function landbc_save_restart_c(h, path) bind(C, name="landbc_save_restart") result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: path
      integer(c_int) :: status
    end function

    function landbc_load_restart_c(h, path) bind(C, name="landbc_load_restart") result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: path
      integer(c_int) :: status
    end function

    function landbc_grid_shape_c(h, ny, nx, coarse_ny, coarse_nx) &
        bind(C, name="landbc_grid_shape") result(status)
      import :: c_ptr, c_int, c_int64_t
      type(c_ptr), value :: h
      integer(c_int64_t), intent(out) :: ny, nx, coarse_ny, coarse_nx
      integer(c_int) :: status
    end function

    function landbc_resolution_c(h, res, coarse_factor) bind(C, name="landbc_resolution") &
        result(status)
      import :: c_ptr, c_int, c_double
      type(c_ptr), value :: h
      real(c_double), intent(out) :: res
      integer(c_int), intent(out) :: coarse_factor
      integer(c_int) :: status
    end function

    function landbc_variable_count_c(h, role, count) bind(C, name="landbc_variable_count") &
        result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: role
      integer(c_int), intent(out) :: count
      integer(c_int) :: status
    end function

    function landbc_variable_name_c(h, role, index, buf, buflen) &
        bind(C, name="landbc_variable_name") result(status)
      import :: c_ptr, c_char, c_int, c_size_t
      type(c_ptr), value :: h
      integer(c_int), value :: role, index
      character(kind=c_char), dimension(*), intent(out) :: buf
      integer(c_size_t), value :: buflen
      integer(c_int) :: status
    end function

    function landbc_variable_units_c(h, name, buf, buflen) &
        bind(C, name="landbc_variable_units") result(status)
      import :: c_ptr, c_char, c_int, c_size_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      character(kind=c_char), dimension(*), intent(out) :: buf
      integer(c_size_t), value :: buflen
      integer(c_int) :: status
    end function

    function landbc_variable_dtype_c(h, name, dtype) bind(C, name="landbc_variable_dtype") &
        result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_int), intent(out) :: dtype
      integer(c_int) :: status
    end function

    function landbc_variable_shape_c(h, name, ndim, shape, capacity) &
        bind(C, name="landbc_variable_shape") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_int), intent(out) :: ndim
      integer(c_int64_t), dimension(*), intent(out) :: shape
      integer(c_int), value :: capacity
      integer(c_int) :: status
    end function

    ! strlen of the C library, to read the strings landbc returns.
    function c_strlen(s) bind(C, name="strlen") result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function
  end interface

  ! --- the Fortran wrappers ------------------------------------------------------------------
  public :: landbc_error_message, landbc_status_name, landbc_version, landbc_open, &
            landbc_close, landbc_set_grid, landbc_set_field, landbc_set_field_device, &
            landbc_initialise, landbc_step, landbc_get_field, landbc_get_field_device, &
            landbc_time, landbc_next_time, landbc_direction, landbc_save_restart, landbc_load_restart, &
            landbc_grid_shape, landbc_resolution, landbc_variable_count, landbc_variable_name, &
            landbc_variable_units, landbc_variable_dtype, landbc_variable_shape

  !> Bind a static, prior or forcing field to a Fortran array (no copy; see above):
  !> real(c_float) or real(c_double) of rank 0 (co2), 2 (nx, ny) or 3 (nx, ny, channels);
  !> integer(c_int8_t) (class codes, passed as LANDBC_UINT8) or integer(c_int32_t) of rank 2.
  interface landbc_set_field
    module procedure set_field_f32_0d, set_field_f32_2d, set_field_f32_3d
    module procedure set_field_f64_0d, set_field_f64_2d, set_field_f64_3d
    module procedure set_field_i8_2d, set_field_i32_2d
  end interface

  !> Copy a field of the current month into a Fortran array declared (nx, ny):
  !> real(c_float), real(c_double), integer(c_int8_t) (class codes) or integer(c_int32_t).
  interface landbc_get_field
    module procedure get_field_f32_2d, get_field_f64_2d, get_field_i8_2d, get_field_i32_2d
  end interface

  !> Message of the last failure found by this module itself (e.g. a wrongly
  !> shaped array in landbc_get_field); cleared by the next failure the C library
  !> reports. Per thread where OpenMP is enabled, as the C library's message is.
  character(len=:), allocatable, save :: module_error
  !$omp threadprivate(module_error)

  ! --- the host model's own grid (landbc.h, landbc_set_host_grid) -------------------------
  ! Weights from `landbc remap-weights`; fields on the host grid are 1-D (npoints), a
  ! reduced Gaussian grid's points or a regular grid's nlon * nlat, north-west first.
  public :: landbc_set_host_grid_c, landbc_host_grid_size_c, landbc_set_host_field_c, &
            landbc_get_host_field_c
  public :: landbc_set_host_grid, landbc_host_grid_size, landbc_set_host_field, &
            landbc_get_host_field

  interface
    function landbc_set_host_grid_c(h, name, weights_dir) &
        bind(C, name="landbc_set_host_grid") result(status)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name, weights_dir
      integer(c_int) :: status
    end function

    function landbc_host_grid_size_c(h, npoints) bind(C, name="landbc_host_grid_size") &
        result(status)
      import :: c_ptr, c_int, c_int64_t
      type(c_ptr), value :: h
      integer(c_int64_t), intent(out) :: npoints
      integer(c_int) :: status
    end function

    function landbc_set_host_field_c(h, name, data, dtype, ndim, shape) &
        bind(C, name="landbc_set_host_field") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: data
      integer(c_int), value :: dtype, ndim
      integer(c_int64_t), dimension(*), intent(in) :: shape
      integer(c_int) :: status
    end function

    function landbc_get_host_field_c(h, name, buffer, dtype, count) &
        bind(C, name="landbc_get_host_field") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: buffer
      integer(c_int), value :: dtype
      integer(c_int64_t), value :: count
      integer(c_int) :: status
    end function
  end interface

  !> Bind a coarse forcing field given on the host grid: real(c_float) or
  !> real(c_double) of rank 1 (npoints) or 2 (npoints, channels). No copy: the
  !> array must stay allocated (TARGET) while bound; each landbc_step remaps it.
  interface landbc_set_host_field
    module procedure set_host_field_f32_1d, set_host_field_f64_1d
    module procedure set_host_field_f32_2d, set_host_field_f64_2d
  end interface

  !> An output of the current month aggregated to the host grid (ECLand's rules:
  !> land mean, dominant class) into real(c_double) or real(c_float) data(npoints);
  !> NaN where a host cell has no land of the domain.
  interface landbc_get_host_field
    module procedure get_host_field_f64, get_host_field_f32
  end interface

  ! --- calendars and LAI interpolation (landbc.h; no handle) ------------------------------
  ! The C functions and their wrappers are in one block here and one after `contains`.
  ! Times are (year, month, day, seconds_of_day) on the host's CF calendar ('standard',
  ! 'gregorian', 'proleptic_gregorian', 'julian', 'noleap', '365_day', 'all_leap',
  ! '366_day', '360_day'); seconds_of_day and dt_seconds are integer(c_int64_t).

  !> What one host step needs: landbc_coupling_events of landbc.h, the same layout.
  type, bind(C), public :: landbc_coupling_events
    integer(c_int64_t) :: seconds_of_day  !< end of the step: seconds since 00 UTC
    real(c_double) :: w_a, w_b            !< LAI weights at the end; w_b = 1 - w_a
    integer(c_int) :: year, month, day    !< end of the step
    integer(c_int) :: n_lai               !< months whose LAI is needed now: 0, 1 or 2
    integer(c_int) :: lai_year(2), lai_month(2)  !< those months, in the run's order
    integer(c_int) :: new_lulc            !< 1: the year changed, LU/LC of lulc_year needed
    integer(c_int) :: lulc_year           !< year of the end of the step
    integer(c_int) :: year_a, month_a     !< month of w_a (the earlier anchor)
    integer(c_int) :: year_b, month_b     !< month of w_b
  end type

  public :: landbc_calendar_days_in_month_c, landbc_calendar_days_in_year_c, &
            landbc_lai_weights_c, landbc_coupling_step_c
  public :: landbc_calendar_days_in_month, landbc_calendar_days_in_year, landbc_lai_weights, &
            landbc_coupling_step

  interface
    function landbc_calendar_days_in_month_c(calendar, year, month, days) &
        bind(C, name="landbc_calendar_days_in_month") result(status)
      import :: c_char, c_int
      character(kind=c_char), dimension(*), intent(in) :: calendar
      integer(c_int), value :: year, month
      integer(c_int), intent(inout) :: days
      integer(c_int) :: status
    end function

    function landbc_calendar_days_in_year_c(calendar, year, days) &
        bind(C, name="landbc_calendar_days_in_year") result(status)
      import :: c_char, c_int
      character(kind=c_char), dimension(*), intent(in) :: calendar
      integer(c_int), value :: year
      integer(c_int), intent(inout) :: days
      integer(c_int) :: status
    end function

    function landbc_lai_weights_c(calendar, year, month, day, seconds_of_day, year_a, month_a, &
                                  w_a, year_b, month_b, w_b) &
        bind(C, name="landbc_lai_weights") result(status)
      import :: c_char, c_int, c_int64_t, c_double
      character(kind=c_char), dimension(*), intent(in) :: calendar
      integer(c_int), value :: year, month, day
      integer(c_int64_t), value :: seconds_of_day
      integer(c_int), intent(inout) :: year_a, month_a, year_b, month_b
      real(c_double), intent(inout) :: w_a, w_b
      integer(c_int) :: status
    end function

    function landbc_coupling_step_c(calendar, dt_seconds, direction, year, month, day, &
                                    seconds_of_day, events) &
        bind(C, name="landbc_coupling_step") result(status)
      import :: c_char, c_int, c_int64_t, landbc_coupling_events
      character(kind=c_char), dimension(*), intent(in) :: calendar
      integer(c_int64_t), value :: dt_seconds
      character(kind=c_char), dimension(*), intent(in) :: direction
      integer(c_int), value :: year, month, day
      integer(c_int64_t), value :: seconds_of_day
      type(landbc_coupling_events), intent(inout) :: events
      integer(c_int) :: status
    end function
  end interface

  ! --- a block of a decomposed domain (MPI; landbc.h, landbc_set_halo) ---------------------
  ! Fortran counts stages from 1 (the C ABI from 0); arrays are (nx, ny) of the block's array.
  public :: landbc_halo_width_c, landbc_set_halo_c, landbc_stage_count_c, landbc_run_stage_c, &
            landbc_get_prior_c, landbc_fill_halo_c
  public :: landbc_halo_width, landbc_set_halo, landbc_stage_count, landbc_run_stage, &
            landbc_get_prior, landbc_fill_halo

  !> The block's current lu / lc (integer(c_int8_t)) or lai (real(c_float)), whole array.
  interface landbc_get_prior
    module procedure get_prior_f32_2d, get_prior_i8_2d
  end interface
  !> The neighbours' values of lu / lc / lai in the block's halo (the whole array; its
  !> block is ignored).
  interface landbc_fill_halo
    module procedure fill_halo_f32_2d, fill_halo_i8_2d
  end interface

  interface
    function landbc_halo_width_c(h, stride, width) bind(C, name="landbc_halo_width") &
        result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: stride, width
      integer(c_int) :: status
    end function

    function landbc_set_halo_c(h, top, bottom, left, right) bind(C, name="landbc_set_halo") &
        result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: top, bottom, left, right
      integer(c_int) :: status
    end function

    function landbc_stage_count_c(h, count) bind(C, name="landbc_stage_count") result(status)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), intent(out) :: count
      integer(c_int) :: status
    end function

    function landbc_run_stage_c(h, index, field, field_len) bind(C, name="landbc_run_stage") &
        result(status)
      import :: c_ptr, c_int, c_char, c_size_t
      type(c_ptr), value :: h
      integer(c_int), value :: index
      character(kind=c_char), dimension(*), intent(out) :: field
      integer(c_size_t), value :: field_len
      integer(c_int) :: status
    end function

    function landbc_get_prior_c(h, name, buffer, dtype, count) &
        bind(C, name="landbc_get_prior") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: buffer
      integer(c_int), value :: dtype
      integer(c_int64_t), value :: count
      integer(c_int) :: status
    end function

    function landbc_fill_halo_c(h, name, data, dtype, count) &
        bind(C, name="landbc_fill_halo") result(status)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_int64_t), value :: count
      integer(c_int) :: status
    end function
  end interface

contains

  ! --- strings -----------------------------------------------------------------------------

  !> A Fortran string as a NUL-terminated C string (trailing blanks removed).
  pure function c_str(s) result(cs)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=:), allocatable :: cs
    cs = trim(s) // c_null_char
  end function

  !> A C string (const char *) as a Fortran string ('' for a null pointer).
  function f_str(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n, i
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = c_strlen(p)
    call c_f_pointer(p, chars, [n])
    allocate (character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function

  !> The text of a buffer the library filled, up to its NUL.
  pure function buffer_str(buf) result(s)
    character(kind=c_char), intent(in) :: buf(:)
    character(len=:), allocatable :: s
    integer :: i, n
    n = size(buf)
    do i = 1, size(buf)
      if (buf(i) == c_null_char) then
        n = i - 1
        exit
      end if
    end do
    allocate (character(len=n) :: s)
    do i = 1, n
      s(i:i) = buf(i)
    end do
  end function

  !> '(80, 80)' for the shape [80, 80].
  function shape_str(shape) result(s)
    integer(c_int64_t), intent(in) :: shape(:)
    character(len=:), allocatable :: s
    character(len=24) :: n
    integer :: i
    s = '('
    do i = 1, size(shape)
      write (n, '(i0)') shape(i)
      s = s // trim(n) // merge(', ', ') ', i < size(shape))
    end do
    s = trim(s)
  end function

  !> Passes a status on; a failure of the library replaces the module's own message.
  function track(status) result(out)
    integer(c_int), intent(in) :: status
    integer(c_int) :: out
    if (status /= LANDBC_OK) module_error = ''
    out = status
  end function

  !> Records a failure found by this module and returns its status.
  function fail(status, message) result(out)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: message
    integer(c_int) :: out
    module_error = message
    out = status
  end function

  ! --- messages and version ------------------------------------------------------------------

  !> Message of the last failed call on this thread ('' if none).
  function landbc_error_message() result(message)
    character(len=:), allocatable :: message
    if (allocated(module_error)) then
      if (len(module_error) > 0) then
        message = module_error
        return
      end if
    end if
    message = f_str(landbc_last_error_c())
  end function

  !> Name of a status code ('LANDBC_ERR_ARGUMENT', ...).
  function landbc_status_name(status) result(name)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: name
    name = f_str(landbc_status_name_c(status))
  end function

  !> Version of the landbc library (e.g. '0.2.0').
  function landbc_version() result(version)
    character(len=:), allocatable :: version
    version = f_str(landbc_version_c())
  end function

  ! --- lifetime --------------------------------------------------------------------------------

  !> Open a bundle folder (manifest parsed, every sha256 checked). device: 'cpu',
  !> 'cuda' or 'cuda:N'; dtype of the nets: 'float32' or 'bfloat16'. On failure the
  !> handle is c_null_ptr.
  function landbc_open(bundle, device, dtype, handle) result(status)
    character(len=*), intent(in) :: bundle, device, dtype
    type(c_ptr), intent(out) :: handle
    integer(c_int) :: status
    handle = c_null_ptr
    status = track(landbc_open_c(c_str(bundle), c_str(device), c_str(dtype), handle))
  end function

  !> Free the emulator; the handle becomes c_null_ptr (closing a null handle is OK).
  function landbc_close(handle) result(status)
    type(c_ptr), intent(inout) :: handle
    integer(c_int) :: status
    status = track(landbc_close_c(handle))
  end function

  ! --- domain and fields -----------------------------------------------------------------------

  !> The domain, a lat-lon box in degrees at the bundle's resolution (drops bound fields).
  function landbc_set_grid(handle, lat_south, lat_north, lon_west, lon_east) result(status)
    type(c_ptr), intent(in) :: handle
    real(c_double), intent(in) :: lat_south, lat_north, lon_west, lon_east
    integer(c_int) :: status
    status = track(landbc_set_grid_c(handle, lat_south, lat_north, lon_west, lon_east))
  end function

  !> The refusal of an array that is not contiguous (a strided section): landbc keeps a
  !> view of a bound array, and the compiler would pass such an array as a temporary
  !> copy that is gone when the call returns.
  function not_contiguous(name) result(status)
    character(len=*), intent(in) :: name
    integer(c_int) :: status
    status = fail(LANDBC_ERR_ARGUMENT, name // ': expected a contiguous array (landbc binds a ' // &
                  'view of it), found a non-contiguous one (an array section or a strided view)')
  end function

  !> Binds `data` with the Fortran shape `fshape` (passed to C reversed).
  function bind_field(handle, name, data, dtype, fshape) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_int), intent(in) :: dtype
    integer(c_int64_t), intent(in) :: fshape(:)
    integer(c_int) :: status
    integer(c_int64_t) :: cshape(max(1, size(fshape)))
    cshape = 0
    cshape(1:size(fshape)) = fshape(size(fshape):1:-1)
    status = track(landbc_set_field_c(handle, c_str(name), data, dtype, &
                                      int(size(fshape), c_int), cshape))
  end function

  function set_field_f32_0d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), target :: array
    integer(c_int) :: status
    integer(c_int64_t) :: none(0)
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT32, none)
  end function

  function set_field_f32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT32, shape(array, c_int64_t))
  end function

  function set_field_f32_3d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), target :: array(:, :, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT32, shape(array, c_int64_t))
  end function

  function set_field_f64_0d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(in), target :: array
    integer(c_int) :: status
    integer(c_int64_t) :: none(0)
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT64, none)
  end function

  function set_field_f64_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT64, shape(array, c_int64_t))
  end function

  function set_field_f64_3d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(in), target :: array(:, :, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_field(handle, name, c_loc(array), LANDBC_FLOAT64, shape(array, c_int64_t))
  end function

  function set_field_i8_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int8_t), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    ! Class codes (0..20) have the same bits as int8 and uint8.
    status = bind_field(handle, name, c_loc(array), LANDBC_UINT8, shape(array, c_int64_t))
  end function

  function set_field_i32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int32_t), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_field(handle, name, c_loc(array), LANDBC_INT32, shape(array, c_int64_t))
  end function

  !> Bind a field in the emulator's device memory (e.g. the c_loc of an OpenACC
  !> `host_data use_device` array). shape is in Fortran order, (nx, ny[, channels]).
  function landbc_set_field_device(handle, name, data, dtype, shape) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_int), intent(in) :: dtype
    integer(c_int64_t), intent(in) :: shape(:)
    integer(c_int) :: status
    integer(c_int64_t) :: cshape(max(1, size(shape)))
    cshape = 0
    cshape(1:size(shape)) = shape(size(shape):1:-1)
    status = track(landbc_set_field_device_c(handle, c_str(name), data, dtype, &
                                             int(size(shape), c_int), cshape))
  end function

  !> Copies field `name` into `data` after checking that the Fortran shape `fshape` is
  !> the reverse of the field's C shape (a transposed declaration would scramble it).
  function copy_field(handle, name, data, dtype, fshape) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_int), intent(in) :: dtype
    integer(c_int64_t), intent(in) :: fshape(:)
    integer(c_int) :: status
    integer(c_int) :: ndim
    integer(c_int64_t) :: cshape(3)
    character(len=24) :: want, got
    status = track(landbc_variable_shape_c(handle, c_str(name), ndim, cshape, 3_c_int))
    if (status /= LANDBC_OK) return
    if (ndim /= size(fshape)) then
      write (want, '(i0)') ndim
      write (got, '(i0)') size(fshape)
      status = fail(LANDBC_ERR_ARGUMENT, name // ': expected a Fortran array of rank ' // &
                    trim(want) // ', found rank ' // trim(got))
      return
    end if
    if (any(cshape(ndim:1:-1) /= fshape)) then
      status = fail(LANDBC_ERR_ARGUMENT, name // ': expected a Fortran array of shape ' // &
                    shape_str(cshape(ndim:1:-1)) // ' (the C shape reversed), found ' // &
                    shape_str(fshape))
      return
    end if
    status = track(landbc_get_field_c(handle, c_str(name), data, dtype, product(fshape)))
  end function

  function get_field_f32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = copy_field(handle, name, c_loc(array), LANDBC_FLOAT32, shape(array, c_int64_t))
  end function

  function get_field_f64_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = copy_field(handle, name, c_loc(array), LANDBC_FLOAT64, shape(array, c_int64_t))
  end function

  function get_field_i8_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int8_t), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = copy_field(handle, name, c_loc(array), LANDBC_UINT8, shape(array, c_int64_t))
  end function

  function get_field_i32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int32_t), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = copy_field(handle, name, c_loc(array), LANDBC_INT32, shape(array, c_int64_t))
  end function

  ! --- the host model's own grid ----------------------------------------------------------

  !> Declare the host grid by name ("O96", "N320", "1/1", ...), its weights in
  !> weights_dir (`landbc remap-weights`); after landbc_initialise or a restart.
  function landbc_set_host_grid(handle, name, weights_dir) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name, weights_dir
    integer(c_int) :: status
    status = track(landbc_set_host_grid_c(handle, c_str(name), c_str(weights_dir)))
  end function

  !> Number of points of the declared host grid.
  function landbc_host_grid_size(handle, npoints) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int64_t), intent(out) :: npoints
    integer(c_int) :: status
    status = track(landbc_host_grid_size_c(handle, npoints))
  end function

  !> Binds `data` on the host grid with the Fortran shape `fshape` (passed to C reversed).
  function bind_host_field(handle, name, data, dtype, fshape) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    type(c_ptr), intent(in) :: data
    integer(c_int), intent(in) :: dtype
    integer(c_int64_t), intent(in) :: fshape(:)
    integer(c_int) :: status
    integer(c_int64_t) :: cshape(size(fshape))
    cshape = fshape(size(fshape):1:-1)
    status = track(landbc_set_host_field_c(handle, c_str(name), data, dtype, &
                                           int(size(fshape), c_int), cshape))
  end function

  function set_host_field_f32_1d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), target :: array(:)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_host_field(handle, name, c_loc(array), LANDBC_FLOAT32, shape(array, c_int64_t))
  end function

  function set_host_field_f64_1d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(in), target :: array(:)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_host_field(handle, name, c_loc(array), LANDBC_FLOAT64, shape(array, c_int64_t))
  end function

  function set_host_field_f32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_host_field(handle, name, c_loc(array), LANDBC_FLOAT32, shape(array, c_int64_t))
  end function

  function set_host_field_f64_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(in), target :: array(:, :)
    integer(c_int) :: status
    if (.not. is_contiguous(array)) then
      status = not_contiguous(name)
      return
    end if
    status = bind_host_field(handle, name, c_loc(array), LANDBC_FLOAT64, shape(array, c_int64_t))
  end function

  function get_host_field_f64(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_double), intent(inout), contiguous, target :: array(:)
    integer(c_int) :: status
    status = track(landbc_get_host_field_c(handle, c_str(name), c_loc(array), LANDBC_FLOAT64, &
                                           size(array, kind=c_int64_t)))
  end function

  function get_host_field_f32(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(inout), contiguous, target :: array(:)
    integer(c_int) :: status
    status = track(landbc_get_host_field_c(handle, c_str(name), c_loc(array), LANDBC_FLOAT32, &
                                           size(array, kind=c_int64_t)))
  end function

  !> Pointer to the emulator's own copy of a field on its device and its dtype
  !> (read-only; valid until the next initialise, step, load_restart or close).
  function landbc_get_field_device(handle, name, data, dtype) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    type(c_ptr), intent(out) :: data
    integer(c_int), intent(out) :: dtype
    integer(c_int) :: status
    status = track(landbc_get_field_device_c(handle, c_str(name), data, dtype))
  end function

  ! --- time ----------------------------------------------------------------------------------

  !> Start from the bound statics and priors valid at (year, month); direction
  !> 'forward' (default) or 'backward'.
  function landbc_initialise(handle, year, month, direction) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(in) :: year, month
    character(len=*), intent(in), optional :: direction
    integer(c_int) :: status
    if (present(direction)) then
      status = track(landbc_initialise_c(handle, year, month, c_str(direction)))
    else
      status = track(landbc_initialise_c(handle, year, month, c_str('forward')))
    end if
  end function

  !> Advance one month with the bound forcing; year and month receive the new month.
  function landbc_step(handle, year, month) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out), optional :: year, month
    integer(c_int) :: status
    integer(c_int) :: y, m
    status = track(landbc_step_c(handle, y, m))
    if (status == LANDBC_OK) then
      if (present(year)) year = y
      if (present(month)) month = m
    end if
  end function

  !> Month of the current state.
  function landbc_time(handle, year, month) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out) :: year, month
    integer(c_int) :: status
    status = track(landbc_time_c(handle, year, month))
  end function

  !> Month the next step produces.
  function landbc_next_time(handle, year, month) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out) :: year, month
    integer(c_int) :: status
    status = track(landbc_next_time_c(handle, year, month))
  end function

  !> Direction of the run: +1 forward, -1 backward.
  function landbc_direction(handle, direction) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out) :: direction
    integer(c_int) :: status
    status = track(landbc_direction_c(handle, direction))
  end function

  ! --- restarts ------------------------------------------------------------------------------

  !> Write the full state as safetensors (the Python API's restart format; atomic).
  function landbc_save_restart(handle, path) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: path
    integer(c_int) :: status
    status = track(landbc_save_restart_c(handle, c_str(path)))
  end function

  !> Replace grid, direction, time and state by those of a restart file. Bind the
  !> forcing after loading (bound fields do not survive a change of grid).
  function landbc_load_restart(handle, path) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: path
    integer(c_int) :: status
    status = track(landbc_load_restart_c(handle, c_str(path)))
  end function

  ! --- queries -------------------------------------------------------------------------------

  !> Pixels and coarse cells of the domain (a field is declared (nx, ny) in Fortran).
  function landbc_grid_shape(handle, ny, nx, coarse_ny, coarse_nx) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int64_t), intent(out) :: ny, nx, coarse_ny, coarse_nx
    integer(c_int) :: status
    status = track(landbc_grid_shape_c(handle, ny, nx, coarse_ny, coarse_nx))
  end function

  !> The bundle's resolution (degrees) and coarse factor.
  function landbc_resolution(handle, res, coarse_factor) result(status)
    type(c_ptr), intent(in) :: handle
    real(c_double), intent(out) :: res
    integer(c_int), intent(out) :: coarse_factor
    integer(c_int) :: status
    status = track(landbc_resolution_c(handle, res, coarse_factor))
  end function

  !> Number of variables of a role (LANDBC_STATIC, LANDBC_FORCING, ...).
  function landbc_variable_count(handle, role, count) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(in) :: role
    integer(c_int), intent(out) :: count
    integer(c_int) :: status
    status = track(landbc_variable_count_c(handle, role, count))
  end function

  !> Name of the index-th variable of a role, index = 1 .. count as Fortran counts
  !> (the C function counts from 0).
  function landbc_variable_name(handle, role, index, name) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(in) :: role, index
    character(len=:), allocatable, intent(out) :: name
    integer(c_int) :: status
    character(kind=c_char) :: buf(NAME_BUFLEN)
    integer(c_int) :: count
    character(len=12) :: found, last
    name = ''
    status = track(landbc_variable_count_c(handle, role, count))
    if (status /= LANDBC_OK) return
    if (index < 1 .or. index > count) then
      write (found, '(i0)') index
      write (last, '(i0)') count
      status = fail(LANDBC_ERR_ARGUMENT, 'index: expected 1..' // trim(last) // &
                    ' (Fortran counts from 1), found ' // trim(found))
      return
    end if
    buf = c_null_char
    status = track(landbc_variable_name_c(handle, role, index - 1, buf, &
                                          int(NAME_BUFLEN, c_size_t)))
    name = buffer_str(buf)
  end function

  !> Units of a variable as the manifest gives them.
  function landbc_variable_units(handle, name, units) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    character(len=:), allocatable, intent(out) :: units
    integer(c_int) :: status
    character(kind=c_char) :: buf(NAME_BUFLEN)
    buf = c_null_char
    status = track(landbc_variable_units_c(handle, c_str(name), buf, &
                                           int(NAME_BUFLEN, c_size_t)))
    units = buffer_str(buf)
  end function

  !> Native dtype of a variable (LANDBC_UINT8 for class codes, LANDBC_FLOAT32 otherwise).
  function landbc_variable_dtype(handle, name, dtype) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int), intent(out) :: dtype
    integer(c_int) :: status
    status = track(landbc_variable_dtype_c(handle, c_str(name), dtype))
  end function

  !> Shape of a variable on the current grid in FORTRAN order: (nx, ny) for a
  !> field, (cnx, cny, channels) for luh2_frac, ndim = 0 for a scalar. Entries
  !> past ndim are 1, so `allocate (a(shape(1), shape(2)))` works for any field.
  function landbc_variable_shape(handle, name, ndim, shape) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int), intent(out) :: ndim
    integer(c_int64_t), intent(out) :: shape(3)
    integer(c_int) :: status
    integer(c_int64_t) :: cshape(3)
    shape = 1
    status = track(landbc_variable_shape_c(handle, c_str(name), ndim, cshape, 3_c_int))
    if (status == LANDBC_OK) shape(1:ndim) = cshape(ndim:1:-1)
  end function

  ! --- calendars and LAI interpolation (landbc.h; no handle) ------------------------------

  !> Days of (year, month) in a CF calendar (21 for October 1582 in 'standard').
  function landbc_calendar_days_in_month(calendar, year, month, days) result(status)
    character(len=*), intent(in) :: calendar
    integer(c_int), intent(in) :: year, month
    integer(c_int), intent(inout) :: days
    integer(c_int) :: status
    status = track(landbc_calendar_days_in_month_c(c_str(calendar), year, month, days))
  end function

  !> Days of a year in a CF calendar (360 in '360_day', 355 for 1582 in 'standard').
  function landbc_calendar_days_in_year(calendar, year, days) result(status)
    character(len=*), intent(in) :: calendar
    integer(c_int), intent(in) :: year
    integer(c_int), intent(inout) :: days
    integer(c_int) :: status
    status = track(landbc_calendar_days_in_year_c(c_str(calendar), year, days))
  end function

  !> ECLand's weights of monthly LAI at a time, to call every time step:
  !> LAI = w_a * LAI(year_a, month_a) + w_b * LAI(year_b, month_b), month a and b the
  !> months whose day-15 00 UTC anchors bracket the time (on an anchor: w_a = 1).
  function landbc_lai_weights(calendar, year, month, day, seconds_of_day, year_a, month_a, &
                              w_a, year_b, month_b, w_b) result(status)
    character(len=*), intent(in) :: calendar
    integer(c_int), intent(in) :: year, month, day
    integer(c_int64_t), intent(in) :: seconds_of_day
    integer(c_int), intent(inout) :: year_a, month_a, year_b, month_b
    real(c_double), intent(inout) :: w_a, w_b
    integer(c_int) :: status
    status = track(landbc_lai_weights_c(c_str(calendar), year, month, day, seconds_of_day, &
                                        year_a, month_a, w_a, year_b, month_b, w_b))
  end function

  !> The step of dt_seconds ('forward' or 'backward') from (year, month, day,
  !> seconds_of_day): its end, the LAI months to produce now, whether a new year's
  !> LU/LC is needed, and the LAI weights at its end. Unchanged on failure.
  function landbc_coupling_step(calendar, dt_seconds, direction, year, month, day, &
                                seconds_of_day, events) result(status)
    character(len=*), intent(in) :: calendar, direction
    integer(c_int64_t), intent(in) :: dt_seconds, seconds_of_day
    integer(c_int), intent(in) :: year, month, day
    type(landbc_coupling_events), intent(inout) :: events
    integer(c_int) :: status
    status = track(landbc_coupling_step_c(c_str(calendar), dt_seconds, c_str(direction), &
                                          year, month, day, seconds_of_day, events))
  end function

  ! --- a block of a decomposed domain ------------------------------------------------------

  !> The tile lattice step (cuts lie on its global multiples) and the halo (px) a cut
  !> side needs; any time after landbc_open.
  function landbc_halo_width(handle, stride, width) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out) :: stride, width
    integer(c_int) :: status
    status = track(landbc_halo_width_c(handle, stride, width))
  end function

  !> Declare the state a block: halo pixels on its top, bottom, left and right sides.
  function landbc_set_halo(handle, top, bottom, left, right) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(in) :: top, bottom, left, right
    integer(c_int) :: status
    status = track(landbc_set_halo_c(handle, top, bottom, left, right))
  end function

  !> Stages of the next step (3 entering a new year: lu, lc, lai; else 1: lai).
  function landbc_stage_count(handle, count) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(out) :: count
    integer(c_int) :: status
    status = track(landbc_stage_count_c(handle, count))
  end function

  !> Run stage `stage` (1-based, in order); `field` names what it made (lu, lc, lai),
  !> whose halo the host then fills from its neighbours.
  function landbc_run_stage(handle, stage, field) result(status)
    type(c_ptr), intent(in) :: handle
    integer(c_int), intent(in) :: stage
    character(len=:), allocatable, intent(out) :: field
    integer(c_int) :: status
    character(kind=c_char) :: buf(NAME_BUFLEN)
    field = ''
    status = track(landbc_run_stage_c(handle, stage - 1, buf, int(NAME_BUFLEN, c_size_t)))
    if (status /= LANDBC_OK) return
    field = buffer_str(buf)
  end function

  function get_prior_f32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = track(landbc_get_prior_c(handle, c_str(name), c_loc(array), LANDBC_FLOAT32, &
                                      size(array, kind=c_int64_t)))
  end function

  function get_prior_i8_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int8_t), intent(inout), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = track(landbc_get_prior_c(handle, c_str(name), c_loc(array), LANDBC_UINT8, &
                                      size(array, kind=c_int64_t)))
  end function

  function fill_halo_f32_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    real(c_float), intent(in), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = track(landbc_fill_halo_c(handle, c_str(name), c_loc(array), LANDBC_FLOAT32, &
                                      size(array, kind=c_int64_t)))
  end function

  function fill_halo_i8_2d(handle, name, array) result(status)
    type(c_ptr), intent(in) :: handle
    character(len=*), intent(in) :: name
    integer(c_int8_t), intent(in), contiguous, target :: array(:, :)
    integer(c_int) :: status
    status = track(landbc_fill_halo_c(handle, c_str(name), c_loc(array), LANDBC_UINT8, &
                                      size(array, kind=c_int64_t)))
  end function

end module landbc
