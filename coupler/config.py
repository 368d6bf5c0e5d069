"""The run configuration: a small TOML file, validated before anything runs.

    [bundle]   path = "../weights/demo"    device = "cpu"    dtype = "auto"
    [domain]   grid = "cube"               (or lat_south, lat_north, lon_west, lon_east)
    [period]   start = "2015-01"           steps = 24
    [run]      direction = "forward"
    [forcing]  cube = "../data/europe.zarr"
               climate = "cube"            (or "grib", "cf")
               files = ["../esm/forcing_*.grib2"]   remap = "conservative"
    [output]   store = "../output/demo/bc.zarr"   restart_dir = "../output/demo/restarts"
               restart_every = 12          overwrite = true
    [esm_output]  grid = "O96"   format = "grib"   encoding = "ecmwf-local"
                  packing = "grid_simple"   variables = ["cvh", "cvl", ...]   path = "esm"

`[esm_output]` (optional) also writes each month's fields on an ESM grid (any
`landbc.coupler.grids.grid_from_name` name), one GRIB2 file per month
(`landbc.coupler.esm_output`). Its `path` is relative to the run's output folder
(the folder of `output.store`), not to the config file.

`[[outputs]]` (optional, an array of tables) lists further outputs, each one
plug-in of `landbc.coupler.outputs`; `[esm_output]` is the shorthand for one
`type = "grib"` entry on an ESM grid:

    [[outputs]]   type = "grib"   grid = "native"   path = "grib_native"
                  encoding = "ecmwf-local"   packing = "grid_simple"   variables = [...]

`grid = "native"` writes the emulator's own grid (regular lat-lon at its
resolution); any other grid name remaps as `[esm_output]` does. `path`
(default ``<type>_<grid>``) is relative to the run's output folder too.

`[period] calendar` (default "standard"; any `landbc.coupler.calendar`
name: "proleptic_gregorian", "noleap"/"365_day", "all_leap"/"366_day",
"360_day", "julian") is the host model's calendar: it sets the time values and
bounds of the Zarr store and the month lengths in the GRIB time ranges. The
emulator itself steps in whole months and does not depend on it.

`[forcing]`: the cube always gives the statics, the priors and the yearly
forcing (LUH2, secondary land, CO2). The monthly climate (t2m, tp, ssrd) comes
from the cube too with `climate = "cube"` (the default), or from an ESM's
files: `climate = "grib"` (GRIB on any grid ecCodes reads, regular_ll or
reduced Gaussian such as O96) or `climate = "cf"` (NetCDF/Zarr with CF names
and units). `files` (required then, refused with "cube") lists paths or globs,
relative to the config file; every month of the run must be in them. The
fields are remapped to the run's coarse cells, `remap = "conservative"` (the
default) or `"bilinear"` (`landbc.coupler.forcing`).

`dtype = "auto"` (the default) runs the nets in bfloat16 only where the device
does it natively and fast, float32 elsewhere (`landbc.emulator.precision`
decides when the run starts, and logs why); "float32" or "bfloat16" pin it.

Relative paths are relative to the config file. Every error names the key, the
expected and the found value; unknown sections and keys are errors too, since a
misspelt `restart_evry` silently ignored is worse than a refusal.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from landbc.emulator.precision import DTYPE_CHOICES

from . import calendar as cal
from .forcing import CLIMATE_SOURCES, CUBE, DEFAULT_REMAP, REMAP_METHODS
from .gribio import ENCODINGS, PACKINGS, PARAMETERS
from .grids import grid_from_name

DTYPES = DTYPE_CHOICES  # "auto", "float32", "bfloat16"
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")
BOX_KEYS = ("lat_south", "lat_north", "lon_west", "lon_east")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


# section -> key -> (required, default). `domain` is special-cased below.
_SCHEMA: dict[str, dict[str, tuple[bool, Any]]] = {
    "bundle": {"path": (True, None), "device": (False, "cpu"), "dtype": (False, "auto")},
    "domain": {"grid": (False, None), **{k: (False, None) for k in BOX_KEYS}},
    "period": {"start": (True, None), "steps": (True, None), "calendar": (False, cal.STANDARD)},
    "run": {"direction": (False, cal.FORWARD)},
    "forcing": {
        "cube": (True, None),
        "climate": (False, CUBE),
        "files": (False, None),  # required unless climate = "cube"
        "remap": (False, DEFAULT_REMAP),
    },
    "output": {
        "store": (True, None),
        "restart_dir": (False, None),
        "restart_every": (False, 0),
        "overwrite": (False, False),
    },
}
_SCHEMA["esm_output"] = {
    "grid": (True, None),
    "format": (False, "grib"),
    "encoding": (False, "ecmwf-local"),
    "packing": (False, "grid_simple"),
    "variables": (False, None),  # None: ESM_DEFAULT_VARIABLES
    "path": (False, "esm"),
}
_REQUIRED_SECTIONS = ("bundle", "period", "forcing", "output")
_OPTIONAL_SECTIONS = ("esm_output",)  # absent: not filled with defaults
# `[[outputs]]`, an array of tables: extra outputs, each one of these keys.
OUTPUTS_KEY = "outputs"
_OUTPUT_SCHEMA: dict[str, tuple[bool, Any]] = {
    "type": (True, None),
    "grid": (False, "native"),
    "path": (False, None),  # None: default_output_path(type, grid)
    "encoding": (False, "ecmwf-local"),
    "packing": (False, "grid_simple"),
    "variables": (False, None),  # None: ESM_DEFAULT_VARIABLES
}

ESM_FORMATS = ("grib",)
ESM_DEFAULT_VARIABLES = ("cvh", "cvl", "tvh", "tvl", "lai_hv", "lai_lv")
NATIVE_GRID = "native"  # `[[outputs]] grid`: the emulator's own (high-resolution) grid
# `[[outputs]] type`s. The Zarr store is the run's own output, `[output]`, and is not
# listed again; the registry of plug-ins is `landbc.coupler.outputs`.
OUTPUT_TYPES = ("grib",)


def default_output_path(type_: str, grid: str) -> Path:
    """The folder an `[[outputs]]` entry without `path` writes into, next to the store:
    ``grib_native``, ``grib_O96``, ``grib_1x1`` (a "/" in a grid name would nest)."""
    return Path(f"{type_}_{grid.replace('/', 'x')}")


@dataclass(frozen=True)
class EsmOutputConfig:
    """The `[esm_output]` table: a run's fields also written on an ESM grid.

    `path` is the folder of the monthly GRIB2 files; a relative one is resolved
    against the run's output folder (`RunConfig.esm_output_dir`)."""

    grid: str
    format: str = "grib"
    encoding: str = "ecmwf-local"
    packing: str = "grid_simple"
    variables: tuple[str, ...] = ESM_DEFAULT_VARIABLES
    path: Path = Path("esm")


