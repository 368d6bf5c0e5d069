"""`make soak`: 1850–2100 month by month on a small domain, through the Python API
and through the C ABI, watching resident memory (issue 11).

    .venv/bin/python benchmarks/soak.py [--out build/soak] [--lib build/cpp/liblandbc.so]

1. A surrogate world of 40 x 40 pixels (47–49N, 7–9E) for 1850..2100 (made once,
   about a minute; kept in OUT).
2. Each front in a fresh process, initialised from the truth of 1850-01 (the
   cube's first month), steps the 3011 months 1850-02 .. 2100-12 with the demo
   bundle in float32, and samples its resident set (VmRSS) at every December;
   it keeps the fields of a few spot months and writes restarts at 1900-12 and
   2000-12. The C ABI front is the library through ctypes (liblandbc.so): its
   forcing is read from the cube by Python and bound with landbc_set_field.
3. Checks: growth of the resident set after the first year ≤ 1 % on both fronts
   (against the sample of 1851-12: 1850 holds only monthly steps, the first
   yearly step is 1851-01); the two fronts' spot fields equal bit for bit; and a straight
   reference — a fresh emulator from each restart, stepped 12 months — equals
   the long run's fields of the following December bit for bit.
Writes OUT/soak.json and prints a summary; exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "weights" / "demo"
START, END = (1850, 1), (2100, 12)
SPOTS = [(1850, 12), (1900, 12), (1901, 12), (2000, 12), (2001, 12), (2100, 12)]
RESTARTS = [(1900, 12), (2000, 12)]
FIELDS = ("lu", "lc", "lai", "cvh", "lai_hv")
MAX_GROWTH = 0.01


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmRSS")


def months():
    y, m = START
    while (y, m) != END:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        yield y, m


def make_cube(out: Path) -> Path:
    from landbc.emulator.grid import Grid
    from landbc.emulator.world import generate_world

    path = out / "cube.zarr"
    if not path.exists():
        print("soak: generating the 1850..2100 world (40 x 40 px) ...", flush=True)
        grid = Grid(lat_south=47.0, lat_north=49.0, lon_west=7.0, lon_east=9.0, res=0.05,
                    coarse_factor=5)  # fmt: skip
        generate_world(path, grid, (START[0], END[0]), seed=0, progress=False)
    return path


def initial_restart(cube_path: Path, out: Path) -> Path:
    """The state at 1850-01 as a restart file: how the C ABI front is initialised."""
    from landbc.emulator.api import BoundaryConditionEmulator
    from landbc.emulator.cube import Cube

    cube = Cube.open(cube_path)
    emu = BoundaryConditionEmulator.from_bundle(BUNDLE, dtype="float32")
    static = cube.static(climatology_years=emu.lai_climatology_years)
    emu.initialise(cube.grid, static, cube.truth(*START), *START)
    return emu.save_restart(out / "restart_start.safetensors")


# --- the fronts (each run in its own process) -------------------------------------------


class PythonFront:
    def __init__(self, restart: Path) -> None:
        from landbc.emulator.api import BoundaryConditionEmulator

        self.emu = BoundaryConditionEmulator.from_restart(BUNDLE, restart, dtype="float32")

    def step(self, forcing) -> dict[str, np.ndarray]:
        return self.emu.step(forcing).numpy()

    def save_restart(self, path: Path) -> None:
        self.emu.save_restart(path)


class CFront:
    def __init__(self, restart: Path, lib: Path) -> None:
        import ctypes
        from ctypes import POINTER, c_char_p, c_int, c_int64, c_void_p

        self.c = ctypes
        abi = ctypes.CDLL(str(lib))
        abi.landbc_last_error.restype = c_char_p
        abi.landbc_open.argtypes = [c_char_p, c_char_p, c_char_p, POINTER(c_void_p)]
        abi.landbc_load_restart.argtypes = [c_void_p, c_char_p]
        abi.landbc_save_restart.argtypes = [c_void_p, c_char_p]
        abi.landbc_set_field.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int,
                                         POINTER(c_int64)]  # fmt: skip
        abi.landbc_step.argtypes = [c_void_p, POINTER(c_int), POINTER(c_int)]
        abi.landbc_get_field.argtypes = [c_void_p, c_char_p, c_void_p, c_int, c_int64]
        abi.landbc_grid_shape.argtypes = [c_void_p, *[POINTER(c_int64)] * 4]
        self.abi, self.h, self.bound = abi, c_void_p(), []
        self._ok(abi.landbc_open(str(BUNDLE).encode(), b"cpu", b"float32", ctypes.byref(self.h)))
        self._ok(abi.landbc_load_restart(self.h, str(restart).encode()))
        dims = [c_int64() for _ in range(4)]
        self._ok(abi.landbc_grid_shape(self.h, *map(ctypes.byref, dims)))
        self.shape = (dims[0].value, dims[1].value)
        # outputs: uint8 class codes, float32 otherwise (the catalog's dtypes)
        self.out = {n: np.empty(self.shape, np.uint8 if n in ("lu", "lc") else np.float32)
                    for n in FIELDS}  # fmt: skip

    def _ok(self, status: int) -> None:
        if status != 0:
            raise RuntimeError(f"C ABI status {status}: {self.abi.landbc_last_error().decode()}")

    def step(self, forcing) -> dict[str, np.ndarray]:
        c = self.c
        self.bound = []  # views: kept alive until the next step binds anew
        for name, value in forcing.items():
            a = np.asarray(value, dtype=np.float32, order="C")
            shape = (c.c_int64 * max(a.ndim, 1))(*a.shape)
            self._ok(self.abi.landbc_set_field(self.h, name.encode(), a.ctypes.data, 3, a.ndim,
                                               shape))  # fmt: skip
            self.bound.append(a)
        y, m = c.c_int(), c.c_int()
        self._ok(self.abi.landbc_step(self.h, c.byref(y), c.byref(m)))
        for name, buf in self.out.items():
            code = 1 if buf.dtype == np.uint8 else 3
            self._ok(self.abi.landbc_get_field(self.h, name.encode(), buf.ctypes.data, code,
                                               buf.size))  # fmt: skip
        return {n: b.copy() for n, b in self.out.items()}

    def save_restart(self, path: Path) -> None:
        self._ok(self.abi.landbc_save_restart(self.h, str(path).encode()))


def run_front(front: str, out: Path, lib: Path) -> None:
    """One front's soak, in this process; writes OUT/<front>.json and .npz."""
    import torch

    from landbc.emulator.cube import Cube

    torch.set_num_threads(1)  # both fronts alike (the C ABI shares this process's pool)
    cube = Cube.open(out / "cube.zarr")
    restart = out / "restart_start.safetensors"
    emu = PythonFront(restart) if front == "python" else CFront(restart, lib)
    samples, spots, t0, n = [], {}, time.perf_counter(), 0
    for y, m in months():
        fields = emu.step(cube.forcing(y, m))
        n += 1
        if (y, m) in SPOTS:
            spots.update({f"{n_}_{y}_{m:02d}": fields[n_] for n_ in FIELDS})
        if (y, m) in RESTARTS:
            emu.save_restart(out / f"{front}_restart_{y}-{m:02d}.safetensors")
        if m == 12:
            samples.append((y, rss()))
    wall = time.perf_counter() - t0
    np.savez(out / f"{front}.npz", **spots)
    (out / f"{front}.json").write_text(json.dumps({"steps": n, "wall_s": wall, "rss": samples}))


