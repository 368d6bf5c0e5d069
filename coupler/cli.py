"""The `landbc` command line.

    landbc run CONFIG [--resume] [--max-steps N]   run (or continue) a configured emulation
               [--device D] [--dtype T]           (overriding [bundle] device / dtype)
    landbc demo [--workdir DIR] [--dtype T]       Europe cube, 24 months from 2015-01, quicklooks
    landbc world --out PATH [--box S N W E] ...   generate a surrogate-world cube
    landbc train ... | landbc evaluate ...        training / evaluation against baselines
    landbc realcase train|evaluate|baselines ...  the real land-cover case (MCD12C1 2019)
    landbc bias-adjust CUBE --reference R ...     forcing moved to a reference climatology
    landbc export BUNDLE --out NEW                re-script a bundle's nets with this code
    landbc inspect BUNDLE                         describe a weights bundle
    landbc host-inputs CUBE --bundle B --out DIR  input files for the example C++/Fortran hosts
    landbc export-forcing --cube C --grid O96     the cube's climate on a model grid, one
               --start YYYY-MM --steps N --out D  GRIB2 file per month ([forcing] climate="grib")

User errors (a bad config, a missing file, an input the emulator refuses) end
with one line on stderr and exit code 2; -v shows the traceback and debug logs.
Heavy modules (torch, the world generator) are imported only by the commands
that need them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("landbc")

EXIT_USER_ERROR = 2
# landbc.emulator.precision.DTYPE_CHOICES, spelt out (this module imports no emulator
# module at load time; tests/test_precision.py checks they agree).
_DTYPES = ("auto", "float32", "bfloat16")
_PASS_THROUGH = ("train", "evaluate", "realcase")


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ValueError, FileNotFoundError, FileExistsError]
    try:  # InputError subclasses ValueError; listed for clarity where the API exists.
        from landbc.emulator.api import InputError

        types.append(InputError)
    except Exception:  # noqa: BLE001 - the API may be absent or fail to import torch
        pass
    return tuple(types)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)  # fmt: skip
    if level > logging.DEBUG:  # third-party chatter only at -v
        for name in ("matplotlib", "PIL", "numcodecs", "zarr", "fsspec"):
            logging.getLogger(name).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    # -v/-q are accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="debug logging and tracebacks on errors")  # fmt: skip
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="warnings and errors only, no progress bars")  # fmt: skip

    p = argparse.ArgumentParser(
        prog="landbc", parents=[common],
        description="Online emulators of land use, land cover and LAI boundary conditions.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="run an emulation from a TOML config")
    r.add_argument("config", type=Path, help="run configuration (TOML)")
    r.add_argument("--resume", action="store_true",
                   help="continue from the latest restart and the output store")  # fmt: skip
    r.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop after N steps (a batch-job chunk); then --resume")  # fmt: skip
    r.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N: overrides [bundle] device")  # fmt: skip
    r.add_argument("--dtype", default=None, choices=_DTYPES,
                   help="nets' precision, overrides [bundle] dtype (default there: auto = "
                        "bfloat16 only where the device does it natively)")  # fmt: skip

    d = sub.add_parser("demo", parents=[common],
                       help="Europe demo: cube, 24 months from 2015-01, quicklooks")  # fmt: skip
    d.add_argument("--workdir", type=Path, default=Path("."),
                   help="where data/, output/ (and weights/demo) are (default: .)")  # fmt: skip
    d.add_argument("--bundle", type=Path, default=None,
                   help="weights bundle (default: WORKDIR/weights/demo)")  # fmt: skip
    d.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    d.add_argument("--dtype", default="auto", choices=_DTYPES,
                   help="nets' precision (default auto: bfloat16 only where the device does "
                        "it natively and fast, else float32)")  # fmt: skip

    w = sub.add_parser("world", parents=[common], help="generate a surrogate-world cube")
    w.add_argument("--out", type=Path, required=True, help="cube path (Zarr, must not exist)")
    w.add_argument("--box", type=float, nargs=4, metavar=("S", "N", "W", "E"), default=None,
                   help="lat_south lat_north lon_west lon_east (default: Europe)")  # fmt: skip
    w.add_argument("--res", type=float, default=None, help="resolution in degrees (default 0.05)")
    w.add_argument("--coarse-factor", type=int, default=None,
                   help="coarse forcing cells in pixels (default 5)")  # fmt: skip
    w.add_argument("--years", type=int, nargs=2, metavar=("Y0", "Y1"), default=(1960, 2020))
    w.add_argument("--seed", type=int, default=0)

    for name, what in (("train", "train an emulator (landbc.emulator.training)"),
                       ("evaluate", "evaluate a bundle (landbc.emulator.evaluate)"),
                       ("realcase", "the real land-cover case: MCD12C1 2019 from its 1° "
                                    "fractions (landbc.emulator.realcase)")):  # fmt: skip
        # Arguments pass through untouched (their own --help included).
        sub.add_parser(name, help=what, add_help=False)

    b = sub.add_parser("bias-adjust", parents=[common],
                       help="move monthly forcing onto a reference climatology")  # fmt: skip
    b.add_argument("cube", type=Path, help="cube whose forcing is adjusted (left unchanged)")
    b.add_argument("--reference", type=Path, required=True,
                   help="cube with the reference climate (same coarse grid)")  # fmt: skip
    b.add_argument("--years", type=int, nargs=2, required=True, metavar=("FIRST", "LAST"),
                   help="historical period of both climatologies (inclusive)")  # fmt: skip
    b.add_argument("--out", type=Path, required=True, help="adjusted cube (must not exist)")

    x = sub.add_parser("export", parents=[common],
                       help="rebuild a bundle's steppers with this landbc's code")  # fmt: skip
    x.add_argument("bundle", type=Path, help="existing bundle")
    x.add_argument("--out", type=Path, required=True, help="new bundle folder (must not exist)")
    x.add_argument("--tile", type=int, default=None,
                   help="tile window in px (multiple of 16; default: the bundle's)")  # fmt: skip
    x.add_argument("--stride", type=int, default=None,
                   help="tile core in px (the lattice step; default: the bundle's, or with "
                        "--tile, tile - 32: a 16 px margin)")  # fmt: skip

    i = sub.add_parser("inspect", parents=[common], help="describe a weights bundle")
    i.add_argument("bundle", type=Path)

    h = sub.add_parser("host-inputs", parents=[common],
                       help="input files of the example hosts (cpp/examples)")  # fmt: skip
    h.add_argument("cube", type=Path, help="cube to cut the domain and period from")
    h.add_argument("--bundle", type=Path, required=True, help="weights bundle the hosts open")
    h.add_argument("--out", type=Path, required=True,
                   help="folder for host.nml, static/, prior/ and forcing/")  # fmt: skip
    h.add_argument("--box", type=float, nargs=4, metavar=("S", "N", "W", "E"), default=None,
                   help="lat_south lat_north lon_west lon_east (default: cube grid)")  # fmt: skip
    h.add_argument("--start", default=None, metavar="YYYY-MM",
                   help="month of the priors (default: December of the cube's first year "
                        "forward, January of its last backward)")  # fmt: skip
    h.add_argument("--steps", type=int, default=24, help="months to step (default 24)")
    h.add_argument("--direction", default="forward", choices=("forward", "backward"))
    h.add_argument("--restart-step", type=int, default=12, metavar="K",
                   help="the hosts write a restart after step K (0: none; default 12)")  # fmt: skip
    h.add_argument("--tiny", action="store_true",
                   help="if CUBE does not exist, first generate the 80x80-pixel test world "
                        "there (46-50N 6-10E, 2000-2002, seed 0)")  # fmt: skip
    h.add_argument("--host-grid", default=None, metavar="GRID",
                   help='the Fortran host also runs on its own grid ("O96", "1/1", ...): '
                        "remap weights into OUT/remap, &landbc_esm in host.nml")  # fmt: skip
    h.add_argument("--host-forcing", nargs="+", default=(), type=Path, metavar="GRIB",
                   help="GRIB files of t2m, tp, ssrd on the host grid, given to the host "
                        "there instead of the cube's coarse forcing")  # fmt: skip
    f = sub.add_parser("export-forcing", parents=[common],
                       help="the cube's monthly climate on a model grid, as GRIB2")  # fmt: skip
    f.add_argument("--cube", type=Path, required=True, help="cube whose t2m, tp, ssrd are written")
    f.add_argument("--grid", required=True,
                   help='target grid: "O96", "N320", "F96" or "dlon/dlat" ("1/1")')  # fmt: skip
    f.add_argument("--start", required=True, metavar="YYYY-MM", help="first month")
    f.add_argument("--steps", type=int, default=24, help="months to write (default 24)")
    f.add_argument("--direction", default="forward", choices=("forward", "backward"))
    f.add_argument("--out", type=Path, required=True,
                   help="folder for forcing_YYYY-MM.grib2 (created if needed)")  # fmt: skip
    rw = sub.add_parser("remap-weights", parents=[common],
                        help="remap weights for a C/C++/Fortran host on its own grid "
                             "(landbc_set_host_grid)")  # fmt: skip
    rw.add_argument("--cube", type=Path, required=True,
                    help="cube whose grid and land mask define the domain")  # fmt: skip
    rw.add_argument("--box", type=float, nargs=4, metavar=("S", "N", "W", "E"), default=None,
                    help="lat_south lat_north lon_west lon_east (default: cube grid)")  # fmt: skip
    rw.add_argument("--grid", required=True,
                    help='host grid: "O96", "N320", "F96" or "dlon/dlat" ("1/1")')  # fmt: skip
    rw.add_argument(
        "--forcing",
        default="conservative",
        choices=("conservative", "bilinear", "none"),
        help="weights for forcing given on the host grid (default conservative)",
    )
    rw.add_argument("--out", type=Path, required=True, help="folder for the weight files")
    return p


# --- commands -------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .driver import run

    cfg = load_config(args.config)
    overrides = {k: getattr(args, k) for k in ("device", "dtype") if getattr(args, k) is not None}
    if overrides:
        try:
            cfg = cfg.with_(**overrides)
        except ConfigError as e:
            given = " ".join(f"--{k} {v}" for k, v in overrides.items())
            raise ConfigError(f"{e} (given on the command line: {given})") from None
    from .parallel import launched_by_mpi, run_parallel

    # under mpirun/srun with more than one process: one block of the domain per rank
    go = run_parallel if launched_by_mpi() else run
    summary = go(cfg, resume=args.resume, progress=not args.quiet, max_steps=args.max_steps)
    if summary is not None:  # None on MPI ranks other than 0
        log.info("output: %s (%d/%d steps)", summary.output, summary.completed_steps,
                 summary.steps_total)  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from landbc.emulator.grid import EUROPE

    from .config import DEMO_YEARS, demo_config
    from .driver import run
    from .quicklook import domain_mean_lai, quicklooks

    workdir = args.workdir.resolve()
    bundle = args.bundle
    if bundle is None and not (workdir / "weights" / "demo").exists():
        # Outside the repository: fall back to the demo bundle next to this package.
        here = Path(__file__).resolve().parents[1] / "weights" / "demo"
        bundle = here if here.exists() else None
    cfg = demo_config(workdir, bundle=bundle, device=args.device, dtype=args.dtype)
    if not cfg.bundle.exists():
        raise FileNotFoundError(
            f"demo bundle {cfg.bundle} does not exist; train one (`landbc train`) or pass --bundle"
        )
    if not cfg.cube.exists():
        from landbc.emulator.world import generate_world

        log.info("creating the demo cube %s (Europe %s, years %d-%d, seed 0); this takes a while",
                 cfg.cube, EUROPE.describe(), *DEMO_YEARS)  # fmt: skip
        t0 = time.perf_counter()
        cfg.cube.parent.mkdir(parents=True, exist_ok=True)
        generate_world(cfg.cube, EUROPE, DEMO_YEARS, seed=0, progress=not args.quiet)
        log.info("cube ready in %.0f s", time.perf_counter() - t0)
    else:
        log.info("using the existing demo cube %s", cfg.cube)
    summary = run(cfg, resume=False, progress=not args.quiet)
    outdir = cfg.store.parent
    (outdir / "demo.toml").write_text(cfg.to_toml())
    pngs = quicklooks(cfg.store, cfg.cube, outdir)
    series = domain_mean_lai(cfg.store, cfg.cube)
    log.info("output store: %s", cfg.store)
    log.info("restarts:     %s", cfg.restart_path)
    log.info("quicklooks:   %s", ", ".join(str(p) for p in pngs))
    log.info("domain-mean land LAI vs surrogate truth over %d months: MAE %.3f, bias %+.3f, "
             "RMSE %.3f m2 m-2 (truth mean %.3f)", len(series.months), series.mae, series.bias,
             series.rmse, float(series.truth.mean()))  # fmt: skip
    log.info("demo: %s", summary.describe())
    return 0


def cmd_world(args: argparse.Namespace) -> int:
    from landbc.emulator.grid import EUROPE, Grid
    from landbc.emulator.world import generate_world

    s, n, w, e = args.box if args.box else (EUROPE.lat_south, EUROPE.lat_north,
                                            EUROPE.lon_west, EUROPE.lon_east)  # fmt: skip
    grid = Grid(s, n, w, e, res=args.res if args.res is not None else EUROPE.res,
                coarse_factor=args.coarse_factor if args.coarse_factor is not None
                else EUROPE.coarse_factor)  # fmt: skip
    y0, y1 = args.years
    log.info("generating %s for %d-%d (seed %d) into %s", grid.describe(), y0, y1, args.seed,
             args.out)  # fmt: skip
    path = generate_world(args.out, grid, (y0, y1), seed=args.seed, progress=not args.quiet)
    log.info("cube written: %s", path)
    return 0


def cmd_bias_adjust(args: argparse.Namespace) -> int:
    from landbc.emulator.bias import bias_adjust_cube

    bias_adjust_cube(args.cube, args.reference, args.out, tuple(args.years))
    log.info("adjusted cube written: %s", args.out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from landbc.emulator.training import reexport

    log.info("bundle written: %s", reexport(args.bundle, args.out, args.tile, args.stride))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from landbc.emulator.bundle import inspect

    print(inspect(args.bundle))
    return 0


def cmd_host_inputs(args: argparse.Namespace) -> int:
    from .calendar import parse_month
    from .hostfiles import TINY_GRID, TINY_YEARS, write_host_inputs

    if args.tiny and not args.cube.exists():
        from landbc.emulator.world import generate_world

        log.info("generating the tiny world %s (%d-%d, seed 0) into %s", TINY_GRID.describe(),
                 *TINY_YEARS, args.cube)  # fmt: skip
        generate_world(args.cube, TINY_GRID, TINY_YEARS, seed=0, progress=False)
    start = parse_month(args.start, "--start") if args.start is not None else None
    out = write_host_inputs(args.cube, args.out, args.bundle, box=args.box, start=start,
                            nsteps=args.steps, direction=args.direction,
                            restart_step=args.restart_step, host_grid=args.host_grid,
                            host_forcing_files=args.host_forcing)  # fmt: skip
    log.info("host inputs written: %s (run e.g. landbc_host_f %s)", out, out)
    return 0


def cmd_export_forcing(args: argparse.Namespace) -> int:
    from .calendar import parse_month
    from .forcing import export_forcing

    start = parse_month(args.start, "--start")
    paths = export_forcing(args.cube, args.grid, start, args.steps, args.out,
                           direction=args.direction)  # fmt: skip
    log.info("forcing written: %d files in %s (read them with [forcing] climate = \"grib\", "
             "files = [\"%s/forcing_*.grib2\"])", len(paths), args.out, args.out)  # fmt: skip
    return 0


def cmd_remap_weights(args: argparse.Namespace) -> int:
    from landbc.emulator.cube import Cube

    from .driver import domain_window
    from .remap import write_host_weights

    cube = Cube.open(args.cube)
    grid, win, _ = domain_window(cube.grid, tuple(args.box) if args.box else None)
    method = None if args.forcing == "none" else args.forcing
    paths = write_host_weights(grid, cube.maps(win)["land_mask"], args.grid, args.out,
                               forcing_method=method)  # fmt: skip
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


def _pass_through(command: str, rest: list[str]) -> int:
    if command == "train":
        from landbc.emulator.training import main as delegate
    elif command == "realcase":
        from landbc.emulator.realcase import main as delegate
    else:
        from landbc.emulator.evaluate import main as delegate
    rc = delegate(rest)
    # An int is an exit status; anything else (e.g. the path of a trained bundle) is success.
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else 0


_COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "world": cmd_world,
    "bias-adjust": cmd_bias_adjust,
    "export": cmd_export,
    "inspect": cmd_inspect,
    "host-inputs": cmd_host_inputs,
    "export-forcing": cmd_export_forcing,
    "remap-weights": cmd_remap_weights,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    verbose = getattr(args, "verbose", 0) or 0
    quiet = bool(getattr(args, "quiet", False))
    args.verbose, args.quiet = verbose, quiet
    if rest and args.command not in _PASS_THROUGH:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    setup_logging(verbose, quiet)
    try:
        if args.command in _PASS_THROUGH:
            return _pass_through(args.command, rest)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("landbc: interrupted", file=sys.stderr)
        return 130
    except _user_error_types() as e:
        if verbose:
            raise
        print(f"landbc: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
