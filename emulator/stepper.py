"""The stepper: all model logic of one direction, compiled to one TorchScript file.

It holds the three nets, the normalisation, the cadence (LU and LC advance
when the step enters a new year, LAI every month), tiling on the global
lattice with Gaussian overlap blending, the IFS-style derived fields, and the
state (priors, time, statics). The Python `BoundaryConditionEmulator` and the
C++ shim only validate, convert and move files; parity between them holds by
construction (DESIGN.md, principle 1).

Tiles are `tile` pixels wide, their origins global multiples of `stride`
(principle 6); the default stride of 3/4 tile overlaps neighbours by a quarter,
so the nets run on (4/3)² ≈ 1.8× the domain's pixels (half-tile overlap would
cost 4×). Blended class probabilities stream through a band one tile high and
one domain wide: once a row of tiles is done, the rows above the next row's
origin are final and are emitted, so nothing but the state is held for the
whole domain (principle 5); contributions are summed in a fixed order.

LU is decoded scenario-consistently (`decoding`): the coarse LUH2 fractions fix
each coarse cell's class counts (within a band of `lu_tolerance` pixels around
the counts they imply), the LU net's blended probabilities say which pixels
change, and only that many change. For this the LU probabilities are kept for
the whole domain for one step, as -16 log p in one byte per class and pixel.

A step is a transaction (principle 4): new fields are computed into locals and
the state is replaced only at the end.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import catalog, decoding, features
from .grid import tile_origins

FORWARD, BACKWARD = 1, -1
STATIC_NAMES = [v.name for v in catalog.STATIC_VARIABLES]
STATE_NAMES = [v.name for v in catalog.STATE_VARIABLES]


def gaussian_blend_weights(tile: int) -> Tensor:
    """Separable Gaussian (σ = tile/8), peak 1, never zero (≈3e-4 at the edges)."""
    sigma = tile / 8.0
    x = torch.arange(tile, dtype=torch.float64) + 0.5 - tile / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (g[:, None] * g[None, :]).float()


class Stepper(nn.Module):
    direction: int
    tile: int
    stride: int
    coarse_factor: int
    tiles_per_batch: int
    res: float
    sea_lc: int
    norm: dict[str, list[float]]
    initialised: bool
    year: int
    month: int
    origin_row: int
    origin_col: int
    static_names: list[str]
    n_lu: int
    n_lc: int
    state_names: list[str]
    lu_residual: int
    lu_tolerance: float

    def __init__(
        self,
        lu_net: nn.Module,
        lc_net: nn.Module,
        lai_net: nn.Module,
        norm: dict[str, list[float]],
        direction: int,
        tile: int = 256,
        coarse_factor: int = 5,
        tiles_per_batch: int = 4,
        sea_lc: int = 15,
        stride: int = 0,
        res: float = 0.05,
        lu_tolerance: float = 1.0,
    ) -> None:
        super().__init__()
        if direction not in (FORWARD, BACKWARD):
            raise ValueError(f"direction must be 1 (forward) or -1 (backward), found {direction}")
        if tile % 16:
            raise ValueError(f"tile must be a multiple of 16 (the nets pool 4 times), found {tile}")
        self.lu_net = lu_net
        self.lc_net = lc_net
        self.lai_net = lai_net
        self.norm = {k: [float(v[0]), float(v[1])] for k, v in norm.items()}
        self.direction = direction
        self.tile = tile
        self.stride = stride if stride > 0 else tile * 3 // 4
        if not 0 < self.stride <= tile:
            raise ValueError(f"stride must be in 1..tile ({tile}), found {self.stride}")
        self.coarse_factor = coarse_factor
        self.tiles_per_batch = tiles_per_batch
        self.res = float(res)  # degrees per pixel: rows give latitudes (day length)
        self.sea_lc = sea_lc
        self.static_names = list(STATIC_NAMES)
        self.n_lu = catalog.N_LU
        self.n_lc = catalog.N_LC
        self.state_names = list(STATE_NAMES)
        self.register_buffer("blend", gaussian_blend_weights(tile))
        high = torch.zeros(catalog.N_LC, dtype=torch.bool)
        high[list(catalog.LC_HIGH_VEGETATION)] = True
        low = torch.zeros(catalog.N_LC, dtype=torch.bool)
        low[list(catalog.LC_LOW_VEGETATION)] = True
        self.register_buffer("lc_is_high", high)
        self.register_buffer("lc_is_low", low)
        self.register_buffer("lc_cover", torch.tensor(catalog.LC_VEGETATION_COVER))
        # Scenario-consistent LU decoding (decoding.py): LUH2 states summed into LU
        # classes, the classes scenarios move pixels between, and the band (pixels)
        # within which a cell keeps last year's count.
        self.register_buffer("luh2_to_lu", torch.tensor(catalog.luh2_to_lu_matrix()))
        changeable = torch.zeros(catalog.N_LU, dtype=torch.bool)
        changeable[list(catalog.LU_CHANGEABLE)] = True
        self.register_buffer("lu_changeable", changeable)
        self.lu_residual = catalog.LU_RESIDUAL
        self.lu_tolerance = float(lu_tolerance)
        # State: empty until init/set_state.
        self.initialised = False
        self.year = 0
        self.month = 0
        self.origin_row = 0
        self.origin_col = 0
        empty = torch.zeros(0)
        self.lu = empty
        self.lc = empty
        self.lai = empty
        self.land_mask = empty
        self.elevation = empty
        self.slope = empty
        self.koppen = empty
        self.igbp = empty
        self.lai_climatology = empty

    # ------------------------------------------------------------------ state
    @torch.jit.export
    def init(
        self,
        static: dict[str, Tensor],
        priors: dict[str, Tensor],
        year: int,
        month: int,
        origin_row: int,
        origin_col: int,
    ) -> None:
        """Start from priors valid at (year, month): LU/LC of `year`, LAI of that month."""
        state: dict[str, Tensor] = {}
        for n in self.static_names:
            state[n] = static[n]
        for n in self.state_names:
            state[n] = priors[n]
        state["time"] = torch.tensor([year, month], dtype=torch.int64)
        state["origin"] = torch.tensor([origin_row, origin_col], dtype=torch.int64)
        state["direction"] = torch.tensor([self.direction], dtype=torch.int64)
        self.set_state(state)

    @torch.jit.export
    def set_state(self, state: dict[str, Tensor]) -> None:
        for n in self.static_names + self.state_names + ["time", "origin", "direction"]:
            if n not in state:
                raise ValueError("state lacks '" + n + "'")
        if int(state["direction"][0]) != self.direction:
            raise ValueError(
                "state direction "
                + str(int(state["direction"][0]))
                + " does not match this stepper's direction "
                + str(self.direction)
            )
        shape = state["land_mask"].shape
        if len(shape) != 2 or shape[0] % self.coarse_factor or shape[1] % self.coarse_factor:
            raise ValueError(
                "land_mask must be 2-D with sides divisible by the coarse factor "
                + str(self.coarse_factor)
                + ", found "
                + str(shape)
            )
        for n in self.static_names + self.state_names:
            want = list(shape)
            if n == "lai_climatology":
                want = [12] + want
            if list(state[n].shape) != want:
                raise ValueError(
                    "'" + n + "' has shape " + str(state[n].shape) + ", expected " + str(want)
                )
        month = int(state["time"][1])
        if month < 1 or month > 12:
            raise ValueError("month must be 1..12, found " + str(month))
        dev = self.blend.device
        self.land_mask = state["land_mask"].to(dev, torch.uint8)
        self.elevation = state["elevation"].to(dev, torch.float32)
        self.slope = state["slope"].to(dev, torch.float32)
        self.koppen = state["koppen"].to(dev, torch.uint8)
        self.igbp = state["igbp"].to(dev, torch.uint8)
        self.lai_climatology = state["lai_climatology"].to(dev, torch.float32)
        self.lu = state["lu"].to(dev, torch.uint8)
        self.lc = state["lc"].to(dev, torch.uint8)
        self.lai = state["lai"].to(dev, torch.float32)
        self.year = int(state["time"][0])
        self.month = month
        self.origin_row = int(state["origin"][0])
        self.origin_col = int(state["origin"][1])
        self.initialised = True

    @torch.jit.export
    def get_state(self) -> dict[str, Tensor]:
        self._require_init()
        return {
            "land_mask": self.land_mask,
            "elevation": self.elevation,
            "slope": self.slope,
            "koppen": self.koppen,
            "igbp": self.igbp,
            "lai_climatology": self.lai_climatology,
            "lu": self.lu,
            "lc": self.lc,
            "lai": self.lai,
            "time": torch.tensor([self.year, self.month], dtype=torch.int64),
            "origin": torch.tensor([self.origin_row, self.origin_col], dtype=torch.int64),
            "direction": torch.tensor([self.direction], dtype=torch.int64),
        }

    @torch.jit.export
    def next_time(self) -> tuple[int, int]:
        year = self.year
        month = self.month + self.direction
        if month > 12:
            month = 1
            year += 1
        if month < 1:
            month = 12
            year -= 1
        return year, month

    def _require_init(self) -> None:
        if not self.initialised:
            raise RuntimeError("stepper is not initialised: call init or set_state first")

    # ------------------------------------------------------------------- step
    @torch.jit.export
    def step(self, forcing: dict[str, Tensor]) -> dict[str, Tensor]:
        """Advance one month and return the fields of the new month."""
        self._require_init()
        year, month = self.next_time()
        dev = self.blend.device
        coarse: dict[str, Tensor] = {}
        for k, v in forcing.items():
            coarse[k] = v.to(dev, torch.float32)
        lu = self.lu
        lc = self.lc
        if year != self.year:
            lu = self._land_use(coarse, month)
            lc = self._tiled(1, self.n_lc, coarse, month, lu, self.lc, self.lu, self._none())
        # LAI: the month's climatology plus the net's departure from it, the net
        # told the prior's departure from the prior month's climatology
        clim = self.lai_climatology[month - 1]
        prior_departure = self.lai - self.lai_climatology[self.month - 1]
        departure = self._tiled(2, 1, coarse, month, clim, lc, prior_departure, self._none())
        lai = features.lai_from_departure(departure, clim)
        sea = self.land_mask == 0
        lu = lu.masked_fill(sea, 0)
        lc = lc.masked_fill(sea, self.sea_lc)
        lai = lai.masked_fill(sea, 0.0)
        # commit
        self.lu = lu
        self.lc = lc
        self.lai = lai
        self.year = year
        self.month = month
        return self.outputs()

    @torch.jit.export
    def outputs(self) -> dict[str, Tensor]:
        """LU, LC, LAI and the IFS fields derived from them (cvh, cvl, tvh, tvl, lai_hv, lai_lv).

        On a 1-km pixel of a single type, cv = c_veg of that type, and lai_hv /
        lai_lv are per unit of vegetated area (lai / cv), so that the IFS
        grid-box LAI cvl*lai_lv + cvh*lai_hv equals the pixel LAI.
        """
        self._require_init()
        idx = self.lc.long()
        high = self.lc_is_high[idx]
        low = self.lc_is_low[idx]
        cover = self.lc_cover[idx]
        zero_f = torch.zeros_like(cover)
        cvh = torch.where(high, cover, zero_f)
        cvl = torch.where(low, cover, zero_f)
        zero_u = torch.zeros_like(self.lc)
        return {
            # copies: callers may modify outputs without touching the state
            "lu": self.lu.clone(),
            "lc": self.lc.clone(),
            "lai": self.lai.clone(),
            "cvh": cvh,
            "cvl": cvl,
            "tvh": torch.where(high, self.lc, zero_u),
            "tvl": torch.where(low, self.lc, zero_u),
            "lai_hv": torch.where(cvh > 0, self.lai / cvh.clamp_min(1e-6), zero_f),
            "lai_lv": torch.where(cvl > 0, self.lai / cvl.clamp_min(1e-6), zero_f),
        }

    # ------------------------------------------------------------- land use
    def _none(self) -> Tensor:
        return torch.zeros(0, device=self.blend.device)

    def _land_use(self, coarse: dict[str, Tensor], month: int) -> Tensor:
        """Next year's LU, scenario-consistent: `decoding.scenario_counts` says how
        many pixels of each class every coarse cell holds (from last year's counts
        and the LUH2 fractions), the LU net, told those needs, gives each pixel's
        class probabilities, and `decoding.rebalance` converts the likeliest pixels."""
        f = self.coarse_factor
        h = self.land_mask.shape[0]
        w = self.land_mask.shape[1]
        n = self.n_lu
        prior = decoding.to_cells(self.lu.long(), f)
        free = decoding.to_cells((self.land_mask > 0) & self.lu_changeable[self.lu.long()], f)
        counts = torch.zeros(prior.shape[0], n, dtype=torch.int64, device=prior.device)
        counts.scatter_add_(1, prior, free.long())
        luh2 = coarse["luh2_frac"]
        implied = torch.einsum("kj,jyx->kyx", self.luh2_to_lu, luh2) * float(f * f)
        implied = implied.reshape(n, -1).t()
        target = decoding.scenario_counts(
            counts, implied, self.lu_changeable, self.lu_residual, self.lu_tolerance
        )
        need = ((target - counts).float() / float(f * f)).t().reshape(n, h // f, w // f)
        neg_logp = self._tiled(0, n, coarse, month, self.lu, self.lc, self.lu, need)
        # only cells whose counts change are rebalanced (in float: 4 bytes per class
        # and pixel there); scores -(-16 log p), rebalance compares differences only
        act = (target != counts).any(1).nonzero()[:, 0]
        new = prior.clone()
        if act.numel() > 0:
            scores = -decoding.to_cells(neg_logp, f)[act].float()
            new[act] = decoding.rebalance(scores, prior[act], target[act], free[act])
        return decoding.from_cells(new, f, h, w).to(torch.uint8)

    # ------------------------------------------------------------- tiling
    def _crop(self, x: Tensor, r0: int, c0: int) -> Tensor:
        """Tile [r0, r0+T) × [c0, c0+T) of a (..., H, W) field. Outside the domain the
        edge pixels are repeated: zeros there would be an artificial coast the nets
        never saw in training, and they drew stripes along the domain edges."""
        t = self.tile
        h = x.shape[-2]
        w = x.shape[-1]
        if r0 >= 0 and c0 >= 0 and r0 + t <= h and c0 + t <= w:
            return x[..., r0 : r0 + t, c0 : c0 + t]
        rows = torch.arange(r0, r0 + t, device=x.device).clamp(0, h - 1)
        cols = torch.arange(c0, c0 + t, device=x.device).clamp(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)

    def _gather(self, x: Tensor, r0: int, c0: int, h_fine: int, w_fine: int) -> Tensor:
        """Nearest upsampling of a coarse (C, h, w) field onto one tile; edge cells
        repeated outside the domain (as in `_crop`)."""
        t = self.tile
        f = self.coarse_factor
        rr = torch.arange(r0, r0 + t, device=x.device).clamp(0, h_fine - 1)
        cc = torch.arange(c0, c0 + t, device=x.device).clamp(0, w_fine - 1)
        ri = torch.div(rr, f, rounding_mode="floor")
        ci = torch.div(cc, f, rounding_mode="floor")
        return x.index_select(-2, ri).index_select(-1, ci)

    def _up(self, x: Tensor, origins: list[tuple[int, int]]) -> Tensor:
        h = self.land_mask.shape[0]
        w = self.land_mask.shape[1]
        return torch.stack([self._gather(x, r0, c0, h, w) for r0, c0 in origins])

    def _tile_lat(self, origins: list[tuple[int, int]]) -> Tensor:
        """Latitude of each row of each tile (B, T), from the global lattice."""
        rows = torch.arange(self.tile, dtype=torch.float64, device=self.blend.device)
        lat = [90.0 - (self.origin_row + r0 + rows + 0.5) * self.res for r0, _ in origins]
        return torch.stack(lat).float()

    def _coarse_fractions(self, classes: Tensor, n: int) -> Tensor:
        """Fraction of each class per coarse cell, (n, h, w); one class at a time to
        keep the peak at 4 bytes per pixel."""
        f = self.coarse_factor
        out: list[Tensor] = []
        for c in range(n):
            m = (classes == c).float()[None, None]
            out.append(F.avg_pool2d(m, f)[0, 0])
        return torch.stack(out)

    def _inputs(
        self,
        which: int,
        coarse: dict[str, Tensor],
        month: int,
        a: Tensor,
        b: Tensor,
        c: Tensor,
        extra: Tensor,
        need: Tensor,
        origins: list[tuple[int, int]],
    ) -> Tensor:
        crops: dict[str, list[Tensor]] = {}
        # the maps the nets see per pixel (the LAI climatology enters as `a`, one month)
        names = ["land_mask", "elevation", "slope", "koppen", "igbp", "a", "b", "c"]
        fields = [self.land_mask, self.elevation, self.slope, self.koppen, self.igbp, a, b, c]
        for i in range(len(names)):
            crops[names[i]] = [self._crop(fields[i], r0, c0) for r0, c0 in origins]
        tiles: dict[str, Tensor] = {}
        for k, v in crops.items():
            tiles[k] = torch.stack(v)
        static = features.static_inputs(
            tiles["land_mask"],
            tiles["elevation"],
            tiles["slope"],
            tiles["koppen"],
            tiles["igbp"],
            self.norm,
        )

        if which == 0:
            return features.lu_inputs(
                static,
                features.one_hot(tiles["a"], self.n_lu),
                self._up(extra, origins),
                self._up(need, origins),
                self._up(coarse["luh2_frac"], origins),
                self._up(coarse["secma"][None], origins)[:, 0],
                self._up(coarse["secmb"][None], origins)[:, 0],
                self.norm,
            )
        if which == 1:
            return features.lc_inputs(
                static,
                features.one_hot(tiles["a"], self.n_lu),
                features.one_hot(tiles["c"], self.n_lu),
                features.one_hot(tiles["b"], self.n_lc),
            )
        co2 = float(coarse["co2"].reshape(-1)[0].item())
        return features.lai_inputs(
            static,
            features.one_hot(tiles["b"], self.n_lc),
            tiles["c"],
            tiles["a"],
            self._up(coarse["t2m"][None], origins)[:, 0],
            self._up(coarse["tp"][None], origins)[:, 0],
            self._up(coarse["ssrd"][None], origins)[:, 0],
            month,
            co2,
            self._tile_lat(origins),
            self.norm,
        )

    def _net(self, which: int, x: Tensor) -> Tensor:
        if which == 0:
            return torch.softmax(self.lu_net(x), dim=1)
        if which == 1:
            return torch.softmax(self.lc_net(x), dim=1)
        return features.departure_from_output(self.lai_net(x), self.norm)[:, None]

    # `which` selects the net: 0 LU, 1 LC, 2 LAI.
    def _tiled(
        self,
        which: int,
        n_out: int,
        coarse: dict[str, Tensor],
        month: int,
        a: Tensor,
        b: Tensor,
        c: Tensor,
        need: Tensor,
    ) -> Tensor:
        """Run one net over the domain, blending tiles; return for LU the blended
        class probabilities as -16 log p (n, H, W) uint8 (1/16 nat steps down to
        p = 1e-7, 1 byte per class and pixel), for LC a class map (uint8), for LAI
        the departure from the month's climatology (float32, m2 m-2).

        a, b, c are the net's high-res fields: LU net (prior lu, prior lc, prior lu),
        LC net (new lu, prior lc, prior lu), LAI net (the month's LAI climatology,
        lc, the prior's departure from its month's climatology).
        """
        t = self.tile
        s = self.stride
        h = self.land_mask.shape[0]
        w = self.land_mask.shape[1]
        dev = self.blend.device
        extra = torch.zeros(0, device=dev)
        if which == 0:
            extra = self._coarse_fractions(a, self.n_lu)
        rows = tile_origins(self.origin_row, h, t, s)
        cols = tile_origins(self.origin_col, w, t, s)
        width = (len(cols) - 1) * s + t
        acc = torch.zeros(n_out, t, width, device=dev)
        wsum = torch.zeros(t, width, device=dev)
        is_class = which != 2
        out = torch.zeros(h, w, dtype=torch.uint8 if is_class else torch.float32, device=dev)
        if which == 0:
            out = torch.zeros(n_out, h, w, dtype=torch.uint8, device=dev)
        fill = 0
        if which == 1:
            fill = self.sea_lc
        for r0 in rows:
            for j0 in range(0, len(cols), self.tiles_per_batch):
                batch = [(r0, c0) for c0 in cols[j0 : j0 + self.tiles_per_batch]]
                land = [bool(self._crop(self.land_mask, r, cc).any()) for r, cc in batch]
                todo: list[tuple[int, int]] = []
                for i in range(len(batch)):
                    if land[i]:
                        todo.append(batch[i])
                y = torch.zeros(0, device=dev)
                if len(todo) > 0:
                    y = self._net(
                        which, self._inputs(which, coarse, month, a, b, c, extra, need, todo)
                    )
                k = 0
                for i in range(len(batch)):
                    off = batch[i][1] - cols[0]
                    if land[i]:
                        acc[:, :, off : off + t] += y[k] * self.blend
                        k += 1
                    elif is_class:
                        acc[fill, :, off : off + t] += self.blend
                    wsum[:, off : off + t] += self.blend
            # Rows above the next tile row's origin are complete: emit those inside the domain.
            ra = max(r0, 0)
            rb = min(r0 + s, h)
            if rb > ra:
                c_lo = -cols[0]
                band = acc[:, ra - r0 : rb - r0, c_lo : c_lo + w]
                if which == 0:
                    p = band / wsum[ra - r0 : rb - r0, c_lo : c_lo + w]
                    q = (-16.0 * torch.log(p.clamp_min(1e-7))).round().clamp(0, 255)
                    out[:, ra:rb] = q.to(torch.uint8)
                elif is_class:
                    out[ra:rb] = band.argmax(dim=0).to(torch.uint8)
                else:
                    out[ra:rb] = band[0] / wsum[ra - r0 : rb - r0, c_lo : c_lo + w]
            acc = torch.cat([acc[:, s:], torch.zeros(n_out, s, width, device=dev)], dim=1)
            wsum = torch.cat([wsum[s:], torch.zeros(s, width, device=dev)], dim=0)
        return out
