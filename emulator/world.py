"""The surrogate world: real static maps, synthetic dynamics, written as a cube.

No land-use / land-cover / LAI time series can be downloaded here, so the
demo emulators are trained on a *surrogate truth* (DESIGN.md, "Surrogate
world"). Static maps are real where a package ships them (land mask,
Köppen–Geiger, MODIS IGBP 2019, see `staticmaps`); elevation, slope, climate,
land-use scenario, land use, land cover and LAI are synthetic but built to
behave plausibly:

* statics: elevation rises from 0 at the coast inland, with multi-octave
  hash-based value noise, ridged mountain ranges and extra height where the
  Köppen map says polar (E), i.e. where the real mountains are; slope is the
  terrain gradient plus a sub-pixel roughness term.
* coarse yearly forcing: a land-use scenario in the 5 changeable consolidated
  classes per coarse cell, started from the hi-res land use of the first year
  and evolved by smooth, spatially varying transition rates (urban growth,
  intensification, deforestation, cropland abandonment, afforestation) with a
  scenario transition around 1995 (abandonment and afforestation speed up),
  and interannual noise. It is written as the 12 LUH2 states (splits of the
  consolidated classes into primary/secondary, crop types, pasture/rangeland),
  with secma/secmb and a Mauna-Loa-like CO2 curve.
* coarse monthly climate: 2 m temperature, precipitation, shortwave radiation
  from latitude, elevation, continentality (land fraction within +-6 deg),
  aridity (Köppen B share) and the season, with spatially smooth AR(1)
  anomalies and a warming of about 0.25 K/decade after 1980.
* hi-res yearly land use: in each coarse cell the class counts follow the
  scenario (largest-remainder rounding); converted pixels are chosen by
  suitability (slope, elevation, Köppen, a static "soil" noise, same-class
  neighbours inside the cell) with `RANDOM_SHARE` of conversions made at
  random among the eligible pixels. Ocean (LU 0), inland water (7) and sparse
  / no vegetation (6) never change.
* hi-res yearly land cover: from land use, Köppen, elevation and (first year)
  IGBP; unchanged where land use did not change, except a small yearly
  succession share (`SUCCESSION_SHARE`).
* hi-res monthly LAI: class bounds LAImin..LAImax times a Growing Season Index
  (Jolly et al. 2005: minimum temperature, VPD, photoperiod; plus a water
  factor) smoothed month to month with a class-dependent inertia, a harvest
  drop for crops, a CO2 fertilisation factor, and smooth AR(1) anomalies.

Class decisions (see `LU_LC_ALLOWED`): sea is LU 0 / LC 15 (ocean), LC 0 stays
"no data" and never appears; inland water is LU 7 / LC 14; urban is LU 1 /
LC 11 (semidesert: sparse low vegetation, the closest IFS type, since table
4.234 has no urban type). LAI is 0 exactly on the non-vegetated types (LC 0,
8, 12, 14, 15) and is quantised to 1/128 m2 m-2 (compresses ~3x better).

Randomness is hash-based on global lattice coordinates and the seed (no
global RNG state), and everything hi-res is either pointwise, local to a
coarse cell, or computed on a halo: a coarse-aligned window of a bigger
domain gets the same cube (tested in tests/test_world.py).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import catalog, cube, zarrstore
from .grid import Grid
from .staticmaps import PROVENANCE, read_static_window

log = logging.getLogger(__name__)

GENERATOR = "landbc.emulator.world v1"
YEAR_RANGE = (1850, 2100)  # years the scenario and CO2 curve are meant for

RANDOM_SHARE = 0.25  # share of LU conversions whose pixel is chosen at random
SUCCESSION_SHARE = 0.002  # yearly share of unchanged vegetated pixels whose LC type shifts
LAI_QUANTUM = 1.0 / 128.0  # LAI is stored as multiples of this (m2 m-2)
LAPSE_RATE = 0.0065  # K per m
CHANGEABLE_LU = (1, 2, 3, 4, 5)
LU_SPINUP_YEARS = 5  # scenario years run before the first stored year

# Land-cover types each land-use class may carry (the generator's rules).
LU_LC_ALLOWED: dict[int, tuple[int, ...]] = {
    0: (15,),
    1: (11,),
    2: (1, 10),
    3: (2, 7, 9, 11),
    4: (3, 4, 5, 6, 18, 19),
    5: (2, 7, 9, 11, 13, 16, 17),
    6: (8, 9, 11, 12),
    7: (14,),
}

# Per LC type (index = code 0..20): LAI bounds, month-to-month inertia of the
# growing-season index, dependence on the water factor (0 irrigated .. 1 grass).
# fmt: off
LAI_MIN = np.array([0, 0.3, 0.5, 2.5, 0.4, 0.6, 4.0, 0.5, 0, 0.1, 0.3,
                    0.1, 0, 0.6, 0, 0, 1.0, 0.3, 1.2, 0.8, 0.3], np.float32)
LAI_MAX = np.array([0, 4.0, 2.6, 5.0, 4.0, 5.5, 6.0, 3.5, 0, 1.4, 4.8,
                    0.8, 0, 3.0, 0, 0, 2.6, 2.4, 5.5, 3.8, 2.0], np.float32)
GSI_INERTIA = np.array([0, .2, .3, .6, .4, .35, .6, .3, 0, .35, .2,
                        .3, 0, .4, 0, 0, .55, .4, .4, .4, .35], np.float32)
WATER_DEPENDENCE = np.array([0, .8, 1, .3, .3, .4, .3, 1, 0, .6, 0,
                             .9, 0, .2, 0, 0, .5, .7, .35, .5, .3], np.float32)
# fmt: on
# Types whose leaves age with shortening days: in the months after the summer
# solstice their photoperiod ramp runs 10..13.5 h instead of 10..11 h (senescence).
DECIDUOUS = np.isin(np.arange(21), (2, 4, 5, 7, 9, 13, 17, 18, 19))
VEGETATED = np.array(catalog.LC_VEGETATION_COVER) > 0

# Stream identifiers of the hash-based noise (one per use, never reused).
_S = {
    name: i + 1
    for i, name in enumerate(
        (
            "elev_base",
            "elev_ridge",
            "elev_mask",
            "elev_fine",
            "rough",
            "soil1",
            "soil2",
            "soil3",
            "soil4",
            "soil5",
            "lu_init",
            "lc_type",
            "laipix",
            "t_static",
            "p_static",
            "w_static",
            "t_anom",
            "p_anom",
            "v_anom",
            "s_anom",
            "ab",
            "aff",
            "int",
            "ext",
            "def",
            "past",
            "urb",
            "flow_year",
            "prim_f",
            "prim_n",
            "crop_split",
            "range",
            "age",
            "biomass",
            "pick",
            "pick_rand",
            "succ",
        )
    )
}


# --- hash-based randomness on the global lattice ----------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 arithmetic wraps modulo 2**64, as intended)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _hash(*keys) -> np.ndarray:
    h = np.full((), 0x243F6A8885A308D3, dtype=np.uint64)
    for k in keys:
        k = np.asarray(k, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h ^ (k + _GOLDEN))
    return h


def uniform(*keys) -> np.ndarray:
    """Uniform [0, 1) numbers, a pure function of the integer keys (broadcast)."""
    return (_hash(*keys) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def value_noise(ys: np.ndarray, xs: np.ndarray, wavelength: float, *key: int) -> np.ndarray:
    """Smooth noise in [-1, 1] on the separable grid ys x xs (degrees from the
    north pole and from -180 E), with lattice nodes every `wavelength` degrees.

    Node values are hashes of (key, node row, node col), so any window of the
    globe sees the same field.
    """
    fy = np.asarray(ys, np.float64) / wavelength
    fx = np.asarray(xs, np.float64) / wavelength
    iy = np.floor(fy).astype(np.int64)
    ix = np.floor(fx).astype(np.int64)
    ty, tx = fy - iy, fx - ix
    sy, sx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    y0, x0 = int(iy.min()), int(ix.min())
    ny, nx = int(iy.max()) - y0 + 2, int(ix.max()) - x0 + 2
    nodes = uniform(*key, np.arange(y0, y0 + ny)[:, None], np.arange(x0, x0 + nx)[None, :])
    nodes = nodes * 2.0 - 1.0
    r = iy - y0
    rows = nodes[r] * (1 - sy)[:, None] + nodes[r + 1] * sy[:, None]
    c = ix - x0
    return rows[:, c] * (1 - sx) + rows[:, c + 1] * sx


def fbm(ys, xs, wavelength: float, octaves: int, *key: int, gain: float = 0.5) -> np.ndarray:
    """Sum of `octaves` value-noise octaves, halving the wavelength each time (about [-1, 1])."""
    out = np.zeros((len(ys), len(xs)))
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        out += amp * value_noise(ys, xs, wavelength / 2**o, *key, o)
        norm += amp
        amp *= gain
    return out / norm


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# --- small numeric helpers (deterministic per element, window independent) ----------


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean of an integer field over the (2r+1)^2 box around each pixel (edges truncated)."""
    ny, nx = a.shape
    s = np.zeros((ny + 1, nx + 1), np.int64)
    s[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    i = np.arange(ny)
    j = np.arange(nx)
    i0, i1 = np.clip(i - r, 0, ny), np.clip(i + r + 1, 0, ny)
    j0, j1 = np.clip(j - r, 0, nx), np.clip(j + r + 1, 0, nx)
    tot = s[i1][:, j1] - s[i0][:, j1] - s[i1][:, j0] + s[i0][:, j0]
    n = (i1 - i0)[:, None] * (j1 - j0)[None, :]
    return tot / n


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Block mean over f x f blocks, summed in a fixed order (bit-stable across windows)."""
    acc = np.zeros((a.shape[0] // f, a.shape[1] // f), np.float64)
    for p in range(f):
        for q in range(f):
            acc += a[p::f, q::f]
    return acc / (f * f)


def _distance_to_sea(land: np.ndarray, cap: int) -> np.ndarray:
    """Chessboard distance (pixels) from each land pixel to the nearest sea pixel, capped."""
    d = np.zeros(land.shape, np.int32)
    cur = land.astype(bool)
    for _ in range(cap):
        if not cur.any():
            break
        d += cur
        p = np.pad(cur, 1, mode="edge")
        e = p[1:-1, 1:-1].copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                e &= p[dy : dy + cur.shape[0], dx : dx + cur.shape[1]]
        cur = e
    return d


def to_cells(a: np.ndarray, f: int) -> np.ndarray:
    """(ny, nx) -> (n_cells, f*f): one row per coarse cell, pixels row-major inside it."""
    ny, nx = a.shape
    return a.reshape(ny // f, f, nx // f, f).transpose(0, 2, 1, 3).reshape(-1, f * f)


def from_cells(c: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    ny, nx = shape
    return c.reshape(ny // f, nx // f, f, f).transpose(0, 2, 1, 3).reshape(ny, nx)


def co2_ppm(year: float) -> float:
    """Mauna-Loa-like global CO2: 278 + 1.451 exp(0.02057 (y - 1800)) up to 2020
    (317 ppm in 1960, 412 in 2020, ~282 in 1850), continued linearly after 2020
    with the 2020 slope (~2.8 ppm/yr, ~630 ppm in 2100)."""
    a, b = 1.451, 0.02057
    if year <= 2020:
        return 278.0 + a * math.exp(b * (year - 1800))
    return 278.0 + a * math.exp(b * 220) * (1 + b * (year - 2020))


# --- statics ------------------------------------------------------------------


@dataclass
class _Statics:
    grid: Grid
    halo: int  # pixels of halo on each side of the haloed arrays
    f: int
    land: np.ndarray  # haloed uint8
    koppen: np.ndarray
    igbp: np.ndarray
    elevation: np.ndarray  # haloed float32 (m)
    slope: np.ndarray
    cont: np.ndarray  # land fraction within +-6 deg (continentality), haloed float64
    ys: np.ndarray  # degrees from the north pole of haloed rows
    xs: np.ndarray  # degrees from -180 E of haloed cols

    def inner(self, a: np.ndarray) -> np.ndarray:
        h = self.halo
        return a[h : a.shape[0] - h, h : a.shape[1] - h]

    def ring(self, a: np.ndarray) -> np.ndarray:
        """The inner domain plus one coarse cell all around (for interpolation)."""
        h = self.halo - self.f
        return a[h : a.shape[0] - h, h : a.shape[1] - h]


def _halo_pixels(res: float, f: int) -> tuple[int, int, int, int]:
    r_cont = math.ceil(6.0 / res)
    d_cap = math.ceil(1.0 / res)
    r_alp = math.ceil(0.3 / res)
    need = max(r_cont, d_cap, r_alp) + 10 + f
    return f * math.ceil(need / f), r_cont, d_cap, r_alp


def _build_statics(grid: Grid, seed: int) -> _Statics:
    f = grid.coarse_factor
    res = grid.res
    halo, r_cont, d_cap, r_alp = _halo_pixels(res, f)
    r0, c0 = grid.origin
    ny, nx = grid.shape
    maps = read_static_window(res, r0 - halo, c0 - halo, ny + 2 * halo, nx + 2 * halo)
    land = maps["land_mask"]
    kg = maps["koppen"]
    ys = (r0 - halo + np.arange(ny + 2 * halo) + 0.5) * res
    xs = (c0 - halo + np.arange(nx + 2 * halo) + 0.5) * res
    lat = 90.0 - ys
    is_land = land == 1

    km_per_px = res * 111.2
    dist_km = _distance_to_sea(is_land, d_cap) * km_per_px
    ramp = 1.0 - np.exp(-dist_km / 50.0)
    cont = _box_mean(is_land, r_cont)
    alpine = _box_mean(kg == 5, r_alp)
    base = 200.0 + 180.0 * fbm(ys, xs, 6.0, 3, seed, _S["elev_base"]) + 150.0 * cont
    mask = _smoothstep((fbm(ys, xs, 12.0, 2, seed, _S["elev_mask"]) + 0.05) / 0.35)
    ridge = (1.0 - np.abs(fbm(ys, xs, 2.5, 3, seed, _S["elev_ridge"]))) ** 2
    fine = (1.0 - np.abs(value_noise(ys, xs, 0.7, seed, _S["elev_ridge"], 99))) ** 2
    mountains = mask * (2000.0 * ridge**2 + 500.0 * fine)
    elev = (
        base
        + mountains
        + 2200.0 * alpine**0.7
        + 60.0 * value_noise(ys, xs, 0.2, seed, _S["elev_fine"])
    )
    elev = np.where(is_land, np.clip(ramp * np.maximum(elev, 5.0), 0.5, 8000.0), 0.0)

    dy_m = res * 111200.0
    dx_m = dy_m * np.maximum(np.cos(np.radians(lat)), 0.01)[:, None]
    gy, gx = np.gradient(elev)
    grad = np.hypot(gy / dy_m, gx / dx_m)
    rough = (
        28.0 * (elev / 2500.0) ** 0.8 * (0.65 + 0.35 * value_noise(ys, xs, 0.3, seed, _S["rough"]))
    )
    slope = np.where(is_land, np.clip(np.degrees(np.arctan(grad)) + rough, 0.0, 60.0), 0.0)
    return _Statics(
        grid,
        halo,
        f,
        land,
        kg,
        maps["igbp"],
        elev.astype(np.float32),
        slope.astype(np.float32),
        cont,
        ys,
        xs,
    )


# --- coarse climate -----------------------------------------------------------------


def _toa_and_daylength(lat_deg: np.ndarray, month: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily-mean top-of-atmosphere shortwave (W m-2) and day length (h) mid-month."""
    doy = 30.42 * month + 15.0
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy - 80.0) / 365.0)
    phi = np.radians(np.clip(lat_deg, -89.9, 89.9))
    h0 = np.arccos(np.clip(-np.tan(phi) * math.tan(decl), -1.0, 1.0))
    q = (
        1361.0
        / math.pi
        * (h0 * np.sin(phi) * math.sin(decl) + np.cos(phi) * math.cos(decl) * np.sin(h0))
    )
    return np.maximum(q, 0.0), 24.0 * h0 / math.pi


