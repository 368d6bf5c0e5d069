"""The Zarr output store of a run: the emulator's fields on (time, lat, lon).

The store is created with the whole time axis of the run up front and written
one step at a time, so that a crash leaves a valid store whose
`completed_steps` attribute says how far the run got, and `--resume` rewrites
from there. Writing a step is idempotent (a resumed run may rewrite steps that
were written before the crash; an exact restart makes them bit-identical).

Layout (readable by `xarray.open_zarr`):

    lu lc lai cvh cvl tvh tvl lai_hv lai_lv   (time, lat, lon), chunks (1, 512, 512)
    time  days since 1970-01-01 (first day of the month), ascending
    lat lon                                   pixel centres, north to south / west to east

The time axis is ascending in both run directions; a backward run fills it
from the end. Steps beyond `completed_steps` hold fill values (NaN for floats,
undefined for the class maps), so readers should look at `completed_steps`.
"""

from __future__ import annotations

import json
import logging
import shutil
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
    ) -> OutputStore:
        """Create the store with the run's whole time axis, nothing written yet.

        An existing path is refused unless `overwrite`; even then only a landbc
        output store is removed, never another directory a config points at.
        """
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
        days = np.array(
            [(np.datetime64(cal.first_of_month(*m), "D") - np.datetime64("1970-01-01", "D"))
             .astype("int64") for m in months],
            dtype="int64",
        )  # fmt: skip
        coord("time", days, {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian",
                             "standard_name": "time", "long_name": "first day of the month",
                             "axis": "T"})  # fmt: skip
        coord("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude",
                                "axis": "Y"})  # fmt: skip
        coord("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude",
                                "axis": "X"})  # fmt: skip
        for name in names:
            v = catalog.variable(name)
            is_float = np.dtype(v.dtype).kind == "f"
            zarrstore.add_variable(
                root,
                name,
                ("time", "lat", "lon"),
                shape=(len(months), ny, nx),
                chunks=(1, min(ny, SPACE_CHUNK), min(nx, SPACE_CHUNK)),
                dtype=v.dtype,
                # NaN marks unwritten float steps; class maps get no fill value,
                # because xarray would mask the valid class 0 as missing.
                fill_value=np.nan if is_float else None,
                cf=v.cf_attrs(),
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
        """Open an existing store (read from the store itself, not the consolidated copy)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"output store {path} does not exist")
        if not is_output_store(path):
            raise ValueError(f"{path} is not a landbc output store (no {MARKER} attribute)")
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

    def matches(self, grid: Grid, start: tuple[int, int], steps: int, direction: str) -> str | None:
        """None if the store was made for this run, else a message saying what differs."""
        if self.grid != grid:
            return f"grid {self.grid.describe()} differs from the run's {grid.describe()}"
        if (self.start, self.steps, self.direction) != (tuple(start), steps, direction):
            return (
                f"run {cal.format_month(*self.start)} x {self.steps} {self.direction} differs "
                f"from the config's {cal.format_month(*start)} x {steps} {direction}"
            )
        return None

    # -- writing -------------------------------------------------------------
    def write_step(self, step: int, fields: Mapping[str, Any]) -> None:
        """Write the fields of step `step` (0-based, in run order) and advance
        `completed_steps`. Rewriting a step already written is allowed; skipping
        ahead of `completed_steps` is not (the store would claim a gap as done).
        """
        done = self.completed_steps
        if not 0 <= step < self.steps:
            raise ValueError(f"step {step} outside the run's 0..{self.steps - 1}")
        if step > done:
            raise ValueError(
                f"cannot write step {step} of {self.path}: only {done} steps are complete"
            )
        missing = [n for n in self.variables if n not in fields]
        if missing:
            raise ValueError(f"step {step}: missing output variable(s) {missing}")
        ti = self.time_index(*self.months[step])
        shape = self.grid.shape
        arrays = {}
        for n in self.variables:
            a = _to_numpy(fields[n])
            if a.shape != shape:
                raise ValueError(f"step {step}: {n} has shape {a.shape}, expected {shape}")
            arrays[n] = a.astype(self.root[n].dtype, copy=False)
        for n, a in arrays.items():
            self.root[n][ti] = a
        if step + 1 > done:
            self.set_completed(step + 1)

    def set_completed(self, n: int) -> None:
        """Record `n` completed steps (after their data is on disk) and re-consolidate."""
        self.root.attrs["completed_steps"] = int(n)
        zarrstore.consolidate(self.path)

    def read_step(self, step: int) -> dict[str, np.ndarray]:
        ti = self.time_index(*self.months[step])
        return {n: self.root[n][ti] for n in self.variables}
