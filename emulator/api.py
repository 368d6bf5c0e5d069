"""`BoundaryConditionEmulator`: the step-wise Python front of a bundle.

A thin front (DESIGN.md, principle 1): it validates inputs against the
catalog, converts numpy / torch / xarray to tensors on the device, and reads
and writes restart files. All model logic is in the TorchScript stepper.

    emu = BoundaryConditionEmulator.from_bundle("weights/demo")
    emu.initialise(grid, static, priors, year=2014, month=12)
    res = emu.step(forcing)           # fields of 2015-01
    res.fields["lai"]                 # torch tensor on the device
"""

from __future__ import annotations

import ctypes
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import bundle as bundle_mod
from . import catalog, precision, safetensors
from .grid import Grid

log = logging.getLogger(__name__)
RESTART_FORMAT = "landbc-restart"
RESTART_VERSION = "1"
# The restart's tensors beside the catalog's statics and state: int64 [year, month],
# the global [row, col] of the grid's north-west pixel, and [+1 | -1].
RESTART_COORDS = ("time", "origin", "direction")
NETS_DTYPES = ("float32", "bfloat16")  # the nets' dtypes a restart may record


class InputError(ValueError):
    """Bad input to the emulator; the message names the variable, expected and found."""


def _parse_dtype(dtype: str | torch.dtype, device: torch.device) -> tuple[torch.dtype, str]:
    """The nets' dtype and why: `precision.resolve_dtype` decides, as everywhere."""
    try:
        return precision.resolve_dtype(dtype, device)
    except ValueError as e:
        raise InputError(str(e)) from None


def parse_device(device: str | torch.device) -> torch.device:
    """A device string ("cpu", "cuda", "cuda:N") → a torch.device that exists here.

    Anything else, or a CUDA device this machine lacks, is an InputError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', found {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device: {device!r} requested but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"device: {device!r} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type != "cpu":
        raise InputError(f"device: expected 'cpu' or 'cuda[:N]', found {device!r}")
    return dev


def as_tensor(name: str, value: Any) -> torch.Tensor:
    """numpy, torch, xarray or a Python scalar → a tensor (no copy where possible)."""
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "values") and hasattr(value, "dims"):  # xarray.DataArray
        value = value.values
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - any conversion failure is the caller's input
        raise InputError(f"{name}: expected an array, found {type(value).__name__} ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected a numeric array, found dtype {arr.dtype}")
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = arr.copy(order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
    return torch.from_numpy(arr)


def validate(var: catalog.Variable, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """Check one input against the catalog: shape, NaN, range, class codes."""
    t = as_tensor(var.name, value)
    if tuple(t.shape) != tuple(shape):
        raise InputError(f"{var.name}: expected shape {tuple(shape)}, found {tuple(t.shape)}")
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bad.any():
            raise InputError(f"{var.name}: expected finite values, found {int(bad.sum())} NaN/inf")
    if t.numel():
        lo, hi = float(t.min()), float(t.max())
        if lo < var.valid_min or hi > var.valid_max:
            raise InputError(
                f"{var.name}: expected values in [{var.valid_min}, {var.valid_max}] {var.units}, "
                f"found [{lo:g}, {hi:g}]"
            )
    if var.flag_values:
        if t.is_floating_point() and not torch.equal(t, t.round()):
            raise InputError(f"{var.name}: expected integer class codes, found fractional values")
        t = t.to(torch.uint8)
    elif var.dtype.startswith("float"):
        t = t.to(torch.float32)
    return t


@dataclass
class StepResult:
    """Fields of one month on the emulator's grid, as device tensors."""

    year: int
    month: int
    fields: dict[str, torch.Tensor]
    grid: Grid

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.fields[name]

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.fields.items()}

    def to_xarray(self):
        import xarray as xr

        time = np.datetime64(f"{self.year:04d}-{self.month:02d}-01", "ns")
        data = {
            k: (("lat", "lon"), v, catalog.variable(k).cf_attrs()) for k, v in self.numpy().items()
        }
        return xr.Dataset(data, coords={"lat": self.grid.lat, "lon": self.grid.lon, "time": time})