class _Climate:
    """Monthly coarse climate on the domain plus one coarse ring (for interpolation)."""

    def __init__(self, st: _Statics, seed: int) -> None:
        f = st.f
        self.seed = seed
        land = st.ring(st.land == 1)
        self.elev_c = _block_mean(st.ring(st.elevation).astype(np.float64), f)
        self.cont_c = _block_mean(st.ring(st.cont), f)
        kg = st.ring(st.koppen)
        nl = np.maximum(_block_mean(land.astype(np.float64), f), 1e-9)
        self.fracB = _block_mean((kg == 2).astype(np.float64), f) / nl
        self.fracB = np.where(nl > 1e-6, self.fracB, 0.0)
        self.ys = _block_mean(st.ring(np.broadcast_to(st.ys[:, None], st.land.shape)), f)[:, 0]
        self.xs = _block_mean(st.ring(np.broadcast_to(st.xs[None, :], st.land.shape)), f)[0]
        self.lat = (90.0 - self.ys)[:, None]
        ys, xs = self.ys, self.xs
        phi = np.abs(self.lat)
        cont = self.cont_c
        self.t_ann = (
            -16.0
            + 46.0 * np.cos(np.radians(np.clip(phi, 0, 89.9))) ** 1.3
            + 3.0 * (1 - cont)
            + 2.0 * fbm(ys, xs, 10.0, 2, seed, _S["t_static"])
        )
        self.t_amp = 3.0 + 8.0 * cont**2 + 4.0 * np.clip(phi / 70.0, 0, 1.3)
        self.t_lag = 0.45 + 0.25 * (1 - cont)
        self.t_sig = 0.9 + 0.7 * cont
        self.hemi = np.where(self.lat >= 0, 1.0, -1.0)
        self.warm_gain = (
            1.0 + 0.6 * (phi / 90.0) ** 2 + 0.2 * value_noise(ys, xs, 20.0, seed, _S["w_static"])
        )
        pbase = (
            1.0
            + 1.8 * (1 - cont)
            + 0.9 * self.elev_c / 1000.0
            + 0.5 * fbm(ys, xs, 5.0, 2, seed, _S["p_static"])
        )
        self.p_base = np.maximum(pbase * (1.0 - 0.75 * self.fracB), 0.15)
        self.med = np.clip((46.0 - phi) / 8.0, 0, 1) * (1 - 0.5 * cont)
        self.toa = []
        self.daylen_c = []
        for m in range(12):
            q, _ = _toa_and_daylength(self.lat, m)
            self.toa.append(q)
        shape = self.elev_c.shape
        self.a_t = np.zeros(shape)
        self.a_p = np.zeros(shape)
        self.a_v = np.zeros(shape)
        self.a_s = np.zeros(shape)
        self.p_smooth = None

    def _noise(self, stream: str, wavelength: float, gm: int) -> np.ndarray:
        return fbm(self.ys, self.xs, wavelength, 2, self.seed, _S[stream], gm) * 2.2

    def month(self, year: int, m: int) -> dict[str, np.ndarray]:
        """Advance one month: t_sl (deg C at sea level), t2m (K), tp, ssrd, rh, water, veg_anom."""
        gm = year * 12 + m
        for name, stream, wl, rho in (
            ("a_t", "t_anom", 14.0, 0.5),
            ("a_p", "p_anom", 6.0, 0.3),
            ("a_v", "v_anom", 6.0, 0.75),
            ("a_s", "s_anom", 8.0, 0.3),
        ):
            a = getattr(self, name)
            setattr(self, name, rho * a + math.sqrt(1 - rho * rho) * self._noise(stream, wl, gm))
        tyear = year + (m + 0.5) / 12.0
        warming = 0.1 * math.log1p(math.exp((tyear - 1980.0) / 4.0)) * self.warm_gain
        season = np.cos(2 * math.pi * (m + 0.5 - 5.67 - self.t_lag - 6.0 * (self.hemi < 0)) / 12.0)
        t_sl = self.t_ann + self.t_amp * season + warming + self.t_sig * self.a_t
        t2m = t_sl - LAPSE_RATE * self.elev_c + 273.15
        mm = np.where(self.hemi > 0, m, (m + 6) % 12)
        seas = (
            1.0
            + 0.75 * self.med * np.cos(2 * math.pi * mm / 12.0)
            + 0.35 * self.cont_c * (1 - self.med) * np.cos(2 * math.pi * (mm - 6.0) / 12.0)
        )
        tp = np.clip(self.p_base * np.maximum(seas, 0.05) * np.exp(0.45 * self.a_p - 0.1), 0, 300)
        tau = np.clip(0.74 - 0.07 * np.log1p(tp) - 0.03 * self.a_s, 0.3, 0.8)
        ssrd = np.clip(self.toa[m] * tau, 0, 500)
        t_loc = t2m - 273.15
        rh = np.clip(
            0.5
            + 0.08 * np.log1p(tp)
            + 0.12 * (1 - self.cont_c)
            - 0.006 * np.maximum(t_loc - 10.0, 0),
            0.15,
            0.95,
        )
        self.p_smooth = tp if self.p_smooth is None else 0.5 * self.p_smooth + 0.5 * tp
        water = np.clip(self.p_smooth / (0.35 + 0.07 * np.maximum(t_loc, 0)), 0, 1)
        return {
            "t_sl": t_sl,
            "t2m": t2m,
            "tp": tp,
            "ssrd": ssrd,
            "rh": rh,
            "water": water,
            "veg_anom": 0.07 * self.a_v,
        }


