"""The TorchScript stepper: overlap tiles, blocks with halos, cadence, sea mask, fresh-process
loading."""

import subprocess
import sys
import textwrap

import numpy as np
import torch
from torch import nn

from landbc.emulator import catalog, decoding, features
from landbc.emulator.grid import Grid
from landbc.emulator.nets import UNet
from landbc.emulator.stepper import Stepper

NORM = {
    k: [0.0, 1.0]
    for k in ("elevation", "slope", "secma", "secmb", "t2m", "tp", "ssrd", "co2", "lai")
}


class Pointwise(nn.Module):
    """A 1x1-conv 'net': its output at a pixel does not depend on the tile, so
    tiled output must equal the net applied to the whole domain."""

    def __init__(self, cin: int, cout: int, softplus: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.softplus = softplus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return nn.functional.softplus(y) if self.softplus else y


def _domain(grid: Grid, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ny, nx = grid.shape
    h, w = grid.coarse_shape
    land = (torch.rand(ny, nx, generator=g) > 0.25).to(torch.uint8)
    land[:, :9] = 0  # a strip of sea, wider than nothing but narrower than a tile
    static = {
        "land_mask": land,
        "elevation": torch.rand(ny, nx, generator=g) * 2,
        "slope": torch.rand(ny, nx, generator=g),
        "koppen": torch.randint(0, 6, (ny, nx), generator=g, dtype=torch.uint8),
        "igbp": torch.randint(0, 17, (ny, nx), generator=g, dtype=torch.uint8),
        "lai_climatology": torch.rand(12, ny, nx, generator=g) * 4 * land,
    }
    priors = {
        "lu": torch.randint(1, 8, (ny, nx), generator=g, dtype=torch.uint8) * land,
        "lc": torch.randint(1, 21, (ny, nx), generator=g, dtype=torch.uint8),
        "lai": torch.rand(ny, nx, generator=g) * 3 * land,
    }
    forcing = {
        "luh2_frac": torch.rand(12, h, w, generator=g) / 12,
        "secma": torch.rand(h, w, generator=g),
        "secmb": torch.rand(h, w, generator=g),
        "co2": torch.tensor(1.5),
        "t2m": torch.rand(h, w, generator=g),
        "tp": torch.rand(h, w, generator=g),
        "ssrd": torch.rand(h, w, generator=g),
    }
    return static, priors, forcing


def _pointwise_stepper(direction=1, tile=32, stride=20):
    torch.manual_seed(1)
    nets = (
        Pointwise(features.N_LU_INPUTS, catalog.N_LU),
        Pointwise(features.N_LC_INPUTS, catalog.N_LC),
        Pointwise(features.N_LAI_INPUTS, 1, softplus=True),
    )
    stepper = Stepper(*nets, NORM, direction, tile=tile, stride=stride, coarse_factor=5)
    return torch.jit.script(stepper), nets


def test_tiles_equal_whole_domain_application():
    grid = Grid(40.0, 43.5, 1.0, 5.0, 0.05, 5)  # 70 x 80 px: not a multiple of the tile
    static, priors, forcing = _domain(grid)
    stepper, (lu_net, lc_net, lai_net) = _pointwise_stepper()
    stepper.init(static, priors, 2000, 12, *grid.origin)
    out = stepper.step(forcing)

    def b(x):
        return x[None]

    with torch.no_grad():
        st = features.static_inputs(
            *(b(static[n]) for n in ("land_mask", "elevation", "slope", "koppen", "igbp")), NORM
        )
        up = lambda x: b(torch.from_numpy(grid.refine(x.numpy())))  # noqa: E731
        prior = features.one_hot(b(priors["lu"]), catalog.N_LU)
        # the decoding, on the whole domain at once: counts, needs, net, rebalance
        f, (h, w) = 5, grid.shape
        changeable = torch.zeros(catalog.N_LU, dtype=torch.bool)
        changeable[list(catalog.LU_CHANGEABLE)] = True
        cells = decoding.to_cells(priors["lu"].long(), f)
        free = decoding.to_cells((static["land_mask"] > 0) & changeable[priors["lu"].long()], f)
        counts = torch.zeros(len(cells), catalog.N_LU, dtype=torch.int64)
        counts.scatter_add_(1, cells, free.long())
        m = torch.tensor(catalog.luh2_to_lu_matrix())
        implied = (torch.einsum("kj,jyx->kyx", m, forcing["luh2_frac"]) * 25).reshape(8, -1).t()
        target = decoding.scenario_counts(counts, implied, changeable, catalog.LU_RESIDUAL, 1.0)
        need = ((target - counts).float() / 25).t().reshape(8, h // f, w // f)
        x = features.lu_inputs(
            st,
            prior,
            features.coarse_fractions(prior, catalog.N_LU, 5),
            up(need),
            up(forcing["luh2_frac"]),
            up(forcing["secma"]),
            up(forcing["secmb"]),
            NORM,
        )
        p = torch.softmax(lu_net(x), 1)[0]
        q = (-16.0 * torch.log(p.clamp_min(1e-7))).round().clamp(0, 255)
        lu = decoding.rebalance(-decoding.to_cells(q, f), cells, target, free)
        lu = decoding.from_cells(lu, f, h, w).to(torch.uint8)
        x = features.lc_inputs(
            st,
            features.one_hot(b(lu), catalog.N_LU),
            prior,
            features.one_hot(b(priors["lc"]), catalog.N_LC),
        )
        lc = lc_net(x).argmax(1)[0].to(torch.uint8)
        clim = static["lai_climatology"]  # stepped from 2000-12 to 2001-01
        x = features.lai_inputs(
            st,
            features.one_hot(b(lc), catalog.N_LC),
            b(priors["lai"] - clim[11]),
            b(clim[0]),
            up(forcing["t2m"]),
            up(forcing["tp"]),
            up(forcing["ssrd"]),
            1,
            1.5,
            torch.from_numpy(grid.lat).float()[None],
            NORM,
        )
        lai = features.lai_from_departure(
            features.departure_from_output(lai_net(x), NORM), clim[0]
        )[0]
    sea = static["land_mask"] == 0
    lu, lc, lai = (
        lu.masked_fill(sea, 0),
        lc.masked_fill(sea, catalog.LC_SEA),
        lai.masked_fill(sea, 0),
    )
    assert torch.equal(out["lu"], lu)
    assert torch.equal(out["lc"], lc)
    torch.testing.assert_close(out["lai"], lai, rtol=1e-5, atol=1e-6)
    assert (out["lu"][sea] == 0).all() and (out["lc"][sea] == catalog.LC_SEA).all()


def test_cadence_lu_lc_change_only_when_a_year_is_entered():
    grid = Grid(40.0, 42.0, 1.0, 3.0, 0.05, 5)
    static, priors, forcing = _domain(grid)
    for direction, start, year_month in ((1, (2000, 10), 1), (-1, (2001, 3), 12)):
        stepper, _ = _pointwise_stepper(direction)
        stepper.init(static, priors, *start, *grid.origin)
        lu_before = stepper.get_state()["lu"].clone()
        for _ in range(5):
            out = stepper.step(forcing)
            year, month = (int(t) for t in stepper.get_state()["time"])
            if month == year_month:
                lu_before = out["lu"].clone()  # a new year: LU may change here only
            assert torch.equal(out["lu"], lu_before)
        assert (year, month) == ((2001, 3) if direction == 1 else (2000, 10))


def test_outputs_are_copies_of_the_state():
    grid = Grid(40.0, 41.0, 1.0, 2.0, 0.05, 5)
    static, priors, forcing = _domain(grid)
    stepper, _ = _pointwise_stepper()
    stepper.init(static, priors, 2000, 5, *grid.origin)
    out = stepper.step(forcing)
    out["lai"].fill_(99.0)
    out["lu"].fill_(3)
    state = stepper.get_state()
    assert state["lai"].max() < 99 and not (state["lu"] == 3).all()


def test_stepper_runs_in_a_fresh_process_without_landbc(tmp_path):
    grid = Grid(40.0, 42.0, 1.0, 3.0, 0.05, 5)
    static, priors, forcing = _domain(grid)
    stepper, _ = _pointwise_stepper()
    stepper.save(str(tmp_path / "stepper.pt"))
    torch.save(
        {"static": static, "priors": priors, "forcing": forcing, "origin": list(grid.origin)},
        tmp_path / "inputs.pt",
    )
    stepper.init(static, priors, 2000, 11, *grid.origin)
    expected = [stepper.step(forcing) for _ in range(3)]
    code = textwrap.dedent("""
        import sys, torch
        m = torch.jit.load("stepper.pt")
        d = torch.load("inputs.pt")
        m.init(d["static"], d["priors"], 2000, 11, *d["origin"])
        outs = [m.step(d["forcing"]) for _ in range(3)]
        torch.save(outs, "outputs.pt")
        assert not [k for k in sys.modules if k.split(".")[0] in ("emulator", "coupler")]
    """)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    got = torch.load(tmp_path / "outputs.pt")
    for e, g in zip(expected, got, strict=True):
        assert set(e) == set(g)
        for k in e:
            assert torch.equal(e[k], g[k]), k


def test_state_round_trip_and_direction_check():
    grid = Grid(40.0, 41.0, 1.0, 2.0, 0.05, 5)
    static, priors, forcing = _domain(grid)
    fwd, _ = _pointwise_stepper(1)
    bwd, _ = _pointwise_stepper(-1)
    fwd.init(static, priors, 2000, 5, *grid.origin)
    state = fwd.get_state()
    try:
        bwd.set_state(state)
    except Exception as e:  # TorchScript raises its own wrapper of ValueError
        assert "direction" in str(e)
    else:
        raise AssertionError("a forward state was accepted by a backward stepper")
    fwd2, _ = _pointwise_stepper(1)
    fwd2.set_state(state)
    a, b = fwd.step(forcing), fwd2.step(forcing)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(fwd.get_state()["time"].numpy(), [2000, 6])


def _unet_stepper(direction: int) -> torch.jit.ScriptModule:
    """Small real U-Nets (random weights): their output at a pixel depends on the
    whole window, so only identical windows give identical values."""
    torch.manual_seed(2)
    nets = (
        UNet(features.N_LU_INPUTS, catalog.N_LU, base=4),
        UNet(features.N_LC_INPUTS, catalog.N_LC, base=4),
        UNet(features.N_LAI_INPUTS, 1, base=4, head="linear"),
    )
    for net in nets:
        net.eval()
    stepper = Stepper(*nets, NORM, direction, tile=32, stride=20, coarse_factor=5)
    return torch.jit.script(stepper)


def _block(x: torch.Tensor, rows: slice, cols: slice, f: int = 1) -> torch.Tensor:
    r = slice(rows.start // f, rows.stop // f)
    c = slice(cols.start // f, cols.stop // f)
    return x[..., r, c].clone()


def _run_blocks(direction, start, cuts_r, cuts_c, halo, steps):
    """Step a domain cut into blocks with halos, exchanging each stage's field
    through a global array assembled from the blocks' interiors (what MPI will do)."""
    grid = Grid(40.0, 44.0, 1.0, 7.0, 0.05, 5)  # 80 x 120 px, origin (1000, 3620)
    ny, nx = grid.shape
    static, priors, forcing = _domain(grid, seed=3)
    blocks = []
    edges_r = [0, *cuts_r, ny]
    edges_c = [0, *cuts_c, nx]
    for r0, r1 in zip(edges_r, edges_r[1:], strict=False):
        for c0, c1 in zip(edges_c, edges_c[1:], strict=False):
            hal = [halo if r0 > 0 else 0, halo if r1 < ny else 0,
                   halo if c0 > 0 else 0, halo if c1 < nx else 0]  # fmt: skip
            rows = slice(r0 - hal[0], r1 + hal[1])
            cols = slice(c0 - hal[2], c1 + hal[3])
            stepper = _unet_stepper(direction)
            stepper.init(
                {k: _block(v, rows, cols) for k, v in static.items()},
                {k: _block(v, rows, cols) for k, v in priors.items()},
                *start, grid.origin[0] + rows.start, grid.origin[1] + cols.start,
            )  # fmt: skip
            stepper.set_halo(hal)
            blocks.append((stepper, rows, cols, slice(r0, r1), slice(c0, c1), hal))
    outs = []
    for _ in range(steps):
        for stage in blocks[0][0].stages():
            for stepper, rows, cols, *_ in blocks:
                f = {k: _block(v, rows, cols, 5) if v.ndim else v for k, v in forcing.items()}
                stepper.run_stage(f, stage)
            whole = torch.zeros(ny, nx, dtype=blocks[0][0].field(stage).dtype)
            for stepper, _, _, br, bc, hal in blocks:
                inner = stepper.field(stage)[hal[0] : hal[0] + br.stop - br.start,
                                             hal[2] : hal[2] + bc.stop - bc.start]  # fmt: skip
                whole[br, bc] = inner
            for stepper, rows, cols, *_ in blocks:
                stepper.fill_halo(stage, whole[rows, cols])
        out = {}
        for name in ("lu", "lc", "lai"):
            out[name] = torch.zeros(ny, nx, dtype=blocks[0][0].field(name).dtype)
            for stepper, _, _, br, bc, hal in blocks:
                out[name][br, bc] = stepper.outputs()[name][
                    hal[0] : hal[0] + br.stop - br.start, hal[2] : hal[2] + bc.stop - bc.start
                ]
        outs.append(out)
    return outs


def test_blocks_with_halos_equal_the_whole_domain_bit_for_bit():
    """2x2 and 3x1 blocks with 25 px halos (margin 6, widened to 16s: up to 21) give
    the whole domain's values over 24 steps with a yearly step in them, in both
    directions (DESIGN.md §6)."""
    for direction, start in ((1, (2000, 6)), (-1, (2001, 6))):
        whole = _run_blocks(direction, start, [], [], 0, 24)
        assert any(
            not torch.equal(a["lu"], b["lu"]) for a, b in zip(whole, whole[1:], strict=False)
        )  # the yearly step changed LU: the test covers the LU and LC stages
        for cuts_r, cuts_c in (([40], [60]), ([], [40, 80])):
            blocks = _run_blocks(direction, start, cuts_r, cuts_c, 25, 24)
            for k, (a, b) in enumerate(zip(whole, blocks, strict=True)):
                for name in a:
                    assert torch.equal(a[name], b[name]), (direction, cuts_r, cuts_c, k, name)


def test_a_block_refuses_halos_it_cannot_use():
    grid = Grid(40.0, 43.75, 1.0, 7.0, 0.05, 5)  # origin row 925
    static, priors, _ = _domain(grid)
    stepper, _ = _pointwise_stepper(tile=64, stride=20)  # margin 22
    stepper.init(static, priors, 2000, 6, *grid.origin)
    tiles = stepper.tile_windows()
    for halo, words in (([15, 0, 0, 0], "expected at least 28 px (the tiles' margin of 22 px"),
                        ([10, 0, 0, 0], "must lie on the tile lattice"),
                        ([0, 0, 0, -1], "non-negative")):  # fmt: skip
        try:
            stepper.set_halo(halo)
        except Exception as e:
            assert words in str(e), (halo, str(e))
        else:
            raise AssertionError(f"halo {halo} was accepted")
        assert stepper.tile_windows() == tiles  # a refused halo changes nothing
    stepper.set_halo([35, 0, 0, 0])
    try:
        stepper.step({})
    except Exception as e:
        assert "run its stages" in str(e)
    else:
        raise AssertionError("step() ran a block with halos")


def test_tiles_cover_the_domain_once_with_margins_only_beyond_it():
    grid = Grid(40.0, 43.75, 1.0, 7.0, 0.05, 5)  # 75 x 120 px
    static, priors, _ = _domain(grid)
    static["land_mask"][:, :] = 1
    static["land_mask"][:15, :20] = 0  # the first core, all sea: not run
    stepper, _ = _pointwise_stepper(tile=32, stride=20)
    stepper.init(static, priors, 2000, 6, *grid.origin)
    cover = torch.zeros(grid.shape, dtype=torch.int64)
    for t in stepper.tile_windows():
        cover[t[0] : t[1], t[2] : t[3]] += 1
        # each window is its core plus the 6 px margin, widened to global multiples of 16
        for lo, hi, w_lo, w_hi, g0 in ((*t[0:2], *t[4:6], 925), (*t[2:4], *t[6:8], 3620)):
            assert (g0 + w_lo) % 16 == 0 and (g0 + w_hi) % 16 == 0
            assert 6 <= lo - w_lo < 6 + 16 and 6 <= w_hi - hi < 6 + 16
    # global row 925 is inside the cell [920, 940): the first core is clipped to 15 rows
    assert [0, 15] in [t[0:2] for t in stepper.tile_windows()]
    assert (cover[:15, :20] == 0).all() and (cover[15:] == 1).all() and (cover[:, 20:] == 1).all()


def test_rebalancing_in_chunks_of_cells_changes_nothing():
    """A yearly step rebalances its cells a chunk at a time (a fixed workspace);
    cells are independent, so any chunk size gives the same map."""
    grid = Grid(40.0, 42.0, 1.0, 3.0, 0.05, 5)
    static, priors, forcing = _domain(grid)
    outs = []
    for chunk in (4096, 7, 1):
        stepper, _ = _pointwise_stepper()
        stepper.rebalance_cells = chunk
        stepper.init(static, priors, 2000, 12, *grid.origin)
        outs.append(stepper.step(forcing)["lu"])
    assert not torch.equal(outs[0], priors["lu"].masked_fill(static["land_mask"] == 0, 0))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