def straight_reference(out: Path, restart: Path) -> dict[str, np.ndarray]:
    """A fresh emulator from `restart`, stepped 12 months: the December after."""
    from landbc.emulator.cube import Cube

    cube = Cube.open(out / "cube.zarr")
    emu = PythonFront(restart)
    y0 = int(restart.stem.rsplit("_", 1)[1][:4])
    for m in range(1, 13):
        fields = emu.step(cube.forcing(y0 + 1, m))
    return fields


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "build" / "soak")
    ap.add_argument("--lib", type=Path, default=REPO / "build" / "cpp" / "liblandbc.so")
    ap.add_argument("--front", choices=("python", "c"), help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    out = args.out.resolve()
    if args.front:
        run_front(args.front, out, args.lib)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    make_cube(out)
    initial_restart(out / "cube.zarr", out)
    report: dict = {"machine": _cpu(), "bundle": str(BUNDLE), "domain": "40 x 40 px"}
    failures = []
    for front in ("python", "c"):
        print(f"soak: {front} front, 3011 months ...", flush=True)
        subprocess.run([sys.executable, __file__, "--out", str(out), "--lib", str(args.lib),
                        "--front", front], check=True)  # fmt: skip
        r = json.loads((out / f"{front}.json").read_text())
        first = r["rss"][1][1]  # 1851-12: after the first year with a yearly step
        peak = max(v for _, v in r["rss"][2:])
        growth = (peak - first) / first
        r.update(rss_first_year=first, rss_peak_after=peak, rss_last=r["rss"][-1][1],
                 growth=growth)  # fmt: skip
        report[front] = r
        print(f"soak: {front}: {r['steps']} steps in {r['wall_s']:.0f} s; resident set "
              f"{first / 2**20:.1f} MiB after 1851, peak after {peak / 2**20:.1f} MiB, "
              f"last {r['rss'][-1][1] / 2**20:.1f} MiB: growth {100 * growth:+.2f} %")  # fmt: skip
        if growth > MAX_GROWTH:
            failures.append(f"{front}: resident set grew {100 * growth:.2f} % (> 1 %)")
    import torch

    torch.set_num_threads(1)  # as the fronts ran: the same sums in the same order
    py, cc = np.load(out / "python.npz"), np.load(out / "c.npz")
    for key in py.files:
        if not np.array_equal(py[key], cc[key]):
            failures.append(f"spot {key}: the C ABI front differs from the Python front")
    for y, m in RESTARTS:
        ref = straight_reference(out, out / f"python_restart_{y}-{m:02d}.safetensors")
        for name in FIELDS:
            if not np.array_equal(ref[name], py[f"{name}_{y + 1}_12"]):
                failures.append(f"{name} {y + 1}-12: the long run differs from a fresh "
                                f"emulator restarted at {y}-{m:02d}")  # fmt: skip
    report["spot_checks"] = {
        "spots": [f"{y}-{m:02d}" for y, m in SPOTS],
        "fronts_equal": not any("C ABI" in f for f in failures),
        "restarted_equal": not any("fresh" in f for f in failures),
    }
    report["failures"] = failures
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    for f in failures:
        print("soak: FAILED:", f)
    print("soak:", "passed" if not failures else "failed", f"({out / 'soak.json'})")
    return 1 if failures else 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
