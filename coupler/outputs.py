"""A run's outputs as small plug-ins, chosen by the config.

After each step the driver hands the month's fields to every output of the run,
in order: first the Zarr store (`ZarrOutput`, the run's record of how far it
got: `completed_steps`), then the extra outputs of `[esm_output]` and
`[[outputs]]`, then it writes the restart. An output is one subclass of
`Output` registered under its config `type` and grid kind:

====================  ==========  ===============================================
type                  grid        plug-in
====================  ==========  ===============================================
``"zarr"``            native      `ZarrOutput`: the store of `[output]`
``"grib"``            native      `NativeGribOutput`: regular lat-lon GRIB2 at the
                                  emulator's resolution, the fields unchanged
``"grib"``            a model     `EsmGribOutput`: remapped to an ESM grid
                      grid name   (`landbc.coupler.esm_output`); `[esm_output]` is
                                  the shorthand for one of these
====================  ==========  ===============================================

Adding an output is one class with ``@register_output(type, grid_kind)``; the
config accepts its `type` once `landbc.coupler.config.OUTPUT_TYPES` lists it.

Resuming: `Output.holds(year, month)` says whether the output already holds a
month. A resumed run writes the months it computes into every output, and the
driver backfills, from the store, the months before its restart that an extra
output lacks (an output added to the config later, or files removed), so a
finished run's outputs are complete. GRIB outputs write one file per month,
atomically (`gribio.write_messages`): a killed run leaves whole files or none,
plus perhaps a temporary file, which `open` removes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from landbc.emulator.grid import Grid

from . import calendar as cal
from . import gribio
from .config import NATIVE_GRID, OutputConfig
from .esm_output import EsmWriter, esm_filename
from .output import OutputStore

log = logging.getLogger(__name__)

NATIVE, MODEL = NATIVE_GRID, "model"  # grid kinds: the emulator's grid, an ESM grid
GRID_KINDS = (NATIVE, MODEL)


@dataclass(frozen=True)
class RunInfo:
    """What an output needs to know about the run, handed to `Output.open`.

    `land_mask` is a function (the static land mask on `grid`, 1 = land) so that
    only the outputs that need it read it from the cube."""

    grid: Grid  # the emulator's (high-resolution) grid of the run
    months: Sequence[cal.YearMonth]  # the run's months, in step order
    calendar: str = cal.STANDARD  # CF calendar (`[period] calendar`)
    cache_dir: Path | None = None  # where remap weights are cached
    land_mask: Callable[[], Any] | None = None
    source: str = "<run>"  # the config, for messages


class Output(ABC):
    """One output of a run. The driver calls `open(run)` once, `write` once per
    step (and for backfilled months), and `close` at the end, also after an error.

    `write` must be idempotent (a resume rewrites the months after its restart)
    and must leave the month whole or absent when the process dies inside it."""

    #: set by `register_output`
    type: ClassVar[str] = ""
    grid_kind: ClassVar[str] = ""

    def __init__(self, spec: OutputConfig, out_dir: Path) -> None:
        self.spec = spec
        self.out_dir = Path(out_dir)

    @property
    def key(self) -> str:
        """Where the output was configured ("output", "esm_output", "outputs[1]")."""
        return self.spec.key

    @abstractmethod
    def open(self, run: RunInfo) -> None:
        """Get ready to write (check options, read or compute what `write` needs)."""

    @abstractmethod
    def write(self, step_index: int, year: int, month: int, fields: Mapping[str, Any]) -> None:
        """Write the fields of step `step_index` (0-based, run order), month (year, month)."""

    @abstractmethod
    def holds(self, year: int, month: int) -> bool:
        """Whether the month is already written (on resume: what not to backfill)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the run's log: what is written where."""

    def close(self) -> None:  # noqa: B027 - most outputs hold nothing open
        """Release what `open` acquired (nothing, unless a plug-in needs it)."""


#: (type, grid kind) -> plug-in class
OUTPUTS: dict[tuple[str, str], type[Output]] = {}


