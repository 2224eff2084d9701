"""Where a gridded granule lies on a region grid: an aligned window, or a grid to resample.

A gridded ``NPP_VMAES_L1`` granule carries its own latitude/longitude grid (the grid of
the LAADS order). A region is usually another grid: a part of it, a larger area that the
granule covers only partly, or a grid of another pixel size or alignment.
:func:`grid_placement` compares the two (both are north-up EPSG:4326 grids given by an
affine transform and a shape) and says how the region's pixels are read:

``aligned``
    Same pixel size and pixel edges on the same lattice (within
    :data:`ALIGN_TOLERANCE` pixel): region pixel ``(r, c)`` is granule pixel
    ``(r + row_off, c + col_off)``. A region window is read as the matching granule
    window, clipped to the granule (what lies outside is NaN); nothing else is decoded.
``resample``
    Another pixel size or alignment: the granule's pixel centres are treated as a
    regular "swath" and regridded onto the region with the swath kernels
    (:mod:`firesmoke.kernels.regrid`), reading only the granule window around each region
    block (:meth:`GridPlacement.source_window`).

A granule that does not overlap the region is refused with
:class:`~firesmoke.errors.GridMismatchError` naming both grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firesmoke.errors import GridMismatchError

__all__ = ["ALIGN_TOLERANCE", "GridPlacement", "grid_placement"]

#: Largest offset (in pixels) between two pixel lattices still taken as the same lattice.
ALIGN_TOLERANCE = 1e-6
#: Granule pixels read around a resampled block (bilinear needs the neighbours).
RESAMPLE_MARGIN = 2

Window = tuple[int, int, int, int]  # row offset, column offset, height, width


def _describe(transform: Sequence[float], shape: tuple[int, int]) -> str:
    a, _, c, _, e, f = (float(v) for v in tuple(transform)[:6])
    h, w = shape
    return (f"{h}x{w} pixel {a:.9g} x {-e:.9g} bounds "
            f"({c:.9g}, {f + e * h:.9g}, {c + a * w:.9g}, {f:.9g})")


@dataclass(frozen=True)
class GridPlacement:
    """How a granule grid maps onto a region grid (see the module docstring).

    Attributes
    ----------
    kind
        ``"aligned"`` or ``"resample"``.
    row_off, col_off
        ``aligned``: region pixel ``(r, c)`` is granule pixel ``(r + row_off, c + col_off)``.
    transform, shape
        The granule grid (affine coefficients ``(a, b, c, d, e, f)``, ``(rows, cols)``).
    region_transform, region_shape
        The region grid.
    """

    kind: str
    row_off: int
    col_off: int
    transform: tuple[float, ...]
    shape: tuple[int, int]
    region_transform: tuple[float, ...]
    region_shape: tuple[int, int]

    @property
    def identical(self) -> bool:
        """The granule grid is the region grid."""
        return (self.kind == "aligned" and self.row_off == 0 and self.col_off == 0
                and self.shape == self.region_shape)

    def aligned_window(self, window: Window) -> tuple[Window, tuple[slice, slice]] | None:
        """The granule window of a region window (``aligned`` only), clipped to the granule,
        and where it goes in the region window; ``None`` if they do not overlap."""
        r0, c0, h, w = window
        gr0, gc0 = r0 + self.row_off, c0 + self.col_off
        lo_r, hi_r = max(gr0, 0), min(gr0 + h, self.shape[0])
        lo_c, hi_c = max(gc0, 0), min(gc0 + w, self.shape[1])
        if hi_r <= lo_r or hi_c <= lo_c:
            return None
        dest = (slice(lo_r - gr0, hi_r - gr0), slice(lo_c - gc0, hi_c - gc0))
        return (lo_r, lo_c, hi_r - lo_r, hi_c - lo_c), dest

    def source_window(self, window: Window, margin: int = RESAMPLE_MARGIN) -> Window | None:
        """The granule window whose pixels a region window needs when resampling (its
        footprint plus ``margin`` pixels), clipped to the granule; ``None`` if empty."""
        r0, c0, h, w = window
        ra, _, rc, _, re, rf = self.region_transform[:6]
        a, _, c, _, e, f = self.transform[:6]
        xs = (rc + ra * c0, rc + ra * (c0 + w))
        ys = (rf + re * r0, rf + re * (r0 + h))
        cols = sorted((x - c) / a for x in xs)
        rows = sorted((y - f) / e for y in ys)
        lo_r = max(math.floor(rows[0]) - margin, 0)
        hi_r = min(math.ceil(rows[1]) + margin, self.shape[0])
        lo_c = max(math.floor(cols[0]) - margin, 0)
        hi_c = min(math.ceil(cols[1]) + margin, self.shape[1])
        if hi_r <= lo_r or hi_c <= lo_c:
            return None
        return lo_r, lo_c, hi_r - lo_r, hi_c - lo_c

    def centres(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude ``(h, w)`` float64 of the pixel centres of a granule window."""
        r0, c0, h, w = window
        a, _, c, _, e, f = self.transform[:6]
        lon = c + a * (np.arange(c0, c0 + w, dtype=np.float64) + 0.5)
        lat = f + e * (np.arange(r0, r0 + h, dtype=np.float64) + 0.5)
        return np.repeat(lat[:, None], w, axis=1), np.repeat(lon[None, :], h, axis=0)

    def describe(self) -> str:
        where = (f"offset ({self.row_off}, {self.col_off}) px" if self.kind == "aligned"
                 else "resampled")
        return (f"granule grid {_describe(self.transform, self.shape)} on region grid "
                f"{_describe(self.region_transform, self.region_shape)}: {self.kind}, {where}")


