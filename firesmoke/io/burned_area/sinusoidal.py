"""The MODIS sinusoidal grid: projection, tiling and cell-to-region footprints.

MODIS land products (MCD64A1 among them) are stored in tiles of the global sinusoidal
projection on a sphere of radius :data:`EARTH_RADIUS` (6,371,007.181 m): 36 x 18 tiles
(``h`` 0-35 west to east, ``v`` 0-17 north to south) of :data:`TILE_SIZE`
(1,111,950.5197665 m, i.e. 10 degrees of latitude) with 2400 x 2400 cells of ~463.3 m at
"500 m" resolution. The projection is equal-area: every cell covers the same area.

Formulas (spherical sinusoidal, central meridian 0)::

    x = R * lon * cos(lat)        y = R * lat          (angles in radians)
    lat = y / R                   lon = x / (R * cos(lat))

Points with ``|lon| > 180`` after the inverse lie outside the projected globe (tile
corners near the poles/antimeridian); they are reported as NaN.

:func:`cell_footprints` maps the cells of any north-up grid onto a regular lat/lon
region by supersampling each cell with ``k x k`` sub-points (see its docstring); it is the
geometry behind area-average resampling in :mod:`firesmoke.io.burned_area.mcd64`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS

from firesmoke.errors import InputError

__all__ = [
    "EARTH_RADIUS",
    "N_TILES_H",
    "N_TILES_V",
    "SINUSOIDAL_PROJ4",
    "TILE_PIXELS_500M",
    "TILE_SIZE",
    "Footprint",
    "cell_footprints",
    "sinusoidal_crs",
    "tile_bounds",
    "tile_of_point",
    "tile_transform",
    "tiles_for_bbox",
    "x_range_of_band",
]

#: Radius of the MODIS sphere, metres.
EARTH_RADIUS = 6371007.181
#: Side of one MODIS tile, metres (pi * R / 18).
TILE_SIZE = 1111950.5197665
#: Cells per tile side for the 500 m products (MCD64A1).
TILE_PIXELS_500M = 2400
N_TILES_H = 36
N_TILES_V = 18
#: PROJ string of the MODIS sinusoidal CRS. It is the same projection as the often quoted
#: ``+proj=sinu +R=6371007.181 +nadgrids=@null +wktext +units=m``; ``+nadgrids=@null`` only
#: told old GDAL versions not to shift datums, and today makes GDAL log "cannot be
#: formatted as WKT1" errors whenever the CRS is printed, so it is left out.
SINUSOIDAL_PROJ4 = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"

_X_MIN = -N_TILES_H / 2 * TILE_SIZE
_Y_MAX = N_TILES_V / 2 * TILE_SIZE
_TILE_RE = re.compile(r"h(\d{2})v(\d{2})")


def sinusoidal_crs() -> CRS:
    """The MODIS sinusoidal CRS (:data:`SINUSOIDAL_PROJ4`)."""
    return CRS.from_proj4(SINUSOIDAL_PROJ4)


def tile_bounds(h: int, v: int) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of tile ``h``/``v`` in sinusoidal metres."""
    left = _X_MIN + h * TILE_SIZE
    top = _Y_MAX - v * TILE_SIZE
    return left, top - TILE_SIZE, left + TILE_SIZE, top


def tile_transform(h: int, v: int, pixels: int = TILE_PIXELS_500M) -> Affine:
    """Affine transform of tile ``h``/``v`` with ``pixels`` cells per side."""
    left, _, _, top = tile_bounds(h, v)
    size = TILE_SIZE / pixels
    return Affine(size, 0.0, left, 0.0, -size, top)


def tile_of_point(x: float, y: float) -> tuple[int, int]:
    """Tile ``(h, v)`` containing the sinusoidal point ``(x, y)``."""
    return math.floor((x - _X_MIN) / TILE_SIZE), math.floor((_Y_MAX - y) / TILE_SIZE)


def x_range_of_band(lon_min: float, lon_max: float, lat_min: float, lat_max: float) -> tuple[float, float]:
    """Sinusoidal x extent of the lon/lat box (exact: x is monotonic in lon and in |cos(lat)|)."""
    lats = [lat_min, lat_max] + ([0.0] if lat_min < 0.0 < lat_max else [])
    xs = [EARTH_RADIUS * math.radians(lon) * math.cos(math.radians(lat)) for lon in (lon_min, lon_max) for lat in lats]
    return min(xs), max(xs)


def _lon_intervals(left: float, right: float) -> list[tuple[float, float]]:
    """Split a longitude interval (possibly beyond 180 or crossing it) into [-180, 180] parts."""
    if right - left >= 360.0:
        return [(-180.0, 180.0)]
    out = []
    for shift in (-360.0, 0.0, 360.0):
        lo, hi = max(left + shift, -180.0), min(right + shift, 180.0)
        if lo < hi:
            out.append((lo, hi))
    return out


