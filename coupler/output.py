"""The Zarr output store of a run: the emulator's fields on (time, lat, lon).

The store is created with the whole time axis of the run up front and written
one step at a time, so that a crash leaves a valid store whose
`completed_steps` attribute says how far the run got, and `--resume` rewrites
from there. Writing a step is idempotent (a resumed run may rewrite steps that
were written before the crash; an exact restart makes them bit-identical).

Layout (readable by `xarray.open_zarr`; CF-1.8):

    lu lc lai cvh cvl tvh tvl lai_hv lai_lv   (time, lat, lon), chunks (1, 512, 512)
    time       days since 1970-01-01 in the run's calendar (start of the month),
               ascending; calendar = [period] calendar, bounds = "time_bnds"
    time_bnds  (time, nv=2): start of the month, start of the next month
    written    (time,) uint8: 1 once every field of that month is on disk
    lat lon                                   pixel centres, north to south / west to east

The time axis is ascending in both run directions; a backward run fills it
from the end. Time values are exact day counts in the run's calendar
(`calendar.day_number`): in "noleap", 2001-01-01 is 11315 days after
1970-01-01, not 11323, and xarray decodes it to a cftime date.

CF semantics: a step is a calendar month, so every field carries the month
as its cell (`time_bnds`). The monthly fields (lai, lai_hv, lai_lv) are monthly
means: ``cell_methods = "time: mean"``. The yearly ones (the LU/LC maps and
what is derived from them: lu, lc, cvh, cvl, tvh, tvl) are the state of the
year, the same in each of its months, not an average over the month:
``cell_methods = "time: point"``.

Fill values: NaN for the float fields; `CLASS_FILL` (255) for the class maps
(lu, lc, tvh, tvl), which is no valid class, so that a reader tells an
unwritten pixel from class 0 ("no data"/"no vegetation"). xarray masks it:
`open_zarr` gives the class maps as float32 with NaN where unwritten (pass
``mask_and_scale=False`` to read the uint8 codes and 255 as they are
stored). Stores written before this (landbc 0.1) have no fill value for the
class maps, no `time_bnds` and no `written`; they open and resume unchanged.

Reading a store while it is written
-----------------------------------
Every file of the store (each chunk, `.zattrs`, `.zmetadata`) is replaced
atomically by zarr's local store (a temporary file renamed over the old one),
so a reader never sees a torn file. A step is written in this order: the
chunks of every field, then its `written` flag, then `completed_steps`
(`.zattrs`, then the consolidated `.zmetadata`). Hence:

- a month whose `written` flag is 1, or whose step index (in run order) is
  below the root attribute `completed_steps`, is whole;
- the month being written when a run was killed may hold some fields of the
  new step and fill values in others, but its flag is 0 and its index is
  `completed_steps`: a reader that looks at either never uses it;
- a resumed run rewrites the months after its restart bit-identically (an
  exact restart), so a whole month never changes under a reader.

A reader should therefore use ``ds.written == 1`` (or `completed_steps`), not
the data alone. Fields hold no "partially written" sentinel of their own.

Crash-test hook: the environment variable `PAUSE_ENV`
(``LANDBC_TEST_WRITE_PAUSE="STEP:SECONDS"``) makes `write_step` sleep after
writing the first half of the fields of step STEP, so that a test can kill the
process in the middle of a step's write (tests/test_crash_resume.py). It is
read only there and does nothing when unset.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from landbc.emulator import catalog, zarrstore
from landbc.emulator.grid import Grid
from landbc.emulator.zarrstore import SPACE_CHUNK

from . import calendar as cal

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MARKER = "landbc_output_format"  # root attribute that identifies our stores
TIME_UNITS = "days since 1970-01-01"
CLASS_FILL = 255  # fill value of the uint8 class maps: no valid class (they stop at 20)
WRITTEN = "written"  # (time,) flag variable: 1 once a month's fields are all on disk
PAUSE_ENV = "LANDBC_TEST_WRITE_PAUSE"  # test-only: "STEP:SECONDS", see the module docstring
# CF cell_methods by cadence: monthly fields are means over the month, yearly ones the
# year's state (the same value in each of its months).
CELL_METHODS = {catalog.MONTHLY: "time: mean", catalog.YEARLY: "time: point"}
_SAME_DAYS = {cal.STANDARD, cal.PROLEPTIC_GREGORIAN}  # identical after 1582-10-15


def month_days(year: int, month: int, calendar: str) -> int:
    """Days from 1970-01-01 to the 1st of (year, month) in `calendar` (exact)."""
    return cal.day_number(year, month, 1, calendar) - cal.day_number(1970, 1, 1, calendar)


def time_values(months: Sequence[tuple[int, int]], calendar: str) -> tuple[np.ndarray, np.ndarray]:
    """The time coordinate (start of each month) and its bounds (start of the month,
    start of the next), in days since 1970-01-01 of `calendar`."""
    t = np.array([month_days(y, m, calendar) for y, m in months], dtype="int64")
    end = np.array([month_days(*cal.add_months(y, m, 1), calendar) for y, m in months],
                   dtype="int64")  # fmt: skip
    return t, np.stack([t, end], axis=1).reshape(len(months), 2)


def fill_value(dtype: str) -> Any:
    """NaN for floats; `CLASS_FILL` for the uint8 class maps."""
    return np.nan if np.dtype(dtype).kind == "f" else CLASS_FILL


def _pause_in(step: int) -> float:
    """Seconds `write_step` sleeps half-way through step `step` (test hook, `PAUSE_ENV`)."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return 0.0
    try:
        at, seconds = spec.split(":")
        return float(seconds) if int(at) == step else 0.0
    except ValueError:
        raise ValueError(f'{PAUSE_ENV}: expected "STEP:SECONDS", found {spec!r}') from None


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor on any device, any float dtype
        x = x.detach().to("cpu")
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    if hasattr(x, "values") and not isinstance(x, np.ndarray):  # xarray
        return np.asarray(x.values)
    return np.asarray(x)


