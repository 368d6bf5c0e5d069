"""The step on a GPU: skipped where torch sees no CUDA device, run where it does.

The same stepper file as on the CPU, moved to the device by `from_bundle(...,
device="cuda:0")`: the state lives there, 8 tiles of a shape go through a net at
once, and a step needs no host synchronisation inside its tile loop. On a GPU
these check that the step runs there and agrees with the CPU to float rounding
and that a restart is exact. (Nothing here ran on a GPU yet: see the README.)
"""

import numpy as np
import pytest
import torch

from landbc.emulator.api import BoundaryConditionEmulator
from landbc.emulator.bundle import GPU_TILES_PER_BATCH
from landbc.emulator.cube import Cube

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture
def cube(tiny_cube):
    return Cube.open(tiny_cube)


def _run(bundle, cube, device, n, start=(2000, 12), restart_after=None, tmp_path=None):
    emu = BoundaryConditionEmulator.from_bundle(bundle, device=device, dtype="float32")
    emu.initialise(cube.grid, cube.static(), cube.truth(*start), *start)
    outs = []
    for i in range(n):
        if restart_after is not None and i == restart_after:
            path = emu.save_restart(tmp_path / "restart.safetensors")
            emu = BoundaryConditionEmulator.from_restart(bundle, path, device=device)
        y, m = emu.next_time
        outs.append(emu.step(cube.forcing(y, m), time=(y, m)))
    return emu, outs


def test_the_step_runs_on_the_gpu_and_agrees_with_the_cpu(tiny_bundle, cube):
    emu, gpu = _run(tiny_bundle, cube, "cuda:0", 3)
    assert emu._stepper.tiles_per_batch == GPU_TILES_PER_BATCH
    assert all(v.device.type == "cuda" for v in gpu[-1].fields.values())
    _, cpu = _run(tiny_bundle, cube, "cpu", 3)
    for g, c in zip(gpu, cpu, strict=True):
        g, c = g.numpy(), c.numpy()
        np.testing.assert_allclose(g["lai"], c["lai"], atol=1e-3)
        assert np.mean(g["lc"] == c["lc"]) > 0.999 and np.mean(g["lu"] == c["lu"]) > 0.999


def test_an_exact_restart_on_the_gpu(tiny_bundle, cube, tmp_path):
    _, straight = _run(tiny_bundle, cube, "cuda:0", 6)
    _, resumed = _run(tiny_bundle, cube, "cuda:0", 6, restart_after=3, tmp_path=tmp_path)
    for a, b in zip(straight, resumed, strict=True):
        for k in a.fields:
            assert torch.equal(a[k], b[k]), k
