"""Input files for the example host programs (cpp/examples/host.f90, host.cpp).

The example hosts play a small Earth-system model that links landbc in-process
through the C ABI (Fortran) or the C++ API. They read no Zarr: this module cuts
a domain and a period out of a cube and writes plain files a Fortran program
reads with stream access:

    OUT/host.nml                       namelist &landbc_host (bundle, box, start, ...)
    OUT/static/<name>.bin              every static variable
    OUT/prior/<name>.bin               lu, lc of the start year, lai of the start month
    OUT/forcing/<NNN>/<name>.bin       the forcing of step NNN (001..nsteps)

With a host grid (`host_grid="O96"`), the host also plays an ESM on its own grid:

    OUT/remap/*.safetensors            the weights of `landbc remap-weights` for it
    OUT/host_forcing/<NNN>/<name>.bin  t2m, tp, ssrd on the host grid (float32, one value
                                       per host point), read from `host_forcing_files`
                                       (GRIB on that grid); namelist group &landbc_esm

and the Fortran host writes the fields of `ESM_FIELDS` aggregated to its grid.

Every .bin is the raw array, little-endian, row-major with rows north to south,
in the variable's native dtype (uint8 class codes, float32 otherwise): what
the C ABI takes, and a Fortran array declared (nx, ny) read in one go. A
channelled field (luh2_frac) is (12, cny, cnx), co2 a single float32.

`python_domain_means` runs the Python `BoundaryConditionEmulator` over exactly
these files and returns what the hosts print, one line per step:

    step 001 2001-01 lai 1.234567890E+00 cvh ... cvl ... lai_hv ... lai_lv ... lu_sum 123 lc_sum 456

(means over all pixels of the domain, summed in double precision in memory
order, 10 significant digits; lu_sum / lc_sum the sums of the class codes).
`parse_host_output` reads such lines back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landbc.emulator import catalog
from landbc.emulator.bundle import read_manifest, training_years
from landbc.emulator.cube import Cube
from landbc.emulator.grid import Grid

from . import calendar as cal
from .driver import domain_window

NAMELIST = "host.nml"
GROUP = "landbc_host"
ESM_GROUP = "landbc_esm"
ESM_FIELDS = ("cvh", "cvl", "tvh", "tvl", "lai_hv", "lai_lv")  # what the host reads on its grid
# The tiny test domain of tests/conftest.py (TINY_GRID, TINY_YEARS, seed 0): 80 x 80
# pixels, 16 x 16 coarse cells; `landbc host-inputs --tiny` creates it for ctest.
TINY_GRID = Grid(lat_south=46.0, lat_north=50.0, lon_west=6.0, lon_east=10.0, res=0.05,
                 coarse_factor=5)  # fmt: skip
TINY_YEARS = (2000, 2002)

MEAN_FIELDS = ("lai", "cvh", "cvl", "lai_hv", "lai_lv")
SUM_FIELDS = ("lu", "lc")
_LINE_RE = re.compile(
    r"^step (\d{3}) (\d{4})-(\d{2})"
    + "".join(rf" {n} (\S+)" for n in MEAN_FIELDS)
    + "".join(rf" {n}_sum (-?\d+)" for n in SUM_FIELDS)
    + r"$"
)


# --- writing ----------------------------------------------------------------------


def _write_bin(path: Path, var: catalog.Variable, value: np.ndarray, shape: tuple[int, ...]):
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{var.name}: expected shape {shape}, found {arr.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(var.dtype).newbyteorder("<")
    path.write_bytes(np.ascontiguousarray(arr, dtype=dtype).tobytes(order="C"))


def _check_bundle(bundle: Path, grid: Grid) -> None:
    g = read_manifest(bundle)["grid"]
    if abs(g["res"] - grid.res) > 1e-9 or g["coarse_factor"] != grid.coarse_factor:
        raise ValueError(
            f"bundle {bundle}: expected res {grid.res} deg and coarse_factor "
            f"{grid.coarse_factor} (the cube's), found res {g['res']} and "
            f"coarse_factor {g['coarse_factor']}"
        )


def default_start(cube: Cube, direction: str) -> tuple[int, int]:
    """December of the cube's first year (forward) or January of its last (backward)."""
    return (cube.first_year, 12) if cal.check_direction(direction) > 0 else (cube.last_year, 1)