class BoundaryConditionEmulator:
    """Step-wise emulator of LU, LC and LAI for one domain and one direction."""

    def __init__(
        self,
        bundle_path: Path,
        manifest: dict,
        device: torch.device,
        dtype: torch.dtype,
        dtype_reason: str = "",
    ) -> None:
        self.bundle_path = bundle_path
        self.manifest = manifest
        self.device = device
        self.dtype = dtype
        self.dtype_reason = dtype_reason  # why this dtype (precision.resolve_dtype)
        self._stepper: torch.jit.ScriptModule | None = None
        self._direction: str | None = None
        self.grid: Grid | None = None

    # ---------------------------------------------------------- construction
    @classmethod
    def from_bundle(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> BoundaryConditionEmulator:
        """Open and verify a bundle (manifest and checksums); nothing is stepped yet.

        `dtype` is the nets' precision: "float32", "bfloat16" (or the torch
        dtypes), or "auto", which picks bfloat16 only where the device does it
        natively and fast (`landbc.emulator.precision`; logged with the reason).
        The default stays "float32" so that the library gives the same numbers on
        every machine unless asked otherwise; the command line defaults to "auto".
        bfloat16 requested where it is slow is honoured, with a warning.
        """
        path = Path(path)
        dev = parse_device(device)
        dt, why = _parse_dtype(dtype, dev)
        manifest = bundle_mod.verify(path)
        return cls(path, manifest, dev, dt, why)

    def _load(self, direction: str) -> None:
        if direction not in bundle_mod.DIRECTIONS:
            raise InputError(f"direction: expected 'forward' or 'backward', found {direction!r}")
        if self._direction != direction:
            self._stepper, _ = bundle_mod.load_stepper(
                self.bundle_path, direction, self.device, self.dtype
            )
            self._direction = direction

    def _check_grid(self, grid: Grid) -> None:
        g = self.manifest["grid"]
        if abs(grid.res - g["res"]) > 1e-9 or grid.coarse_factor != g["coarse_factor"]:
            raise InputError(
                f"grid: expected res {g['res']} deg and coarse_factor {g['coarse_factor']} "
                f"(the bundle's), found res {grid.res} and coarse_factor {grid.coarse_factor}"
            )

    def initialise(
        self,
        grid: Grid,
        static: Mapping[str, Any],
        priors: Mapping[str, Any],
        year: int,
        month: int,
        direction: str = "forward",
    ) -> None:
        """Set statics and priors valid at (year, month): LU and LC of `year`, LAI of
        that month. The first step produces the next month in `direction`."""
        self._check_grid(grid)
        if not (isinstance(month, int) and 1 <= month <= 12):
            raise InputError(f"month: expected an integer 1..12, found {month!r}")
        if not isinstance(year, int):
            raise InputError(f"year: expected an integer, found {year!r}")
        tensors = {}
        for part, given, variables in (
            ("static", static, catalog.STATIC_VARIABLES),
            ("priors", priors, catalog.STATE_VARIABLES),
        ):
            self._check_names(part, given, variables)
            for v in variables:
                shape = v.shape(grid.shape, grid.coarse_shape)
                # clone: the state must not alias the caller's arrays (a no-op .to() would)
                tensors[v.name] = validate(v, given[v.name], shape).clone()
        self._load(direction)
        assert self._stepper is not None
        self._stepper.init(
            {n: tensors[n] for n in _names(catalog.STATIC_VARIABLES)},
            {n: tensors[n] for n in _names(catalog.STATE_VARIABLES)},
            year,
            month,
            *grid.origin,
        )
        self.grid = grid
        log.info(
            "initialised %s on %s at %04d-%02d (%s, %s)",
            self.manifest["name"],
            grid.describe(),
            year,
            month,
            direction,
            self.dtype,
        )

    @property
    def lai_climatology_years(self) -> tuple[int, int] | None:
        """The years the bundle was trained on (`bundle.training_years`)."""
        return bundle_mod.training_years(self.manifest)

    @staticmethod
    def _check_names(part: str, given: Mapping[str, Any], variables) -> None:
        if not isinstance(given, Mapping):
            raise InputError(f"{part}: expected a mapping of name -> array, found {type(given)}")
        names = set(_names(variables))
        missing = sorted(names - set(given))
        if missing:
            raise InputError(f"{part}: missing variable(s) {missing}; expected {sorted(names)}")
        unknown = sorted(set(given) - names)
        if unknown:
            raise InputError(f"{part}: unknown variable(s) {unknown}; expected {sorted(names)}")

    # ------------------------------------------------------------------ time
    def _require(self) -> torch.jit.ScriptModule:
        if self._stepper is None or self.grid is None:
            raise RuntimeError("emulator is not initialised: call initialise() or from_restart()")
        return self._stepper

    @property
    def direction(self) -> str | None:
        return self._direction

    @property
    def time(self) -> tuple[int, int]:
        s = self._require()
        return int(s.year), int(s.month)

    @property
    def next_time(self) -> tuple[int, int]:
        y, m = self._require().next_time()
        return int(y), int(m)

    # ------------------------------------------------------------------ step
    def step(
        self,
        forcing: Mapping[str, Any],
        time: tuple[int, int] | None = None,
        exchange: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    ) -> StepResult:
        """Advance one month. `forcing` holds every catalog forcing variable valid at
        `next_time`; if `time` is given it must equal `next_time` (guards against
        forcing read for the wrong month). On any error the state is unchanged.

        A block with halos (`set_halo`) needs `exchange(name, field)`: after each
        stage it gets the block's new `name` (lu, lc or lai: its whole array) and
        returns an array whose halo holds the neighbours' new values (MPI: one halo
        exchange). The block then computes exactly the whole domain's values."""
        stepper = self._require()
        assert self.grid is not None
        nt = self.next_time
        if time is not None and tuple(time) != nt:
            raise InputError(
                f"time: expected forcing for {nt[0]:04d}-{nt[1]:02d} (the next step), "
                f"found {time[0]:04d}-{time[1]:02d}"
            )
        self._check_names("forcing", forcing, catalog.FORCING_VARIABLES)
        shapes = (self.grid.shape, self.grid.coarse_shape)
        tensors = {
            v.name: validate(v, forcing[v.name], v.shape(*shapes))
            for v in catalog.FORCING_VARIABLES
        }
        if max(self.halo) == 0:
            with torch.inference_mode():
                fields = stepper.step(tensors)
            release_free_memory()
            return StepResult(nt[0], nt[1], dict(fields), self.grid)
        if exchange is None:
            raise InputError(
                f"exchange: this emulator is a block with halos {self.halo}; step it with "
                "an exchange function that fills them"
            )
        with torch.inference_mode():
            for stage in stepper.stages():
                stepper.run_stage(tensors, stage)
                stepper.fill_halo(stage, exchange(stage, stepper.field(stage)))
            fields = stepper.outputs()
        release_free_memory()
        return StepResult(nt[0], nt[1], dict(fields), self.grid)

    # --------------------------------------------------------- decomposition
    @property
    def halo(self) -> tuple[int, int, int, int]:
        """Pixels of neighbours' data around the block: (top, bottom, left, right)."""
        return tuple(int(h) for h in self._require().halo)  # type: ignore[return-value]

    def set_halo(self, halo: tuple[int, int, int, int]) -> None:
        """Declare the state a block of a decomposed domain (`landbc.coupler.decomposition`):
        `halo` = (top, bottom, left, right) pixels of the neighbours' data around it, 0
        where the real domain ends. Cuts must lie on the tile lattice and halos be as
        wide as the windows reach (the error says how wide)."""
        try:
            self._require().set_halo([int(h) for h in halo])
        except torch.jit.Error as e:
            raise InputError(f"halo: {_script_message(e)}") from None

    # --------------------------------------------------------------- restart
    def state(self) -> dict[str, torch.Tensor]:
        return dict(self._require().get_state())

    def save_restart(self, path: str | Path) -> Path:
        """Write the full state (statics, priors, time, origin, direction, grid) as
        safetensors, with the dtype and device the nets ran in (`nets_dtype`,
        `nets_device`; the C++ front writes the same bytes)."""
        self._require()
        assert self.grid is not None
        return self.write_restart(path, self.state(), self.grid)

    def write_restart(
        self, path: str | Path, state: Mapping[str, torch.Tensor], grid: Grid
    ) -> Path:
        """Write `state` on `grid` as this emulator's restart: the state of a whole
        domain assembled from its blocks (MPI) is written like one emulator's."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fn = bundle_mod.stepper_file(self._direction or "forward")
        year, month = (int(x) for x in state["time"])
        meta = {
            "format": RESTART_FORMAT,
            "version": RESTART_VERSION,
            "bundle": self.manifest["name"],
            "stepper_sha256": self.manifest["files"][fn],
            "direction": self._direction or "",
            "grid": json.dumps(grid.to_dict()),
            "time": f"{year:04d}-{month:02d}",
            "nets_dtype": _dtype_name(self.dtype),
            "nets_device": _device_name(self.device),
        }
        safetensors.save(path, dict(state), meta)
        return path

    @classmethod
    def from_restart(
        cls,
        bundle_path: str | Path,
        restart_path: str | Path,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> BoundaryConditionEmulator:
        """Open a bundle and continue from a restart file (`load_restart`)."""
        emu = cls.from_bundle(bundle_path, device, dtype)
        emu.load_restart(restart_path)
        return emu

    def load_restart(self, path: str | Path, window: tuple[slice, slice] | None = None) -> None:
        """Continue from a restart file written by either front; with `window` (rows,
        cols of the restart's grid), from that part of it only: a rank's block and
        halo, whatever the rank count that wrote it. Every tensor is checked
        by value as `initialise` checks its inputs (`validate`: shape on the restart's
        grid, finite, valid range, class codes), and its dtype; time, direction, origin
        and grid must agree with each other and the grid with the bundle. A restart of
        nets run in another dtype or on another kind of device loads with a warning
        (the state is float32 either way; the continuation is then not bit-identical
        to an uninterrupted run). On any error the emulator is left exactly as it was."""
        path = Path(path)
        direction, grid, state, nets = self._read_restart(path)
        if window is not None:
            grid, state = _crop_state(grid, state, window)
        if self._stepper is not None and self._direction == direction:
            stepper = self._stepper
        else:  # load the other direction aside; the current one stays until the commit
            stepper, _ = bundle_mod.load_stepper(
                self.bundle_path, direction, self.device, self.dtype
            )
        try:
            stepper.set_state(state)  # checks everything before it assigns anything
        except torch.jit.Error as e:  # (not reached: _read_restart checked more)
            raise InputError(f"restart {path}: {e}") from None
        self._stepper, self._direction, self.grid = stepper, direction, grid
        here = (_dtype_name(self.dtype), _device_name(self.device))
        if nets and (nets[0] != here[0] or nets[1].split(":")[0] != self.device.type):
            log.warning(
                "restart %s was written by nets in %s on %s; this emulator runs %s on %s: "
                "the continuation is not bit-identical to an uninterrupted run",
                path,
                *nets,
                *here,
            )

    def _read_restart(
        self, path: Path
    ) -> tuple[str, Grid, dict[str, torch.Tensor], tuple[str, str] | None]:
        """Read and check a restart file; changes nothing. Returns its direction, grid,
        the state for the stepper's set_state, and the nets' (dtype, device) recorded
        in it (None in restarts written before they were recorded)."""
        tensors, meta = safetensors.load(path)
        where = f"restart {path}"

        def bad(message: str) -> InputError:
            return InputError(f"{where}: {message}")

        if meta.get("format") != RESTART_FORMAT or meta.get("version") != RESTART_VERSION:
            raise bad(
                f"expected format {RESTART_FORMAT} v{RESTART_VERSION}, "
                f"found {meta.get('format')} v{meta.get('version')}"
            )
        for key in ("direction", "stepper_sha256", "grid", "time"):
            if key not in meta:
                raise bad(f"{key}: missing from the metadata")
        direction = meta["direction"]
        if direction not in bundle_mod.DIRECTIONS:
            raise bad(f"direction: expected 'forward' or 'backward', found {direction!r}")
        in_bundle = self.manifest["files"].get(bundle_mod.stepper_file(direction))
        if in_bundle != meta["stepper_sha256"]:
            raise bad(
                f"written with stepper sha256 {meta['stepper_sha256']}, "
                f"bundle {self.bundle_path} has {in_bundle} (different weights)"
            )
        nets = None
        if "nets_dtype" in meta or "nets_device" in meta:
            nets = (meta.get("nets_dtype", ""), meta.get("nets_device", ""))
            if nets[0] not in NETS_DTYPES:
                raise bad(f"nets_dtype: expected 'float32' or 'bfloat16', found {nets[0]!r}")
            if not re.fullmatch(r"cpu|cuda:[0-9]+", nets[1]):
                raise bad(f"nets_device: expected 'cpu' or 'cuda:N', found {nets[1]!r}")
        try:
            grid = Grid.from_dict(json.loads(meta["grid"]))
        except (ValueError, TypeError, AttributeError) as e:
            raise bad(f"grid: not a valid grid description ({e}): {meta['grid'][:200]}") from None
        try:
            self._check_grid(grid)
        except InputError as e:
            raise bad(str(e)) from None

        variables = catalog.STATIC_VARIABLES + catalog.STATE_VARIABLES
        expected = sorted([*_names(variables), *RESTART_COORDS])
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise bad(f"missing variable(s) {missing}; expected {expected}")
        unknown = sorted(set(tensors) - set(expected))
        if unknown:
            raise bad(f"unknown variable(s) {unknown}; expected {expected}")
        state: dict[str, torch.Tensor] = {}
        for v in variables:
            t = tensors[v.name]
            if t.dtype != getattr(torch, v.dtype):
                raise bad(f"{v.name}: expected dtype {v.dtype}, found {_dtype_name(t.dtype)}")
            try:
                state[v.name] = validate(v, t, v.shape(grid.shape, grid.coarse_shape))
            except InputError as e:
                raise bad(str(e)) from None

        def ints(name: str, n: int) -> list[int]:
            t = tensors[name]
            if t.dtype != torch.int64 or tuple(t.shape) != (n,):
                raise bad(
                    f"{name}: expected int64 of shape {(n,)}, "
                    f"found {_dtype_name(t.dtype)} of shape {tuple(t.shape)}"
                )
            state[name] = t
            return [int(x) for x in t]

        year, month = ints("time", 2)
        if not 1 <= month <= 12:
            raise bad(f"time: expected month 1..12, found {month}")
        if not -(2**31) <= year < 2**31:
            raise bad(f"time: expected a year of 32 bits, found {year}")
        stamp = f"{year:04d}-{month:02d}"
        if meta["time"] != stamp:
            raise bad(f"time: the metadata says {meta['time']}, the time tensor {stamp}")
        (sign,) = ints("direction", 1)
        if sign != bundle_mod.DIRECTIONS[direction]:
            raise bad(
                f"direction: the metadata says '{direction}' "
                f"({bundle_mod.DIRECTIONS[direction]}), the direction tensor {sign}"
            )
        origin = tuple(ints("origin", 2))
        if origin != grid.origin:
            raise bad(
                f"origin: expected {grid.origin} (the north-west pixel of the grid "
                f"{meta['grid']}), found {origin}"
            )
        return direction, grid, state, nets


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim) after each
    step. A step's transients vary in size (the LU stage's with each year's changes),
    and glibc keeps the freed holes they leave: over 1850-2100 on a 40 x 40 domain the
    resident set crept up by 3 % without this and stays flat with it (`make soak`).
    The cost was below the noise of a 1025² step and ≈ 2.5 ms on a 40² one (the
    pages fault back in); elsewhere than glibc a no-op."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None  # glibc, once loaded (False where there is none)


def _crop_state(
    grid: Grid, state: dict[str, torch.Tensor], window: tuple[slice, slice]
) -> tuple[Grid, dict[str, torch.Tensor]]:
    rows, cols = window
    try:
        sub = grid.window(rows.start, rows.stop, cols.start, cols.stop)
    except ValueError as e:
        raise InputError(f"window: {e}") from None
    out = {n: t if n in RESTART_COORDS else t[..., rows, cols].clone() for n, t in state.items()}
    out["origin"] = torch.tensor(sub.origin, dtype=torch.int64)
    return sub, out


def _script_message(e: torch.jit.Error) -> str:
    """The message a TorchScript `raise ValueError(...)` carried, without the traceback."""
    text = str(e).strip().splitlines()
    return text[-1].split("Error: ", 1)[-1] if text else ""


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _device_name(device: torch.device) -> str:
    """The device as the C++ front names it: "cpu" or "cuda:N" (never bare "cuda")."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def _names(variables) -> list[str]:
    return [v.name for v in variables]
