!> landbc_host_f — a small "Earth-system model" in Fortran that takes its land
!> boundary conditions (LU, LC, LAI and the IFS vegetation fields) from landbc,
!> in-process, through the C ABI (module landbc, cpp/fortran/landbc.f90).
!>
!>   landbc_host_f INPUT_DIR [OUTPUT_DIR [RESTART_FILE]]
!>
!> INPUT_DIR holds host.nml (namelist &landbc_host) and the raw fields written by
!> `landbc host-inputs` (coupler/hostfiles.py): static/<name>.bin,
!> prior/<name>.bin and forcing/<NNN>/<name>.bin, little-endian and row-major
!> (rows north to south), i.e. a Fortran array (nx, ny) read in one go.
!>
!> The run starts from the priors at (year, month) and steps nsteps months in
!> `direction`; after step restart_step it writes OUTPUT_DIR/restart_<NNN>.safetensors
!> (OUTPUT_DIR defaults to INPUT_DIR and must exist). With RESTART_FILE it
!> resumes instead: the restart's month says which step comes next.
!>
!> On the host model's own grid (optional namelist &landbc_esm, written by
!> `landbc host-inputs --host-grid O96 --host-forcing FILES`): the host declares
!> its grid (host_grid, with the weights of `landbc remap-weights` in
!> weights_dir), gives the forcing named in host_forcing on it
!> (host_forcing/<NNN>/<name>.bin, float32, one value per host point) instead
!> of on the coarse grid, and after each step writes the fields of esm_fields
!> aggregated to its grid as OUTPUT_DIR/esm_<NNN>_<name>.bin (float64, NaN
!> where a host cell has no land).
!>
!> One line per step on standard output, the same text as landbc_host_cpp:
!>
!>   step 001 2001-01 lai 6.924681877E-01 cvh ... cvl ... lai_hv ... lai_lv ... lu_sum N lc_sum N
!>
!> (means over all pixels, summed in double precision in memory order; sums of
!> the class codes), then "done <nsteps> steps". Any failure: a message on
!> standard error and exit status 1.
program landbc_host_f
  use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int8_t, c_int64_t, c_float, c_double
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit, int64, real64
  use landbc
  use example_common
  implicit none

  ! &landbc_host, the run's namelist, is example_common's.
  ! The optional ESM group: the host's own grid, forcing given on it, fields read on it.
  integer, parameter :: max_names = 16
  character(len=64) :: host_grid = ''
  character(len=4096) :: weights_dir = ''
  character(len=32) :: host_forcing(max_names) = '', esm_fields(max_names) = ''
  namelist /landbc_esm/ host_grid, weights_dir, host_forcing, esm_fields

  character(len=4096) :: arg
  character(len=:), allocatable :: indir, outdir, restart_file, step_dir
  type(c_ptr) :: h
  ! TARGET: landbc keeps views of these arrays (they are never copied).
  type(field_t), allocatable, target :: statics(:), priors(:), forcing(:)
  real(c_float), allocatable :: lai(:, :), cvh(:, :), cvl(:, :), lai_hv(:, :), lai_lv(:, :)
  ! On the host grid: forcing given there (bound like `forcing`) and one output field.
  type(field_t), allocatable, target :: host_fields(:)
  real(c_double), allocatable :: on_host(:)
  integer(c_int64_t) :: npoints
  integer :: j
  integer(c_int8_t), allocatable :: lu(:, :), lc(:, :)
  integer(c_int64_t) :: ny, nx, cny, cnx
  integer(c_int) :: y, m, ry, rm, run_sign
  integer :: dir_sign, first, k, u, ios
  character(len=3) :: tag

  ! --- arguments and namelist
  if (command_argument_count() < 1 .or. command_argument_count() > 3) then
    call fatal('usage: landbc_host_f INPUT_DIR [OUTPUT_DIR [RESTART_FILE]]')
  end if
  call get_command_argument(1, arg)
  indir = trim(arg)
  outdir = indir
  restart_file = ''
  if (command_argument_count() >= 2) then
    call get_command_argument(2, arg)
    outdir = trim(arg)
  end if
  if (command_argument_count() >= 3) then
    call get_command_argument(3, arg)
    restart_file = trim(arg)
  end if
  open (newunit=u, file=indir // '/host.nml', status='old', action='read', iostat=ios)
  if (ios /= 0) call fatal('cannot open ' // indir // '/host.nml')
  read (u, nml=landbc_host, iostat=ios)
  if (ios /= 0) call fatal('cannot read namelist &landbc_host from ' // indir // '/host.nml')
  rewind (u)
  read (u, nml=landbc_esm, iostat=ios)  ! optional: end of file if the group is absent
  if (ios > 0) call fatal('cannot read namelist &landbc_esm from ' // indir // '/host.nml')
  close (u)
  select case (trim(direction))
  case ('forward')
    dir_sign = 1
  case ('backward')
    dir_sign = -1
  case default
    call fatal("host.nml: direction must be 'forward' or 'backward', found '" // &
               trim(direction) // "'")
  end select

  ! --- open the bundle; start from the priors or from a restart
  call check(landbc_open(trim(bundle), 'cpu', 'float32', h), 'landbc_open ' // trim(bundle))
  if (len(restart_file) == 0) then
    call check(landbc_set_grid(h, lat_south, lat_north, lon_west, lon_east), 'landbc_set_grid')
    call bind_role(LANDBC_STATIC, statics)
    call bind_role(LANDBC_STATE, priors)
    call read_role(statics, indir // '/static')
    call read_role(priors, indir // '/prior')
    call check(landbc_initialise(h, year, month, trim(direction)), 'landbc_initialise')
    first = 1
  else
    call check(landbc_load_restart(h, restart_file), 'landbc_load_restart ' // restart_file)
    call check(landbc_time(h, ry, rm), 'landbc_time')
    call check(landbc_direction(h, run_sign), 'landbc_direction')
    if (run_sign /= dir_sign) then
      call fatal(restart_file // ': restart direction is not ' // trim(direction))
    end if
    first = dir_sign * (month_index(ry, rm) - month_index(year, month)) + 1
    if (first < 1 .or. first > nsteps + 1) then
      call fatal(restart_file // ': restart month ' // month_str(ry, rm) // &
                 ' is not a step of this run')
    end if
  end if

  ! --- outputs and forcing (bound once, refilled in place every step)
  call check(landbc_grid_shape(h, ny, nx, cny, cnx), 'landbc_grid_shape')
  allocate (lai(nx, ny), cvh(nx, ny), cvl(nx, ny), lai_hv(nx, ny), lai_lv(nx, ny))
  allocate (lu(nx, ny), lc(nx, ny))
  call bind_role(LANDBC_FORCING, forcing, skip=host_forcing)
  if (len_trim(host_grid) > 0) then
    call check(landbc_set_host_grid(h, trim(host_grid), trim(weights_dir)), &
               'landbc_set_host_grid ' // trim(host_grid))
    call check(landbc_host_grid_size(h, npoints), 'landbc_host_grid_size')
    allocate (host_fields(count(host_forcing /= '')), on_host(npoints))
    do j = 1, size(host_fields)
      host_fields(j)%name = trim(host_forcing(j))
      allocate (host_fields(j)%f1(npoints))
      host_fields(j)%f1 = 0
      call check(landbc_set_host_field(h, host_fields(j)%name, host_fields(j)%f1), &
                 'landbc_set_host_field ' // host_fields(j)%name)
    end do
  end if

  ! --- the step loop
  do k = first, nsteps
    write (tag, '(i3.3)') k
    step_dir = indir // '/forcing/' // tag
    call read_role(forcing, step_dir)
    if (allocated(host_fields)) call read_role(host_fields, indir // '/host_forcing/' // tag)
    call check(landbc_step(h, y, m), 'landbc_step ' // tag)
    if (month_index(y, m) /= month_index(year, month) + dir_sign * k) then
      call fatal('step ' // tag // ' produced ' // month_str(y, m) // ', not the expected month')
    end if
    call check(landbc_get_field(h, 'lai', lai), 'landbc_get_field lai')
    call check(landbc_get_field(h, 'cvh', cvh), 'landbc_get_field cvh')
    call check(landbc_get_field(h, 'cvl', cvl), 'landbc_get_field cvl')
    call check(landbc_get_field(h, 'lai_hv', lai_hv), 'landbc_get_field lai_hv')
    call check(landbc_get_field(h, 'lai_lv', lai_lv), 'landbc_get_field lai_lv')
    call check(landbc_get_field(h, 'lu', lu), 'landbc_get_field lu')
    call check(landbc_get_field(h, 'lc', lc), 'landbc_get_field lc')
    write (output_unit, '(a)') 'step ' // tag // ' ' // month_str(y, m) // &
      ' lai ' // sci(mean(lai)) // ' cvh ' // sci(mean(cvh)) // ' cvl ' // sci(mean(cvl)) // &
      ' lai_hv ' // sci(mean(lai_hv)) // ' lai_lv ' // sci(mean(lai_lv)) // &
      ' lu_sum ' // int_str(class_sum(lu)) // ' lc_sum ' // int_str(class_sum(lc))
    if (len_trim(host_grid) > 0) then
      do j = 1, count(esm_fields /= '')
        call check(landbc_get_host_field(h, trim(esm_fields(j)), on_host), &
                   'landbc_get_host_field ' // trim(esm_fields(j)))
        call write_raw(outdir // '/esm_' // tag // '_' // trim(esm_fields(j)) // '.bin', on_host)
      end do
    end if
    if (k == restart_step) then
      call check(landbc_save_restart(h, outdir // '/restart_' // tag // '.safetensors'), &
                 'landbc_save_restart')
    end if
  end do
  write (output_unit, '(a)') 'done ' // int_str(int(nsteps, int64)) // ' steps'
  call check(landbc_close(h), 'landbc_close')

contains

  !> Stops with the library's message unless status is LANDBC_OK.
  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    character(len=:), allocatable :: message
    if (status == LANDBC_OK) return
    message = landbc_error_message()  ! first: valid until the next landbc call
    write (error_unit, '(a)') 'landbc_host_f: ' // what // ': ' // &
      landbc_status_name(status) // ': ' // message
    error stop 1
  end subroutine

  subroutine fatal(message)
    character(len=*), intent(in) :: message
    write (error_unit, '(a)') 'landbc_host_f: ' // message
    error stop 1
  end subroutine

  !> Allocates one array per variable of `role` (but those named in `skip`), shaped
  !> and typed as landbc says, and binds it (landbc reads it at every initialise / step).
  subroutine bind_role(role, fields, skip)
    integer(c_int), intent(in) :: role
    type(field_t), allocatable, target, intent(inout) :: fields(:)
    character(len=*), intent(in), optional :: skip(:)
    integer(c_int) :: n, i, k, status
    character(len=64), allocatable :: names(:)
    character(len=:), allocatable :: vname
    call check(landbc_variable_count(h, role, n), 'landbc_variable_count')
    allocate (names(n))
    k = 0
    do i = 1, n
      call check(landbc_variable_name(h, role, i, vname), 'landbc_variable_name')
      if (present(skip)) then
        if (any(skip == vname)) cycle
      end if
      k = k + 1
      names(k) = vname
    end do
    allocate (fields(k))
    do i = 1, k
      status = bind_field(h, trim(names(i)), fields(i))
      if (status == UNSUPPORTED) then
        call fatal(trim(names(i)) // ': a dtype / rank this host does not handle')
      end if
      call check(status, 'landbc_set_field ' // trim(names(i)))
    end do
  end subroutine

  !> Refills the bound arrays in place from dir/<name>.bin (stream access, no copy).
  subroutine read_role(fields, dir)
    type(field_t), intent(inout) :: fields(:)
    character(len=*), intent(in) :: dir
    integer :: i, unit, ios
    integer(int64) :: size_file, size_want
    do i = 1, size(fields)
      associate (f => fields(i), path => dir // '/' // fields(i)%name // '.bin')
        open (newunit=unit, file=path, access='stream', form='unformatted', status='old', &
              action='read', iostat=ios)
        if (ios /= 0) call fatal('cannot open ' // path)
        inquire (unit=unit, size=size_file)
        if (allocated(f%i2)) size_want = size(f%i2, kind=int64)
        if (allocated(f%f0)) size_want = 4
        if (allocated(f%f1)) size_want = 4 * size(f%f1, kind=int64)
        if (allocated(f%f2)) size_want = 4 * size(f%f2, kind=int64)
        if (allocated(f%f3)) size_want = 4 * size(f%f3, kind=int64)
        if (size_file /= size_want) then
          call fatal(path // ': expected ' // int_str(size_want) // ' bytes, found ' // &
                     int_str(size_file))
        end if
        if (allocated(f%i2)) read (unit, iostat=ios) f%i2
        if (allocated(f%f0)) read (unit, iostat=ios) f%f0
        if (allocated(f%f1)) read (unit, iostat=ios) f%f1
        if (allocated(f%f2)) read (unit, iostat=ios) f%f2
        if (allocated(f%f3)) read (unit, iostat=ios) f%f3
        if (ios /= 0) call fatal('cannot read ' // path)
        close (unit)
      end associate
    end do
  end subroutine

  !> Writes `a` to `path` as raw float64 (stream access).
  subroutine write_raw(path, a)
    character(len=*), intent(in) :: path
    real(c_double), intent(in) :: a(:)
    integer :: unit, ios
    open (newunit=unit, file=path, access='stream', form='unformatted', status='replace', &
          action='write', iostat=ios)
    if (ios /= 0) call fatal('cannot write ' // path)
    write (unit, iostat=ios) a
    if (ios /= 0) call fatal('cannot write ' // path)
    close (unit)
  end subroutine

  !> Mean of a field, added in memory order in double precision (as landbc_host_cpp).
  function mean(a) result(r)
    real(c_float), intent(in) :: a(:, :)
    real(real64) :: r, s
    integer :: i, j
    s = 0
    do j = 1, size(a, 2)
      do i = 1, size(a, 1)
        s = s + real(a(i, j), real64)
      end do
    end do
    r = s / real(size(a), real64)
  end function

  function class_sum(a) result(s)
    integer(c_int8_t), intent(in) :: a(:, :)
    integer(int64) :: s
    s = sum(int(a, int64))
  end function

  !> Months since year 0 (for month arithmetic in either direction).
  pure integer function month_index(yy, mm)
    integer(c_int), intent(in) :: yy, mm
    month_index = 12 * yy + mm - 1
  end function

end program landbc_host_f