def _near_integer(x: float) -> int | None:
    n = round(x)
    return int(n) if abs(x - n) <= ALIGN_TOLERANCE else None


def grid_placement(transform: Any, shape: tuple[int, int], region_transform: Any,
                   region_shape: tuple[int, int], *, path: Any = None,
                   region_name: str = "region") -> GridPlacement:
    """Place a north-up granule grid on a north-up region grid (both EPSG:4326).

    Parameters
    ----------
    transform, shape
        The granule grid: affine (``rasterio``/``affine`` object or its 6 coefficients)
        and ``(rows, cols)``.
    region_transform, region_shape
        The region grid.
    path, region_name
        Named in the error.

    Raises
    ------
    GridMismatchError
        The grids do not overlap, or one is not north-up.
    """
    g = tuple(float(v) for v in tuple(transform)[:6])
    r = tuple(float(v) for v in tuple(region_transform)[:6])
    gshape = (int(shape[0]), int(shape[1]))
    rshape = (int(region_shape[0]), int(region_shape[1]))
    both = (f"granule grid {_describe(g, gshape)}, {region_name} grid {_describe(r, rshape)}")
    if g[1] != 0 or g[3] != 0 or r[1] != 0 or r[3] != 0 or g[0] <= 0 or r[0] <= 0 \
            or g[4] >= 0 or r[4] >= 0:
        raise GridMismatchError(f"only north-up grids can be placed: {both}", path=path)
    gl, gt = g[2], g[5]
    gr, gb = gl + g[0] * gshape[1], gt + g[4] * gshape[0]
    rl, rt = r[2], r[5]
    rr, rb = rl + r[0] * rshape[1], rt + r[4] * rshape[0]
    if min(gr, rr) <= max(gl, rl) or min(gt, rt) <= max(gb, rb):
        raise GridMismatchError(f"the granule does not cover any of {region_name}: {both}",
                                path=path)
    same_size = (abs(g[0] - r[0]) * max(gshape[1], rshape[1]) <= ALIGN_TOLERANCE * r[0]
                 and abs(g[4] - r[4]) * max(gshape[0], rshape[0]) <= ALIGN_TOLERANCE * -r[4])
    if same_size:
        col_off = _near_integer((rl - gl) / g[0])
        row_off = _near_integer((rt - gt) / g[4])
        if col_off is not None and row_off is not None:
            return GridPlacement("aligned", row_off, col_off, g, gshape, r, rshape)
    return GridPlacement("resample", 0, 0, g, gshape, r, rshape)
