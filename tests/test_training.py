"""Training pieces: corruption of priors, the change-weighted loss, config checks,
that the trained bundle is complete, and the run folder (checkpoints, resumption,
loss curves, loader and step times)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from landbc.emulator import bundle, catalog, training
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


# ------------------------------------------------------------------ run folder


def _tiny_config(cube: Path, tmp_path: Path, **kw) -> TrainConfig:
    """Narrow nets for a few iterations each (4 + 4 + 2 per direction), checkpointed
    every 2: a straight run takes a few seconds on a CPU."""
    fixed = dict(years=(2000, 2002), unroll=1, patch=80, tile=32, base=4, batch=2)
    iters = dict(iters_lu=4, iters_lc=4, iters_lai=2, checkpoint_every=2)
    return TrainConfig(cube=cube, out=tmp_path / "bundle", **{**fixed, **iters, **kw})


class Interrupted(Exception):
    """What the tests raise to cut a run short, as a lost machine would."""


def _interrupt_after(monkeypatch, n: int) -> None:
    """Make training raise Interrupted right after its n-th optimiser update (before
    any checkpoint that update would have been followed by)."""
    update = training._update
    count = 0

    def counting(*args, **kwargs):
        nonlocal count
        update(*args, **kwargs)
        count += 1
        if count == n:
            raise Interrupted(f"after update {n}")

    monkeypatch.setattr(training, "_update", counting)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a bundle's steppers, by direction and name."""
    manifest = bundle.verify(folder)
    return {
        f"{direction}.{name}": value
        for direction, entry in manifest["directions"].items()
        for name, value in torch.jit.load(str(folder / entry["file"])).state_dict().items()
    }


@pytest.fixture(scope="module")
def straight_run(tiny_cube, tmp_path_factory) -> Path:
    """The bundle of an uninterrupted run of `_tiny_config`."""
    return train(_tiny_config(tiny_cube, tmp_path_factory.mktemp("straight")))


@pytest.mark.parametrize(
    "n, at",
    [
        (7, {"direction": "forward", "net": "lc", "iteration": 2}),  # 3rd LC update
        (10, {"direction": "forward", "net": "lc", "iteration": 4}),  # LAI's last, unsaved
    ],
)
def test_a_resumed_run_ends_with_the_weights_of_a_straight_run(
    straight_run, tiny_cube, tmp_path, monkeypatch, n, at
):
    cfg = _tiny_config(tiny_cube, tmp_path)
    _interrupt_after(monkeypatch, n)
    with pytest.raises(Interrupted):
        train(cfg)
    monkeypatch.undo()
    assert not cfg.out.exists()
    out = train(replace(cfg, resume=True))
    want, got = _weights(straight_run), _weights(out)
    assert want.keys() == got.keys() and len(want) > 100
    assert all(torch.equal(want[k], got[k]) for k in want), "weights differ after resuming"
    # the whole record agrees too: every loss, and the manifest says where it resumed
    run = cfg.run_dir
    assert json.loads((run / "losses.json").read_text()) == json.loads(
        (Path(str(straight_run) + ".run") / "losses.json").read_text()
    )
    m = json.loads((out / "manifest.json").read_text())
    [resumed] = m["training"]["resumes"]
    assert {k: resumed[k] for k in at} == at
    assert m["training"]["history"]["backward"]["lai"]["iters"] == 2


def test_a_checkpoint_is_neither_overwritten_nor_resumed_under_another_config(
    tiny_cube, tmp_path, monkeypatch
):
    cfg = _tiny_config(tiny_cube, tmp_path, directions=("forward",))
    _interrupt_after(monkeypatch, 3)  # a checkpoint at LU iteration 2
    with pytest.raises(Interrupted):
        train(cfg)
    monkeypatch.undo()
    checkpoint = cfg.run_dir / "checkpoint.pt"
    saved = checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match="pass --resume to continue it, or remove the folder"):
        train(cfg)
    with pytest.raises(
        ValueError, match=r"another config \(batch: 2 there, 4 now; lr: 0\.002 there, 0\.001 now\)"
    ):
        train(replace(cfg, resume=True, lr=1e-3, batch=4))
    assert checkpoint.read_bytes() == saved
    # the run folder may move (--run-dir) and the CLI's settings are the config's
    moved = tmp_path / "moved.run"
    cfg.run_dir.rename(moved)
    args = (
        "--years 2000 2002 --directions forward --unroll 1 --patch 80 --tile 32 --base 4 "
        "--batch 2 --iters-lu 4 --iters-lc 4 --iters-lai 2 --checkpoint-every 2"
    ).split()
    out = training.main(
        [str(tiny_cube), "--out", str(cfg.out), *args, "--run-dir", str(moved), "--resume"]
    )
    m = json.loads((out / "manifest.json").read_text())
    assert m["training"]["resumes"][0]["iteration"] == 2
    assert m["training"]["config"]["run_dir"] == str(moved)


def test_a_resumed_net_counts_the_time_it_trained_before_against_its_budget():
    cfg = TrainConfig(cube=Path("x"), out=Path("y"), iters_lu=50, iters_lc=0, iters_lai=50)
    cfg.time_budget_s = 100.0  # 50 s for a net of 50 iterations
    assert training.Schedule(cfg, 50).progress(0) < 0.01
    assert training.Schedule(cfg, 50, spent=40.0).progress(0) == pytest.approx(0.8, abs=0.01)
    assert training.Schedule(replace(cfg, time_budget_s=0.0), 50, spent=40.0).progress(5) == 0.1