def register_output(type_: str, grid_kind: str) -> Callable[[type[Output]], type[Output]]:
    """Class decorator: make `cls` the plug-in for `[[outputs]] type = type_` on grids
    of `grid_kind` ("native" or "model")."""
    if grid_kind not in GRID_KINDS:
        raise ValueError(f"grid_kind: expected one of {GRID_KINDS}, found {grid_kind!r}")

    def deco(cls: type[Output]) -> type[Output]:
        if (type_, grid_kind) in OUTPUTS:
            raise ValueError(f"output ({type_!r}, {grid_kind!r}) is registered already, "
                             f"as {OUTPUTS[(type_, grid_kind)].__name__}")  # fmt: skip
        cls.type, cls.grid_kind = type_, grid_kind
        OUTPUTS[(type_, grid_kind)] = cls
        return cls

    return deco


def output_class(type_: str, grid: str) -> type[Output]:
    """The plug-in for an output `type_` on `grid` ("native" or a model grid name)."""
    kind = NATIVE if grid == NATIVE else MODEL
    try:
        return OUTPUTS[(type_, kind)]
    except KeyError:
        known = ", ".join(f"{t} on {k} grids" for t, k in OUTPUTS)
        raise ValueError(f"no output plug-in for type {type_!r} on a {kind} grid ({grid!r}); "
                         f"known: {known}") from None  # fmt: skip


def create_output(spec: OutputConfig, out_dir: Path) -> Output:
    """The plug-in object for one configured output (not opened yet)."""
    return output_class(spec.type, spec.grid)(spec, out_dir)


# --- the Zarr store ------------------------------------------------------------------


@register_output("zarr", NATIVE)
class ZarrOutput(Output):
    """The run's Zarr store (`landbc.coupler.output.OutputStore`) as an output.

    The driver creates or reopens the store itself (it decides from the store where
    a resume starts), then wraps it with `of`; `open` reopens it by path otherwise."""

    def __init__(self, spec: OutputConfig, out_dir: Path, store: OutputStore | None = None):
        super().__init__(spec, out_dir)
        self.store = store

    @classmethod
    def of(cls, store: OutputStore) -> ZarrOutput:
        spec = OutputConfig(type="zarr", path=store.path, variables=(), key="output")
        return cls(spec, store.path, store)

    def open(self, run: RunInfo) -> None:
        if self.store is None:
            self.store = OutputStore.open(self.out_dir)

    def _store(self) -> OutputStore:
        if self.store is None:
            raise RuntimeError(f"[{self.key}]: output {self.out_dir} written before open()")
        return self.store

    def write(self, step_index: int, year: int, month: int, fields: Mapping[str, Any]) -> None:
        self._step_store(step_index, year, month).write_step(step_index, fields)

    def _step_store(self, step_index: int, year: int, month: int) -> OutputStore:
        """The store, once step `step_index` is checked to be (year, month)."""
        st = self._store()
        if st.months[step_index] != (year, month):
            raise ValueError(f"[{self.key}]: step {step_index} of {st.path} is "
                             f"{cal.format_month(*st.months[step_index])}, not "
                             f"{cal.format_month(year, month)}")  # fmt: skip
        return st

    def holds(self, year: int, month: int) -> bool:
        st = self._store()
        return (year, month) in st.months[: st.completed_steps]

    def describe(self) -> str:
        st = self._store()
        return (f"Zarr store {st.path} on {st.grid.describe()}, {st.calendar} calendar, "
                f"{st.completed_steps}/{st.steps} steps written")  # fmt: skip


# --- GRIB files, one per month -------------------------------------------------------


