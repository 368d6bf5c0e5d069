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

import json
import logging
from collections.abc import Mapping
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
        shape = grid.shape
        tensors = {}
        for part, given, variables in (
            ("static", static, catalog.STATIC_VARIABLES),
            ("priors", priors, catalog.STATE_VARIABLES),
        ):
            self._check_names(part, given, variables)
            for v in variables:
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
    def step(self, forcing: Mapping[str, Any], time: tuple[int, int] | None = None) -> StepResult:
        """Advance one month. `forcing` holds every catalog forcing variable valid at
        `next_time`; if `time` is given it must equal `next_time` (guards against
        forcing read for the wrong month). On any error the state is unchanged."""
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
        with torch.inference_mode():
            fields = stepper.step(tensors)
        return StepResult(nt[0], nt[1], dict(fields), self.grid)

    # --------------------------------------------------------------- restart
    def state(self) -> dict[str, torch.Tensor]:
        return dict(self._require().get_state())

    def save_restart(self, path: str | Path) -> Path:
        """Write the full state (statics, priors, time, direction, grid) as safetensors."""
        stepper = self._require()
        assert self.grid is not None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fn = bundle_mod.stepper_file(self._direction or "forward")
        meta = {
            "format": RESTART_FORMAT,
            "version": RESTART_VERSION,
            "bundle": self.manifest["name"],
            "stepper_sha256": self.manifest["files"][fn],
            "direction": self._direction or "",
            "grid": json.dumps(self.grid.to_dict()),
            "time": "{:04d}-{:02d}".format(*self.time),
        }
        safetensors.save(path, dict(stepper.get_state()), meta)
        return path

    @classmethod
    def from_restart(
        cls,
        bundle_path: str | Path,
        restart_path: str | Path,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> BoundaryConditionEmulator:
        emu = cls.from_bundle(bundle_path, device, dtype)
        tensors, meta = safetensors.load(restart_path)
        if meta.get("format") != RESTART_FORMAT or meta.get("version") != RESTART_VERSION:
            raise InputError(
                f"restart {restart_path}: expected format {RESTART_FORMAT} v{RESTART_VERSION}, "
                f"found {meta.get('format')} v{meta.get('version')}"
            )
        direction = meta["direction"]
        fn = bundle_mod.stepper_file(direction)
        if emu.manifest["files"].get(fn) != meta["stepper_sha256"]:
            raise InputError(
                f"restart {restart_path}: written with stepper sha256 {meta['stepper_sha256']}, "
                f"bundle {bundle_path} has {emu.manifest['files'].get(fn)} (different weights)"
            )
        grid = Grid.from_dict(json.loads(meta["grid"]))
        emu._check_grid(grid)
        if "land_mask" in tensors and tuple(tensors["land_mask"].shape) != grid.shape:
            raise InputError(
                f"restart {restart_path}: land_mask has shape {tuple(tensors['land_mask'].shape)}, "
                f"its grid has {grid.shape}"
            )
        emu._load(direction)
        assert emu._stepper is not None
        emu._stepper.set_state(tensors)
        emu.grid = grid
        return emu


def _names(variables) -> list[str]:
    return [v.name for v in variables]
