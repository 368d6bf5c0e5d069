"""The stepper: all model logic of one direction, compiled to one TorchScript file.

It holds the three nets, the normalisation, the cadence (LU and LC advance
when the step enters a new year, LAI every month), the overlap tiles, the
IFS-style derived fields, and the state (priors, time, statics). The Python
`BoundaryConditionEmulator` and the C++ shim only validate, convert and move
files; parity between them holds by construction (DESIGN.md, principle 1).

Tiles follow the overlap-tile strategy (`tiling`, principle 6): cores on the
global lattice of multiples of `stride`, each computed from a window `margin`
pixels wider on every side, only the core kept: no blending, so every pixel
comes from one window that the global lattice fixes. The land tiles are listed
once when the statics are set; a step runs the nets on them in batches of one
window shape and writes each core straight into the new field (class maps as
uint8; nothing in float32 for the whole domain but LAI).

A block of a decomposed domain is given with a halo (`set_halo`): it then
computes exactly the whole domain's values inside the block, provided the halo
holds the neighbours' values of what each stage reads. A step is then run as
its stages (`stages`, `run_stage`): after each, the field that stage made
(named like the stage: lu, lc, lai) must have its halo refreshed from the
neighbours (`fill_halo`) before the next stage. A whole domain just calls
`step`.

LU is decoded scenario-consistently (`decoding`): the coarse LUH2 fractions fix
each coarse cell's class counts (within a band of `lu_tolerance` pixels around
the counts they imply), the LU net's probabilities say which pixels change, and
only that many change. For this the LU probabilities are kept for the whole
domain for one step, as -16 log p in one byte per class and pixel.

A step is a transaction (principle 4): new fields are computed into pending
fields and the state is replaced only when the last stage ends.
"""

import torch
from torch import Tensor, nn

from . import catalog, decoding, features, tiling

FORWARD, BACKWARD = 1, -1
STATIC_NAMES = [v.name for v in catalog.STATIC_VARIABLES]
STATE_NAMES = [v.name for v in catalog.STATE_VARIABLES]
# The nets pool 4 times: windows are multiples of 16 pixels.
NET_MULTIPLE = 16
# Coarse cells rebalanced at once in a yearly step: ~100 k pixels of workspace.
REBALANCE_CELLS = 4096
# The margin of context around each tile's core, chosen by the seam error
# against whole-domain inference (README, "Tiling"): pixels.
DEFAULT_MARGIN = 16