def write_host_inputs(
    cube_path: str | Path,
    out_dir: str | Path,
    bundle: str | Path,
    box: tuple[float, float, float, float] | None = None,
    start: tuple[int, int] | None = None,
    nsteps: int = 24,
    direction: str = "forward",
    restart_step: int = 12,
    host_grid: str | None = None,
    host_forcing_files: Sequence[str | Path] = (),
) -> Path:
    """Write the example hosts' inputs for `box` (default: the whole cube grid) into
    `out_dir` and return it. `start` is the month of the priors (default
    `default_start`); the hosts then step `nsteps` months in `direction` and write a
    restart after step `restart_step` (0: none)."""
    cube = Cube.open(cube_path)
    bundle = Path(bundle).resolve()
    out = Path(out_dir)
    d = cal.check_direction(direction)
    if not 1 <= nsteps <= 999:
        raise ValueError(f"nsteps: expected 1..999 (3-digit step folders), found {nsteps}")
    if not 0 <= restart_step <= nsteps:
        raise ValueError(f"restart_step: expected 0..nsteps ({nsteps}), found {restart_step}")
    if host_forcing_files and not host_grid:
        raise ValueError("host_forcing_files: forcing on a host grid needs host_grid")
    start = tuple(start) if start is not None else default_start(cube, direction)
    months = cal.month_range(cal.add_months(*start, d), nsteps, direction)
    lo, hi = min([start, *months]), max([start, *months])
    if lo[0] < cube.first_year or hi[0] > cube.last_year:
        raise ValueError(
            f"start/nsteps: the run needs months {cal.format_month(*lo)}..{cal.format_month(*hi)}"
            f" (priors included); expected them inside the cube {cube_path} "
            f"({cube.first_year}-01..{cube.last_year}-12)"
        )
    grid, win, _ = domain_window(cube.grid, tuple(box) if box is not None else None)
    _check_bundle(bundle, grid)
    shapes = (grid.shape, grid.coarse_shape)

    out.mkdir(parents=True, exist_ok=True)
    trained = training_years(read_manifest(bundle))
    static = cube.static(win, cube.climatology_years(trained))
    for v in catalog.STATIC_VARIABLES:
        _write_bin(out / "static" / f"{v.name}.bin", v, static[v.name], v.shape(*shapes))
    priors = cube.truth(*start, win)
    for v in catalog.STATE_VARIABLES:
        _write_bin(out / "prior" / f"{v.name}.bin", v, priors[v.name], v.shape(*shapes))
    for k, (y, m) in enumerate(months, start=1):
        forcing = cube.forcing(y, m, win)
        for v in catalog.FORCING_VARIABLES:
            path = out / "forcing" / f"{k:03d}" / f"{v.name}.bin"
            _write_bin(path, v, forcing[v.name], v.shape(*shapes))

    lines = [
        f"&{GROUP}",
        f"  bundle = '{bundle}'",
        f"  lat_south = {float(grid.lat_south)!r}",
        f"  lat_north = {float(grid.lat_north)!r}",
        f"  lon_west = {float(grid.lon_west)!r}",
        f"  lon_east = {float(grid.lon_east)!r}",
        f"  year = {start[0]}",
        f"  month = {start[1]}",
        f"  nsteps = {nsteps}",
        f"  restart_step = {restart_step}",
        f"  direction = '{direction}'",
        "/",
    ]
    if host_grid:
        lines += _write_host_grid_inputs(out, grid, static["land_mask"], host_grid,
                                         host_forcing_files, months)  # fmt: skip
    (out / NAMELIST).write_text("\n".join(lines) + "\n")
    return out


def _write_host_grid_inputs(out: Path, grid: Grid, land_mask: np.ndarray, host_grid: str,
                            files: Sequence[str | Path],
                            months: list[tuple[int, int]]) -> list[str]:  # fmt: skip
    """The weights, the forcing on the host grid, and the lines of &landbc_esm."""
    from . import gribio
    from .grids import grid_from_name
    from .remap import write_host_weights

    write_host_weights(grid, land_mask, host_grid, out / "remap")
    names: tuple[str, ...] = ()
    if files:
        names = tuple(gribio.FORCING_VARIABLES)
        fo = gribio.read_forcing(files, variables=names, months=months)
        target = grid_from_name(host_grid)
        if fo.grid != target:
            raise ValueError(f"host_forcing_files: expected fields on {target.describe()}, "
                             f"found {fo.grid.describe()}")  # fmt: skip
        for k, ym in enumerate(months, start=1):
            i = fo.months.index(ym)
            for name in names:
                path = out / "host_forcing" / f"{k:03d}" / f"{name}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                values = np.ascontiguousarray(fo.data[name][i], dtype="<f4").reshape(-1)
                path.write_bytes(values.tobytes())
    quoted = ", ".join(f"'{n}'" for n in ESM_FIELDS)
    lines = [
        f"&{ESM_GROUP}",
        f"  host_grid = '{host_grid.strip()}'",
        f"  weights_dir = '{(out / 'remap').resolve()}'",
        f"  esm_fields = {quoted}",
    ]
    if names:
        lines.append(f"  host_forcing = {', '.join(repr(n) for n in names)}")
    return [*lines, "/"]


def read_host_field(out_dir: str | Path, step: int, name: str) -> np.ndarray:
    """A field the Fortran host wrote on its grid after `step` (float64, NaN = no land)."""
    return np.fromfile(Path(out_dir) / f"esm_{step:03d}_{name}.bin", dtype="<f8")