@dataclass(frozen=True)
class OutputConfig:
    """One extra output of a run (an `[[outputs]]` entry, or `[esm_output]` in its
    general form): `type` and `grid` pick the plug-in (`landbc.coupler.outputs`),
    ``grid = "native"`` meaning the emulator's own grid. `key` is where it was
    configured ("outputs[0]", "esm_output"), so that errors name it; `path` is
    relative to the run's output folder unless absolute."""

    type: str
    grid: str = NATIVE_GRID
    path: Path | None = None  # None: default_output_path(type, grid)
    encoding: str = "ecmwf-local"
    packing: str = "grid_simple"
    variables: tuple[str, ...] = ESM_DEFAULT_VARIABLES
    key: str = field(default="outputs", compare=False)

    @property
    def is_native(self) -> bool:
        return self.grid == NATIVE_GRID

    @property
    def folder(self) -> Path:
        return self.path if self.path is not None else default_output_path(self.type, self.grid)

    @classmethod
    def from_esm_output(cls, esm: EsmOutputConfig) -> OutputConfig:
        """`[esm_output]` is the shorthand for one GRIB output on an ESM grid."""
        return cls(type=esm.format, grid=esm.grid, path=esm.path, encoding=esm.encoding,
                   packing=esm.packing, variables=esm.variables, key="esm_output")  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """A validated run. Paths are absolute (resolved against the config file)."""

    bundle: Path
    cube: Path
    store: Path
    start: tuple[int, int]
    steps: int
    device: str = "cpu"
    dtype: str = "auto"  # resolved to float32/bfloat16 when the run starts
    box: tuple[float, float, float, float] | None = None  # None: the whole cube grid
    direction: str = cal.FORWARD
    restart_dir: Path | None = None  # None: <store parent>/restarts
    restart_every: int = 0
    overwrite: bool = False
    esm_output: EsmOutputConfig | None = None  # None: no ESM-grid output
    climate: str = CUBE  # [forcing] climate: where t2m/tp/ssrd come from
    climate_files: tuple[Path, ...] = ()  # [forcing] files: absolute paths or globs
    climate_remap: str = DEFAULT_REMAP  # [forcing] remap
    outputs: tuple[OutputConfig, ...] = ()  # `[[outputs]]`: extra outputs
    calendar: str = cal.STANDARD  # [period] calendar, a CF name (canonical)
    source: str = field(default="<dict>", compare=False)  # where it was read from

    # -- derived -------------------------------------------------------------
    @property
    def months(self) -> list[tuple[int, int]]:
        """Months produced, in step order."""
        return cal.month_range(self.start, self.steps, self.direction)

    @property
    def prior_month(self) -> tuple[int, int]:
        """The month whose truth initialises the priors: before start in the run direction."""
        return cal.previous_month(*self.start, self.direction)

    @property
    def restart_path(self) -> Path:
        return self.restart_dir if self.restart_dir is not None else self.store.parent / "restarts"

    @property
    def esm_output_dir(self) -> Path | None:
        """The folder of the ESM-grid GRIB files (None without `[esm_output]`)."""
        if self.esm_output is None:
            return None
        p = self.esm_output.path.expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self.store.parent / p))

    @property
    def extra_outputs(self) -> tuple[OutputConfig, ...]:
        """Every output besides the Zarr store: `[esm_output]` (first) and `[[outputs]]`."""
        esm = () if self.esm_output is None else (OutputConfig.from_esm_output(self.esm_output),)
        return esm + tuple(self.outputs)

    def output_dir(self, out: OutputConfig) -> Path:
        """The folder of an extra output: its `path`, relative to the store's folder."""
        p = out.folder.expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self.store.parent / p))

    def with_(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        new = replace(self, **changes)
        new._validate_fields()
        return new

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(data, base_dir=path.resolve().parent, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, base_dir: str | Path = ".", source: str = "<dict>") -> RunConfig:
        """Validate a parsed TOML document; relative paths resolve against `base_dir`."""
        base = Path(base_dir).resolve()

        def err(key: str, expected: str, found: Any) -> ConfigError:
            return ConfigError(f"{source}: [{key}]: expected {expected}, found {found!r}")

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a TOML table at the top level")
        for sec in data:
            if sec not in _SCHEMA and sec != OUTPUTS_KEY:
                raise ConfigError(
                    f"{source}: unknown section [{sec}]; known sections: {', '.join(_SCHEMA)}, "
                    f"[[{OUTPUTS_KEY}]]"
                )
        for sec in _REQUIRED_SECTIONS:
            if sec not in data:
                raise ConfigError(f"{source}: missing section [{sec}]")

        vals: dict[str, dict[str, Any]] = {}
        for sec, schema in _SCHEMA.items():
            if sec in _OPTIONAL_SECTIONS and sec not in data:
                continue
            table = data.get(sec, {})
            if not isinstance(table, dict):
                raise err(sec, "a table (section)", table)
            for key in table:
                if key not in schema:
                    raise ConfigError(
                        f"{source}: unknown key {sec}.{key}; known keys of [{sec}]: "
                        f"{', '.join(schema)}"
                    )
            v = {}
            for key, (required, default) in schema.items():
                if key in table:
                    v[key] = table[key]
                elif required:
                    raise ConfigError(f"{source}: missing key {sec}.{key}")
                else:
                    v[key] = default
            vals[sec] = v

        def string(sec: str, key: str) -> str:
            x = vals[sec][key]
            if not isinstance(x, str) or not x:
                raise err(f"{sec}.{key}", "a non-empty string", x)
            return x

        def a_path(sec: str, key: str) -> Path:
            p = Path(string(sec, key)).expanduser()
            return Path(os.path.normpath(p if p.is_absolute() else base / p))

        def integer(sec: str, key: str, minimum: int) -> int:
            x = vals[sec][key]
            if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
                raise err(f"{sec}.{key}", f"an integer >= {minimum}", x)
            return x

        def boolean(sec: str, key: str) -> bool:
            x = vals[sec][key]
            if not isinstance(x, bool):
                raise err(f"{sec}.{key}", "true or false", x)
            return x

        def number(sec: str, key: str) -> float:
            x = vals[sec][key]
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise err(f"{sec}.{key}", "a number (degrees)", x)
            return float(x)

        # [domain]: either grid = "cube" (the default) or the four box keys.
        dom = vals["domain"]
        given = [k for k in BOX_KEYS if dom[k] is not None]
        box = None
        if dom["grid"] is not None:
            if dom["grid"] != "cube":
                raise err("domain.grid", '"cube" (or give lat_south/lat_north/lon_west/lon_east)',
                          dom["grid"])  # fmt: skip
            if given:
                raise ConfigError(
                    f'{source}: [domain.grid]: expected either grid = "cube" or a box, '
                    f"found both grid and {', '.join('domain.' + k for k in given)}"
                )
        elif given:
            missing = [k for k in BOX_KEYS if dom[k] is None]
            if missing:
                raise ConfigError(
                    f"{source}: missing key domain.{missing[0]} (a box needs all of "
                    f"{', '.join(BOX_KEYS)})"
                )
            box = tuple(number("domain", k) for k in BOX_KEYS)

        start_raw = vals["period"]["start"]
        try:
            start = cal.parse_month(start_raw, f"{source}: [period.start]")
        except ValueError as e:
            raise ConfigError(str(e)) from None

        calendar = vals["period"]["calendar"]
        try:
            calendar = cal.canonical_calendar(calendar)
        except ValueError:
            raise err("period.calendar", _calendar_choices(), calendar) from None

        direction = vals["run"]["direction"]
        if direction not in cal.DIRECTIONS:
            raise err("run.direction", " or ".join(f'"{d}"' for d in cal.DIRECTIONS), direction)

        restart_dir = a_path("output", "restart_dir") if vals["output"]["restart_dir"] else None

        esm = None
        if "esm_output" in vals:
            ev = vals["esm_output"]
            variables = ev["variables"]
            if variables is None:
                variables = ESM_DEFAULT_VARIABLES
            elif not isinstance(variables, list) or not variables:
                raise err("esm_output.variables", "a non-empty list of variable names", variables)
            # Types only here; the values are checked by _validate_fields.
            esm = EsmOutputConfig(
                grid=string("esm_output", "grid"),
                format=string("esm_output", "format"),
                encoding=string("esm_output", "encoding"),
                packing=string("esm_output", "packing"),
                variables=tuple(variables),
                path=Path(string("esm_output", "path")),
            )
        outputs = _parse_outputs(data.get(OUTPUTS_KEY, []), err, source)
        # [forcing] files: paths or globs, resolved against the config file's folder now
        # and expanded when the run starts (the files may be written after the config).
        files = vals["forcing"]["files"]
        files = [files] if isinstance(files, str) else files
        if files is not None and (not isinstance(files, list) or not files
                                  or not all(isinstance(f, str) and f for f in files)):  # fmt: skip
            raise err("forcing.files", "a non-empty list of paths or globs (strings)", files)
        climate_files = tuple(
            Path(os.path.normpath(p if p.is_absolute() else base / p))
            for p in (Path(f).expanduser() for f in files or ())
        )
        cfg = cls(
            bundle=a_path("bundle", "path"),
            device=string("bundle", "device"),
            dtype=string("bundle", "dtype"),
            box=box,  # type: ignore[arg-type]
            start=start,
            steps=integer("period", "steps", 1),
            direction=direction,
            cube=a_path("forcing", "cube"),
            climate=string("forcing", "climate"),
            climate_files=climate_files,
            climate_remap=string("forcing", "remap"),
            store=a_path("output", "store"),
            restart_dir=restart_dir,
            restart_every=integer("output", "restart_every", 0),
            overwrite=boolean("output", "overwrite"),
            esm_output=esm,
            outputs=outputs,
            calendar=calendar,
            source=source,
        )
        cfg._validate_fields()
        return cfg

    def _validate_fields(self) -> None:
        """Checks that also hold for configs built in code (the demo)."""
        s = self.source

        def err(key: str, expected: str, found: Any) -> ConfigError:
            return ConfigError(f"{s}: [{key}]: expected {expected}, found {found!r}")

        if not _DEVICE_RE.match(str(self.device)):
            raise err("bundle.device", '"cpu", "cuda" or "cuda:N"', self.device)
        if self.dtype not in DTYPES:
            choices = ", ".join(f'"{d}"' for d in DTYPES[:-1]) + f' or "{DTYPES[-1]}"'
            raise err("bundle.dtype", choices, self.dtype)
        if self.direction not in cal.DIRECTIONS:
            raise err("run.direction", '"forward" or "backward"', self.direction)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise err("period.steps", "an integer >= 1", self.steps)
        if self.restart_every < 0:
            raise err("output.restart_every", "an integer >= 0", self.restart_every)
        if self.box is not None:
            s_, n_, w_, e_ = self.box
            if not (-90 <= s_ < n_ <= 90):
                raise err("domain.lat_north", f"-90 <= lat_south ({s_}) < lat_north <= 90", n_)
            if not (-180 <= w_ < e_ <= 180):
                raise err("domain.lon_east", f"-180 <= lon_west ({w_}) < lon_east <= 180", e_)
        self._validate_forcing()
        if self.esm_output is not None:
            self._validate_esm_output(self.esm_output)
        try:
            # stored canonical ("365_day" -> "noleap"): the name outputs record
            object.__setattr__(self, "calendar", cal.canonical_calendar(self.calendar))
        except ValueError:
            raise err("period.calendar", _calendar_choices(), self.calendar) from None
        for out in self.outputs:
            self._validate_output(out)
        # Two outputs into one folder would overwrite each other's monthly files.
        seen: dict[Path, str] = {}
        for out in self.extra_outputs:
            d = self.output_dir(out)
            if d in seen:
                raise err(f"{out.key}.path", f"a folder of its own (not that of [{seen[d]}])",
                          str(d))  # fmt: skip
            if d == self.store or d == self.restart_path:
                raise err(f"{out.key}.path", "a folder other than the store's and the restarts'",
                          str(d))  # fmt: skip
            seen[d] = out.key

    def _validate_output(self, out: OutputConfig) -> None:
        """An `[[outputs]]` entry (built in code or read): each error names `outputs[i].key`."""
        s, k = self.source, out.key

        def err(key: str, expected: str, found: Any) -> ConfigError:
            return ConfigError(f"{s}: [{k}.{key}]: expected {expected}, found {found!r}")

        if out.type not in OUTPUT_TYPES:
            raise err("type", _one_of(OUTPUT_TYPES) + " (the Zarr store is [output])", out.type)
        if not isinstance(out.grid, str):
            raise err("grid", '"native" or a grid name such as "O96", "N320" or "1/1"', out.grid)
        if not out.is_native:
            try:
                grid_from_name(out.grid)
            except ValueError as e:
                raise err("grid", f'"native" or a grid name such as "O96", "N320" or "1/1" ({e})',
                          out.grid) from None  # fmt: skip
        if out.encoding not in ENCODINGS:
            raise err("encoding", _one_of(ENCODINGS), out.encoding)
        if out.packing not in PACKINGS:
            raise err("packing", _one_of(PACKINGS), out.packing)
        if not isinstance(out.variables, tuple) or not out.variables:
            raise err("variables", "a non-empty list of variable names", out.variables)
        for v in out.variables:
            if not isinstance(v, str) or v not in PARAMETERS:
                raise err("variables", f"names among {', '.join(PARAMETERS)}", v)
        if len(set(out.variables)) != len(out.variables):
            raise err("variables", "each variable once", list(out.variables))
        if out.path is not None and (not isinstance(out.path, Path) or not str(out.path)):
            raise err("path", "a non-empty path", out.path)

    def _validate_forcing(self) -> None:
        """[forcing] climate/files/remap: files exactly when the climate is not the cube's."""

        def err(key: str, expected: str, found: Any) -> ConfigError:
            return ConfigError(f"{self.source}: [forcing.{key}]: expected {expected}, "
                               f"found {found!r}")  # fmt: skip

        def one_of(choices: tuple[str, ...]) -> str:
            return ", ".join(f'"{c}"' for c in choices[:-1]) + f' or "{choices[-1]}"'

        if self.climate not in CLIMATE_SOURCES:
            raise err("climate", one_of(CLIMATE_SOURCES), self.climate)
        if self.climate_remap not in REMAP_METHODS:
            raise err("remap", one_of(REMAP_METHODS), self.climate_remap)
        files = self.climate_files
        if not isinstance(files, tuple) or not all(isinstance(f, Path) for f in files):
            raise err("files", "a tuple of paths", files)
        if self.climate == CUBE and files:
            raise err("files", 'no files with climate = "cube" (the climate comes from the '
                      'cube); set climate = "grib" or "cf"', [str(f) for f in files])  # fmt: skip
        if self.climate != CUBE and not files:
            expected = f'a non-empty list of paths or globs with climate = "{self.climate}"'
            raise err("files", expected, list(files))

    def _forcing_toml(self) -> list[str]:
        """The [forcing] keys besides `cube`, for `to_toml`."""
        lines = [f"climate = {_toml_str(self.climate)}"]
        if self.climate != CUBE:
            lines += [f"files = [{', '.join(_toml_str(f) for f in self.climate_files)}]",
                      f"remap = {_toml_str(self.climate_remap)}"]  # fmt: skip
        return lines

    def _validate_esm_output(self, esm: EsmOutputConfig) -> None:
        s = self.source

        def err(key: str, expected: str, found: Any) -> ConfigError:
            return ConfigError(f"{s}: [esm_output.{key}]: expected {expected}, found {found!r}")

        def one_of(choices: tuple[str, ...]) -> str:
            quoted = [f'"{c}"' for c in choices]
            return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)

        try:
            grid_from_name(esm.grid)
        except ValueError as e:
            raise err("grid", f"a grid name such as \"O96\", \"N320\" or \"1/1\" ({e})",
                      esm.grid) from None  # fmt: skip
        if esm.format not in ESM_FORMATS:
            raise err("format", one_of(ESM_FORMATS), esm.format)
        if esm.encoding not in ENCODINGS:
            raise err("encoding", one_of(ENCODINGS), esm.encoding)
        if esm.packing not in PACKINGS:
            raise err("packing", one_of(PACKINGS), esm.packing)
        if not esm.variables:
            raise err("variables", "a non-empty list of variable names", list(esm.variables))
        for v in esm.variables:
            if not isinstance(v, str) or v not in PARAMETERS:
                raise err("variables", f"names among {', '.join(PARAMETERS)}", v)
        if len(set(esm.variables)) != len(esm.variables):
            raise err("variables", "each variable once", list(esm.variables))
        if not isinstance(esm.path, Path) or not str(esm.path):
            raise err("path", "a non-empty path", esm.path)

    # -- writing -------------------------------------------------------------
    def to_toml(self) -> str:
        """The config as TOML with absolute paths (recorded next to the output)."""
        q = _toml_str
        lines = [
            "[bundle]",
            f"path = {q(self.bundle)}",
            f"device = {q(self.device)}",
            f"dtype = {q(self.dtype)}",
            "",
            "[domain]",
        ]
        if self.box is None:
            lines.append('grid = "cube"')
        else:
            lines += [f"{k} = {v!r}" for k, v in zip(BOX_KEYS, self.box, strict=True)]
        lines += [
            "",
            "[period]",
            f'start = "{cal.format_month(*self.start)}"',
            f"steps = {self.steps}",
            f"calendar = {q(self.calendar)}",
            "",
            "[run]",
            f"direction = {q(self.direction)}",
            "",
            "[forcing]",
            f"cube = {q(self.cube)}",
            *self._forcing_toml(),
            "",
            "[output]",
            f"store = {q(self.store)}",
            f"restart_dir = {q(self.restart_path)}",
            f"restart_every = {self.restart_every}",
            f"overwrite = {'true' if self.overwrite else 'false'}",
        ]
        esm, esm_dir = self.esm_output, self.esm_output_dir
        if esm is not None and esm_dir is not None:
            lines += [
                "",
                "[esm_output]",
                f"grid = {q(esm.grid)}",
                f"format = {q(esm.format)}",
                f"encoding = {q(esm.encoding)}",
                f"packing = {q(esm.packing)}",
                f"variables = [{', '.join(q(v) for v in esm.variables)}]",
                f"path = {q(esm_dir)}",
            ]
        for out in self.outputs:
            lines += [
                "",
                f"[[{OUTPUTS_KEY}]]",
                f"type = {q(out.type)}",
                f"grid = {q(out.grid)}",
                f"path = {q(self.output_dir(out))}",
                f"encoding = {q(out.encoding)}",
                f"packing = {q(out.packing)}",
                f"variables = [{', '.join(q(v) for v in out.variables)}]",
            ]
        return "\n".join(lines) + "\n"


