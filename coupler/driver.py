"""The Python step loop: a land-surface modeller's run from a config file.

    cube (statics, forcing, initial priors) ──▶ BoundaryConditionEmulator ──▶ Zarr output store
                                                        └──▶ restart files every N steps

A step is: read the month's forcing (from the cube, or its climate from an ESM's
GRIB or CF files: `[forcing] climate`, `landbc.coupler.forcing`), `emu.step`, write the fields
to the output store and advance its `completed_steps`, then (every N steps)
write a restart. Because the store is written before the restart, a crash at
any point leaves a store whose completed steps include every restart's, and
`--resume` continues from the latest restart the store covers, rewriting at
most N - 1 steps (bit-identically: the restart is exact).

Restarts are `restart_YYYY-MM.safetensors` in the restart directory, named by
the emulator's time (the last month produced). With `restart_every = N > 0`
they are written every N steps and at the end of each call (the run's end, or
`max_steps`, so that a batch-job chain resumes without recomputing). A fresh
run removes restarts of its own months left by an earlier run.

Outputs are plug-ins (`landbc.coupler.outputs`): the Zarr store first, then
those of `[esm_output]` (each step's fields on an ESM grid, one GRIB2 file per
month, `landbc.coupler.esm_output`) and `[[outputs]]` (GRIB2 on the native or an
ESM grid), all after the store and before the restart: every restart is then
covered by every output. A resume writes the months it computes into every
output, and backfills from the store the earlier months an output lacks
(`Output.holds`), so a finished run's outputs are complete.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from landbc.emulator.cube import Cube
from landbc.emulator.grid import BoxError, Grid, box_window, coarse_window
from landbc.emulator.precision import dtype_name

from . import calendar as cal
from .config import ConfigError, RunConfig
from .forcing import ForcingError, ForcingSource, open_source
from .output import OutputStore
from .outputs import MODEL, Output, RunInfo, ZarrOutput, backfill, create_output

log = logging.getLogger(__name__)

LOG_EVERY = 12  # steps between progress log lines (a year of months)
REMAP_CACHE = "remap"  # folder of the ESM remap weights, in the run's output folder
RESTART_RE = re.compile(r"^restart_(\d{4})-(\d{2})\.safetensors$")


@dataclass(frozen=True)
class RunSummary:
    steps_done: int  # steps computed by this call
    steps_total: int  # steps of the whole run
    completed_steps: int  # steps in the output store after this call
    resumed_from_step: int | None  # step the run continued from (None: fresh start)
    wall_time_s: float
    mean_step_s: float  # emulator step + output write, averaged over this call
    output: Path
    restart_dir: Path
    first_month: tuple[int, int]
    last_month: tuple[int, int]

    @property
    def finished(self) -> bool:
        return self.completed_steps == self.steps_total

    def describe(self) -> str:
        rate = 1.0 / self.mean_step_s if self.mean_step_s > 0 else float("nan")
        return (
            f"{self.steps_done} steps in {self.wall_time_s:.1f} s "
            f"({self.mean_step_s:.3f} s/step, {rate:.2f} steps/s); "
            f"{self.completed_steps}/{self.steps_total} months "
            f"{cal.format_month(*self.first_month)}..{cal.format_month(*self.last_month)} "
            f"in {self.output}"
        )


def restart_name(year: int, month: int) -> str:
    return f"restart_{cal.format_month(year, month)}.safetensors"


def list_restarts(restart_dir: Path) -> dict[tuple[int, int], Path]:
    """Restart files in `restart_dir`, by the month they hold."""
    out: dict[tuple[int, int], Path] = {}
    if restart_dir.is_dir():
        for p in restart_dir.iterdir():
            m = RESTART_RE.match(p.name)
            if m and p.is_file():
                out[(int(m.group(1)), int(m.group(2)))] = p
    return out


def domain_window(cube_grid: Grid, box: tuple[float, float, float, float] | None,
                  ) -> tuple[Grid, tuple[slice, slice], tuple[slice, slice]]:  # fmt: skip
    """The run's grid and its (high-res, coarse) windows of the cube.

    The box must be a window of the cube grid at the cube's resolution, with
    edges on the coarse cells (so the forcing window is whole cells).
    """
    ny, nx = cube_grid.shape
    if box is None:
        full = (slice(0, ny), slice(0, nx))
        h, w = cube_grid.coarse_shape
        return cube_grid, full, (slice(0, h), slice(0, w))
    try:
        rows, cols = box_window(cube_grid, box)
    except BoxError as e:
        detail = e.detail.replace("the grid", "the cube grid")
        raise ConfigError(f"[domain.{e.edge}]: {detail}") from None
    grid = cube_grid.window(rows.start, rows.stop, cols.start, cols.stop)
    return grid, (rows, cols), coarse_window((rows, cols), cube_grid.coarse_factor)


def _check_period(cfg: RunConfig, cube: Cube) -> None:
    months = cfg.months
    need = [cfg.prior_month, *months]
    lo, hi = min(need), max(need)
    if lo[0] < cube.first_year or hi[0] > cube.last_year:
        raise ConfigError(
            f"{cfg.source}: [period.start]/[period.steps]: the run needs months "
            f"{cal.format_month(*lo)}..{cal.format_month(*hi)} (priors of "
            f"{cal.format_month(*cfg.prior_month)} included); expected them inside the cube "
            f"{cfg.cube} ({cube.first_year}-01..{cube.last_year}-12), found "
            f'start = "{cal.format_month(*cfg.start)}", steps = {cfg.steps}, '
            f"direction = {cfg.direction}"
        )


def _forcing_source(cfg: RunConfig, cube: Cube, grid: Grid,
                    win: tuple[slice, slice]) -> ForcingSource:  # fmt: skip
    """Where the steps' forcing comes from ([forcing] climate): the cube, or an ESM's
    GRIB/CF files remapped to the run's coarse cells (weights cached next to the ESM
    ones). Every month of the run is checked now, so a missing month fails the run
    before its first step, not in the middle."""
    try:
        source = open_source(cube, win, grid, climate=cfg.climate, files=cfg.climate_files,
                             method=cfg.climate_remap, cache_dir=cfg.store.parent / REMAP_CACHE,
                             months=cfg.months)  # fmt: skip
    except ForcingError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None
    log.info("forcing: %s", source.describe())
    return source


def _check_resumed_precision(store: OutputStore, nets: dict[str, str]) -> None:
    """A resumed run may land on another machine, where dtype "auto" resolves
    differently (bfloat16 on an AMX node, float32 on an AVX2 one). That is allowed
    (the state is float32 either way), but the continuation is then not bit-identical
    to an uninterrupted run: say so. Stores from before this record pass silently."""
    recorded = {k: store.root.attrs.get(k) for k in nets}
    differ = [f"{k} {recorded[k]} -> {v}" for k, v in nets.items() if recorded[k] not in (None, v)]
    if differ:
        log.warning("resuming %s with other nets settings than it was started with (%s): the "
                    "continued steps are not bit-identical to an uninterrupted run; set "
                    "[bundle] dtype/device (or --dtype/--device) to pin them", store.path,
                    ", ".join(differ))  # fmt: skip


def _extra_outputs(cfg: RunConfig, cube: Cube, grid: Grid,
                   win: tuple[slice, slice]) -> list[Output]:  # fmt: skip
    """The run's outputs besides the store (`[esm_output]`, `[[outputs]]`), opened: remap
    weights are computed or read from the cache in the run's output folder, a refused
    option is a ConfigError naming its key, and each setup is logged."""
    specs = cfg.extra_outputs
    if not specs:
        return []
    mask: list[np.ndarray] = []

    def land_mask() -> np.ndarray:  # read once, by the outputs that remap
        if not mask:
            mask.append(cube.maps(win)["land_mask"])
        return mask[0]

    info = RunInfo(grid=grid, months=cfg.months, calendar=cfg.calendar,
                   cache_dir=cfg.store.parent / REMAP_CACHE, land_mask=land_mask,
                   source=cfg.source)  # fmt: skip
    outputs = []
    for spec in specs:
        try:
            out = create_output(spec, cfg.output_dir(spec))
            out.open(info)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: {e}") from None
        what = "ESM output" if out.grid_kind == MODEL else "native-grid output"
        log.info("%s [%s]: %s", what, spec.key, out.describe())
        outputs.append(out)
    return outputs


@contextlib.contextmanager
def _closing(outputs: list[Output]):
    """Close every output when the loop ends, also on an error (each one tried)."""
    try:
        yield outputs
    finally:
        for out in outputs:
            try:
                out.close()
            except Exception:  # the loop's own error, if any, is the one to report
                log.exception("closing output [%s] failed", out.key)


def _load_emulator_api():
    # Imported lazily: the CLI's other commands must work without torch import costs.
    from landbc.emulator.api import BoundaryConditionEmulator

    return BoundaryConditionEmulator


def run(config: RunConfig, resume: bool = False, progress: bool = True,
        max_steps: int | None = None, emulator=None) -> RunSummary:  # fmt: skip
    """Run (or continue, with `resume`) the configured emulation.

    `max_steps` stops after that many steps in this call, as a batch job with
    a wall-clock limit would; `resume` continues later. `emulator`: the class
    that steps (default `BoundaryConditionEmulator`; an MPI run's rank 0 passes
    `parallel.DistributedEmulator`).
    """
    cfg = config
    t_start = time.perf_counter()
    if not cfg.bundle.exists():
        raise FileNotFoundError(f"{cfg.source}: [bundle.path]: bundle {cfg.bundle} does not exist")
    if not cfg.cube.exists():
        raise FileNotFoundError(
            f"{cfg.source}: [forcing.cube]: cube {cfg.cube} does not exist "
            f"(create one with `landbc world`)"
        )
    cube = Cube.open(cfg.cube)
    grid, win, _ = domain_window(cube.grid, cfg.box)
    _check_period(cfg, cube)
    climate = _forcing_source(cfg, cube, grid, win)
    months = cfg.months
    restart_dir = cfg.restart_path
    extra = _extra_outputs(cfg, cube, grid, win)
    Emulator = emulator or _load_emulator_api()

    store: OutputStore | None = None
    emu = None
    first = 0
    if resume and cfg.store.exists():
        store = OutputStore.open(cfg.store)
        why = store.matches(grid, cfg.start, cfg.steps, cfg.direction, cfg.calendar)
        if why:
            raise ValueError(f"cannot resume {cfg.store}: {why}")
        done = store.completed_steps
        # The latest restart that the store covers (restarts are written after the store).
        candidates = []
        for ym, path in list_restarts(restart_dir).items():
            if ym in months:
                k = months.index(ym) + 1
                if k <= done:
                    candidates.append((k, path))
        if done >= cfg.steps:
            log.info("nothing to do: %s already holds all %d steps", cfg.store, cfg.steps)
            with _closing(extra):
                backfill(extra, store, cfg.steps)
            return RunSummary(0, cfg.steps, done, done, time.perf_counter() - t_start, 0.0,
                              cfg.store, restart_dir, months[0], months[-1])  # fmt: skip
        if candidates:
            first, rpath = max(candidates)
            log.info("resuming from %s (step %d of %d; store has %d)", rpath, first,
                     cfg.steps, done)  # fmt: skip
            emu = Emulator.from_restart(cfg.bundle, rpath, device=cfg.device, dtype=cfg.dtype)
        else:
            log.info("resuming %s from the start: no usable restart in %s", cfg.store, restart_dir)
    elif resume:
        log.info("--resume: %s does not exist yet, starting a fresh run", cfg.store)
    if store is None:
        OutputStore.check_creatable(cfg.store, cfg.overwrite)

    # The emulator is built and initialised before a new store is created: a
    # refused input (a bad bundle, priors out of range) leaves nothing behind.
    if emu is None:
        emu = Emulator.from_bundle(cfg.bundle, device=cfg.device, dtype=cfg.dtype)
        py, pm = cfg.prior_month
        log.info("initialising from the truth of %s in %s", cal.format_month(py, pm), cfg.cube)
        static = cube.static(win, cube.climatology_years(emu.lai_climatology_years))
        emu.initialise(grid, static, cube.truth(py, pm, win), py, pm,
                       direction=cfg.direction)  # fmt: skip
        first = 0
    else:
        # The file name says the month; the restart's own header must agree with the run.
        expect = months[first - 1]
        if tuple(emu.time) != tuple(expect):
            raise ValueError(f"{rpath}: restart holds time {emu.time}, expected {expect}")
        if emu.direction != cfg.direction:
            raise ValueError(f"{rpath}: restart direction {emu.direction!r}, expected "
                             f"[run.direction] {cfg.direction!r}")  # fmt: skip
        if emu.grid != grid:
            raise ValueError(f"{rpath}: restart grid {emu.grid.describe()}, expected the run's "
                             f"{grid.describe()}")  # fmt: skip

    # What the nets run in, as resolved for this machine ([bundle.dtype] may be "auto").
    nets = {"nets_device": str(emu.device), "nets_dtype": dtype_name(emu.dtype)}
    if store is not None:
        _check_resumed_precision(store, nets)
        backfill(extra, store, first)
    else:
        manifest = getattr(emu, "manifest", None) or {}
        store = OutputStore.create(
            cfg.store, grid, cfg.start, cfg.steps, cfg.direction, overwrite=cfg.overwrite,
            calendar=cfg.calendar,
            attrs={"bundle": str(cfg.bundle), "bundle_name": str(manifest.get("name", "")),
                   "cube": str(cfg.cube), "config": cfg.source, **nets},
        )  # fmt: skip
        # A fresh run: old restarts of these months would mislead a later --resume.
        for ym, path in list_restarts(restart_dir).items():
            if ym in months:
                log.info("removing stale restart %s", path)
                path.unlink()

    last = cfg.steps if max_steps is None else min(cfg.steps, first + max(0, max_steps))
    if last > first:
        log.info(
            "running %d steps %s..%s %s on %s (%s, %s) into %s",
            last - first, cal.format_month(*months[first]), cal.format_month(*months[last - 1]),
            cfg.direction, grid.describe(), nets["nets_device"], nets["nets_dtype"], cfg.store,
        )  # fmt: skip
    step_times: list[float] = []
    # The store first: every other output and every restart is then covered by it.
    # (an MPI run's ranks write the store themselves: parallel.DistributedEmulator)
    store_output = getattr(emu, "store_output", ZarrOutput.of)
    outputs: list[Output] = [store_output(store), *extra]
    # Log lines go through tqdm.write while the bar is shown, so they do not tear it.
    with (
        _closing(outputs),
        logging_redirect_tqdm() if progress else contextlib.nullcontext(),
        tqdm(total=cfg.steps, initial=first, disable=not progress, unit="step",
             desc="landbc run", dynamic_ncols=True) as bar,
    ):  # fmt: skip
        for i in range(first, last):
            y, m = months[i]
            t0 = time.perf_counter()
            if tuple(emu.next_time) != (y, m):
                raise RuntimeError(f"emulator would produce {emu.next_time}, expected {(y, m)}")
            forcing = climate.forcing(y, m)
            res = emu.step(forcing)
            if (res.year, res.month) != (y, m):
                raise RuntimeError(f"step produced {(res.year, res.month)}, expected {(y, m)}")
            # Store first, restart second: every restart is then covered by the store.
            fields = res.numpy()
            for out in outputs:
                out.write(i, y, m, fields)
            if cfg.restart_every and ((i + 1) % cfg.restart_every == 0 or i + 1 == last):
                restart_dir.mkdir(parents=True, exist_ok=True)
                emu.save_restart(restart_dir / restart_name(y, m))
            dt = time.perf_counter() - t0
            step_times.append(dt)
            bar.update(1)
            bar.set_postfix_str(cal.format_month(y, m))
            log.debug("step %d/%d %s: %.3f s", i + 1, cfg.steps, cal.format_month(y, m), dt)
            n = len(step_times)
            if n % LOG_EVERY == 0 or i + 1 == last:
                log.info("%s: step %d/%d, %.2f steps/s", cal.format_month(y, m), i + 1,
                         cfg.steps, n / sum(step_times))  # fmt: skip
    wall = time.perf_counter() - t_start
    mean = float(np.mean(step_times)) if step_times else 0.0
    summary = RunSummary(
        steps_done=len(step_times),
        steps_total=cfg.steps,
        completed_steps=store.completed_steps,
        resumed_from_step=first if resume else None,
        wall_time_s=wall,
        mean_step_s=mean,
        output=cfg.store,
        restart_dir=restart_dir,
        first_month=months[0],
        last_month=months[-1],
    )
    log.info("done: %s", summary.describe())
    return summary