# --- reading ----------------------------------------------------------------------


def read_namelist(out_dir: str | Path) -> dict[str, Any]:
    """The &landbc_host group of OUT/host.nml as a dict (ints, floats and strings)."""
    values: dict[str, Any] = {}
    for raw in (Path(out_dir) / NAMELIST).read_text().splitlines():
        line = raw.strip()
        if line.startswith("/"):  # the end of &landbc_host; &landbc_esm may follow
            break
        if not line or line.startswith(("&", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{out_dir}/{NAMELIST}: expected 'key = value', found {raw!r}")
        value = value.strip().rstrip(",").strip()
        if value[:1] in "'\"":
            values[key.strip()] = value[1:-1]
        else:
            values[key.strip()] = float(value) if "." in value else int(value)
    return values


def _read_bin(path: Path, var: catalog.Variable, shape: tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(var.dtype).newbyteorder("<")
    return np.fromfile(path, dtype=dtype).astype(var.dtype).reshape(shape)


def _sequential_sum(a: np.ndarray) -> float:
    # The hosts add in memory order in double precision; cumsum adds in that order too.
    return float(np.cumsum(a.astype(np.float64).ravel())[-1])


def step_record(step: int, year: int, month: int, fields: dict[str, np.ndarray]) -> dict:
    """The numbers of one host output line from a step's fields."""
    rec: dict[str, Any] = {"step": step, "year": year, "month": month}
    for n in MEAN_FIELDS:
        rec[n] = _sequential_sum(fields[n]) / fields[n].size
    for n in SUM_FIELDS:
        rec[f"{n}_sum"] = int(fields[n].astype(np.int64).sum())
    return rec


def format_record(rec: dict) -> str:
    """One output line exactly as the hosts print it."""
    means = "".join(f" {n} {rec[n]:.9E}" for n in MEAN_FIELDS)
    sums = "".join(f" {n}_sum {rec[f'{n}_sum']}" for n in SUM_FIELDS)
    return f"step {rec['step']:03d} {rec['year']:04d}-{rec['month']:02d}{means}{sums}"


def python_domain_means(
    out_dir: str | Path,
    device: str = "cpu",
    dtype: str = "float32",
    callback: Callable[[int, Any], None] | None = None,
) -> list[dict]:
    """Run the Python `BoundaryConditionEmulator` over the files in `out_dir` (read back
    from the .bin files) and return per step the numbers the hosts print.
    `callback(step, emulator)` is called after every step (e.g. to keep a state)."""
    from landbc.emulator.api import BoundaryConditionEmulator

    out = Path(out_dir)
    nml = read_namelist(out)
    emu = BoundaryConditionEmulator.from_bundle(nml["bundle"], device=device, dtype=dtype)
    g = emu.manifest["grid"]
    grid = Grid(nml["lat_south"], nml["lat_north"], nml["lon_west"], nml["lon_east"],
                res=g["res"], coarse_factor=g["coarse_factor"])  # fmt: skip
    shapes = (grid.shape, grid.coarse_shape)

    def read(part: str, variables) -> dict[str, np.ndarray]:
        return {v.name: _read_bin(out / part / f"{v.name}.bin", v, v.shape(*shapes))
                for v in variables}  # fmt: skip

    year, month, direction = nml["year"], nml["month"], nml["direction"]
    emu.initialise(grid, read("static", catalog.STATIC_VARIABLES),
                   read("prior", catalog.STATE_VARIABLES), year, month, direction)  # fmt: skip
    records = []
    for k in range(1, nml["nsteps"] + 1):
        res = emu.step(read(f"forcing/{k:03d}", catalog.FORCING_VARIABLES))
        records.append(step_record(k, res.year, res.month, res.numpy()))
        if callback is not None:
            callback(k, emu)
    return records


def parse_host_output(text: str) -> list[dict]:
    """The step records of a host's standard output (other lines are skipped; a line
    that starts with "step " but does not match the format is an error)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("step "):
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise ValueError(f"host output: expected '{format_record(_EXAMPLE)}', found {line!r}")
        g = m.groups()
        rec: dict[str, Any] = {"step": int(g[0]), "year": int(g[1]), "month": int(g[2])}
        means, sums = g[3 : 3 + len(MEAN_FIELDS)], g[3 + len(MEAN_FIELDS) :]
        rec.update({n: float(x) for n, x in zip(MEAN_FIELDS, means, strict=True)})
        rec.update({f"{n}_sum": int(x) for n, x in zip(SUM_FIELDS, sums, strict=True)})
        records.append(rec)
    return records


_EXAMPLE = {"step": 1, "year": 2001, "month": 1, **dict.fromkeys(MEAN_FIELDS, 1.0),
            **{f"{n}_sum": 0 for n in SUM_FIELDS}}  # fmt: skip