def is_output_store(path: str | Path) -> bool:
    """True if `path` is a landbc output store (so that overwrite may remove it)."""
    p = Path(path) / ".zattrs"
    try:
        return MARKER in json.loads(p.read_text())
    except (OSError, ValueError):
        return False


class OutputStore:
    """A run's output store; create it with `create`, reopen it with `open`."""

    def __init__(self, path: Path, root: zarr.Group) -> None:
        self.path = path
        self.root = root
        attrs = root.attrs.asdict()
        self.grid = Grid.from_dict(attrs["grid"])
        self.direction: str = attrs["run_direction"]
        self.start: tuple[int, int] = cal.parse_month(attrs["run_start"], "run_start")
        self.steps: int = int(attrs["run_steps"])
        self.variables: tuple[str, ...] = tuple(attrs["variables"])
        self.months = cal.month_range(self.start, self.steps, self.direction)
        self._time_months = sorted(self.months)
        self._index = {m: i for i, m in enumerate(self._time_months)}
        # CF calendar of the time axis; landbc 0.1 stores say "proleptic_gregorian".
        self.calendar: str = cal.canonical_calendar(
            root["time"].attrs.get("calendar", cal.STANDARD)
        )
        self.has_written_flag = WRITTEN in root  # not in landbc 0.1 stores

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        grid: Grid,
        start: tuple[int, int],
        steps: int,
        direction: str = cal.FORWARD,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        variables: Sequence[str] | None = None,
        calendar: str = cal.STANDARD,
    ) -> OutputStore:
        """Create the store with the run's whole time axis, nothing written yet.

        An existing path is refused unless `overwrite`; even then only a landbc
        output store is removed, never another directory a config points at.
        `calendar` (any `calendar.canonical_calendar` name) sets the time values.
        """
        calendar = cal.canonical_calendar(calendar)
        path = Path(path)
        if path.exists():
            cls.check_creatable(path, overwrite)
            log.info("removing existing output store %s (overwrite = true)", path)
            shutil.rmtree(path)
        cal.check_direction(direction)
        names = tuple(variables) if variables is not None else tuple(
            v.name for v in catalog.OUTPUT_VARIABLES
        )  # fmt: skip
        months = sorted(cal.month_range(start, steps, direction))
        ny, nx = grid.shape
        path.parent.mkdir(parents=True, exist_ok=True)
        root = zarrstore.create_group(path, {
            MARKER: FORMAT_VERSION,
            "Conventions": "CF-1.8",
            "title": "landbc emulated land-surface boundary conditions",
            "source": "landbc emulator",
            "history": f"{datetime.now(UTC).isoformat(timespec='seconds')} created by landbc",
            "grid": grid.to_dict(),
            "run_start": cal.format_month(*start),
            "run_steps": int(steps),
            "run_direction": direction,
            "variables": list(names),
            "completed_steps": 0,
            **(dict(attrs) if attrs else {}),
        })  # fmt: skip

        coord = partial(zarrstore.add_coordinate, root)

        def small(name: str, data: np.ndarray, dims: list[str], cf: dict) -> None:
            # One chunk, no fill value: zarr's default 0 would make xarray mask day 0
            # (1970-01-01) and the `written` flag 0 as missing.
            a = root.create_array(name, data=data, chunks=data.shape, fill_value=None)
            a.attrs.update({"_ARRAY_DIMENSIONS": dims, **cf})

        days, bounds = time_values(months, calendar)
        small("time", days, ["time"], {"units": TIME_UNITS, "calendar": calendar,
                                       "standard_name": "time", "axis": "T",
                                       "long_name": "start of the month",
                                       "bounds": "time_bnds"})  # fmt: skip
        # The month each step describes. Units and calendar repeat the coordinate's
        # (CF allows it) for readers that do not follow `bounds`.
        small("time_bnds", bounds, ["time", "nv"], {"units": TIME_UNITS, "calendar": calendar})
        small(WRITTEN, np.zeros(len(months), np.uint8), ["time"], {
            "_ARRAY_DIMENSIONS": ["time"],
            "long_name": "1 once every field of the month is written (a whole step)",
            "flag_values": [0, 1],
            "flag_meanings": "not_written written",
        })  # fmt: skip

        coord("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude",
                                "axis": "Y"})  # fmt: skip
        coord("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude",
                                "axis": "X"})  # fmt: skip
        for name in names:
            v = catalog.variable(name)
            cf = v.cf_attrs()
            if v.cadence in CELL_METHODS:
                cf["cell_methods"] = CELL_METHODS[v.cadence]
            zarrstore.add_variable(
                root,
                name,
                ("time", "lat", "lon"),
                shape=(len(months), ny, nx),
                chunks=(1, min(ny, SPACE_CHUNK), min(nx, SPACE_CHUNK)),
                dtype=v.dtype,
                # NaN marks unwritten float steps, 255 (no class) unwritten class maps.
                fill_value=fill_value(v.dtype),
                cf=cf,
            )
        zarrstore.consolidate(path)
        return cls(path, root)

    @staticmethod
    def check_creatable(path: str | Path, overwrite: bool) -> None:
        """Raise FileExistsError if `create` would refuse `path` (checked before
        a run spends time loading the emulator)."""
        path = Path(path)
        if not path.exists():
            return
        if not overwrite:
            raise FileExistsError(
                f"output store {path} exists already; set [output] overwrite = true "
                f"or continue it with --resume"
            )
        if not is_output_store(path):
            raise FileExistsError(
                f"output store {path} exists and is not a landbc output store; "
                f"refusing to remove it even with overwrite = true"
            )

    @classmethod
    def open(cls, path: str | Path, mode: str = "r+") -> OutputStore:
        """Open an existing store (read from the store itself, not the consolidated copy).

        Opened for writing, it first removes the temporary files of writes that a
        killed run left (zarr's ``*.partial``; readers never look at them)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"output store {path} does not exist")
        if not is_output_store(path):
            raise ValueError(f"{path} is not a landbc output store (no {MARKER} attribute)")
        if mode != "r":
            for tmp in path.rglob("*.partial"):
                log.info("removing %s, left by an interrupted write", tmp)
                tmp.unlink(missing_ok=True)
        return cls(path, zarrstore.open_group(path, mode))

    # -- state ---------------------------------------------------------------
    @property
    def completed_steps(self) -> int:
        return int(self.root.attrs.get("completed_steps", 0))

    def time_index(self, year: int, month: int) -> int:
        try:
            return self._index[(year, month)]
        except KeyError:
            raise ValueError(
                f"{cal.format_month(year, month)} is not on the time axis of {self.path} "
                f"({cal.format_month(*self._time_months[0])}.."
                f"{cal.format_month(*self._time_months[-1])})"
            ) from None

    def matches(self, grid: Grid, start: tuple[int, int], steps: int, direction: str,
                calendar: str | None = None) -> str | None:  # fmt: skip
        """None if the store was made for this run, else a message saying what differs.

        "standard" and "proleptic_gregorian" are the same calendar after 1582 (landbc
        0.1 wrote the latter): they match when the store's time values agree."""
        if self.grid != grid:
            return f"grid {self.grid.describe()} differs from the run's {grid.describe()}"
        if (self.start, self.steps, self.direction) != (tuple(start), steps, direction):
            return (
                f"run {cal.format_month(*self.start)} x {self.steps} {self.direction} differs "
                f"from the config's {cal.format_month(*start)} x {steps} {direction}"
            )
        if calendar is not None:
            want = cal.canonical_calendar(calendar)
            same = want == self.calendar or (
                {want, self.calendar} <= _SAME_DAYS
                and np.array_equal(self.root["time"][:], time_values(self._time_months, want)[0])
            )
            if not same:
                return (
                    f"calendar {self.calendar!r} differs from the config's [period] "
                    f"calendar {want!r}"
                )
        return None

    # -- writing -------------------------------------------------------------
    def write_step(self, step: int, fields: Mapping[str, Any]) -> None:
        """Write the fields of step `step` (0-based, in run order) and advance
        `completed_steps`. Rewriting a step already written is allowed; skipping
        ahead of `completed_steps` is not (the store would claim a gap as done).
        """
        self.check_step(step)
        missing = [n for n in self.variables if n not in fields]
        if missing:
            raise ValueError(f"step {step}: missing output variable(s) {missing}")
        ny, nx = self.grid.shape
        pause = _pause_in(step)
        arrays = self._arrays(step, fields, (slice(0, ny), slice(0, nx)))
        ti = self.time_index(*self.months[step])
        for k, (n, a) in enumerate(arrays.items()):
            if pause and k == len(arrays) // 2:
                log.warning("%s: pausing %.1f s in the write of step %d", PAUSE_ENV, pause, step)
                time.sleep(pause)
            self.root[n][ti] = a
        self.mark_written(step)

    def write_region(self, step: int, fields: Mapping[str, Any], region: tuple[slice, slice]):
        """Write the data of step `step` in `region` (rows, cols) of the grid only, for
        every variable; `mark_written` then records the step. MPI runs write this way,
        each rank whole chunks (`coupler/parallel.py`), so no two write one file. The
        caller checks the step against completed_steps first (`check_step`): a rank's
        view of the store's attributes may be older than the writer's."""
        if not 0 <= step < self.steps:
            raise ValueError(f"step {step} outside the run's 0..{self.steps - 1}")
        ti = self.time_index(*self.months[step])
        for n, a in self._arrays(step, fields, region).items():
            self.root[n][(ti, *region)] = a

    def mark_written(self, step: int) -> None:
        """After the data of `step` is on disk: its month's flag, then completed_steps
        (see "Reading a store while it is written" above)."""
        self.check_step(step)
        ti = self.time_index(*self.months[step])
        if self.has_written_flag and not self.root[WRITTEN][ti]:
            self.root[WRITTEN][ti] = 1
        if step + 1 > self.completed_steps:
            self.set_completed(step + 1)

    def check_step(self, step: int) -> None:
        """A step may be rewritten, or be the next one; never skip ahead."""
        done = self.completed_steps
        if not 0 <= step < self.steps:
            raise ValueError(f"step {step} outside the run's 0..{self.steps - 1}")
        if step > done:
            raise ValueError(
                f"cannot write step {step} of {self.path}: only {done} steps are complete"
            )

    def _arrays(self, step: int, fields: Mapping[str, Any], region: tuple[slice, slice]):
        shape = (region[0].stop - region[0].start, region[1].stop - region[1].start)
        arrays = {}
        for n in self.variables:
            a = _to_numpy(fields[n])
            if a.shape != shape:
                raise ValueError(f"step {step}: {n} has shape {a.shape}, expected {shape}")
            arrays[n] = a.astype(self.root[n].dtype, copy=False)
        return arrays

    def set_completed(self, n: int) -> None:
        """Record `n` completed steps (after their data is on disk) and re-consolidate."""
        self.root.attrs["completed_steps"] = int(n)
        zarrstore.consolidate(self.path)

    def written(self) -> np.ndarray:
        """Whether each month of the time axis (ascending) is whole: its `written` flag,
        or, in a landbc 0.1 store, its step index below `completed_steps`."""
        if self.has_written_flag:
            return np.asarray(self.root[WRITTEN][:]) == 1
        done = set(self.months[: self.completed_steps])
        return np.array([m in done for m in self._time_months], dtype=bool)

    def read_step(self, step: int) -> dict[str, np.ndarray]:
        ti = self.time_index(*self.months[step])
        return {n: self.root[n][ti] for n in self.variables}
