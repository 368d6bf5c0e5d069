"""Input stacks of the three nets, written once for the stepper and for training.

These are TorchScript functions: the stepper compiles them into the bundle, and
training calls the very same code on its patches, so what a net saw in training
is what it sees in the coupled run. All take batched tiles (B, ..., P, P).
Class maps enter as probabilities (one-hot in the stepper, soft or masked
priors in training); an all-zero vector means "unknown".
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .catalog import N_IGBP, N_KOPPEN, N_LC, N_LU, N_LUH2

# Channel counts, used to build the nets.
N_STATIC = 3 + N_KOPPEN + N_IGBP
N_LU_INPUTS = N_STATIC + 3 * N_LU + N_LUH2 + 2
N_LC_INPUTS = N_STATIC + 2 * N_LU + N_LC
N_LAI_INPUTS = N_STATIC + N_LC + 2 + 3 + 2 + 1 + 1
# Where each net's prior starts in its input stack (the nets add it to their output;
# for LAI the prior's departure from its month's climatology).
LU_PRIOR_CHANNEL = N_STATIC
LC_PRIOR_CHANNEL = N_STATIC + 2 * N_LU
LAI_PRIOR_CHANNEL = N_STATIC + N_LC


def one_hot(classes: Tensor, n: int) -> Tensor:
    """(B, P, Q) integer map → (B, n, P, Q) float32 one-hot, channels_last; codes
    >= n give all zeros. Rows gathered from an identity table write each pixel's
    vector contiguously: 2x faster than comparing with the class codes, 10x faster
    than F.one_hot's int64 scatter (a 512 px uint8 tile, 21 classes, 2-core EPYC)."""
    table = torch.cat(
        [torch.eye(n, device=classes.device), torch.zeros(1, n, device=classes.device)]
    )
    rows = table.index_select(0, classes.reshape(-1).long().clamp_max(n))
    return rows.view(classes.shape[0], classes.shape[1], classes.shape[2], n).permute(0, 3, 1, 2)


def cat_channels(pieces: list[Tensor], out: Tensor | None = None) -> Tensor:
    """Concatenate (B, c, P, Q) pieces along the channels into a channels_last tensor
    (memory (B, P, Q, C)), the layout the nets' convolutions run in: built so
    directly, a step spares the copy the first convolution would otherwise make
    (about 10 % of a monthly step at 1025², 2-core EPYC). `out`, a (B, P, Q, C)
    buffer reused from tile to tile, spares the page faults of a fresh 60 MB
    tensor per tile, which cost as much as the copy itself on that CPU."""
    last = [x.permute(0, 2, 3, 1) for x in pieces]
    if out is None:
        return torch.cat(last, dim=3).permute(0, 3, 1, 2)
    return torch.cat(last, dim=3, out=out).permute(0, 3, 1, 2)


def normalise(x: Tensor, norm: dict[str, list[float]], name: str) -> Tensor:
    mean_std = norm[name]
    return (x.float() - mean_std[0]) / mean_std[1]


def static_inputs(
    land_mask: Tensor,
    elevation: Tensor,
    slope: Tensor,
    koppen: Tensor,
    igbp: Tensor,
    norm: dict[str, list[float]],
    n_koppen: int = N_KOPPEN,
    n_igbp: int = N_IGBP,
) -> list[Tensor]:
    """(B, P, P) static maps → their N_STATIC channels as pieces (B, c, P, P). The
    nets' input functions concatenate them with the dynamic pieces in one copy:
    a stack built first and copied again cost a fifth of a monthly step's
    non-net time (1025², 2-core EPYC)."""
    return [
        land_mask.float().unsqueeze(1),
        normalise(elevation, norm, "elevation").unsqueeze(1),
        normalise(slope, norm, "slope").unsqueeze(1),
        one_hot(koppen, n_koppen),
        one_hot(igbp, n_igbp),
    ]