class _Interp:
    """Bilinear interpolation from the ringed coarse grid to the hi-res pixels."""

    def __init__(self, grid: Grid) -> None:
        f = grid.coarse_factor
        ny, nx = grid.shape

        def axis(n):
            u = (np.arange(n) + 0.5) / f - 0.5 + 1.0
            i0 = np.floor(u).astype(np.int64)
            w = (u - i0).astype(np.float32)
            return i0, w

        self.i0, self.wy = axis(ny)
        self.j0, self.wx = axis(nx)

    def __call__(self, c: np.ndarray) -> np.ndarray:
        c = c.astype(np.float32)
        wy = self.wy[:, None]
        r = c[self.i0] * (1 - wy) + c[self.i0 + 1] * wy
        return r[:, self.j0] * (1 - self.wx) + r[:, self.j0 + 1] * self.wx


# --- land use and land cover rules ----------------------------------------------------


def _initial_lu(land, igbp, koppen, elev, u) -> np.ndarray:
    """First-year land use from IGBP 2019 and a per-pixel hash `u` (documented rules)."""
    table = np.array([7, 4, 4, 4, 4, 4, 5, 5, 4, 3, 3, 5, 2, 1, 2, 6, 6], np.uint8)
    lu = table[igbp]
    p_past = np.clip(0.75 - elev / 2500.0, 0.1, 0.75)
    p_past = np.where(koppen == 5, 0.1, np.where(koppen == 2, 0.5, p_past))
    grass = (igbp == 9) | (igbp == 10)
    lu = np.where(grass, np.where(u < p_past, 3, 5), lu)
    lu = np.where((igbp == 6) | (igbp == 7), np.where((koppen == 2) & (u < 0.4), 3, 5), lu)
    lu = np.where(igbp == 8, np.where(u < 0.65, 4, 5), lu)
    lu = np.where(igbp == 14, np.select([u < 0.5, u < 0.8], [2, 3], 4), lu)
    return np.where(land == 1, lu, 0).astype(np.uint8)


