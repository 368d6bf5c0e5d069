"""MPI runs of the step loop: `mpirun -n N landbc run CONFIG`.

Rank 0 runs the ordinary step loop (`driver.run`: config, forcing, output store,
extra outputs, restarts, resume, logging and progress) with a
`DistributedEmulator` in place of the emulator. The domain is cut into 2-D
blocks on the tile lattice (`decomposition`), one per rank, each with a halo of
its neighbours' data; every rank runs one `BoundaryConditionEmulator` on its
block (on `cuda:<local rank>` where the run asks for CUDA), the other ranks
serving rank 0's commands (`serve`):

- initialise: rank 0 sends each rank its block's statics and priors;
- step: rank 0 broadcasts the month's coarse forcing, each rank steps its block,
  exchanging the halos of lu, lc and lai with its neighbours after each stage
  (point to point, corners included), and keeps its block's fields;
- the store: every rank writes whole chunks of it (`_Block.write`): a chunk is
  written by the rank whose block holds its first pixel, from the parts the
  other blocks it overlaps send it, so no two processes ever write one file and
  no field is gathered whole; rank 0 then marks the step written. Outputs other
  than the store (GRIB on an ESM grid, ...) get the fields gathered on rank 0,
  only when such outputs are configured (`DistributedStep`);
- restart: rank 0 gathers the blocks' state and writes one restart of the whole
  domain, the file a one-process run writes; every rank resumes from it by
  reading its own window (`load_restart(window=...)`), so any rank count
  resumes any other's restart.

The blocks compute exactly the whole domain's values (`emulator/tiling.py`): 1, 2
and 4 ranks give bit-identical stores (`tests/test_mpi.py`).

Memory: rank 0 reads the whole domain's statics and priors at initialise (it
scatters the blocks) and holds the whole state while writing a restart; the
other ranks their block. Each rank reading its own window of the inputs, and
restarts written in parts, are the next steps for global 1 km runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landbc.emulator import catalog, zarrstore
from landbc.emulator.api import BoundaryConditionEmulator, InputError, StepResult, validate
from landbc.emulator.grid import Grid, coarse_window

from .decomposition import Block, decompose, local, overlaps
from .outputs import ZarrOutput

log = logging.getLogger(__name__)

# Environment variables by which MPI launchers give the world size.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_LOCAL_RANK_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK")


def launched_by_mpi() -> bool:
    """Whether this process is one of several started by mpirun/srun."""
    return any(int(os.environ.get(v, "1") or 1) > 1 for v in _SIZE_VARIABLES)


def world():
    """MPI.COMM_WORLD, with a clear error where mpi4py is missing."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(
            f"this process was started by an MPI launcher but mpi4py cannot be imported ({e}); "
            "install it with `make` (it builds against the system's OpenMPI)"
        ) from None
    return MPI.COMM_WORLD


def _local_rank(rank: int) -> int:
    for v in _LOCAL_RANK_VARIABLES:
        if v in os.environ:
            return int(os.environ[v])
    return rank


def _rank_device(device: str, rank: int) -> str:
    """cuda / cuda:N → cuda:<local rank> (modulo the GPUs visible); cpu stays."""
    if not str(device).startswith("cuda"):
        return str(device)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{_local_rank(rank) % n}" if n else str(device)