def _one_of(choices: tuple[str, ...]) -> str:
    quoted = [f'"{c}"' for c in choices]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def _calendar_choices() -> str:
    return "a CF calendar: " + _one_of(tuple(cal.CALENDAR_ALIASES))


def _parse_outputs(raw: Any, err: Any, source: str) -> tuple[OutputConfig, ...]:
    """`[[outputs]]`: types and keys here; the values are checked by `_validate_output`."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise err(OUTPUTS_KEY, "an array of tables ([[outputs]] entries)", raw)
    out = []
    for i, table in enumerate(raw):
        k = f"{OUTPUTS_KEY}[{i}]"
        for key in table:
            if key not in _OUTPUT_SCHEMA:
                raise ConfigError(f"{source}: unknown key {k}.{key}; known keys of "
                                  f"[[{OUTPUTS_KEY}]]: {', '.join(_OUTPUT_SCHEMA)}")  # fmt: skip
        v = {}
        for key, (required, default) in _OUTPUT_SCHEMA.items():
            if key in table:
                v[key] = table[key]
            elif required:
                raise ConfigError(f"{source}: missing key {k}.{key}")
            else:
                v[key] = default
        for key in ("type", "grid", "encoding", "packing"):
            if not isinstance(v[key], str) or not v[key]:
                raise err(f"{k}.{key}", "a non-empty string", v[key])
        if v["path"] is not None and (not isinstance(v["path"], str) or not v["path"]):
            raise err(f"{k}.path", "a non-empty string", v["path"])
        variables = v["variables"]
        if variables is None:
            variables = ESM_DEFAULT_VARIABLES
        elif not isinstance(variables, list) or not variables:
            raise err(f"{k}.variables", "a non-empty list of variable names", variables)
        out.append(OutputConfig(
            type=v["type"], grid=v["grid"], encoding=v["encoding"], packing=v["packing"],
            path=Path(v["path"]) if v["path"] is not None else None,
            variables=tuple(variables), key=k,
        ))  # fmt: skip
    return tuple(out)


def _toml_str(x: Any) -> str:
    s = str(x).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run config file."""
    return RunConfig.from_toml(path)