def _lc_rules(lu, koppen, elev, lat, u, igbp=None) -> np.ndarray:
    """Land cover from land use, climate group, elevation, |lat| and a hash `u` in [0, 1).

    With `igbp` (first year) the forest and natural types follow the MODIS class.
    Every result is in LU_LC_ALLOWED[lu].
    """
    k = koppen
    alat = np.abs(lat)
    lc = np.zeros(lu.shape, np.uint8)
    lc = np.where(lu == 0, 15, lc)
    lc = np.where(lu == 7, 14, lc)
    lc = np.where(lu == 1, 11, lc)
    irrig = (k == 2) | ((k == 3) & (alat < 42) & (u < 0.35))
    lc = np.where(lu == 2, np.where(irrig, 10, 1), lc)
    past = np.select(
        [(k == 5) | (elev > 1800), k == 2, k == 1, k == 3],
        [9, np.where(u < 0.5, 11, 2), 7, np.where(u < 0.25, 7, 2)],
        2,
    )
    lc = np.where(lu == 3, past, lc)
    forest = np.select(
        [k == 1, k == 2, (k == 3) & (elev > 900), k == 3, k == 4, k == 5],
        [
            6,
            19,
            np.where(u < 0.7, 3, 18),
            np.select([u < 0.45, u < 0.8], [5, 18], 3),
            np.select([u < 0.55, u < 0.85], [3, 18], 5),
            np.where(u < 0.5, 3, 19),
        ],
        18,
    )
    natural = np.select(
        [(k == 5) | (elev > 2000), k == 2, k == 1, k == 3, k == 4],
        [
            9,
            np.where(u < 0.6, 11, 17),
            7,
            np.where((alat < 45) & (u < 0.5), 16, 2),
            np.where(u < 0.4, 17, 2),
        ],
        2,
    )
    sparse = np.select([k == 2, k == 5], [8, 9], 11)
    if igbp is not None:
        ftab = np.zeros(17, np.uint8)
        ftab[[1, 2, 3, 4, 5, 8]] = [3, 6, 4, 5, 18, 19]
        forest = np.where(ftab[igbp] > 0, ftab[igbp], forest)
        ntab = np.zeros(17, np.uint8)
        ntab[11] = 13
        ntab[10] = 2
        natural = np.where(ntab[igbp] > 0, ntab[igbp], natural)
        natural = np.where((igbp == 6) & (k != 5), np.where(k == 3, 16, 17), natural)
        natural = np.where((igbp == 7) & (k != 5), np.where(k == 2, 11, 17), natural)
        sparse = np.where(igbp == 15, 12, sparse)
    sparse = np.where((k == 5) & (elev > 2500), 12, sparse)
    lc = np.where(lu == 4, forest, lc)
    lc = np.where(lu == 5, natural, lc)
    lc = np.where(lu == 6, sparse, lc)
    return lc.astype(np.uint8)


def _succession(lc, lu, koppen, elev, lat) -> np.ndarray:
    """The type an unchanged pixel's LC shifts to in a succession event (stays in its LU set)."""
    k = koppen
    out = lc.copy()
    forest = lu == 4
    out = np.where(forest & (lc == 19), 18, out)
    out = np.where(forest & (lc == 18), np.where((k == 4) | (elev > 800), 3, 5), out)
    out = np.where(forest & ((lc == 5) | (lc == 3)), 18, out)
    out = np.where(forest & (lc == 4), 3, out)
    nat = lu == 5
    out = np.where(nat & (lc == 2), 17, out)
    out = np.where(nat & (lc == 17), np.where((k == 3) & (np.abs(lat) < 45), 16, 2), out)
    out = np.where(nat & (lc == 7), 17, out)
    pas = lu == 3
    out = np.where(pas & (lc == 2), np.where((k == 1) | (k == 3), 7, 2), out)
    out = np.where(pas & (lc == 7), 2, out)
    crop = lu == 2
    out = np.where(crop & (lc == 1) & ((k == 2) | ((k == 3) & (np.abs(lat) < 45))), 10, out)
    return out.astype(np.uint8)


# --- land-use scenario and allocation ---------------------------------------------------


