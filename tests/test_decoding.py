"""Scenario-consistent decoding on hand-checkable cells."""

import torch

from landbc.emulator import decoding

CHANGEABLE = torch.tensor([False, True, True, True])  # class 0 fixed (e.g. water)


def test_cells_layout_round_trips_and_groups_coarse_cells():
    x = torch.arange(2 * 4 * 6).reshape(2, 4, 6)
    cells = decoding.to_cells(x, 2)
    assert cells.shape == (6, 2, 4)
    assert cells[1, 0].tolist() == [2, 3, 8, 9]  # second cell of the first row, channel 0
    assert torch.equal(decoding.from_cells(cells, 2, 4, 6), x)


def test_largest_remainder_counts_and_remainder():
    counts, rem = decoding.target_counts(torch.tensor([[0.0, 1.4, 2.6]]), torch.tensor([4]))
    assert counts.tolist() == [[0, 1, 3]]
    torch.testing.assert_close(rem, torch.tensor([[0.0, 0.4, -0.4]]))
    # rows that do not add up to the total are read as shares of it
    counts, _ = decoding.target_counts(torch.tensor([[1.0, 1.0]]), torch.tensor([4]))
    assert counts.tolist() == [[2, 2]]


def test_scenario_counts_keep_last_year_inside_the_band_and_step_outside():
    prior = torch.tensor([[2, 5, 3, 0], [2, 5, 3, 0], [2, 5, 3, 0]])
    implied = torch.tensor(
        [
            [0.0, 5.9, 2.5, 0.0],  # within one pixel: nothing changes
            [0.0, 6.4, 2.5, 0.0],  # class 1 must reach ceil(6.4 - 1) = 6
            [0.0, 3.2, 2.5, 0.0],  # class 1 must fall to floor(3.2 + 1) = 4
        ]
    )
    out = decoding.scenario_counts(prior, implied, CHANGEABLE, 3, 1.0)
    # Class 0 is fixed; class 3 (the residual) takes what classes 1-2 leave of the 8
    # changeable pixels. Row 2: 6 + 3 > 8, so the bands cannot all hold and the cell
    # gets the largest-remainder counts of (6.4, 2.5, 0) scaled to 8: (6, 2, 0).
    assert out.tolist() == [[2, 5, 3, 0], [2, 6, 2, 0], [2, 4, 3, 1]]


def test_rebalance_converts_the_likeliest_pixels_only_where_counts_change():
    # two cells of 4 pixels; the first must turn one class-1 pixel into class 2
    classes = torch.tensor([[1, 1, 1, 2], [1, 1, 2, 2]])
    p = torch.tensor(
        [
            [[0.0, 0.0, 0.0, 0.0], [0.8, 0.5, 0.7, 0.1], [0.1, 0.4, 0.2, 0.8], [0.1] * 4],
            [[0.0] * 4, [0.1, 0.1, 0.9, 0.9], [0.9, 0.9, 0.1, 0.1], [0.0] * 4],
        ]
    )
    target = torch.tensor([[0, 2, 2, 0], [0, 2, 2, 0]])
    free = torch.ones(2, 4, dtype=torch.bool)
    out = decoding.rebalance(torch.log(p.clamp_min(1e-9)), classes, target, free)
    # cell 0: pixel 1 gains most from the switch (log 0.4 - log 0.5); cell 1's counts
    # already match, so it is kept although the net would swap all four pixels
    assert out.tolist() == [[1, 2, 1, 2], [1, 1, 2, 2]]


def test_rebalance_leaves_fixed_pixels_and_unmeetable_needs():
    classes = torch.tensor([[0, 0, 1, 1]])
    logp = torch.zeros(1, 4, 4)
    free = torch.tensor([[False, False, True, True]])
    # asks for 3 of class 3 but only 2 free pixels exist: both convert, the rest stays unmet
    out = decoding.rebalance(logp, classes, torch.tensor([[0, 0, 0, 3]]), free)
    assert out.tolist() == [[0, 0, 3, 3]]


def test_decoding_compiles_to_torchscript():
    for fn in (
        decoding.to_cells,
        decoding.from_cells,
        decoding.target_counts,
        decoding.rebalance,
        decoding.scenario_counts,
    ):
        torch.jit.script(fn)