# --- the demo ------------------------------------------------------------------

DEMO_START = (2015, 1)
DEMO_STEPS = 24
DEMO_RESTART_EVERY = 12
DEMO_YEARS = (1960, 2020)


def demo_config(workdir: str | Path = ".", bundle: str | Path | None = None,
                device: str = "cpu", dtype: str = "auto") -> RunConfig:  # fmt: skip
    """The run `landbc demo` makes (and examples/demo.toml describes): 24 months
    forward from 2015-01 over the whole Europe cube, restarts every 12 steps, and the
    IFS boundary fields on the O96 grid as monthly GRIB2 files."""
    w = Path(workdir).resolve()
    return RunConfig(
        bundle=Path(bundle).resolve() if bundle is not None else w / "weights" / "demo",
        device=device,
        dtype=dtype,
        box=None,
        start=DEMO_START,
        steps=DEMO_STEPS,
        direction=cal.FORWARD,
        cube=w / "data" / "europe.zarr",
        store=w / "output" / "demo" / "bc.zarr",
        restart_dir=w / "output" / "demo" / "restarts",
        restart_every=DEMO_RESTART_EVERY,
        overwrite=True,
        # the fields on an IFS grid too, in GRIB: output/demo/esm/bc_YYYY-MM.grib2
        esm_output=EsmOutputConfig(grid="O96"),
        source="landbc demo",
    )