class _MonthlyGribFiles(Output):
    """One GRIB2 file per month, ``<path>/bc_YYYY-MM.grib2``, written atomically."""

    calendar: str = cal.STANDARD

    def path(self, year: int, month: int) -> Path:
        return self.out_dir / esm_filename(year, month)

    def holds(self, year: int, month: int) -> bool:
        return self.path(year, month).is_file()

    def _remove_temporaries(self) -> None:
        # What a killed `gribio.write_messages` leaves: ".bc_YYYY-MM.grib2.<random>.tmp".
        if self.out_dir.is_dir():
            for tmp in self.out_dir.glob(".bc_*.grib2.*.tmp"):
                log.info("removing %s, left by an interrupted write", tmp)
                tmp.unlink(missing_ok=True)

    def _check_packing(self) -> None:
        if self.spec.packing == "grid_ccsds" and not gribio.ccsds_available():
            raise ValueError(
                f'[{self.key}.packing]: "grid_ccsds" needs an ecCodes built with libaec, '
                'which this one is not; use "grid_simple"'
            )


@register_output("grib", NATIVE)
class NativeGribOutput(_MonthlyGribFiles):
    """The fields on the emulator's own grid: regular lat-lon GRIB2 at its resolution
    (`gribio.write_fields` with the emulator `Grid`), values as the store holds them
    (no remapping, no land mask; vegetation types as their codes)."""

    grid: Grid | None = None

    def open(self, run: RunInfo) -> None:
        self._check_packing()
        self.grid = run.grid
        self.calendar = run.calendar
        self._remove_temporaries()

    def write(self, step_index: int, year: int, month: int, fields: Mapping[str, Any]) -> None:
        if self.grid is None:
            raise RuntimeError(f"[{self.key}]: output {self.out_dir} written before open()")
        missing = [n for n in self.spec.variables if n not in fields]
        if missing:
            raise KeyError(f"[{self.key}.variables]: {', '.join(missing)} not among the "
                           f"step's fields {', '.join(fields)}")  # fmt: skip
        self.out_dir.mkdir(parents=True, exist_ok=True)
        gribio.write_fields(
            self.path(year, month),
            [(n, np.asarray(fields[n]), year, month) for n in self.spec.variables],
            self.grid,
            encoding=self.spec.encoding,
            packing=self.spec.packing,
            calendar=self.calendar,
        )

    def describe(self) -> str:
        where = self.grid.describe() if self.grid is not None else "the run's grid"
        return (f"{where} as regular_ll GRIB2 ({self.spec.encoding} {self.spec.packing}, "
                f"{self.calendar} calendar), variables {', '.join(self.spec.variables)} "
                f"into {self.out_dir}/bc_YYYY-MM.grib2")  # fmt: skip


@register_output("grib", MODEL)
class EsmGribOutput(_MonthlyGribFiles):
    """The fields remapped to an ESM grid with ECLand's rules (`EsmWriter`)."""

    writer: EsmWriter | None = None

    def open(self, run: RunInfo) -> None:
        if run.land_mask is None or run.cache_dir is None:
            raise ValueError(f"[{self.key}]: remapping to {self.spec.grid} needs the run's "
                             "land mask and a cache folder")  # fmt: skip
        self.calendar = run.calendar
        self.writer = EsmWriter(self.spec, run.grid, run.land_mask(), self.out_dir,
                                run.cache_dir, key=self.key, calendar=run.calendar)  # fmt: skip
        self._remove_temporaries()

    def write(self, step_index: int, year: int, month: int, fields: Mapping[str, Any]) -> None:
        if self.writer is None:
            raise RuntimeError(f"[{self.key}]: output {self.out_dir} written before open()")
        self.writer.write(year, month, fields)

    def describe(self) -> str:
        if self.writer is None:
            return f"{self.spec.grid} GRIB2 into {self.out_dir} (not opened)"
        return f"{self.writer.describe()}, {self.calendar} calendar"


def backfill(outputs: Sequence[Output], store: OutputStore, upto: int) -> int:
    """Write, from the store, the months of steps before `upto` (and completed in the
    store) that an output lacks; the number of (output, month) pairs written."""
    n = 0
    for i in range(min(upto, store.completed_steps)):
        y, m = store.months[i]
        fields = None
        for out in outputs:
            if not out.holds(y, m):
                if fields is None:
                    fields = store.read_step(i)
                log.info("writing %s of [%s] (missing) from %s", cal.format_month(y, m),
                         out.key, store.path)  # fmt: skip
                out.write(i, y, m, fields)
                n += 1
    return n
