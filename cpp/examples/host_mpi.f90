!> landbc_host_mpi_f — the Fortran host of host.f90 on N MPI ranks: one landbc
!> emulator per rank, each on a block of the domain with a halo of its neighbours'
!> data, the halos exchanged between the stages of every step.
!>
!>   mpirun -n N landbc_host_mpi_f INPUT_DIR
!>
!> INPUT_DIR as for landbc_host_f (`landbc host-inputs`: host.nml and the raw
!> fields of the whole domain); every rank reads the files and keeps its block's
!> window. The domain is cut into py x px blocks (py * px = N, blocks closest to
!> square) on the bundle's tile lattice (landbc_halo_width: cuts on global
!> multiples of `stride`, halos `width` px wide on cut sides), as
!> coupler/decomposition.py cuts it. A step runs stage by stage
!> (landbc_run_stage); after each, the stage's field (lu, lc or lai) is sent to
!> the neighbours whose halos overlap this block and received from those
!> overlapping this block's halo (point to point, corners included).
!>
!> Rank 0 prints the lines of landbc_host_f, the means and sums reduced over the
!> ranks' blocks (MPI_Reduce in double precision: the means may differ from a
!> one-rank run in the last of 16 digits, never in the 10 printed), then "done".
!> The fields themselves are the whole domain's bit for bit (tests/test_mpi.py).
!> Restarts are the one-process hosts' business here (not written).
program landbc_host_mpi_f
  use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int8_t, c_int64_t, c_float, c_double
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit, int64, real64
  use mpi
  use landbc
  use example_common
  implicit none

  ! &landbc_host, the run's namelist, is example_common's.

  integer, parameter :: nmean = 5
  character(len=6), parameter :: mean_names(nmean) = [character(len=6) :: &
                                                       'lai', 'cvh', 'cvl', 'lai_hv', 'lai_lv']
  character(len=4096) :: arg
  character(len=:), allocatable :: indir, field
  type(c_ptr) :: h
  type(field_t), allocatable, target :: statics(:), priors(:), forcing(:)
  integer :: ierr, rank, nranks, py, px, p, k, u, ios, i, s
  integer(c_int) :: stride, width, cf, nstages, y, m, stage
  real(c_double) :: res
  integer :: nx, ny, cnx, cny, origin_row, origin_col
  ! blocks of all ranks: rows/cols [r0, r1) x [c0, c1) of the domain (0-based), halos
  integer, allocatable :: r0(:), r1(:), c0(:), c1(:), ht(:), hb(:), hl(:), hr(:)
  integer :: wr0, wr1, wc0, wc1  ! this rank's window
  real(c_float), allocatable :: a(:, :)
  integer(c_int8_t), allocatable :: b(:, :)
  real(real64) :: sums(nmean + 2), total(nmean + 2)
  character(len=3) :: tag
  character(len=:), allocatable :: line

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
  if (command_argument_count() /= 1) call fatal('usage: mpirun -n N landbc_host_mpi_f INPUT_DIR')
  call get_command_argument(1, arg)
  indir = trim(arg)
  open (newunit=u, file=indir // '/host.nml', status='old', action='read', iostat=ios)
  if (ios /= 0) call fatal('cannot open ' // indir // '/host.nml')
  read (u, nml=landbc_host, iostat=ios)
  if (ios /= 0) call fatal('cannot read namelist &landbc_host from ' // indir // '/host.nml')
  close (u)

  ! --- the bundle, its lattice, and this rank's block
  call check(landbc_open(trim(bundle), 'cpu', 'float32', h), 'landbc_open ' // trim(bundle))
  call check(landbc_resolution(h, res, cf), 'landbc_resolution')
  call check(landbc_halo_width(h, stride, width), 'landbc_halo_width')
  nx = nint((lon_east - lon_west) / res)
  ny = nint((lat_north - lat_south) / res)
  cnx = nx / cf
  cny = ny / cf
  origin_row = nint((90 - lat_north) / res)
  origin_col = nint((lon_west + 180) / res)
  call process_grid(nranks, ny, nx, py, px)
  allocate (r0(0:nranks - 1), r1(0:nranks - 1), c0(0:nranks - 1), c1(0:nranks - 1))
  allocate (ht(0:nranks - 1), hb(0:nranks - 1), hl(0:nranks - 1), hr(0:nranks - 1))
  call decompose()
  wr0 = r0(rank) - ht(rank)
  wr1 = r1(rank) + hb(rank)
  wc0 = c0(rank) - hl(rank)
  wc1 = c1(rank) + hr(rank)
  call check(landbc_set_grid(h, lat_north - wr1 * res, lat_north - wr0 * res, &
                             lon_west + wc0 * res, lon_west + wc1 * res), 'landbc_set_grid')

  ! --- statics and priors: this block's window of the whole-domain files
  call bind_role(LANDBC_STATIC, statics)
  call bind_role(LANDBC_STATE, priors)
  call read_role(statics, indir // '/static')
  call read_role(priors, indir // '/prior')
  call check(landbc_initialise(h, year, month, trim(direction)), 'landbc_initialise')
  call check(landbc_set_halo(h, ht(rank), hb(rank), hl(rank), hr(rank)), 'landbc_set_halo')
  call bind_role(LANDBC_FORCING, forcing)
  allocate (a(wc1 - wc0, wr1 - wr0), b(wc1 - wc0, wr1 - wr0))

  ! --- the step loop: stages, and the halo exchanges between them
  do k = 1, nsteps
    write (tag, '(i3.3)') k
    call read_role(forcing, indir // '/forcing/' // tag)
    call check(landbc_stage_count(h, nstages), 'landbc_stage_count')
    do stage = 1, nstages
      call check(landbc_run_stage(h, stage, field), 'landbc_run_stage ' // tag)
      if (field == 'lai') then
        call check(landbc_get_prior(h, field, a), 'landbc_get_prior lai')
        call exchange(a)
        call check(landbc_fill_halo(h, field, a), 'landbc_fill_halo lai')
      else  ! class codes travel as reals (exact for 0..255)
        call check(landbc_get_prior(h, field, b), 'landbc_get_prior ' // field)
        a = real(b, c_float)
        call exchange(a)
        b = int(a, c_int8_t)
        call check(landbc_fill_halo(h, field, b), 'landbc_fill_halo ' // field)
      end if
    end do
    call check(landbc_time(h, y, m), 'landbc_time')
    ! sums over this rank's block (not its halo), reduced on rank 0
    do i = 1, nmean
      call check(landbc_get_field(h, trim(mean_names(i)), a), 'landbc_get_field')
      sums(i) = block_sum(a)
    end do
    do i = 1, 2
      call check(landbc_get_field(h, trim(merge('lu', 'lc', i == 1)), b), 'landbc_get_field')
      a = real(b, c_float)
      sums(nmean + i) = block_sum(a)
    end do
    call MPI_Reduce(sums, total, nmean + 2, MPI_DOUBLE_PRECISION, MPI_SUM, 0, MPI_COMM_WORLD, &
                    ierr)
    if (rank == 0) then
      line = 'step ' // tag // ' ' // month_str(y, m)
      do i = 1, nmean
        line = line // ' ' // trim(mean_names(i)) // ' ' // sci(total(i) / (real(nx, real64) * ny))
      end do
      line = line // ' lu_sum ' // int_str(nint(total(nmean + 1), int64)) // &
             ' lc_sum ' // int_str(nint(total(nmean + 2), int64))
      write (output_unit, '(a)') line
    end if
  end do
  if (rank == 0) write (output_unit, '(a)') 'done ' // int_str(int(nsteps, int64)) // ' steps'
  call check(landbc_close(h), 'landbc_close')
  call MPI_Finalize(ierr)

contains

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    character(len=:), allocatable :: message
    integer :: e
    if (status == LANDBC_OK) return
    message = landbc_error_message()
    write (error_unit, '(a, i0, a)') 'landbc_host_mpi_f rank ', rank, ': ' // what // ': ' // &
      landbc_status_name(status) // ': ' // message
    call MPI_Abort(MPI_COMM_WORLD, 1, e)
  end subroutine

  subroutine fatal(message)
    character(len=*), intent(in) :: message
    integer :: e
    write (error_unit, '(a)') 'landbc_host_mpi_f: ' // message
    call MPI_Abort(MPI_COMM_WORLD, 1, e)
  end subroutine

  !> py x px = n with the blocks closest to square (coupler/decomposition.py).
  subroutine process_grid(n, rows, cols, best_py, best_px)
    integer, intent(in) :: n, rows, cols
    integer, intent(out) :: best_py, best_px
    integer :: q
    best_py = n
    best_px = 1
    do q = 1, n
      if (mod(n, q) /= 0) cycle
      if (abs(log((real(rows) / q) / (real(cols) / (n / q)))) < &
          abs(log((real(rows) / best_py) / (real(cols) / best_px)))) then
        best_py = q
        best_px = n / q
      end if
    end do
  end subroutine

  !> Cut positions of one axis on the lattice, whole lattice cells per part.
  subroutine cuts(length, start, parts, out)
    integer, intent(in) :: length, start, parts
    integer, intent(out) :: out(0:parts)
    integer, allocatable :: points(:)
    integer :: first, n, q, cells
    first = ((start + stride - 1) / stride) * stride - start
    n = 0
    allocate (points(length / stride + 2))
    do q = first, length - 1, stride
      if (q > 0) then
        n = n + 1
        points(n) = q
      end if
    end do
    cells = n + 1
    if (parts > cells) call fatal('too many ranks for the tile lattice of this domain')
    out(0) = 0
    out(parts) = length
    do q = 1, parts - 1
      out(q) = points(max(1, nint(real(q) * cells / parts)))
    end do
  end subroutine

  subroutine decompose()
    integer :: rc(0:py), cc(0:px), i, j, q
    call cuts(ny, origin_row, py, rc)
    call cuts(nx, origin_col, px, cc)
    do i = 0, py - 1
      do j = 0, px - 1
        q = i * px + j
        r0(q) = rc(i)
        r1(q) = rc(i + 1)
        c0(q) = cc(j)
        c1(q) = cc(j + 1)
        ht(q) = merge(width, 0, i > 0)
        hb(q) = merge(width, 0, i < py - 1)
        hl(q) = merge(width, 0, j > 0)
        hr(q) = merge(width, 0, j < px - 1)
      end do
    end do
  end subroutine

  !> Fill this block's halo of `f` (the window, (cols, rows)) from the neighbours: every
  !> rank sends the part of its block inside another's window, corners included.
  subroutine exchange(f)
    real(c_float), intent(inout) :: f(:, :)
    integer :: q, n, req(2 * nranks), lo(2), hi(2)
    type :: buffer_t
      real(c_float), allocatable :: v(:, :)
    end type
    type(buffer_t) :: outbox(0:nranks - 1), inbox(0:nranks - 1)
    logical :: incoming(0:nranks - 1)
    n = 0
    incoming = .false.
    do q = 0, nranks - 1
      if (q == rank) cycle
      ! mine -> q: my block inside q's window (rows lo(1)..hi(1), cols lo(2)..hi(2), 0-based)
      lo = [max(r0(rank), r0(q) - ht(q)), max(c0(rank), c0(q) - hl(q))]
      hi = [min(r1(rank), r1(q) + hb(q)), min(c1(rank), c1(q) + hr(q))]
      if (all(lo < hi)) then
        outbox(q)%v = f(lo(2) - wc0 + 1:hi(2) - wc0, lo(1) - wr0 + 1:hi(1) - wr0)
        n = n + 1
        call MPI_Isend(outbox(q)%v, size(outbox(q)%v), MPI_REAL, q, 7, MPI_COMM_WORLD, &
                       req(n), ierr)
      end if
      ! q -> mine: q's block inside my window
      lo = [max(r0(q), wr0), max(c0(q), wc0)]
      hi = [min(r1(q), wr1), min(c1(q), wc1)]
      if (all(lo < hi)) then
        allocate (inbox(q)%v(hi(2) - lo(2), hi(1) - lo(1)))
        incoming(q) = .true.
        n = n + 1
        call MPI_Irecv(inbox(q)%v, size(inbox(q)%v), MPI_REAL, q, 7, MPI_COMM_WORLD, &
                       req(n), ierr)
      end if
    end do
    call MPI_Waitall(n, req, MPI_STATUSES_IGNORE, ierr)
    do q = 0, nranks - 1
      if (.not. incoming(q)) cycle
      lo = [max(r0(q), wr0), max(c0(q), wc0)]
      hi = [min(r1(q), wr1), min(c1(q), wc1)]
      f(lo(2) - wc0 + 1:hi(2) - wc0, lo(1) - wr0 + 1:hi(1) - wr0) = inbox(q)%v
    end do
  end subroutine

  !> Sum over this rank's block (its window less the halo) in double precision.
  function block_sum(f) result(total_sum)
    real(c_float), intent(in) :: f(:, :)
    real(real64) :: total_sum
    integer :: ii, jj
    total_sum = 0
    do jj = ht(rank) + 1, size(f, 2) - hb(rank)
      do ii = hl(rank) + 1, size(f, 1) - hr(rank)
        total_sum = total_sum + real(f(ii, jj), real64)
      end do
    end do
  end function

  !> One array per variable of `role`, shaped for this block's window, bound to landbc.
  subroutine bind_role(role, fields)
    integer(c_int), intent(in) :: role
    type(field_t), allocatable, target, intent(inout) :: fields(:)
    integer(c_int) :: n, j, status
    integer(c_int64_t) :: sh(3)
    character(len=:), allocatable :: vname
    call check(landbc_variable_count(h, role, n), 'landbc_variable_count')
    allocate (fields(n))
    do j = 1, n
      call check(landbc_variable_name(h, role, j, vname), 'landbc_variable_name')
      status = bind_field(h, vname, fields(j))
      if (status == UNSUPPORTED) call fatal(vname // ': a dtype / rank this host does not handle')
      call check(status, 'landbc_set_field ' // vname)
      associate (f => fields(j))
        sh = 1
        if (allocated(f%i2)) sh(1:2) = shape(f%i2)
        if (allocated(f%f2)) sh(1:2) = shape(f%f2)
        if (allocated(f%f3)) sh = shape(f%f3)
        ! the block's window of a coarse field is a whole number of coarse cells
        f%coarse = .not. allocated(f%f0) .and. sh(1) == (wc1 - wc0) / cf .and. cf > 1
        f%full(1) = merge(cnx, nx, f%coarse)  ! the files hold the whole domain
        f%full(2) = merge(cny, ny, f%coarse)
        f%full(3) = sh(3)
      end associate
    end do
  end subroutine

  !> Refill the bound arrays with this block's window of dir/<name>.bin (whole domain).
  subroutine read_role(fields, dir)
    type(field_t), intent(inout) :: fields(:)
    character(len=*), intent(in) :: dir
    integer :: j, unit, x0, x1, y0, y1
    real(c_float), allocatable :: t2(:, :), t3(:, :, :)
    integer(c_int8_t), allocatable :: i2(:, :)
    do j = 1, size(fields)
      associate (f => fields(j), path => dir // '/' // fields(j)%name // '.bin')
        open (newunit=unit, file=path, access='stream', form='unformatted', status='old', &
              action='read', iostat=ios)
        if (ios /= 0) call fatal('cannot open ' // path)
        s = merge(cf, 1, f%coarse)
        x0 = wc0 / s + 1
        x1 = wc1 / s
        y0 = wr0 / s + 1
        y1 = wr1 / s
        if (allocated(f%f0)) then
          read (unit, iostat=ios) f%f0
        else if (allocated(f%i2)) then
          allocate (i2(f%full(1), f%full(2)))
          read (unit, iostat=ios) i2
          f%i2 = i2(x0:x1, y0:y1)
          deallocate (i2)
        else if (allocated(f%f2)) then
          allocate (t2(f%full(1), f%full(2)))
          read (unit, iostat=ios) t2
          f%f2 = t2(x0:x1, y0:y1)
          deallocate (t2)
        else
          allocate (t3(f%full(1), f%full(2), f%full(3)))
          read (unit, iostat=ios) t3
          f%f3 = t3(x0:x1, y0:y1, :)
          deallocate (t3)
        end if
        if (ios /= 0) call fatal('cannot read ' // path)
        close (unit)
      end associate
    end do
  end subroutine

end program landbc_host_mpi_f
