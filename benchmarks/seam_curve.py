"""The seam error of overlap tiles against whole-domain inference, by margin.

`make seam-curve` (not part of `make test`). The demo bundle's nets step a
640 x 640 window of the demo cube (real priors of 2000, all three nets: a
forward step from December enters a new year) once with each margin and once
as a single window over the whole domain (with the same margin beyond the
domain's ends, where edge pixels are repeated); the table gives how far the tiled
fields are from the whole-domain ones. With the margin chosen, blocks with
halos reproduce the tiled whole domain bit for bit (tests/test_stepper.py);
this curve is what the margin costs against no tiling at all.

    .venv/bin/python benchmarks/seam_curve.py [--cube data/europe.zarr] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from landbc.emulator import catalog
from landbc.emulator.bundle import training_years, verify
from landbc.emulator.cube import Cube
from landbc.emulator.stepper import Stepper
from landbc.emulator.training import nets_of_bundle

ROOT = Path(__file__).resolve().parents[1]
# 640 x 640 px of Europe, coarse-aligned, starting on global multiples of 16 (as windows do)
WINDOW = (slice(200, 840), slice(420, 1060))
MARGINS = (0, 16, 32, 48, 64, 96)
CORE = 480  # the tile core (stride): tiles of CORE + 2 margin px
WHOLE = 8000  # one lattice cell holding the whole window: a single window, no seams


def step_once(nets, manifest, tile, stride, static, priors, forcing, origin):
    stepper = torch.jit.script(
        Stepper(*nets, manifest["normalisation"], 1, tile=tile, stride=stride,
                coarse_factor=manifest["grid"]["coarse_factor"], res=manifest["grid"]["res"])
    )  # fmt: skip
    stepper.init(static, priors, 2000, 12, *origin)
    with torch.no_grad():
        return {k: v.numpy() for k, v in stepper.step(forcing).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cube", type=Path, default=ROOT / "data" / "europe.zarr")
    ap.add_argument("--bundle", type=Path, default=ROOT / "weights" / "demo")
    ap.add_argument("--out", type=Path, default=ROOT / ".benchmarks" / "seam_curve.json")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    manifest = verify(a.bundle)
    _, nets = nets_of_bundle(a.bundle, manifest["directions"]["forward"]["file"], "forward",
                             ("lu_net", "lc_net", "lai_net"), "cannot be measured")  # fmt: skip
    for net in nets.values():
        net.eval()
    nets = (nets["lu_net"], nets["lc_net"], nets["lai_net"])
    cube = Cube.open(a.cube)
    years = cube.climatology_years(training_years(manifest))
    static = {k: torch.from_numpy(np.ascontiguousarray(v))
              for k, v in cube.static(WINDOW, years).items()}  # fmt: skip
    priors = {k: torch.from_numpy(v) for k, v in cube.truth(2000, 12, WINDOW).items()}
    forcing = {k: torch.from_numpy(np.asarray(v)) for k, v in cube.forcing(2001, 1, WINDOW).items()}
    origin = (cube.grid.origin[0] + WINDOW[0].start, cube.grid.origin[1] + WINDOW[1].start)
    land = static["land_mask"].numpy() > 0
    rows = []
    for m in MARGINS:
        # the reference: one window over the whole domain, with the same margin of
        # repeated edge pixels beyond the domain's ends as the tiles have there
        ref = step_once(nets, manifest, WHOLE + 2 * m, WHOLE, static, priors, forcing, origin)
        out = step_once(nets, manifest, CORE + 2 * m, CORE, static, priors, forcing, origin)
        d = (out["lai"] - ref["lai"])[land]
        rows.append({
            "margin": m,
            "lai_rms": float(np.sqrt(np.mean(d * d))),
            "lai_max_abs": float(np.abs(d).max()),
            "lc_differs": float(np.mean(out["lc"][land] != ref["lc"][land])),
            "lu_differs": float(np.mean(out["lu"][land] != ref["lu"][land])),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"window": [640, 640], "core": CORE, "rows": rows}, indent=1))
    print("| margin (px) | LAI RMS diff | LAI max diff | LC pixels differing "
          "| LU pixels differing |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['margin']} | {r['lai_rms']:.2e} | {r['lai_max_abs']:.1e} | "
              f"{100 * r['lc_differs']:.3f} % | {100 * r['lu_differs']:.3f} % |")  # fmt: skip
    print(f"(land pixels: {int(land.sum())}; classes {catalog.N_LU} LU, {catalog.N_LC} LC)")


if __name__ == "__main__":
    main()
