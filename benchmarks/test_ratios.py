"""Issue 10's ratios, measured in one process (`make bench`; not part of `make test`).

At 1025² pixels, all land, float32, the demo bundle:
- the landbc monthly step (the LAI net over the land tiles);
- the same net alone on the same windows, batched as the stepper batches them:
  the nets' share of the step;
- a research-code sliding window, written as such code usually is: eager fp32,
  512² tiles at 50 % overlap over a reflect-padded domain, softmax per tile,
  probabilities averaged in numpy, one 8-class U-Net (the demo LU net);
- the fp32 GEMM peak;
- the pixels the nets compute against the domain's (and Europe's, with its sea
  tiles skipped, when the demo cube is there).
The results go to `.benchmarks/ratios.json` and are printed as one table.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
from test_step import BUNDLE, _inputs, auto_choice, peaks

from landbc.emulator import catalog, tiling
from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.cube import Cube
from landbc.emulator.nets import flops_per_pixel, unet_from_scripted

N = 1025
PEER_TILE = 512
CUBE = Path(__file__).resolve().parents[1] / "data" / "europe.zarr"


def sliding_window(net: torch.nn.Module, x: np.ndarray, n_classes: int) -> np.ndarray:
    """The research-code peer: overlapping tiles, averaged probabilities, argmax."""
    tile, stride = PEER_TILE, PEER_TILE // 2
    _, h, w = x.shape
    hp = max(tile, -(-(h - tile) // stride) * stride + tile)
    wp = max(tile, -(-(w - tile) // stride) * stride + tile)
    xp = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w)), mode="reflect")
    acc = np.zeros((n_classes, hp, wp), np.float32)
    count = np.zeros((hp, wp), np.float32)
    for r in range(0, hp - tile + 1, stride):
        for c in range(0, wp - tile + 1, stride):
            t = torch.from_numpy(np.ascontiguousarray(xp[None, :, r : r + tile, c : c + tile]))
            with torch.no_grad():
                p = torch.softmax(net(t), dim=1)[0].numpy()
            acc[:, r : r + tile, c : c + tile] += p
            count[r : r + tile, c : c + tile] += 1
    return (acc / count)[:, :h, :w].argmax(0)


def _best(fn, rounds: int = 2) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _nets_alone(stepper: torch.jit.ScriptModule) -> float:
    """The LAI net on the step's windows, in the stepper's batches of one shape."""
    net = stepper.lai_net
    batches = [
        (len(b), b[0][5] - b[0][4], b[0][7] - b[0][6])
        for b in tiling.batches(stepper.tile_windows(), stepper.tiles_per_batch)
    ]
    # channels_last, as the stepper builds its inputs (features.cat_channels)
    inputs = [
        torch.randn(b, net.in_channels, h, w).contiguous(memory_format=torch.channels_last)
        for b, h, w in batches
    ]

    def run():
        with torch.no_grad():
            for x in inputs:
                net(x)

    return _best(run)


def test_ratios_at_1025(benchmark):
    grid, static, priors, forcing = _inputs(N)
    emu = BoundaryConditionEmulator.from_bundle(BUNDLE, dtype="float32")

    def setup():
        emu.initialise(grid, static, priors, 2015, 5)

    benchmark.pedantic(
        emu.step, args=(forcing,), setup=setup, rounds=3, iterations=1, warmup_rounds=1
    )
    step_s = benchmark.stats.stats.min
    stepper = emu._stepper
    nets_s = _nets_alone(stepper)
    computed = tiling.computed_pixels(stepper.tile_windows())

    peer_net = unet_from_scripted(stepper.lu_net).float().eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((peer_net.in_channels, N, N)).astype(np.float32)
    peer_s = _best(lambda: sliding_window(peer_net, x, catalog.N_LU), rounds=1)

    lai_flop = flops_per_pixel(unet_from_scripted(stepper.lai_net))
    info = {
        "pixels": N * N,
        "landbc_monthly_step_s": step_s,
        "landbc_mpixel_per_s": N * N / step_s / 1e6,
        "sliding_window_s": peer_s,
        "sliding_window_mpixel_per_s": N * N / peer_s / 1e6,
        "step_speedup_over_sliding_window": peer_s / step_s,
        "nets_alone_s": nets_s,
        "nets_share_of_step": nets_s / step_s,
        "tile_pixels_over_domain": computed / (N * N),
        "net_gflops_in_step": computed * lai_flop / step_s / 1e9,
        **peaks(),
        **auto_choice(),
    }
    if CUBE.exists():
        cube = Cube.open(CUBE)
        land = torch.from_numpy(cube.maps()["land_mask"])
        tiles = tiling.plan_tiles(
            land, *cube.grid.origin, [0, 0, 0, 0], stepper.stride, stepper.margin, 16
        )
        info["europe_tile_pixels_over_domain"] = tiling.computed_pixels(tiles) / land.numel()
        info["europe_tile_pixels_over_land"] = tiling.computed_pixels(tiles) / int(land.sum())
    info["nets_share_of_gemm_peak"] = info["net_gflops_in_step"] / info["gemm_fp32_gflops"]
    benchmark.extra_info.update(info)
    out = Path(".benchmarks") / "ratios.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(info, indent=1))
    print()
    for k, v in info.items():
        print(f"{k:40s} {v:.4g}" if isinstance(v, float) else f"{k:40s} {v}")