def lu_inputs(
    static: list[Tensor],
    prior_lu: Tensor,
    prior_lu_coarse: Tensor,
    need: Tensor,
    luh2_frac: Tensor,
    secma: Tensor,
    secmb: Tensor,
    norm: dict[str, list[float]],
    out: Tensor | None = None,
) -> Tensor:
    """LU net: statics, the adjacent year's LU (probabilities) and its coarse-cell
    fractions, how many pixels of each class the cell gains (+) or loses (-) this
    year as a share of the cell (`need`: from the scenario-consistent decoding in
    the stepper, from the truth in training), the target year's LUH2 states. The
    need says how much changes; the net says where (`decoding.rebalance`)."""
    return cat_channels(
        static
        + [
            prior_lu,
            prior_lu_coarse,
            need,
            luh2_frac,
            normalise(secma, norm, "secma").unsqueeze(1),
            normalise(secmb, norm, "secmb").unsqueeze(1),
        ],
        out,
    )


def lc_inputs(
    static: list[Tensor],
    lu: Tensor,
    prior_lu: Tensor,
    prior_lc: Tensor,
    out: Tensor | None = None,
) -> Tensor:
    """LC net: this year's LU, the adjacent year's LU and LC (did LU change here?)."""
    return cat_channels(static + [lu, prior_lu, prior_lc], out)


def lai_inputs(
    static: list[Tensor],
    lc: Tensor,
    prior_departure: Tensor,
    climatology: Tensor,
    t2m: Tensor,
    tp: Tensor,
    ssrd: Tensor,
    month: int,
    co2: float,
    lat: Tensor,
    norm: dict[str, list[float]],
    out: Tensor | None = None,
) -> Tensor:
    """LAI net: LC, the adjacent month's departure from its month's LAI climatology
    (m2 m-2), this month's climatology, the month's climate, season, CO2 and day
    length. The net predicts this month's departure (`lai_from_departure`): the
    climatology carries what is the same every year (each pixel's type and
    vigour), the net what differs (weather, CO2, land-cover change and the slow
    anomalies the prior departure carries). `lat` (B, P) is the latitude of each
    tile row: photoperiod gates the growing season (the GSI's iPhoto), and a
    convolution cannot know where it is."""
    b, _, p, q = lc.shape
    phase = 2.0 * math.pi * (month - 0.5) / 12.0
    ones = torch.ones(b, 1, p, q, dtype=lc.dtype, device=lc.device)
    return cat_channels(
        static
        + [
            lc,
            (prior_departure / norm["lai"][1]).unsqueeze(1),
            normalise(climatology, norm, "lai").unsqueeze(1),
            normalise(t2m, norm, "t2m").unsqueeze(1),
            normalise(tp, norm, "tp").unsqueeze(1),
            normalise(ssrd, norm, "ssrd").unsqueeze(1),
            ones * math.sin(phase),
            ones * math.cos(phase),
            ones * ((co2 - norm["co2"][0]) / norm["co2"][1]),
            ((day_length_hours(lat, month) - 12.0) / 4.0)[:, None, :, None].expand(b, 1, p, q),
        ],
        out,
    )


def day_length_hours(lat: Tensor, month: int) -> Tensor:
    """Day length (h) at mid-month for latitudes in degrees (Cooper's declination)."""
    doy = 30.4 * (month - 0.5)
    decl = math.radians(23.44) * math.sin(2.0 * math.pi * (284.0 + doy) / 365.0)
    cos_omega = (-torch.tan(torch.deg2rad(lat.double())) * math.tan(decl)).clamp(-1.0, 1.0)
    return (24.0 / math.pi * torch.acos(cos_omega)).float()


def departure_from_output(y: Tensor, norm: dict[str, list[float]]) -> Tensor:
    """The LAI net's output is the departure from the climatology in units of the
    LAI std; (B, 1, P, P) → (B, P, P) in m2 m-2."""
    return y[:, 0] * norm["lai"][1]


def lai_from_departure(departure: Tensor, climatology: Tensor) -> Tensor:
    """LAI = climatology + departure, never negative. A zero departure (the LAI
    net's starting point in training) gives the climatology exactly."""
    return (climatology + departure).clamp_min(0.0)


def coarse_fractions(classes: Tensor, n: int, factor: int) -> Tensor:
    """(B, n, P, P) probabilities → fractions per coarse cell, back on the fine grid."""
    c = F.avg_pool2d(classes, factor)
    return c.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