class _Block:
    """One rank's emulator and block: what every rank (0 included) runs."""

    def __init__(self, comm, bundle: Path, device: str, dtype: str) -> None:
        self.comm = comm
        self.emu = BoundaryConditionEmulator.from_bundle(
            bundle, _rank_device(device, comm.rank), dtype
        )
        self.blocks: list[Block] = []
        self.grid: Grid | None = None  # the whole domain's
        self.last: dict[str, np.ndarray] = {}  # the block's fields of the last step
        self.store = None  # the output store, opened for the chunks this rank writes

    @property
    def block(self) -> Block:
        return self.blocks[self.comm.rank]

    def plan(self, grid: Grid, direction: str) -> None:
        self.emu._load(direction)  # the stepper, for its lattice
        t = self.emu._stepper
        assert t is not None
        self.blocks = decompose(
            grid.shape, grid.origin, self.comm.size, int(t.stride), int(t.halo_width())
        )
        self.grid = grid

    def initialise(self, static, priors, year: int, month: int, direction: str) -> None:
        assert self.grid is not None
        b = self.block
        self.emu.initialise(
            self.grid.window(*b.window_rows, *b.window_cols), static, priors, year, month,
            direction=direction,
        )  # fmt: skip
        self.emu.set_halo(b.halo)

    def load_restart(self, path: Path, grid: Grid, direction: str) -> None:
        self.plan(grid, direction)
        self.emu.load_restart(path, window=self.block.window)
        self.emu.set_halo(self.block.halo)

    def exchange(self, name: str, field: torch.Tensor) -> torch.Tensor:
        """Fill this block's halo of `name` from the neighbours' blocks."""
        me, comm = self.comm.rank, self.comm
        mine = self.block
        arr = field.detach().cpu().numpy()
        out = arr.copy()
        tag = ("lu", "lc", "lai").index(name)
        requests, received = [], []
        for peer in range(comm.size):
            for rect in overlaps(self.blocks, me, peer):
                requests.append(comm.Isend(np.ascontiguousarray(arr[local(mine, rect)]), peer, tag))
            for rect in overlaps(self.blocks, peer, me):
                target = local(mine, rect)
                buf = np.empty_like(arr[target])
                requests.append(comm.Irecv(buf, peer, tag))
                received.append((target, buf))
        for r in requests:
            r.Wait()
        for target, buf in received:
            out[target] = buf
        return torch.from_numpy(out).to(field.device)

    def step(self, forcing: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        b = self.block
        cw = coarse_window(b.window, self.emu.grid.coarse_factor)  # type: ignore[union-attr]
        mine = {k: (v[..., cw[0], cw[1]] if np.ndim(v) >= 2 else v) for k, v in forcing.items()}
        res = self.emu.step(mine, exchange=self.exchange)
        rows, cols = b.interior
        self.last = {k: v[..., rows, cols] for k, v in res.numpy().items()}
        return self.last

    def write(self, path: Path, step: int) -> None:
        """Write this step's fields into the store, whole chunks per rank: each chunk of
        the store's grid is written by the rank whose block holds its first pixel,
        from the parts the blocks it overlaps send it. Collective."""
        from .output import OutputStore

        if self.store is None or self.store.path != path:
            self.store = OutputStore(path, zarrstore.open_group(path, "r+"))
        ny, nx = self.grid.shape  # type: ignore[union-attr]
        _, size, width = self.store.root["lai"].chunks  # (1, rows, cols) per chunk
        me, comm = self.comm.rank, self.comm
        owned, sends = [], []
        for k, (r0, c0) in enumerate(
            (r, c) for r in range(0, ny, size) for c in range(0, nx, width)
        ):
            chunk = (slice(r0, min(r0 + size, ny)), slice(c0, min(c0 + width, nx)))
            owner = next(b.rank for b in self.blocks if _holds(b, r0, c0))
            mine = _intersect(self.block, chunk)
            if mine is not None and owner != me:
                part = {n: v[_shift(mine, self.block)] for n, v in self.last.items()}
                sends.append(comm.isend(part, owner, tag=k))
            if owner == me:
                owned.append((k, chunk))
        for k, chunk in owned:
            shape = (chunk[0].stop - chunk[0].start, chunk[1].stop - chunk[1].start)
            full = {n: np.empty(shape, v.dtype) for n, v in self.last.items()}
            for b in self.blocks:
                part_rect = _intersect(b, chunk)
                if part_rect is None:
                    continue
                where = (
                    slice(part_rect[0].start - chunk[0].start, part_rect[0].stop - chunk[0].start),
                    slice(part_rect[1].start - chunk[1].start, part_rect[1].stop - chunk[1].start),
                )
                if b.rank == me:
                    part = {n: v[_shift(part_rect, b)] for n, v in self.last.items()}
                else:
                    part = comm.recv(source=b.rank, tag=k)
                for n, v in part.items():
                    full[n][where] = v
            self.store.write_region(step, full, chunk)
        for r in sends:
            r.wait()

    def state(self) -> dict[str, np.ndarray]:
        rows, cols = self.block.interior
        return {
            k: v.cpu().numpy()[..., rows, cols] if v.ndim >= 2 else v.cpu().numpy()
            for k, v in self.emu.state().items()
        }


def _intersect(b: Block, rect: tuple[slice, slice]) -> tuple[slice, slice] | None:
    """The run-grid rectangle where `b`'s block meets `rect`, or None."""
    r0, r1 = max(b.rows[0], rect[0].start), min(b.rows[1], rect[0].stop)
    c0, c1 = max(b.cols[0], rect[1].start), min(b.cols[1], rect[1].stop)
    return (slice(r0, r1), slice(c0, c1)) if r0 < r1 and c0 < c1 else None


def _shift(rect: tuple[slice, slice], b: Block) -> tuple[slice, slice]:
    """A run-grid rectangle inside `b`'s block, in the block's own indices."""
    return (
        slice(rect[0].start - b.rows[0], rect[0].stop - b.rows[0]),
        slice(rect[1].start - b.cols[0], rect[1].stop - b.cols[0]),
    )


def _holds(b: Block, row: int, col: int) -> bool:
    return b.rows[0] <= row < b.rows[1] and b.cols[0] <= col < b.cols[1]


def _assemble(blocks: list[Block], parts: list[dict[str, np.ndarray]], grid: Grid):
    """The whole domain's fields from each block's."""
    out: dict[str, np.ndarray] = {}
    for name, first in parts[0].items():
        if first.ndim < 2:
            out[name] = first
            continue
        full = np.empty((*first.shape[:-2], *grid.shape), dtype=first.dtype)
        for b, part in zip(blocks, parts, strict=True):
            full[..., slice(*b.rows), slice(*b.cols)] = part[name]
        out[name] = full
    return out


class _Rank:
    """What one rank holds between rank 0's commands."""

    def __init__(self, comm) -> None:
        self.comm = comm
        self.block: _Block | None = None
        self.inputs: list[Any] = []  # rank 0: each block's statics and priors, to scatter


def _call(rank: _Rank, command: str, payload: Any = None) -> list[Any]:
    """Run `command` on every rank (rank 0 included) and return the ranks' results;
    a failure on any rank raises on rank 0 with that rank's message."""
    rank.comm.bcast((command, payload), root=0)
    results = rank.comm.gather(_run_command(rank, command, payload), root=0)
    for r, (ok, value) in enumerate(results):
        if not ok:
            raise InputError(value) if r == 0 else RuntimeError(f"rank {r}: {value}")
    return [value for _, value in results]


def _run_command(rank: _Rank, command: str, payload: Any) -> tuple[bool, Any]:
    """(True, result) or (False, message). A step that fails on one rank after the
    others may have entered its halo exchanges cannot be reported without a
    deadlock: it aborts the job with its message, as an MPI program does."""
    comm = rank.comm
    try:
        if command == "open":
            rank.block = _Block(comm, *payload)
            return True, None
        if command == "initialise":  # every rank takes part in the scatter first
            mine = comm.scatter(rank.inputs if comm.rank == 0 else None, root=0)
            rank.inputs = []
        assert rank.block is not None, "the bundle failed to open on this rank"
        if command == "plan":
            rank.block.plan(*payload)
            return True, None
        if command == "initialise":
            rank.block.initialise(*mine, *payload)
            return True, None
        if command == "load_restart":
            rank.block.load_restart(*payload)
            return True, None
        if command == "state":
            return True, rank.block.state()
        if command == "fields":
            return True, rank.block.last
        if command == "write":
            try:
                rank.block.write(*payload)
                return True, None
            except Exception as e:  # the others may wait on this rank's chunks
                log.critical("rank %d: write failed: %s: %s", comm.rank, type(e).__name__, e)
                comm.Abort(1)
        if command == "step":
            try:
                rank.block.step(payload)  # the fields stay on the ranks ("fields", "write")
                return True, None
            except Exception as e:
                log.critical("rank %d: step failed: %s: %s", comm.rank, type(e).__name__, e)
                comm.Abort(1)
        raise ValueError(f"unknown command {command!r}")
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def serve(comm) -> None:
    """The loop of ranks > 0: run rank 0's commands until "stop"."""
    rank = _Rank(comm)
    while True:
        command, payload = comm.bcast(None, root=0)
        if command == "stop":
            return
        comm.gather(_run_command(rank, command, payload), root=0)


def _window_of(b: Block, static, priors):
    rows, cols = b.window
    cut = {k: np.asarray(v)[..., rows, cols] for k, v in static.items()}
    return cut, {k: np.asarray(v)[..., rows, cols] for k, v in priors.items()}


class DistributedEmulator:
    """Rank 0's emulator in an MPI run: `BoundaryConditionEmulator`'s interface over the
    whole domain, each rank stepping its block (module docstring)."""

    comm = None  # set by `run_parallel` before the driver opens the bundle

    def __init__(self, rank: _Rank) -> None:
        assert rank.block is not None
        self._rank = rank
        self._block = rank.block
        self.manifest = rank.block.emu.manifest
        self.device = rank.block.emu.device
        self.dtype = rank.block.emu.dtype
        self.grid: Grid | None = None
        self._direction: str | None = None
        self._time: tuple[int, int] = (0, 0)
        self._next: tuple[int, int] = (0, 0)

    @classmethod
    def from_bundle(cls, path, device="cpu", dtype="float32") -> DistributedEmulator:
        rank = _Rank(cls.comm)
        _call(rank, "open", (Path(path), str(device), str(dtype)))
        return cls(rank)

    @classmethod
    def from_restart(cls, bundle_path, restart_path, device="cpu", dtype="float32"):
        emu = cls.from_bundle(bundle_path, device, dtype)
        # checked whole on rank 0 first (the checks a one-process run makes), then
        # every rank reads its window
        direction, grid, _, _ = emu._block.emu._read_restart(Path(restart_path))
        _call(emu._rank, "load_restart", (Path(restart_path), grid, direction))
        emu._after_init(grid, direction)
        return emu

    @property
    def lai_climatology_years(self):
        return self._block.emu.lai_climatology_years

    def initialise(self, grid, static, priors, year, month, direction="forward") -> None:
        _call(self._rank, "plan", (grid, direction))
        log.info(
            "%d ranks, blocks (rows x cols, halo top/bottom/left/right): %s",
            self.comm.size,
            "; ".join(f"{b.rows}x{b.cols} {b.halo}" for b in self._block.blocks),
        )
        self._rank.inputs = [_window_of(b, static, priors) for b in self._block.blocks]
        _call(self._rank, "initialise", (year, month, direction))
        self._after_init(grid, direction)

    def _after_init(self, grid: Grid, direction: str) -> None:
        self.grid, self._direction = grid, direction
        self._time = self._block.emu.time
        self._next = self._block.emu.next_time

    @property
    def direction(self) -> str | None:
        return self._direction

    @property
    def time(self) -> tuple[int, int]:
        return self._time

    @property
    def next_time(self) -> tuple[int, int]:
        return self._next

    def step(self, forcing: Mapping[str, Any], time=None) -> StepResult:
        """Checked whole here (as one emulator checks it), so that no block can refuse
        its part after the others have begun their halo exchanges."""
        assert self.grid is not None
        emu = self._block.emu
        emu._check_names("forcing", forcing, catalog.FORCING_VARIABLES)
        shapes = (self.grid.shape, self.grid.coarse_shape)
        checked = {
            v.name: validate(v, forcing[v.name], v.shape(*shapes)).cpu().numpy()
            for v in catalog.FORCING_VARIABLES
        }
        _call(self._rank, "step", checked)
        y, m = self._next
        self._time, self._next = emu.time, emu.next_time
        return DistributedStep(y, m, self)

    def gather_fields(self) -> dict[str, np.ndarray]:
        """The last step's fields of the whole domain, gathered on rank 0."""
        assert self.grid is not None
        return _assemble(self._block.blocks, _call(self._rank, "fields"), self.grid)

    def store_output(self, store) -> ZarrOutput:
        """The run's store as every rank writes it: whole chunks per rank."""
        return BlockZarrOutput(ZarrOutput.of(store), self)

    def save_restart(self, path) -> Path:
        assert self.grid is not None
        parts = _call(self._rank, "state")
        state = _assemble(self._block.blocks, parts, self.grid)
        state["origin"] = np.asarray(self.grid.origin, dtype=np.int64)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        return self._block.emu.write_restart(path, tensors, self.grid)


class DistributedStep:
    """A step of an MPI run, as the driver uses a StepResult: its month, and its fields
    gathered on rank 0 only when something asks for them (an output other than the
    store, which the ranks write themselves)."""

    def __init__(self, year: int, month: int, emulator: DistributedEmulator) -> None:
        self.year, self.month, self._emu = year, month, emulator

    def numpy(self) -> Mapping[str, np.ndarray]:
        return _GatheredOnUse(self._emu)


class _GatheredOnUse(Mapping):
    def __init__(self, emulator: DistributedEmulator) -> None:
        self._emu, self._fields = emulator, None

    def _all(self) -> dict[str, np.ndarray]:
        if self._fields is None:
            self._fields = self._emu.gather_fields()
        return self._fields

    def __getitem__(self, name):
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self):
        return len(self._all())


class BlockZarrOutput(ZarrOutput):
    """The store written by all ranks (`_Block.write`), then marked by rank 0."""

    def __init__(self, inner: ZarrOutput, emulator: DistributedEmulator) -> None:
        super().__init__(inner.spec, inner.out_dir, inner.store)
        self._emu = emulator

    def write(self, step_index: int, year: int, month: int, fields) -> None:
        st = self._step_store(step_index, year, month)
        st.check_step(step_index)
        _call(self._emu._rank, "write", (st.path, step_index))
        st.mark_written(step_index)


def run_parallel(config, resume: bool = False, progress: bool = True, max_steps=None):
    """`driver.run` on every rank of MPI.COMM_WORLD: rank 0 runs the loop, the others
    serve it. Returns rank 0's RunSummary (None on the other ranks)."""
    from . import driver

    comm = world()
    if comm.rank != 0:
        logging.getLogger("landbc").setLevel(logging.WARNING)  # rank 0 logs the run
        serve(comm)
        return None
    DistributedEmulator.comm = comm
    try:
        return driver.run(config, resume=resume, progress=progress, max_steps=max_steps,
                          emulator=DistributedEmulator)  # fmt: skip
    finally:
        comm.bcast(("stop", None), root=0)
