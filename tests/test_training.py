"""Training pieces: corruption of priors, the change-weighted loss, config checks,
and that the trained bundle is complete."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from landbc.emulator import catalog
from landbc.emulator.cube import Cube
from landbc.emulator.training import (
    PatchSampler,
    TrainConfig,
    class_loss,
    corrupt_classes,
    normalisation,
    refine,
    train,
)


def test_corruption_masks_blocks_and_adds_noise():
    cfg = TrainConfig(cube=Path("x"), out=Path("y"), mask_max=0.75, noise=0.1)
    gen = torch.Generator().manual_seed(0)
    classes = torch.full((64, 64, 64), 3, dtype=torch.uint8)
    probs = corrupt_classes(classes, catalog.N_LU, cfg, gen)
    assert probs.shape == (64, catalog.N_LU, 64, 64)
    masked = probs.sum(1) == 0
    assert 0.1 < masked.float().mean() < 0.75  # mean share ~ 0.375
    kept = ~masked
    wrong = kept & (probs.argmax(1) != 3)
    assert 0.05 < wrong.sum() / kept.sum() < 0.12  # 10 % noise, 1/8 of it lands on class 3
    # masks come in 32 x 32 blocks
    m = masked[0].numpy()
    assert (m[:32, :32] == m[0, 0]).all()


def test_change_pixels_weigh_one_plus_change_weight_each():
    """Hand-computed: 16 pixels, one sea, one changed; logits (5, 0, 0)."""
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 0] = 5.0  # predicts class 0 everywhere (= persistence)
    prior = torch.zeros(1, 4, 4, dtype=torch.long)
    target = prior.clone()
    land = torch.ones(1, 4, 4)
    land[0, 3, 3] = 0
    lse = math.log(math.exp(5.0) + 2.0)
    ce_kept, ce_changed = lse - 5.0, lse
    same, n0 = class_loss(logits, target, prior, land, 4.0)
    assert n0 == 0 and math.isclose(float(same), ce_kept, rel_tol=1e-5)
    target[0, 0, 0] = 1
    target[0, 3, 3] = 2  # on sea: not counted
    one, n1 = class_loss(logits, target, prior, land, 4.0)
    assert n1 == 1
    assert math.isclose(float(one), (14 * ce_kept + 5 * ce_changed) / 15, rel_tol=1e-5)
    # per pixel, not a mean over changed pixels: a second change adds as much again
    target[0, 0, 1] = 1
    two, _ = class_loss(logits, target, prior, land, 4.0)
    assert math.isclose(float(two - one), (5 * ce_changed - ce_kept) / 15, rel_tol=1e-4)


def test_config_is_checked_against_the_cube(tiny_cube, tmp_path):
    cube = Cube.open(tiny_cube)
    with pytest.raises(ValueError, match=r"years \(1999, 2001\) outside the cube"):
        TrainConfig(cube=tiny_cube, out=tmp_path, years=(1999, 2001), patch=80).validate(cube)
    with pytest.raises(ValueError, match="a prior and 2 unrolled steps need at least 3"):
        TrainConfig(cube=tiny_cube, out=tmp_path, years=(2001, 2002), unroll=2, patch=80).validate(
            cube
        )
    with pytest.raises(
        ValueError, match="patch must be a multiple of 16 and of the coarse factor 5"
    ):
        TrainConfig(cube=tiny_cube, out=tmp_path, years=(2000, 2002), unroll=1, patch=64).validate(
            cube
        )
    with pytest.raises(ValueError, match="directions: expected forward/backward"):
        TrainConfig(
            cube=tiny_cube, out=tmp_path, years=(2000, 2002), unroll=1, patch=80, directions=("up",)
        ).validate(cube)


def test_sampler_batches_are_aligned_and_on_land(tiny_cube):
    cube = Cube.open(tiny_cube)
    cfg = TrainConfig(cube=tiny_cube, out=Path("-"), years=(2000, 2002), unroll=1, patch=80)
    s = PatchSampler(cube, cfg, np.random.default_rng(0))
    b = s.yearly(1, 2)
    assert len(b["steps"]) == 2 and b["steps"][0]["lu"].shape == (2, 80, 80)
    assert b["steps"][1]["luh2"].shape == (2, 12, 16, 16)  # coarse: refined on the device
    fine = refine(b, s.f)["steps"][1]
    assert fine["luh2"].shape == (2, 12, 80, 80) and fine["secma"].shape == (2, 80, 80)
    assert torch.equal(fine["luh2"][:, :, :5, :5], fine["luh2"][:, :, :1, :1].expand(-1, -1, 5, 5))
    m = s.monthly(-1, 2)
    assert m["steps"][0]["lai"].shape == (2, 80, 80) and len(m["steps"][1]["month"]) == 2
    norm = normalisation(cube, (2001, 2001))
    assert norm["t2m"][1] > 0 and 200 < norm["t2m"][0] < 320


def test_existing_output_is_not_overwritten(tiny_cube, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        train(TrainConfig(cube=tiny_cube, out=out, years=(2000, 2002), unroll=1, patch=80))
    assert (out / "keep.txt").read_text() == "x"


def test_trained_bundle_records_its_data_and_history(tiny_bundle):
    import json

    m = json.loads((tiny_bundle / "manifest.json").read_text())
    assert m["training"]["data"]["years"] == [2000, 2002]
    assert "SURROGATE" in m["training"]["data"]["description"].upper()
    for d in ("forward", "backward"):
        for net in ("lu", "lc", "lai"):
            assert m["training"]["history"][d][net]["iters"] == 2
    # what training ran in: --dtype auto (the default), resolved on this machine
    from landbc.emulator.precision import bf16_decision

    rec = m["training"]["precision"]
    assert rec["requested"] == "auto" and rec["device"] == "cpu"
    assert rec["dtype"] == bf16_decision("cpu").name and rec["reason"].startswith("auto: ")
    assert m["training"]["config"]["dtype"] == "auto" and "bf16" not in m["training"]["config"]


def test_reexport_keeps_the_weights(tiny_bundle, tiny_cube, tmp_path):
    from landbc.emulator.api import BoundaryConditionEmulator
    from landbc.emulator.training import reexport

    out = reexport(tiny_bundle, tmp_path / "again")
    cube = Cube.open(tiny_cube)
    results = []
    for b in (tiny_bundle, out):
        emu = BoundaryConditionEmulator.from_bundle(b)
        emu.initialise(cube.grid, cube.static(), cube.truth(2000, 12), 2000, 12)
        results.append(emu.step(cube.forcing(2001, 1)).numpy())
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])
    import json

    m = json.loads((out / "manifest.json").read_text())
    assert m["training"]["reexported_from"]["files"]