def tiles_for_bbox(bbox: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """MODIS tiles ``(h, v)`` whose extent intersects a lon/lat box ``(left, bottom, right, top)``.

    The test is exact in sinusoidal space: for each tile row, the x extent of the box
    within the row's latitude band is compared with the tile columns. Tiles are returned
    sorted by ``(v, h)``.
    """
    left, bottom, right, top = (float(b) for b in bbox)
    bottom, top = max(bottom, -90.0), min(top, 90.0)
    out: set[tuple[int, int]] = set()
    v0 = max(0, math.floor((90.0 - top) / 10.0))
    v1 = min(N_TILES_V - 1, math.ceil((90.0 - bottom) / 10.0) - 1)
    for v in range(v0, v1 + 1):
        band_top, band_bottom = 90.0 - 10.0 * v, 80.0 - 10.0 * v
        lat_lo, lat_hi = max(bottom, band_bottom), min(top, band_top)
        if lat_lo >= lat_hi:
            continue
        for lo, hi in _lon_intervals(left, right):
            x0, x1 = x_range_of_band(lo, hi, lat_lo, lat_hi)
            h0 = max(0, math.floor((x0 - _X_MIN) / TILE_SIZE))
            h1 = min(N_TILES_H - 1, math.ceil((x1 - _X_MIN) / TILE_SIZE) - 1)
            out.update((h, v) for h in range(h0, h1 + 1))
    return sorted(out, key=lambda t: (t[1], t[0]))


# ----------------------------------------------------------------------------- footprints
@dataclass(frozen=True)
class Footprint:
    """Where the sub-points of a block of source cells fall on a region grid.

    Attributes
    ----------
    row0, row1
        Source rows ``row0:row1`` (of the full source grid) covered by this block.
    pixel
        int64 array ``(nrows, k, ncols, k)``: flat region pixel index (``row * width +
        col``) of each sub-point, -1 where it falls outside the region (or the globe).
    weight
        float64 array ``(nrows, k, 1, 1)`` broadcastable to ``pixel``: area of each
        sub-point in m^2 (on the MODIS sphere).
    """

    row0: int
    row1: int
    pixel: np.ndarray
    weight: np.ndarray


def cell_footprints(
    transform: Affine,
    window: tuple[int, int, int, int],
    region_transform: Affine,
    region_shape: tuple[int, int],
    *,
    kind: str,
    supersample: int = 4,
    block_rows: int = 64,
    to_lonlat: object | None = None,
) -> Iterator[Footprint]:
    """Map the cells of a source grid window onto a lat/lon region, block of rows by block.

    Each source cell is split into ``supersample x supersample`` sub-cells; a sub-cell
    belongs to the region pixel that contains its centre and carries a share of the cell's
    area (its weight). Summing weights per region pixel is then an area-average resampling
    whose error is at most about one sub-cell width along pixel edges.

    Parameters
    ----------
    transform
        North-up affine transform of the source grid (rows north to south).
    window
        ``(row0, row1, col0, col1)`` of source cells to map.
    region_transform, region_shape
        Grid of the EPSG:4326 region (see :class:`firesmoke.grid.Region`).
    kind
        ``"sinusoidal"`` (MODIS sphere; equal-area: every sub-cell has the same area),
        ``"geographic"`` (lon/lat; sub-cell area ``R^2 dlon dlat cos(lat)``) or
        ``"projected"`` (any other CRS, converted with ``to_lonlat``; the cell area in
        CRS units is used, i.e. the CRS is assumed locally equal-area).
    supersample
        Sub-points per cell side (k).
    block_rows
        Source rows per yielded block (bounds memory: ``block_rows * k^2 * ncols`` ints).
    to_lonlat
        ``callable(x, y) -> (lon, lat)`` for ``kind="projected"``.
    """
    if transform.b != 0 or transform.d != 0:
        raise InputError("only north-up grids (no rotation) are supported")
    k = int(supersample)
    if k < 1:
        raise InputError("supersample must be >= 1")
    row0, row1, col0, col1 = window
    height, width = region_shape
    ra, rc, re_, rf = region_transform.a, region_transform.c, region_transform.e, region_transform.f
    offsets = (np.arange(k) + 0.5) / k
    sub_cols = (np.arange(col0, col1)[:, None] + offsets[None, :]).reshape(-1)
    sub_x = transform.c + sub_cols * transform.a
    cell_area = abs(transform.a * transform.e) / (k * k)
    for b0 in range(row0, row1, block_rows):
        b1 = min(b0 + block_rows, row1)
        sub_rows = (np.arange(b0, b1)[:, None] + offsets[None, :]).reshape(-1)
        sub_y = transform.f + sub_rows * transform.e
        if kind == "sinusoidal":
            lat = np.degrees(sub_y / EARTH_RADIUS)[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                lon = np.degrees(sub_x[None, :] / (EARTH_RADIUS * np.cos(np.radians(lat))))
            lon[~(np.abs(lon) <= 180.0)] = np.nan
            weight = np.full((sub_y.size, 1), cell_area)
        elif kind == "geographic":
            lat = sub_y[:, None]
            lon = np.broadcast_to(sub_x[None, :], (sub_y.size, sub_x.size))
            # spherical area of a sub-cell: R^2 * dlon * dlat * cos(lat) (radians)
            weight = EARTH_RADIUS**2 * math.radians(abs(transform.a)) * math.radians(abs(transform.e))
            weight = weight / (k * k) * np.cos(np.radians(lat))
        elif kind == "projected":
            if to_lonlat is None:
                raise InputError("kind='projected' needs to_lonlat")
            xx, yy = np.meshgrid(sub_x, sub_y)
            lon, lat = to_lonlat(xx, yy)  # type: ignore[operator]
            lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
            weight = np.full((sub_y.size, 1), cell_area)
        else:
            raise InputError(f"unknown grid kind {kind!r}")
        with np.errstate(invalid="ignore"):
            # wrap longitudes into [left, left + 360) so regions beyond +-180 work
            lon = np.where(lon < rc, lon + 360.0, lon)
            col = np.floor((lon - rc) / ra)
            row = np.floor((lat - rf) / re_)
            inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
            pixel = np.where(inside, row * width + col, -1).astype(np.int64)
        nr, nc = b1 - b0, col1 - col0
        yield Footprint(b0, b1, pixel.reshape(nr, k, nc, k), np.asarray(weight).reshape(nr, k, 1, 1))