def test_the_run_folder_has_loss_curves_and_the_history_loader_and_step_times(tiny_bundle):
    run = Path(str(tiny_bundle) + ".run")
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    config = m["training"]["config"]
    assert config["run_dir"] == str(run) and config["checkpoint_every"] == 50
    assert m["training"]["resumes"] == []
    losses = json.loads((run / "losses.json").read_text())
    for d in ("forward", "backward"):
        for net in ("lu", "lc", "lai"):
            png = run / f"loss_{d}_{net}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert len(losses[d][net]) == 2 and all(map(math.isfinite, losses[d][net]))
            h = m["training"]["history"][d][net]
            assert h["loader_s"] > 0 and h["step_s"] > 0 and h["loader_per_step"] > 0
            assert h["wall_s"] >= h["step_s"]
    assert sorted(p.name for p in run.iterdir() if not p.name.endswith(".png")) == [
        "checkpoint.pt",
        "losses.json",
    ]  # no temporary file left behind


def test_the_lai_net_starts_at_the_climatology_it_is_given(tiny_bundle, tiny_cube):
    """Before training the LAI net's departure is zero: a coupled run gets exactly
    the host's climatology, never worse (the floor the LAI targets build on)."""
    from landbc.emulator.nets import unet_from_scripted
    from landbc.emulator.stepper import Stepper

    cube = Cube.open(tiny_cube)
    manifest = bundle.verify(tiny_bundle)
    old = torch.jit.load(str(tiny_bundle / manifest["directions"]["forward"]["file"]))
    stepper = Stepper(
        unet_from_scripted(old.lu_net).eval(),
        unet_from_scripted(old.lc_net).eval(),
        training.new_lai_net(base=4).eval(),
        manifest["normalisation"],
        1,
        tile=32,
        coarse_factor=cube.grid.coarse_factor,
    )
    static = cube.static()
    stepper.init(
        {k: torch.from_numpy(v) for k, v in static.items()},
        {k: torch.from_numpy(v) for k, v in cube.truth(2000, 12).items()},
        2000,
        12,
        *cube.grid.origin,
    )
    with torch.no_grad():
        out = stepper.step({k: torch.from_numpy(v) for k, v in cube.forcing(2001, 1).items()})
    land = static["land_mask"] == 1
    expected = np.where(land, static["lai_climatology"][0], 0.0)
    np.testing.assert_array_equal(out["lai"].numpy(), expected)


def test_lu_lc_from_keeps_those_nets_and_trains_only_lai(tiny_bundle, tiny_cube, tmp_path):
    cfg = TrainConfig(cube=tiny_cube, out=tmp_path / "b", years=(2000, 2002), unroll=1,
                      unroll_lai=2, patch=80, tile=32, base=4, batch=2, iters_lai=1,
                      directions=("forward",), lu_lc_from=tiny_bundle)  # fmt: skip
    out = train(cfg)
    src = bundle.verify(tiny_bundle)
    new = bundle.verify(out)
    a = torch.jit.load(str(tiny_bundle / src["directions"]["forward"]["file"]))
    b = torch.jit.load(str(out / new["directions"]["forward"]["file"]))
    for net in ("lu_net", "lc_net"):
        sa, sb = getattr(a, net).state_dict(), getattr(b, net).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    hist = new["training"]["history"]["forward"]
    assert hist["lu"]["kept_from"]["bundle"] == str(tiny_bundle) and hist["lai"]["iters"] == 1
    # LU and LC nets normalised on other years are refused, naming the quantity
    other = replace(cfg, out=tmp_path / "c", run_dir=None, years=(2001, 2002))
    with pytest.raises(bundle.BundleError, match="normalised elevation|normalised secma"):
        train(other)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_lai_climatology_is_the_monthly_mean_of_the_years_asked(tiny_cube):
    cube = Cube.open(tiny_cube)
    clim = cube.lai_climatology((2001, 2002))
    lai = cube.root["lai"]
    # hand-computed: March (index 2) of 2001 and 2002, months 14 and 26 of the cube
    expected = (lai[14].astype(np.float64) + lai[26]) / 2
    assert clim.shape == (12, *cube.grid.shape) and clim.dtype == np.float32
    np.testing.assert_allclose(clim[2], expected, rtol=1e-6)
    assert cube.climatology_years((1990, 2001)) == (2000, 2001)  # clipped to the cube
    assert cube.climatology_years((1960, 1990)) == (2000, 2002)  # none held: all years
    with pytest.raises(ValueError, match="year 1999 outside the cube"):
        cube.lai_climatology((1999, 2001))


def test_nets_of_another_input_layout_are_refused_by_reexport_and_lu_lc_from(
    tiny_bundle, tiny_cube, tmp_path, monkeypatch
):
    from landbc.emulator.training import reexport

    monkeypatch.setitem(training.EXPECTED_INPUTS, "lai_net", 1)
    with pytest.raises(
        bundle.BundleError, match=r"lai_net takes \d+ input channels.*not re-exported"
    ):
        reexport(tiny_bundle, tmp_path / "again")
    assert not (tmp_path / "again").exists()
    monkeypatch.setitem(training.EXPECTED_INPUTS, "lc_net", 1)
    with pytest.raises(bundle.BundleError, match=r"lc_net takes \d+ input.*cannot be kept"):
        training.kept_lu_lc(
            tiny_bundle, "forward", training.normalisation(Cube.open(tiny_cube), (2000, 2002))
        )