def _largest_remainder(x: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Integer rows summing to `total` closest to the real rows x (ties to lower class)."""
    fl = np.floor(x + 1e-9).astype(np.int64)
    left = total - fl.sum(1)
    rem = x - fl
    order = np.argsort(-rem, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(x.shape[1])[None, :].repeat(len(x), 0), axis=1)
    return fl + (rank < left[:, None])


class _LandUse:
    """Hi-res land use in the coarse-cell layout and the coarse scenario that drives it."""

    # Priority order in which gaining classes pick their pixels.
    GAIN_ORDER = (1, 2, 4, 3, 5)

    def __init__(self, st: _Statics, seed: int, first_year: int) -> None:
        g = st.grid
        f = st.f
        self.f = f
        self.seed = seed
        self.shape = g.shape
        r0, c0 = g.origin
        ny, nx = g.shape
        self.gr = to_cells(np.broadcast_to((r0 + np.arange(ny))[:, None], (ny, nx)), f)
        self.gc = to_cells(np.broadcast_to((c0 + np.arange(nx))[None, :], (ny, nx)), f)
        land = st.inner(st.land)
        igbp = st.inner(st.igbp)
        kg = st.inner(st.koppen)
        elev = st.inner(st.elevation)
        slope = st.inner(st.slope)
        ys = st.ys[st.halo : len(st.ys) - st.halo]
        xs = st.xs[st.halo : len(st.xs) - st.halo]
        lat = (90.0 - ys)[:, None]
        self.lat = lat
        u = uniform(seed, _S["lu_init"], r0 + np.arange(ny)[:, None], c0 + np.arange(nx)[None, :])
        lu0 = _initial_lu(land, igbp, kg, elev, u)
        ulc = uniform(seed, _S["lc_type"], r0 + np.arange(ny)[:, None], c0 + np.arange(nx)[None, :])
        self.u_lc = ulc
        self.koppen, self.elev, self.igbp = kg, elev, igbp
        self.lc = _lc_rules(lu0, kg, elev, lat, ulc, igbp)
        self.lu = lu0
        self.cells = to_cells(lu0, f).copy()
        self.changeable = np.isin(self.cells, CHANGEABLE_LU)
        self.n_change = self.changeable.sum(1)

        # static suitability of each gaining class (float32, cells layout)
        e = elev / 1000.0
        s = slope
        soil = [fbm(ys, xs, 0.4, 2, seed, _S[f"soil{i}"]) for i in range(1, 6)]
        suit = {
            1: -0.15 * s - 1.0 * e + 0.5 * soil[0],
            2: -0.12 * s
            - 1.2 * e
            + 1.0 * soil[1]
            + 0.5 * ((kg == 3) | (kg == 4))
            - 2.0 * (kg == 5)
            - 0.8 * (kg == 2),
            3: -0.04 * s - 0.3 * np.abs(e - 0.6) + 0.6 * soil[2],
            4: 0.05 * s + 0.4 * e + 0.8 * soil[3] - 2.0 * (kg == 2),
            5: 0.03 * s + 0.6 * e + 0.5 * soil[4] + 0.5 * (kg == 2),
        }
        self.suit = np.stack([np.zeros_like(e)] + [suit[k] for k in range(1, 6)])
        self.suit = np.stack([to_cells(a.astype(np.float32), f) for a in self.suit])
        allowed = np.ones((6, *self.cells.shape), bool)
        allowed[1] = to_cells((s < 15) & (e < 2.0), f)
        allowed[2] = to_cells((s < 20) & (e < 2.3) & (kg != 5), f)
        self.allowed = allowed & self.changeable[None]

        # coarse scenario state: fractions of the changeable land of each cell, classes 1..5
        counts = np.stack([(self.cells == k).sum(1) for k in CHANGEABLE_LU], 1)
        self.S = counts / np.maximum(self.n_change, 1)[:, None]
        # Static rounding offsets in (-0.5, 0.5) per cell and class: the first-year
        # target is exactly the first-year counts, and the distance of each cell to
        # its next whole-pixel change is spread evenly, so changes start at once
        # rather than after the trends have accumulated half a pixel everywhere.
        cy, cx = (r0 // f + np.arange(ny // f))[:, None], (c0 // f + np.arange(nx // f))[None, :]
        self.phi = (
            np.stack(
                [(uniform(seed, _S["lu_init"], 7, k, cy, cx) - 0.5).ravel() for k in CHANGEABLE_LU],
                1,
            )
            * 0.98
            * (counts > 0)
        )
        h, w = g.coarse_shape
        self.cshape = (h, w)
        cys = _block_mean(np.broadcast_to(ys[:, None], (ny, nx)), f)[:, 0]
        cxs = _block_mean(np.broadcast_to(xs[None, :], (ny, nx)), f)[0]
        self.cys, self.cxs = cys, cxs

        def drive(name, wl, thr, width):
            n = fbm(cys, cxs, wl, 2, seed, _S[name])
            return _smoothstep((n - thr) / width).ravel()

        self.A = {
            "ab": drive("ab", 6.0, -0.05, 0.4),
            "aff": drive("aff", 5.0, -0.1, 0.5),
            "int": drive("int", 7.0, -0.1, 0.5),
            "ext": drive("ext", 6.0, 0.0, 0.5),
            "def": drive("def", 4.0, 0.1, 0.4),
            "past": drive("past", 5.0, 0.0, 0.5),
            "urb": 0.5 + drive("urb", 5.0, -0.3, 0.8),
        }
        # static LUH2 splits and initial primary/secondary state
        clat = np.abs(90.0 - cys)[:, None] * np.ones((1, len(cxs)))
        kgc = to_cells(kg, f)
        nland = np.maximum((to_cells(land, f) == 1).sum(1), 1)
        frac_b = (kgc == 2).sum(1) / nland
        frac_a = (kgc == 1).sum(1) / nland
        frac_e = (kgc == 5).sum(1) / nland
        elev_c = to_cells(elev, f).astype(np.float64).mean(1)
        lu6v = (self.cells == 6) & ~np.isin(to_cells(igbp, f), (15, 16))
        self.f6v = lu6v.sum(1) / (f * f)
        self.area = self.n_change / (f * f)
        n = {
            k: fbm(cys, cxs, 4.0, 2, seed, _S[k]).ravel()
            for k in ("prim_f", "prim_n", "crop_split", "range", "age", "biomass")
        }
        lat1 = clat.ravel()
        self.c4 = np.clip(0.05 + 0.012 * (50 - lat1) + 0.05 * n["crop_split"], 0.02, 0.45)
        self.c3per = np.clip(
            0.03 + 0.01 * np.maximum(48 - lat1, 0) + 0.03 * n["crop_split"], 0.01, 0.3
        )
        self.c4per = 0.15 * frac_a
        self.c3nfx = 0.08 + 0.03 * n["crop_split"]
        self.range_share = np.clip(
            0.15 + 0.6 * frac_b + 0.3 * elev_c / 1500 + 0.1 * n["range"], 0.05, 0.9
        )
        forest = self.S[:, 3] * self.area
        nat = self.S[:, 4] * self.area + self.f6v
        self.primf = forest * np.clip(0.25 + 0.25 * n["prim_f"], 0.02, 0.7)
        self.primn = nat * np.clip(0.45 + 0.25 * n["prim_n"] + 0.3 * frac_e, 0.05, 0.95)
        self.sec = forest + nat - self.primf - self.primn
        self.age = np.where(self.sec > 0, 30.0 + 25.0 * (n["age"] + 1), 0.0)
        self.bmax = (
            (8.0 + 12.0 * (forest - self.primf) / np.maximum(self.sec, 1e-9))
            * (1 + 0.3 * n["biomass"])
            * (1 - 0.6 * frac_b)
        )
        self.year = first_year

    # -- scenario ------------------------------------------------------------------
    def _step_scenario(self, year: int) -> None:
        S = self.S
        tau = 1.0 / (1.0 + math.exp(-(year - 1995.0) / 3.0))
        eps = np.exp(
            0.5 * fbm(self.cys, self.cxs, 4.0, 2, self.seed, _S["flow_year"], year)
        ).ravel()
        A = self.A
        s1, s2, s3, s4, s5 = (S[:, i] for i in range(5))
        flows = []  # (from, to, amount) in fractions of changeable land
        urb = ((0.025 + 0.01 * tau) * s1 + 0.0002) * A["urb"] * eps
        flows += [(2, 1, 0.7 * urb), (3, 1, 0.3 * urb)]
        ab = (0.004 + 0.025 * tau) * A["ab"] * s2 * eps
        flows += [(2, 5, 0.6 * ab), (2, 4, 0.4 * ab)]
        flows += [
            (5, 4, (0.006 + 0.012 * tau) * A["aff"] * s5 * eps),
            (3, 4, (0.003 + 0.006 * tau) * A["aff"] * s3 * eps),
        ]
        flows += [
            (3, 2, 0.02 * (1 - tau) * A["int"] * s3 * eps),
            (2, 3, 0.008 * tau * A["ext"] * s2 * eps),
        ]
        d = 0.008 * (1 - 0.7 * tau) * A["def"] * s4 * eps
        flows += [(4, 2, 0.5 * d), (4, 3, 0.5 * d)]
        flows += [(5, 3, 0.006 * (1 - tau) * A["past"] * s5 * eps)]
        new = S.copy()
        for a, b, amount in flows:
            amount = np.minimum(amount, new[:, a - 1])
            new[:, a - 1] -= amount
            new[:, b - 1] += amount
        tot = new.sum(1, keepdims=True)
        self.S = np.where(tot > 0, new / np.where(tot > 0, tot, 1), 0.0)
        self.tau = tau

    # -- allocation -----------------------------------------------------------------
    def _neighbours(self, cells: np.ndarray, k: int) -> np.ndarray:
        f = self.f
        a = (cells == k).reshape(-1, f, f).astype(np.int8)
        p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
        nb = np.zeros_like(a)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == 1 and dx == 1:
                    continue
                nb += p[:, dy : dy + f, dx : dx + f]
        return nb.reshape(len(cells), f * f).astype(np.float32)

    def step(self, year: int) -> tuple[int, int]:
        """Advance the scenario and the hi-res land use to `year`; return (changed, random)."""
        self._step_scenario(year)
        counts = np.stack([(self.cells == k).sum(1) for k in CHANGEABLE_LU], 1)
        x = np.maximum(self.S * self.n_change[:, None] + self.phi, 0.0)
        target = _largest_remainder(x, self.n_change)
        need = target - counts  # >0 gain, <0 loss (classes 1..5)
        act = np.nonzero((need != 0).any(1))[0]
        n_changed = n_random = 0
        if len(act):
            X = self.cells[act].copy()
            nd = need[act].copy()
            changed = np.zeros(X.shape, bool)
            suit = self.suit[:, act]
            allowed = self.allowed[:, act]
            gr, gc = self.gr[act], self.gc[act]
            stay = np.zeros(X.shape, np.float32)
            for k in CHANGEABLE_LU:
                stay = np.where(X == k, suit[k] + 0.6 * self._neighbours(X, k), stay)
            rows_all = np.arange(len(act))
            for g in self.GAIN_ORDER:
                score_g = suit[g] + 0.6 * self._neighbours(X, g)
                unit = 0
                while True:
                    rows = rows_all[nd[:, g - 1] > 0]
                    if not len(rows):
                        break
                    Xr = X[rows]
                    loser = np.zeros(Xr.shape, bool)
                    for k in CHANGEABLE_LU:
                        if k != g:
                            loser |= (Xr == k) & (nd[rows, k - 1] < 0)[:, None]
                    elig = loser & allowed[g][rows] & ~changed[rows]
                    key = (self.seed, _S["pick"], year, g, unit)
                    rand_pick = uniform(*key, gr[rows, 0], gc[rows, 0]) < RANDOM_SHARE
                    noise = uniform(self.seed, _S["pick_rand"], year, g, unit, gr[rows], gc[rows])
                    pair = score_g[rows] - stay[rows] + 0.3 * noise
                    score = np.where(rand_pick[:, None], noise, pair)
                    score = np.where(elig, score, -np.inf)
                    best = score.argmax(1)
                    ok = elig[np.arange(len(rows)), best]
                    nd[rows[~ok], g - 1] = 0  # no eligible pixel left: the target stays unmet
                    r, b = rows[ok], best[ok]
                    old = X[r, b]
                    X[r, b] = g
                    changed[r, b] = True
                    nd[r, g - 1] -= 1
                    np.add.at(nd, (r, old.astype(np.int64) - 1), 1)
                    n_changed += len(r)
                    n_random += int(rand_pick[ok].sum())
                    unit += 1
            self.cells[act] = X
        self.lu_prev = self.lu
        self.lu = from_cells(self.cells, self.f, self.shape)
        self.year = year
        return n_changed, n_random

    def update_lc(self, year: int) -> None:
        """LC of the new year: rules where LU changed, persistence elsewhere, plus succession."""
        changed = self.lu != self.lu_prev
        r0, c0 = self.gr[0, 0], self.gc[0, 0]
        ny, nx = self.shape
        ii = r0 + np.arange(ny)[:, None]
        jj = c0 + np.arange(nx)[None, :]
        new = _lc_rules(self.lu, self.koppen, self.elev, self.lat, self.u_lc)
        lc = np.where(changed, new, self.lc)
        succ = (uniform(self.seed, _S["succ"], year, ii, jj) < SUCCESSION_SHARE) & ~changed
        lc = np.where(succ, _succession(lc, self.lu, self.koppen, self.elev, self.lat), lc)
        self.lc = lc.astype(np.uint8)

    # -- coarse forcing --------------------------------------------------------------
    def luh2(self, year: int, first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LUH2 fractions (12, h, w), secma, secmb for the current scenario state."""
        S, area = self.S, self.area
        urban, crop, past = S[:, 0] * area, S[:, 1] * area, S[:, 2] * area
        forest, nat = S[:, 3] * area, S[:, 4] * area + self.f6v
        tau = getattr(self, "tau", 0.0)
        decay_f, decay_n = (1.0, 1.0) if first else (1 - 0.004 * (1 + tau), 1 - 0.003)
        self.primf = np.minimum(self.primf * decay_f, forest)
        self.primn = np.minimum(self.primn * decay_n, nat)
        sec = forest + nat - self.primf - self.primn
        if not first:
            kept = np.minimum(self.sec, sec)
            self.age = np.where(sec > 1e-9, (self.age + 1.0) * kept / np.maximum(sec, 1e-9), 0.0)
            self.age *= 0.99  # harvest rotation keeps secondary land young-ish
        self.sec = sec
        c4 = np.clip(self.c4 * (1 + 0.008 * (year - 1960)), 0.0, 0.6)
        others = c4 + self.c3per + self.c4per + self.c3nfx
        scale = np.where(others > 0.9, 0.9 / others, 1.0)
        c4, c3per, c4per, c3nfx = (
            c4 * scale,
            self.c3per * scale,
            self.c4per * scale,
            (self.c3nfx * scale),
        )
        c3ann = 1.0 - c4 - c3per - c4per - c3nfx
        states = {
            "primf": self.primf,
            "primn": self.primn,
            "secdf": forest - self.primf,
            "secdn": nat - self.primn,
            "urban": urban,
            "c3ann": crop * c3ann,
            "c4ann": crop * c4,
            "c3per": crop * c3per,
            "c4per": crop * c4per,
            "c3nfx": crop * c3nfx,
            "pastr": past * (1 - self.range_share),
            "range": past * self.range_share,
        }
        frac = np.stack([np.clip(states[s], 0.0, 1.0) for s in catalog.LUH2_STATES])
        tot = frac.sum(0)
        frac = np.where(tot > 1.0, frac / np.maximum(tot, 1e-12), frac)
        secma = np.clip(self.age, 0, 1000)
        secmb = np.where(sec > 1e-9, self.bmax * (1 - np.exp(-self.age / 40.0)), 0.0)
        h, w = self.cshape
        return (
            frac.reshape(12, h, w).astype(np.float32),
            secma.reshape(h, w).astype(np.float32),
            np.clip(secmb, 0, 100).reshape(h, w).astype(np.float32),
        )


# --- statistics -------------------------------------------------------------------------


class _Stats:
    """Rates DESIGN.md asks to report, accumulated year by year (generator or store)."""

    def __init__(self, land_mask: np.ndarray, koppen: np.ndarray, land_frac_c: np.ndarray) -> None:
        self.land = land_mask == 1
        self.n_land = max(int(self.land.sum()), 1)
        self.koppen = koppen
        self.land_c = land_frac_c > 0.5
        self.years: list[int] = []
        self.lu_change: list[float] = []
        self.lc_change: list[float] = []
        self.t_mean: list[float] = []
        self.lai_mean: list[float] = []
        self.amp_sum = np.zeros(catalog.N_LC)
        self.amp_n = np.zeros(catalog.N_LC)
        self.peak = np.zeros((catalog.N_LC, 12))
        self.amp_k_sum = np.zeros(catalog.N_KOPPEN)
        self.amp_k_n = np.zeros(catalog.N_KOPPEN)
        self.lu_share_first = self.lu_share_last = None
        self.prev = None

    def add_year(self, year, lu, lc, lai_max, lai_min, lai_argmax, lai_sum, t2m_months) -> None:
        self.years.append(year)
        share = np.bincount(lu[self.land], minlength=catalog.N_LU) / self.n_land
        if self.lu_share_first is None:
            self.lu_share_first = share
        self.lu_share_last = share
        if self.prev is not None:
            plu, plc = self.prev
            self.lu_change.append(float(((lu != plu) & self.land).sum() / self.n_land))
            self.lc_change.append(float(((lc != plc) & self.land).sum() / self.n_land))
        self.prev = (lu, lc)
        amp = lai_max - lai_min
        veg = self.land & VEGETATED[lc]
        self.amp_sum += np.bincount(lc[veg], weights=amp[veg], minlength=catalog.N_LC)
        self.amp_n += np.bincount(lc[veg], minlength=catalog.N_LC)
        self.amp_k_sum += np.bincount(
            self.koppen[veg], weights=amp[veg], minlength=catalog.N_KOPPEN
        )
        self.amp_k_n += np.bincount(self.koppen[veg], minlength=catalog.N_KOPPEN)
        self.peak += np.bincount(
            lc[veg].astype(np.int64) * 12 + lai_argmax[veg], minlength=catalog.N_LC * 12
        ).reshape(catalog.N_LC, 12)
        self.lai_mean.append(float(lai_sum[self.land].mean() / 12.0))
        self.t_mean.append(
            float(np.mean([t[self.land_c].mean() for t in t2m_months]))
            if self.land_c.any()
            else float(np.mean(t2m_months))
        )

    def result(
        self, lu_random: list[int] | None = None, lu_changed: list[int] | None = None
    ) -> dict:
        def r(x, n=6):
            return float(round(float(x), n))

        out: dict = {"years": [self.years[0], self.years[-1]]}
        ch = np.array(self.lu_change)
        if len(ch):
            dec: dict[str, list[float]] = {}
            for y, c in zip(self.years[1:], ch, strict=True):
                dec.setdefault(f"{y // 10 * 10}s", []).append(c)
            out["lu_change_fraction"] = {
                "mean": r(ch.mean()),
                "min": r(ch.min()),
                "max": r(ch.max()),
                "by_decade": {k: r(np.mean(v)) for k, v in dec.items()},
                "per_year": [r(c) for c in ch],
            }
            out["lc_change_fraction"] = {
                "mean": r(np.mean(self.lc_change)),
                "min": r(np.min(self.lc_change)),
                "max": r(np.max(self.lc_change)),
            }
        if lu_random is not None and lu_changed is not None and sum(lu_changed):
            out["lu_random_share"] = r(sum(lu_random) / sum(lu_changed), 4)
        names = {c.index: c.name for c in catalog.LC_CLASSES}
        out["lai_seasonal_amplitude_by_lc"] = {
            f"{i} {names[i]}": r(self.amp_sum[i] / self.amp_n[i], 3)
            for i in range(catalog.N_LC)
            if self.amp_n[i] > 0
        }
        out["lai_peak_month_by_lc"] = {
            f"{i} {names[i]}": int(self.peak[i].argmax()) + 1
            for i in range(catalog.N_LC)
            if self.amp_n[i] > 0
        }
        kn = {c.index: c.name for c in catalog.KOPPEN_GROUPS}
        out["lai_seasonal_amplitude_by_koppen"] = {
            kn[i]: r(self.amp_k_sum[i] / self.amp_k_n[i], 3)
            for i in range(catalog.N_KOPPEN)
            if self.amp_k_n[i] > 0
        }
        yrs = np.array(self.years, float)
        sel = yrs >= 1980 if (yrs >= 1980).sum() >= 2 else np.ones(len(yrs), bool)
        if sel.sum() >= 2:
            out["warming_trend_K_per_decade"] = r(
                np.polyfit(yrs[sel], np.array(self.t_mean)[sel], 1)[0] * 10, 4
            )
            out["warming_trend_period"] = [int(yrs[sel][0]), int(yrs[sel][-1])]
            lai = np.array(self.lai_mean)
            out["lai_land_mean_trend_percent_per_decade"] = r(
                np.polyfit(yrs, lai, 1)[0] * 10 / max(lai.mean(), 1e-9) * 100, 3
            )
        lun = {c.index: c.name for c in catalog.LU_CLASSES}
        out["lu_share_of_land_first_year"] = {
            lun[i]: r(v, 5) for i, v in enumerate(self.lu_share_first)
        }
        out["lu_share_of_land_last_year"] = {
            lun[i]: r(v, 5) for i, v in enumerate(self.lu_share_last)
        }
        out["land_mean_t2m_K_first_last_year"] = [r(self.t_mean[0], 3), r(self.t_mean[-1], 3)]
        return out


def world_stats(path: str | Path) -> dict:
    """Recompute the reported rates from a cube on disk (any cube in the landbc layout).

    The share of LU changes made at random is only known to the generator; it is
    taken from the cube's `diagnostics` attribute when present.
    """
    c = cube.Cube.open(path)
    root = c.root
    st = c.static()
    g = c.grid
    land_c = _block_mean((st["land_mask"] == 1).astype(np.float64), g.coarse_factor)
    acc = _Stats(st["land_mask"], st["koppen"], land_c)
    for yi, year in enumerate(c.years):
        lu, lc = root["lu"][yi], root["lc"][yi]
        mx = mn = am = sm = None
        t2m = []
        for m in range(12):
            ti = cube.month_index(year, m + 1, c.first_year)
            lai = root["lai"][ti]
            if mx is None:
                mx, mn, am, sm = (
                    lai.copy(),
                    lai.copy(),
                    np.zeros(lai.shape, np.int64),
                    lai.astype(np.float64),
                )
            else:
                am = np.where(lai > mx, m, am)
                mx = np.maximum(mx, lai)
                mn = np.minimum(mn, lai)
                sm += lai
            t2m.append(root["t2m"][ti])
        acc.add_year(year, lu, lc, mx, mn, am, sm, t2m)
    diag = root.attrs.get("diagnostics", {})
    return acc.result(diag.get("lu_random_changes"), diag.get("lu_changes"))


# --- the generator ------------------------------------------------------------------------


def _validate(grid, years, seed) -> tuple[int, int]:
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a landbc.emulator.grid.Grid, found {type(grid).__name__}")
    if grid.res > 1.0:
        raise ValueError(f"grid res must be <= 1 degree for the surrogate world, found {grid.res}")
    try:
        y0, y1 = years
    except (TypeError, ValueError):
        raise ValueError(f"years must be a pair (first, last), found {years!r}") from None
    for y in (y0, y1):
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
            raise TypeError(f"years must be integers, found {years!r}")
    if y1 < y0:
        raise ValueError(f"years must be (first, last) with last >= first, found {years}")
    lo, hi = YEAR_RANGE
    if y0 < lo or y1 > hi:
        raise ValueError(f"years must lie within {lo}..{hi}, found {y0}..{y1}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, found {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in 0 .. 2**63-1, found {seed}")
    return int(y0), int(y1)


def _phenology_tables(lc: np.ndarray, koppen: np.ndarray):
    lmin = LAI_MIN[lc]
    lrng = LAI_MAX[lc] - lmin
    alpha = GSI_INERTIA[lc]
    wdep = WATER_DEPENDENCE[lc]
    veg = VEGETATED[lc]
    decid = DECIDUOUS[lc]
    crop = (lc == 1) | (lc == 10)
    harvest = np.select([koppen == 1, koppen == 2, koppen == 3], [5, 5, 6], 7)  # 0-based month
    harvest = np.where(crop, harvest, 99).astype(np.int8)
    return lmin, lrng, alpha, wdep, veg, harvest, decid


def generate_world(
    path: str | Path, grid: Grid, years: tuple[int, int], seed: int = 0, progress: bool = True
) -> Path:
    """Generate the surrogate world for `grid` and the inclusive `years` into a new cube.

    The cube is written to a temporary sibling directory and renamed to `path`
    only once complete and consolidated, so a failure never leaves a
    finished-looking store. Returns `path`.
    """
    y0, y1 = _validate(grid, years, seed)
    seed = int(seed)
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists already; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    tmp = tmpdir / path.name
    t_start = time.perf_counter()
    log.info("surrogate world: %s, years %d..%d, seed %d", grid.describe(), y0, y1, seed)
    try:
        stats = _generate(tmp, grid, (y0, y1), seed, progress)
        root = zarrstore.open_group(tmp)
        root.attrs["stats"] = stats
        cube.finalize_cube(tmp)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    log.info("surrogate world written to %s in %.1f s", path, time.perf_counter() - t_start)
    return path


def _generate(tmp: Path, grid: Grid, years: tuple[int, int], seed: int, progress: bool) -> dict:
    y0, y1 = years
    attrs = {
        "title": "landbc surrogate world",
        "description": (
            "SURROGATE TRUTH: synthetic land use, land cover, LAI, climate and land-use "
            "scenario generated by landbc.emulator.world for demonstrating and testing the "
            "emulators. These are NOT observations. Only land_mask, koppen and igbp are real "
            "maps (see provenance); elevation and slope are synthetic."
        ),
        "provenance": PROVENANCE,
        "seed": seed,
        "generator": GENERATOR,
        "rules": {
            "random_share_of_lu_conversions": RANDOM_SHARE,
            "lc_succession_share_per_year": SUCCESSION_SHARE,
            "lai_quantum": LAI_QUANTUM,
            "lu_lc_allowed": {str(k): list(v) for k, v in LU_LC_ALLOWED.items()},
            "sea": "lu 0, lc 15 (ocean); lc 0 (no data) is never used",
            "urban": "lu 1, lc 11 (semidesert: sparse low vegetation)",
            "inland_water": "land_mask 1 and igbp 0: lu 7, lc 14",
            "never_change": "lu 0 ocean, 6 sparse/no vegetation, 7 water",
        },
    }
    root = cube.create_cube(tmp, grid, (y0, y1), attrs)
    st = _build_statics(grid, seed)
    land = st.inner(st.land)
    kg = st.inner(st.koppen)
    elev_hr = st.inner(st.elevation)
    root["land_mask"][:] = land
    root["koppen"][:] = kg
    root["igbp"][:] = st.inner(st.igbp)
    root["elevation"][:] = elev_hr
    root["slope"][:] = st.inner(st.slope)

    clim = _Climate(st, seed)
    interp = _Interp(grid)
    lu = _LandUse(st, seed, y0)
    f = grid.coarse_factor
    land_c = _block_mean((land == 1).astype(np.float64), f)
    stats = _Stats(land, kg, land_c)

    ny, nx = grid.shape
    lat_hr = grid.lat
    cont_hr = st.inner(st.cont).astype(np.float32)
    dtr_half = (3.5 + 2.5 * cont_hr).astype(np.float32)
    lapse = (LAPSE_RATE * elev_hr).astype(np.float32)
    photo, photo_autumn = [], []
    for m in range(12):
        _, dl = _toa_and_daylength(lat_hr, m)
        _, dl_next = _toa_and_daylength(lat_hr, (m + 1) % 12)
        shortening = dl_next < dl
        photo.append(np.clip(dl - 10.0, 0, 1).astype(np.float32)[:, None])
        aut = np.where(shortening, np.clip((dl - 10.0) / 3.5, 0, 1), np.clip(dl - 10.0, 0, 1))
        photo_autumn.append(aut.astype(np.float32)[:, None])
    ys_in = st.ys[st.halo : len(st.ys) - st.halo]
    xs_in = st.xs[st.halo : len(st.xs) - st.halo]
    pixfac = (1.0 + 0.12 * fbm(ys_in, xs_in, 0.15, 2, seed, _S["laipix"])).astype(np.float32)

    def climate_hr(c):
        stack = np.stack([c["t_sl"], c["rh"], c["water"], c["veg_anom"]])
        t = interp(stack[0]) - lapse
        return t, interp(stack[1]), interp(stack[2]), interp(stack[3])

    gsi = np.zeros((ny, nx), np.float32)

    def gsi_month(c, m, tabs):
        nonlocal gsi
        lmin, lrng, alpha, wdep, veg, harvest, decid = tabs
        t, rh, water, anom = climate_hr(c)
        i_t = np.clip((t - dtr_half + 2.0) / 7.0, 0, 1)
        es = 610.8 * np.exp(17.27 * t / (t + 237.3))
        i_v = np.clip((4100.0 - es * (1 - rh)) / 3200.0, 0, 1)
        i_w = 1 - wdep * (1 - water)
        g = i_t * i_v * np.where(decid, photo_autumn[m], photo[m]) * i_w
        gsi = alpha * gsi + (1 - alpha) * g
        return gsi, anom

    # spin-up: one year of climate and phenology before the first year
    tabs = _phenology_tables(lu.lc, kg)
    for m in range(12):
        gsi_month(clim.month(y0 - 1, m), m, tabs)

    # Land-use spin-up: a few scenario years before the first year, so that the
    # first stored years already change at the stationary rate.
    for year in range(y0 - LU_SPINUP_YEARS, y0):
        lu.step(year)
        lu.update_lc(year)
    lu_changes: list[int] = []
    lu_random: list[int] = []
    try:
        from tqdm import tqdm

        bar = tqdm(
            total=(y1 - y0 + 1) * 12, desc="surrogate world", unit="month", disable=not progress
        )
    except ImportError:  # pragma: no cover
        bar = None
    try:
        for yi, year in enumerate(range(y0, y1 + 1)):
            if yi > 0:
                n_ch, n_rand = lu.step(year)
                lu.update_lc(year)
                lu_changes.append(n_ch)
                lu_random.append(n_rand)
            frac, secma, secmb = lu.luh2(year, first=yi == 0)
            root["luh2_frac"][yi] = frac
            root["secma"][yi] = secma
            root["secmb"][yi] = secmb
            root["co2"][yi] = np.float32(co2_ppm(year))
            root["lu"][yi] = lu.lu
            root["lc"][yi] = lu.lc
            tabs = _phenology_tables(lu.lc, kg)
            lmin, lrng, _, _, veg, harvest, _ = tabs
            co2fac = np.float32(1.0 + 0.3 * math.log(co2_ppm(year) / 317.0))
            mx = mn = am = sm = None
            t2m_months = []
            for m in range(12):
                c = clim.month(year, m)
                ti = yi * 12 + m
                root["t2m"][ti] = c["t2m"][1:-1, 1:-1].astype(np.float32)
                root["tp"][ti] = c["tp"][1:-1, 1:-1].astype(np.float32)
                root["ssrd"][ti] = c["ssrd"][1:-1, 1:-1].astype(np.float32)
                t2m_months.append(c["t2m"][1:-1, 1:-1])
                g, anom = gsi_month(c, m, tabs)
                h = np.where(harvest <= m, np.float32(0.3), np.float32(1.0))
                lai = (lmin + lrng * g * h) * pixfac * co2fac * (1 + anom)
                lai = np.round(np.clip(lai, 0, 15) / LAI_QUANTUM) * LAI_QUANTUM
                lai = np.where(veg, lai, 0).astype(np.float32)
                root["lai"][ti] = lai
                if mx is None:
                    mx, mn, am = lai.copy(), lai.copy(), np.zeros(lai.shape, np.int64)
                    sm = lai.astype(np.float64)
                else:
                    am = np.where(lai > mx, m, am)
                    mx = np.maximum(mx, lai)
                    mn = np.minimum(mn, lai)
                    sm += lai
                if bar is not None:
                    bar.update(1)
            stats.add_year(year, lu.lu, lu.lc, mx, mn, am, sm, t2m_months)
    finally:
        if bar is not None:
            bar.close()
    root.attrs["diagnostics"] = {"lu_changes": lu_changes, "lu_random_changes": lu_random}
    return stats.result(lu_random, lu_changes)
