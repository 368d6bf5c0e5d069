!> The example hosts' input fields (host.f90, host_mpi.f90): one array per landbc
!> variable, allocated with the dtype and Fortran shape landbc gives for the grid
!> set, zeroed, and bound to it (landbc reads it at every initialise / step).
module example_fields
  use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int8_t, c_int64_t, c_float
  use landbc
  implicit none
  private
  public :: field_t, bind_field

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

end module example_fields
