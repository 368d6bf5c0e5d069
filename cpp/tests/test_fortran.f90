!> test_fortran BUNDLE — checks of the Fortran module itself (cpp/fortran/landbc.f90)
!> that the C ABI cannot make: a non-contiguous array (a strided section, which the
!> compiler would pass as a temporary copy) is refused when bound, with
!> LANDBC_ERR_ARGUMENT and a message naming the variable; a whole array binds.
program test_fortran
  use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int64_t, c_float
  use landbc
  implicit none
  type(c_ptr) :: h
  real(c_float), allocatable, target :: elevation(:, :), wide(:, :)
  integer(c_int64_t) :: ny, nx, cny, cnx
  integer(c_int) :: status
  character(len=4096) :: bundle
  character(len=:), allocatable :: message
  integer :: failed = 0

  call get_command_argument(1, bundle)
  call expect(landbc_open(trim(bundle), 'cpu', 'float32', h), LANDBC_OK, 'landbc_open')
  call expect(landbc_set_grid(h, 46d0, 50d0, 6d0, 10d0), LANDBC_OK, 'landbc_set_grid')
  call expect(landbc_grid_shape(h, ny, nx, cny, cnx), LANDBC_OK, 'landbc_grid_shape')
  allocate (elevation(nx, ny), wide(2 * nx, ny))
  elevation = 100
  wide = 100

  status = landbc_set_field(h, 'elevation', wide(1:2 * nx:2, :))  ! every other column
  call expect(status, LANDBC_ERR_ARGUMENT, 'a strided section is refused')
  message = landbc_error_message()
  if (index(message, 'elevation') == 0 .or. index(message, 'contiguous') == 0) then
    write (*, '(a)') 'FAILED: message names the variable and contiguity: ' // message
    failed = failed + 1
  end if
  call expect(landbc_set_field(h, 'elevation', elevation), LANDBC_OK, 'a whole array binds')
  call expect(landbc_close(h), LANDBC_OK, 'landbc_close')

  if (failed > 0) error stop 1
  write (*, '(a)') 'test_fortran: all checks passed'

contains

  subroutine expect(found, wanted, what)
    integer(c_int), intent(in) :: found, wanted
    character(len=*), intent(in) :: what
    if (found == wanted) return
    write (*, '(a, i0, a, i0, a)') 'FAILED: ' // what // ': status ', found, ', expected ', &
      wanted, ': ' // landbc_error_message()
    failed = failed + 1
  end subroutine

end program test_fortran
