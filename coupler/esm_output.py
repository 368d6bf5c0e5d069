"""A run's monthly fields on an ESM grid, as GRIB2 files: the `[esm_output]` table.

After each step the driver hands the step's high-resolution fields to an
`EsmWriter`, which remaps them to the configured ESM grid
(`landbc.coupler.grids.grid_from_name`) with ECLand's rules
(`landbc.coupler.remap`) and writes them into one file per month,
``<esm_output.path>/bc_<YYYY>-<MM>.grib2`` (`landbc.coupler.gribio`: atomic
writes, so a crash leaves whole files or none):

- continuous fields (cvh, cvl, lai_hv, lai_lv, lai): the grid-box average over
  the land of each ESM cell (`remap.grid_box_average` with conservative
  weights masked by the emulator's land mask);
- vegetation types (tvh, tvl): the dominant type over the land of each cell
  (`remap.dominant_type`), 0 ("no high/low vegetation") kept as a type;
- cells without land (or outside the run's domain): missing (a GRIB bitmap).

The weights are computed once per run, or read from the cache folder
(`remap.cached_weights`, keyed by both grids and the land mask's hash).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from landbc.emulator.grid import Grid

from . import calendar as cal
from . import gribio, remap
from .config import EsmOutputConfig, OutputConfig
from .grids import ModelGrid, RegularLatLonGrid, grid_from_name

log = logging.getLogger(__name__)

METHOD = "conservative"  # grid-box average / dominant type by overlap area


def esm_filename(year: int, month: int) -> str:
    """The name of the month's GRIB2 file: ``bc_YYYY-MM.grib2``."""
    return f"bc_{cal.format_month(year, month)}.grib2"


class EsmWriter:
    """Remaps a run's fields to the ESM grid of an `[esm_output]` table and writes them.

    `source_grid` is the run's (emulator) grid and `land_mask` its static land
    mask on that grid (1 or True = land); `out_dir` receives the GRIB files and
    `cache_dir` the remap weights. `key` names the config table in errors
    ("esm_output", "outputs[1]"); `calendar` sets the month lengths of the GRIB
    time ranges (`gribio`)."""

    def __init__(
        self,
        spec: EsmOutputConfig | OutputConfig,
        source_grid: Grid,
        land_mask: Any,
        out_dir: Path,
        cache_dir: Path,
        *,
        key: str = "esm_output",
        calendar: str = cal.STANDARD,
    ) -> None:
        if spec.packing == "grid_ccsds" and not gribio.ccsds_available():
            raise ValueError(
                f'[{key}.packing]: "grid_ccsds" needs an ecCodes built with libaec, '
                'which this one is not; use "grid_simple"'
            )
        self.spec = spec
        self.key = key
        self.calendar = cal.canonical_calendar(calendar)
        self.out_dir = Path(out_dir)
        self.target: ModelGrid = grid_from_name(spec.grid)
        self.source = RegularLatLonGrid.from_emulator_grid(source_grid)
        mask = np.asarray(land_mask)
        if mask.shape != source_grid.shape:
            raise ValueError(f"land mask of shape {mask.shape} does not fit the run's grid "
                             f"{source_grid.describe()}")  # fmt: skip
        self.land = mask.astype(bool) if mask.dtype == bool else mask == 1
        self.weights = remap.cached_weights(
            self.source, self.target, METHOD, source_mask=self.land, cache_dir=cache_dir
        )
        self.cache_dir = Path(cache_dir)

    @property
    def n_land_cells(self) -> int:
        """ESM cells that receive values (some land of the run's domain)."""
        return int(self.weights.n_target - np.count_nonzero(self.weights.empty_rows))

    def describe(self) -> str:
        """One line for the run's log: grid, remap method, variables and where they go."""
        return (
            f"{self.target.describe()}, remap {METHOD} over land (grid-box average; dominant "
            f"type for vegetation types), {self.n_land_cells} cells with land, "
            f"{self.spec.encoding} {self.spec.packing}, variables "
            f"{', '.join(self.spec.variables)} into {self.out_dir}/bc_YYYY-MM.grib2 "
            f"(weights cached in {self.cache_dir})"
        )

    def path(self, year: int, month: int) -> Path:
        """The GRIB2 file of (year, month)."""
        return self.out_dir / esm_filename(year, month)

    def remap(self, fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The configured variables on the ESM grid (NaN where a cell has no land)."""
        empty = self.weights.empty_rows.reshape(self.weights.target_shape)
        out: dict[str, np.ndarray] = {}
        for name in self.spec.variables:
            if name not in fields:
                raise KeyError(f"[{self.key}.variables]: {name!r} is not among the step's "
                               f"fields {', '.join(fields)}")  # fmt: skip
            values = np.asarray(fields[name])
            if gribio.parameter(name).is_code:
                types = remap.dominant_type(self.weights, values, missing=-1).astype(np.float64)
                types[empty] = np.nan
                out[name] = types
            else:
                out[name] = np.asarray(
                    remap.grid_box_average(self.weights, values.astype(np.float64)),
                    dtype=np.float64,
                )
        return out

    def write(self, year: int, month: int, fields: Mapping[str, Any]) -> Path:
        """Remap the month's fields and write them into its GRIB2 file (atomically)."""
        on_esm = self.remap(fields)
        path = self.path(year, month)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        gribio.write_fields(
            path,
            [(name, values, year, month) for name, values in on_esm.items()],
            self.target,
            encoding=self.spec.encoding,
            packing=self.spec.packing,
            calendar=self.calendar,
        )
        return path
