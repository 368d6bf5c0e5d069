"""What a coupling step costs (`make bench`; not part of `make test`).

One monthly step (LAI net only) and one yearly step (LU, LC and LAI nets) of
the demo bundle through `BoundaryConditionEmulator`, at 256², 1024² and 2048²
pixels, float32 and bfloat16 nets. Each result reports Mpixel/s and the
achieved FLOP/s of the nets (pixels of the windows the step runs × FLOP per
pixel) beside the GEMM peaks measured in the same run, so ratios compare like
with like. Inputs are synthetic but valid (all land), so no tile is skipped.
`test_ratios.py` sets the step beside a research-code sliding window.

Both dtypes are measured; where bfloat16 is emulated and slow (dtype "auto"
would not pick it) only at the smallest size, which shows the ratio, and the
larger bf16 cases are skipped with that reason. Which one dtype "auto" picks on this machine,
and why, is in every result's extra info (`auto_dtype`, `auto_reason`) and in
`.benchmarks/step_summary.jsonl`; `test_auto_dtype_decision` times the decision
itself (flags and a small bf16/fp32 GEMM, uncached).
"""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from landbc.emulator import catalog, features, precision, tiling
from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.grid import Grid
from landbc.emulator.nets import UNet, flops_per_pixel

BUNDLE = Path(__file__).resolve().parents[1] / "weights" / "demo"
# ≈256², 1024², 2048²: sides rounded up to the coarse factor 5 of the demo bundle
SIZES = (260, 1025, 2050)
_PEAKS: dict[str, float] = {}


def _gemm_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    t0 = time.perf_counter()
    a @ b
    first = time.perf_counter() - t0
    if first > 2.0:  # emulated bf16 (0.28 GFLOP/s on AVX2: a minute a call): one call says it
        return 2 * n**3 / first
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def peaks() -> dict[str, float]:
    if not _PEAKS:
        _PEAKS["gemm_fp32_gflops"] = _gemm_peak(torch.float32) / 1e9
        _PEAKS["gemm_bf16_gflops"] = _gemm_peak(torch.bfloat16) / 1e9
    return _PEAKS


def auto_choice() -> dict:
    """What dtype "auto" resolves to here (cached per process, as in a run)."""
    d = precision.bf16_decision("cpu")
    return {
        "auto_dtype": d.name,
        "auto_reason": d.reason,
        "auto_bf16_gemm_speedup": d.evidence.speedup,
        "auto_gemm_n": d.evidence.gemm_n,
    }


def test_auto_dtype_decision(benchmark):
    """The cost of deciding (uncached: flags plus the timed GEMMs), and the decision."""
    decision = benchmark.pedantic(
        lambda: precision.decide(precision.gather_evidence("cpu")), rounds=3, iterations=1
    )
    assert decision.dtype in (torch.float32, torch.bfloat16) and decision.reason
    benchmark.extra_info.update(auto_choice())
    out = Path(".benchmarks") / "step_summary.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as fh:
        row = {"auto_decision_s": benchmark.stats.stats.min, **auto_choice()}
        fh.write(json.dumps(row) + "\n")


def _inputs(n: int):
    # A square box of n x n pixels at 0.05 deg inside the global lattice.
    grid = Grid(60.0 - n * 0.05, 60.0, 0.0, n * 0.05, 0.05, 5)
    rng = np.random.default_rng(0)
    h, w = grid.coarse_shape
    static = {
        "land_mask": np.ones((n, n), np.uint8),
        "elevation": rng.uniform(0, 2000, (n, n)).astype(np.float32),
        "slope": rng.uniform(0, 20, (n, n)).astype(np.float32),
        "koppen": np.full((n, n), 3, np.uint8),
        "igbp": np.full((n, n), 10, np.uint8),
        "lai_climatology": rng.uniform(0, 4, (12, n, n)).astype(np.float32),
    }
    priors = {
        "lu": rng.integers(1, 7, (n, n)).astype(np.uint8),
        "lc": rng.integers(1, 20, (n, n)).astype(np.uint8),
        "lai": rng.uniform(0, 4, (n, n)).astype(np.float32),
    }
    frac = rng.dirichlet(np.ones(12), (h, w)).transpose(2, 0, 1).astype(np.float32) * 0.95
    forcing = {
        "luh2_frac": frac,
        "secma": np.full((h, w), 30, np.float32),
        "secmb": np.full((h, w), 5, np.float32),
        "co2": np.float32(410),
        "t2m": np.full((h, w), 285, np.float32),
        "tp": np.full((h, w), 2, np.float32),
        "ssrd": np.full((h, w), 180, np.float32),
    }
    return grid, static, priors, forcing


def _net_flops(emu: BoundaryConditionEmulator, year_step: bool) -> float:
    """FLOP of the nets over the windows the step runs (its land tiles)."""
    base = emu.manifest["training"]["config"]["base"]
    computed = tiling.computed_pixels(emu._stepper.tile_windows())
    nets = [UNet(features.N_LAI_INPUTS, 1, base=base)]
    if year_step:
        nets += [
            UNet(features.N_LU_INPUTS, catalog.N_LU, base=base),
            UNet(features.N_LC_INPUTS, catalog.N_LC, base=base),
        ]
    return computed * sum(flops_per_pixel(n) for n in nets)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind", ["monthly", "yearly"])
@pytest.mark.parametrize("n", SIZES)
def test_step(benchmark, n, kind, dtype):
    auto = auto_choice()
    if dtype == "bfloat16" and auto["auto_dtype"] != "bfloat16" and n > min(SIZES):
        # Emulated bf16 (about 8x slower per step on an AVX2 CPU, minutes a round at
        # 2050²): the smallest size shows the ratio; larger ones would only cost time.
        pytest.skip(f"bfloat16 is not native here ({auto['auto_reason']}); measured at "
                    f"{min(SIZES)}² only")  # fmt: skip
    grid, static, priors, forcing = _inputs(n)
    emu = BoundaryConditionEmulator.from_bundle(BUNDLE, dtype=dtype)
    # yearly: start in December so that each step enters a new year
    start_month = 12 if kind == "yearly" else 5

    def setup():
        emu.initialise(grid, static, priors, 2015, start_month)

    rounds = 3 if n <= 1025 else 1
    benchmark.pedantic(
        emu.step,
        args=(forcing,),
        setup=setup,
        rounds=rounds,
        iterations=1,
        warmup_rounds=1,  # the first calls of a TorchScript method profile and optimise
    )
    sec = benchmark.stats.stats.min
    flops = _net_flops(emu, kind == "yearly")
    info = {
        "pixels": n * n,
        "mpixel_per_s": n * n / sec / 1e6,
        "net_gflops": flops / sec / 1e9,
        **peaks(),
        "is_auto_choice": dtype == auto["auto_dtype"],
        **auto,
    }
    benchmark.extra_info.update(info)
    out = Path(".benchmarks") / "step_summary.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps({"n": n, "kind": kind, "dtype": dtype, "seconds": sec, **info}) + "\n")