def default_stride(tile: int, coarse_factor: int) -> int:
    """The largest core that leaves each side at least DEFAULT_MARGIN (an eighth of
    small tiles), is a multiple of the coarse factor and leaves an even margin."""
    stride = tile - 2 * min(DEFAULT_MARGIN, tile // 8)
    while stride > 0 and (stride % coarse_factor or (tile - stride) % 2):
        stride -= 1
    return stride


class Stepper(nn.Module):
    direction: int
    tile: int
    stride: int
    margin: int
    net_multiple: int
    rebalance_cells: int
    lu_changeable_classes: list[int]
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
    halo: list[int]
    tiles: list[list[int]]
    stages_done: int

    def __init__(
        self,
        lu_net: nn.Module,
        lc_net: nn.Module,
        lai_net: nn.Module,
        norm: dict[str, list[float]],
        direction: int,
        tile: int = 512,
        coarse_factor: int = 5,
        tiles_per_batch: int = 1,
        sea_lc: int = 15,
        stride: int = 0,
        res: float = 0.05,
        lu_tolerance: float = 1.0,
    ) -> None:
        super().__init__()
        if direction not in (FORWARD, BACKWARD):
            raise ValueError(f"direction must be 1 (forward) or -1 (backward), found {direction}")
        if tile % NET_MULTIPLE:
            raise ValueError(
                f"tile must be a multiple of {NET_MULTIPLE} (the nets pool 4 times), found {tile}"
            )
        self.lu_net = lu_net
        self.lc_net = lc_net
        self.lai_net = lai_net
        self.norm = {k: [float(v[0]), float(v[1])] for k, v in norm.items()}
        self.direction = direction
        self.tile = tile
        # stride: the core of a tile (the lattice step); the margin is the rest, halved
        self.stride = stride if stride > 0 else default_stride(tile, coarse_factor)
        if not 0 < self.stride <= tile or (tile - self.stride) % 2:
            raise ValueError(
                f"stride (the tile core) must be in 1..tile ({tile}) and leave an even "
                f"margin, found {self.stride}"
            )
        if self.stride % coarse_factor:
            raise ValueError(
                f"stride (the tile core) must be a multiple of the coarse factor "
                f"{coarse_factor} so that lattice cuts are coarse cell edges, found {self.stride}"
            )
        self.margin = (tile - self.stride) // 2
        self.net_multiple = NET_MULTIPLE
        self.rebalance_cells = REBALANCE_CELLS
        self.coarse_factor = coarse_factor
        self.tiles_per_batch = tiles_per_batch
        self.res = float(res)  # degrees per pixel: rows give latitudes (day length)
        self.sea_lc = sea_lc
        self.static_names = list(STATIC_NAMES)
        self.n_lu = catalog.N_LU
        self.n_lc = catalog.N_LC
        # input channels of the LU, LC and LAI nets (the size of their input stacks)
        self.in_channels = [features.N_LU_INPUTS, features.N_LC_INPUTS, features.N_LAI_INPUTS]
        self.state_names = list(STATE_NAMES)
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
        self.lu_changeable_classes = sorted(catalog.LU_CHANGEABLE)  # looped over on the host
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
        # Decomposition and tiles (set with the statics), and a step's pending fields
        self.halo = [0, 0, 0, 0]
        self.tiles: list[list[int]] = []
        self.stages_done = 0
        self.next_lu = empty
        self.next_lc = empty

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
        dev = self.lc_cover.device
        tiles = tiling.plan_tiles(
            state["land_mask"].to(dev),
            int(state["origin"][0]),
            int(state["origin"][1]),
            [0, 0, 0, 0],
            self.stride,
            self.margin,
            self.net_multiple,
        )
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
        self.halo = [0, 0, 0, 0]
        self.tiles = tiles
        self.stages_done = 0
        self.initialised = True

    @torch.jit.export
    def set_halo(self, halo: list[int]) -> None:
        """Declare the state a block of a decomposed domain: `halo` = [top, bottom,
        left, right] pixels of the neighbours' data around the block (0 where the
        real domain ends). Cuts must lie on the tile lattice and halos be at least
        the margin wide; then the block computes the whole domain's values."""
        self._require_init()
        if len(halo) != 4 or min(halo) < 0:
            raise ValueError("halo must be 4 non-negative widths [top, bottom, left, right]")
        tiles = tiling.plan_tiles(
            self.land_mask,
            self.origin_row,
            self.origin_col,
            halo,
            self.stride,
            self.margin,
            self.net_multiple,
        )
        self.halo = list(halo)
        self.tiles = tiles
        self.stages_done = 0

    @torch.jit.export
    def halo_width(self) -> int:
        """The halo (px) a block of a decomposed domain needs on each cut side."""
        return tiling.halo_width(self.stride, self.margin, self.net_multiple, self.coarse_factor)

    @torch.jit.export
    def tile_windows(self) -> list[list[int]]:
        """The land tiles a step runs, [core r0, r1, c0, c1, window r0, r1, c0, c1]."""
        return self.tiles

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
        if max(self.halo) > 0:
            raise RuntimeError(
                "this state is a block with halos: run its stages with halo exchanges "
                "between them (stages, run_stage, fill_halo) instead of step"
            )
        for stage in self.stages():
            self.run_stage(forcing, stage)
        return self.outputs()

    @torch.jit.export
    def stages(self) -> list[str]:
        """The stages of the next step, in order: lu and lc when it enters a new year,
        then lai. Each is named after the field it makes."""
        year, _ = self.next_time()
        if year != self.year:
            return ["lu", "lc", "lai"]
        return ["lai"]

    @torch.jit.export
    def run_stage(self, forcing: dict[str, Tensor], stage: str) -> None:
        """Compute one stage of the next step into its pending field (the block only;
        the halo keeps its values until `fill_halo`). The lai stage ends the step:
        the pending fields become the state."""
        self._require_init()
        order = self.stages()
        if self.stages_done >= len(order) or order[self.stages_done] != stage:
            want = "none"
            if self.stages_done < len(order):
                want = order[self.stages_done]
            raise ValueError("stage '" + stage + "' is out of order: the next stage is " + want)
        year, month = self.next_time()
        dev = self.lc_cover.device
        coarse: dict[str, Tensor] = {}
        for k, v in forcing.items():
            coarse[k] = v.to(dev, torch.float32)
        sea = self.land_mask == 0
        if stage == "lu":
            lu = self._land_use(coarse, month).masked_fill(sea, 0)
            self.next_lu = self._with_halo_from(lu, self.lu)  # the block only
            self.stages_done += 1
            return
        if stage == "lc":
            lc = self.lc.clone()
            none = self._none()
            lc = self._tiled(1, coarse, month, self.next_lu, self.lc, self.lu, none, none, lc)
            self.next_lc = lc.masked_fill(sea, self.sea_lc)
            self.stages_done += 1
            return
        lu = self.lu
        lc = self.lc
        if year != self.year:
            lu = self.next_lu
            lc = self.next_lc
        # LAI: the month's climatology plus the net's departure from it, the net
        # told the prior's departure from the prior month's climatology
        clim = self.lai_climatology[month - 1]
        prior_departure = self.lai - self.lai_climatology[self.month - 1]
        departure = torch.zeros_like(clim)
        none = self._none()
        departure = self._tiled(2, coarse, month, clim, lc, prior_departure, none, none, departure)
        lai = features.lai_from_departure(departure, clim).masked_fill(sea, 0.0)
        lai = self._with_halo_from(lai, self.lai)  # the block only
        # commit
        self.lu = lu
        self.lc = lc
        self.lai = lai
        self.year = year
        self.month = month
        self.next_lu = self._none()
        self.next_lc = self._none()
        self.stages_done = 0

    @torch.jit.export
    def field(self, name: str) -> Tensor:
        """The current lu, lc or lai (H, W): pending if its stage ran in the current
        step, else the state's. What a block sends its neighbours after a stage."""
        self._require_init()
        if name == "lu":
            return self.next_lu if self._pending(name) else self.lu
        if name == "lc":
            return self.next_lc if self._pending(name) else self.lc
        if name == "lai":
            return self.lai
        raise ValueError("expected lu, lc or lai, found '" + name + "'")

    def _pending(self, name: str) -> bool:
        """Whether `name`'s stage ran in the current step: in a yearly step, stage 1
        made the pending lu and stage 2 the pending lc (lai is never pending: its
        stage ends the step)."""
        return (name == "lu" and self.stages_done >= 1) or (name == "lc" and self.stages_done >= 2)

    @torch.jit.export
    def fill_halo(self, name: str, field: Tensor) -> None:
        """Take the halo of `name` (lu, lc or lai, as `field(name)` names it) from the
        neighbours' values in `field`, an (H, W) array of this state whose block is
        ignored."""
        current = self.field(name)
        new = self._with_halo_from(current, field.to(current.dtype))
        pending = self._pending(name)
        if name == "lu" and pending:
            self.next_lu = new
        elif name == "lu":
            self.lu = new
        elif name == "lc" and pending:
            self.next_lc = new
        elif name == "lc":
            self.lc = new
        else:
            self.lai = new

    def _with_halo_from(self, dst: Tensor, src: Tensor) -> Tensor:
        """A copy of `dst` whose halo strips are those of `src` (dst itself if no halo)."""
        if max(self.halo) == 0:
            return dst
        if src.shape != dst.shape:
            raise ValueError(
                "halo field has shape " + str(src.shape) + ", expected " + str(dst.shape)
            )
        out = dst.clone()
        h = out.shape[0]
        w = out.shape[1]
        top, bottom, left, right = self.halo[0], self.halo[1], self.halo[2], self.halo[3]
        out[:top] = src[:top]
        out[h - bottom :] = src[h - bottom :]
        out[:, :left] = src[:, :left]
        out[:, w - right :] = src[:, w - right :]
        return out

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
        return torch.zeros(0, device=self.lc_cover.device)

    def _land_use(self, coarse: dict[str, Tensor], month: int) -> Tensor:
        """Next year's LU, scenario-consistent: `decoding.scenario_counts` says how
        many pixels of each class every coarse cell holds (from last year's counts
        and the LUH2 fractions), the LU net, told those needs, gives each pixel's
        class probabilities, and `decoding.rebalance` converts the likeliest pixels.
        Only the block's cells change (a halo's cells are its neighbour's)."""
        f = self.coarse_factor
        h = self.land_mask.shape[0]
        w = self.land_mask.shape[1]
        n = self.n_lu
        dev = self.lu.device
        # last year's counts of free pixels (land, a class scenarios move) per cell,
        # one class at a time (4 bytes per pixel at most)
        land = self.land_mask > 0
        counts = torch.zeros(n, h // f, w // f, dtype=torch.int64, device=dev)
        for c in self.lu_changeable_classes:
            m = ((self.lu == c) & land).float()[None, None]
            pooled = torch.nn.functional.avg_pool2d(m, f)[0, 0]
            counts[c] = (pooled * float(f * f)).round().long()
        counts = counts.reshape(n, -1).t()
        luh2 = coarse["luh2_frac"]
        implied = torch.einsum("kj,jyx->kyx", self.luh2_to_lu, luh2) * float(f * f)
        implied = implied.reshape(n, -1).t()
        target = decoding.scenario_counts(
            counts, implied, self.lu_changeable, self.lu_residual, self.lu_tolerance
        )
        need = ((target - counts).float() / float(f * f)).t().reshape(n, h // f, w // f)
        neg_logp = torch.zeros(n, h, w, dtype=torch.uint8, device=dev)
        extra = self._coarse_fractions(self.lu, n)
        neg_logp = self._tiled(0, coarse, month, self.lu, self.lc, self.lu, need, extra, neg_logp)
        # only the block's cells whose counts change are rebalanced, a chunk of cells at
        # a time (rebalance works per cell; in float it needs ~20 bytes per class and
        # pixel, so chunks keep that a fixed workspace); scores -(-16 log p)
        in_block = torch.zeros(h // f, w // f, dtype=torch.bool, device=dev)
        in_block[
            self.halo[0] // f : (h - self.halo[1]) // f, self.halo[2] // f : (w - self.halo[3]) // f
        ] = True
        act = ((target != counts).any(1) & in_block.reshape(-1)).nonzero()[:, 0]
        new = self.lu.clone()
        chunk = self.rebalance_cells
        for k0 in range(0, act.numel(), chunk):
            cells = act[k0 : k0 + chunk]
            prior = decoding.cells_at(self.lu, f, cells).long()
            free = decoding.cells_at(land, f, cells) & self.lu_changeable[prior]
            scores = -decoding.cells_at(neg_logp, f, cells).float()
            classes = decoding.rebalance(scores, prior, target[cells], free)
            decoding.put_cells(new, f, cells, classes.to(torch.uint8))
        return new

    # ------------------------------------------------------------- tiling
    def _crop(self, x: Tensor, t: list[int]) -> Tensor:
        """Window t[4]:t[5] × t[6]:t[7] of a (..., H, W) field. Beyond the array (only
        where the real domain ends) the edge pixels are repeated: zeros there would be
        an artificial coast the nets never saw in training."""
        h = x.shape[-2]
        w = x.shape[-1]
        if t[4] >= 0 and t[6] >= 0 and t[5] <= h and t[7] <= w:
            return x[..., t[4] : t[5], t[6] : t[7]]
        rows = torch.arange(t[4], t[5], device=x.device).clamp(0, h - 1)
        cols = torch.arange(t[6], t[7], device=x.device).clamp(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)

    def _windows(self, x: Tensor, batch: list[list[int]]) -> Tensor:
        return torch.stack([self._crop(x, t) for t in batch])

    def _gather(self, x: Tensor, t: list[int]) -> Tensor:
        """Nearest upsampling of a coarse (C, h, w) field onto one window; edge cells
        repeated beyond the array (as in `_crop`)."""
        f = self.coarse_factor
        h = self.land_mask.shape[0]
        w = self.land_mask.shape[1]
        rr = torch.arange(t[4], t[5], device=x.device).clamp(0, h - 1)
        cc = torch.arange(t[6], t[7], device=x.device).clamp(0, w - 1)
        ri = torch.div(rr, f, rounding_mode="floor")
        ci = torch.div(cc, f, rounding_mode="floor")
        return x.index_select(-2, ri).index_select(-1, ci)

    def _up(self, x: Tensor, batch: list[list[int]]) -> Tensor:
        return torch.stack([self._gather(x, t) for t in batch])

    def _tile_lat(self, batch: list[list[int]]) -> Tensor:
        """Latitude of each row of each window (B, rows), from the global lattice."""
        dev = self.lc_cover.device
        lat: list[Tensor] = []
        for t in batch:
            rows = torch.arange(t[4], t[5], dtype=torch.float64, device=dev)
            lat.append(90.0 - (self.origin_row + rows + 0.5) * self.res)
        return torch.stack(lat).float()

    def _coarse_fractions(self, classes: Tensor, n: int) -> Tensor:
        """Fraction of each class per coarse cell, (n, h, w); one class at a time to
        keep the peak at 4 bytes per pixel."""
        f = self.coarse_factor
        out: list[Tensor] = []
        for c in range(n):
            m = (classes == c).float()[None, None]
            out.append(torch.nn.functional.avg_pool2d(m, f)[0, 0])
        return torch.stack(out)

    def _inputs(
        self,
        which: int,
        coarse: dict[str, Tensor],
        month: int,
        co2: float,
        a: Tensor,
        b: Tensor,
        c: Tensor,
        extra: Tensor,
        need: Tensor,
        batch: list[list[int]],
        workspace: Tensor,
    ) -> Tensor:
        """The net's input stack for a batch of windows, written into the front of
        `workspace` (flat float32, reused from batch to batch)."""
        px = len(batch) * (batch[0][5] - batch[0][4]) * (batch[0][7] - batch[0][6])
        out = workspace[: px * self.in_channels[which]].view(
            len(batch), batch[0][5] - batch[0][4], batch[0][7] - batch[0][6], -1
        )
        static = features.static_inputs(
            self._windows(self.land_mask, batch),
            self._windows(self.elevation, batch),
            self._windows(self.slope, batch),
            self._windows(self.koppen, batch),
            self._windows(self.igbp, batch),
            self.norm,
        )
        if which == 0:
            return features.lu_inputs(
                static,
                features.one_hot(self._windows(a, batch), self.n_lu),
                self._up(extra, batch),
                self._up(need, batch),
                self._up(coarse["luh2_frac"], batch),
                self._up(coarse["secma"][None], batch)[:, 0],
                self._up(coarse["secmb"][None], batch)[:, 0],
                self.norm,
                out,
            )
        if which == 1:
            return features.lc_inputs(
                static,
                features.one_hot(self._windows(a, batch), self.n_lu),
                features.one_hot(self._windows(c, batch), self.n_lu),
                features.one_hot(self._windows(b, batch), self.n_lc),
                out,
            )
        return features.lai_inputs(
            static,
            features.one_hot(self._windows(b, batch), self.n_lc),
            self._windows(c, batch),
            self._windows(a, batch),
            self._up(coarse["t2m"][None], batch)[:, 0],
            self._up(coarse["tp"][None], batch)[:, 0],
            self._up(coarse["ssrd"][None], batch)[:, 0],
            month,
            co2,
            self._tile_lat(batch),
            self.norm,
            out,
        )

    def _workspace_size(self, which: int, batches: list[list[list[int]]]) -> int:
        """Float32 values of the largest batch's input stack. One buffer per net and
        step, filled batch after batch: a fresh 60 MB stack per tile cost page faults
        worth as much as the copy into it (2-core EPYC)."""
        px = 0
        for batch in batches:
            px = max(px, len(batch) * (batch[0][5] - batch[0][4]) * (batch[0][7] - batch[0][6]))
        return px * self.in_channels[which]

    def _net(self, which: int, x: Tensor) -> Tensor:
        """LU: -16 log p per class, uint8 (1/16 nat steps down to p = 1e-7); LC: the
        class, uint8; LAI: the departure from the month's climatology, float32."""
        if which == 0:
            logp = torch.log_softmax(self.lu_net(x), dim=1)
            return (-16.0 * logp).round().clamp(0, 255).to(torch.uint8)
        if which == 1:
            return self.lc_net(x).argmax(dim=1, keepdim=True).to(torch.uint8)
        return features.departure_from_output(self.lai_net(x), self.norm)[:, None]

    # `which` selects the net: 0 LU, 1 LC, 2 LAI.
    def _tiled(
        self,
        which: int,
        coarse: dict[str, Tensor],
        month: int,
        a: Tensor,
        b: Tensor,
        c: Tensor,
        need: Tensor,
        extra: Tensor,
        out: Tensor,
    ) -> Tensor:
        """Run one net on the land tiles and write each core into `out` (for LU
        (n, H, W) -16 log p, for LC the class map, for LAI the departure); pixels
        outside land cores keep what `out` held.

        a, b, c are the net's high-res fields: LU net (prior lu, prior lc, prior lu),
        LC net (new lu, prior lc, prior lu), LAI net (the month's LAI climatology,
        lc, the prior's departure from its month's climatology). `extra` is the LU
        net's coarse fractions of the prior.
        """
        co2 = 0.0
        if which == 2:
            co2 = float(coarse["co2"].reshape(-1)[0].item())  # once per step, not per tile
        batches = tiling.batches(self.tiles, self.tiles_per_batch)
        workspace = torch.empty(self._workspace_size(which, batches), device=a.device)
        for batch in batches:
            x = self._inputs(which, coarse, month, co2, a, b, c, extra, need, batch, workspace)
            y = self._net(which, x)
            for k in range(len(batch)):
                t = batch[k]
                core = y[k, :, t[0] - t[4] : t[1] - t[4], t[2] - t[6] : t[3] - t[6]]
                if which == 0:
                    out[:, t[0] : t[1], t[2] : t[3]] = core
                else:
                    out[t[0] : t[1], t[2] : t[3]] = core[0]
        return out
