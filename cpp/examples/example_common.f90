!> What the example hosts (host.f90, host_mpi.f90) share: their input fields, one
!> array per landbc variable, allocated with the dtype and Fortran shape landbc
!> gives for the grid set, zeroed, and bound to it (landbc reads it at every
!> initialise / step); the namelist &landbc_host of `landbc host-inputs`; and the
!> number formats of their output lines, which must print the same text.
module example_common
  use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int8_t, c_int64_t, c_float, c_double
  use, intrinsic :: iso_fortran_env, only: int64, real64
  use landbc
  implicit none
  private
  public :: field_t, bind_field, sci, int_str, month_str

  !> The run, as host.nml's &landbc_host gives it (written by `landbc host-inputs`).
  character(len=4096), public :: bundle = ''
  character(len=16), public :: direction = 'forward'
  real(c_double), public :: lat_south, lat_north, lon_west, lon_east
  integer(c_int), public :: year, month
  integer, public :: nsteps = 0, restart_step = 0
  namelist /landbc_host/ bundle, lat_south, lat_north, lon_west, lon_east, year, month, &
                         nsteps, restart_step, direction
  public :: landbc_host

  !> The status of bind_field for a dtype / rank these hosts do not handle.
  integer(c_int), parameter, public :: UNSUPPORTED = -1

  !> One field bound to landbc: the array matching its dtype and rank is allocated.
  !> `full` and `coarse` are host_mpi's: the whole domain's Fortran shape of the
  !> file the block's window is read from, and whether the field is coarse.
  type :: field_t
    character(len=:), allocatable :: name
    real(c_float), allocatable :: f0, f1(:), f2(:, :), f3(:, :, :)
    integer(c_int8_t), allocatable :: i2(:, :)
    integer(c_int64_t) :: full(3) = 1
    logical :: coarse = .false.
  end type

contains

  !> Allocate and bind `f` for variable `name`; the landbc status, or UNSUPPORTED.
  function bind_field(h, name, f) result(status)
    type(c_ptr), intent(in) :: h
    character(len=*), intent(in) :: name
    type(field_t), target, intent(inout) :: f
    integer(c_int) :: status, dtype, ndim
    integer(c_int64_t) :: s(3)
    f%name = name
    status = landbc_variable_dtype(h, name, dtype)
    if (status /= LANDBC_OK) return
    status = landbc_variable_shape(h, name, ndim, s)
    if (status /= LANDBC_OK) return
    if (dtype == LANDBC_UINT8 .and. ndim == 2) then
      allocate (f%i2(s(1), s(2)))
      f%i2 = 0
      status = landbc_set_field(h, name, f%i2)
    else if (dtype == LANDBC_FLOAT32 .and. ndim == 0) then
      allocate (f%f0)
      f%f0 = 0
      status = landbc_set_field(h, name, f%f0)
    else if (dtype == LANDBC_FLOAT32 .and. ndim == 2) then
      allocate (f%f2(s(1), s(2)))
      f%f2 = 0
      status = landbc_set_field(h, name, f%f2)
    else if (dtype == LANDBC_FLOAT32 .and. ndim == 3) then
      allocate (f%f3(s(1), s(2), s(3)))
      f%f3 = 0
      status = landbc_set_field(h, name, f%f3)
    else
      status = UNSUPPORTED
    end if
  end function

  !> 10 significant digits, e.g. 6.924681877E-01 (the same text as C's "%.9E").
  function sci(x) result(str)
    real(real64), intent(in) :: x
    character(len=:), allocatable :: str
    character(len=32) :: buf
    write (buf, '(es16.9e2)') x
    str = trim(adjustl(buf))
  end function

  function int_str(n) result(str)
    integer(int64), intent(in) :: n
    character(len=:), allocatable :: str
    character(len=24) :: buf
    write (buf, '(i0)') n
    str = trim(buf)
  end function

  function month_str(yy, mm) result(str)
    integer(c_int), intent(in) :: yy, mm
    character(len=7) :: str
    write (str, '(i4.4, "-", i2.2)') yy, mm
  end function

end module example_common
