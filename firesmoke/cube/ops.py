"""Thin numpy/dask wrappers around the Numba kernels of :mod:`firesmoke.kernels`.

Each function accepts numpy or dask arrays and returns the same kind: numpy in, numpy
out; any dask input gives a lazy dask array whose blocks are computed by the same kernel
(``dask.array.blockwise``/``map_blocks``), so results are identical for numpy inputs and
for dask inputs with any chunking. No xarray here: the xarray-level entries live in the
modules that build cubes (e.g. :mod:`firesmoke.cube.frp`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from firesmoke.errors import InputError
from firesmoke.kernels import composite as _composite
from firesmoke.kernels import hotspots as _hotspots
from firesmoke.kernels import mir as _mir
from firesmoke.kernels import regrid as _regrid

__all__ = ["composite", "mir_reflectance", "rasterize_stat", "regrid_swath"]

log = logging.getLogger(__name__)

COMPOSITE_RULES: tuple[str, ...] = ("reference", "min_zenith")


def _is_dask(*arrays: Any) -> bool:
    return any(isinstance(a, da.Array) for a in arrays)


# --------------------------------------------------------------------------- composite
def _composite_order_block(stack: np.ndarray, zenith: np.ndarray, order: np.ndarray) -> np.ndarray:
    return _composite.composite_by_order(stack, zenith, order)


def _composite_min_block(stack: np.ndarray, zenith: np.ndarray) -> np.ndarray:
    return _composite.composite_min_zenith(stack, zenith)


def _zenith_sums_block(zenith: np.ndarray) -> np.ndarray:
    sums, counts = _composite.zenith_sums(zenith)
    return np.stack([sums, counts.astype(np.float64)], axis=1)[:, :, None, None]


def granule_mean_zenith(zenith: np.ndarray | da.Array) -> np.ndarray:
    """Mean valid zenith of each granule over the whole grid (float64, NaN if none).

    For dask input the per-block sums and counts are computed by the kernel and added up;
    the result is a numpy array (it is needed to order the granules before compositing).
    """
    if not _is_dask(zenith):
        return _composite.mean_zenith(np.asarray(zenith))
    z = zenith
    if z.ndim != 3:
        raise InputError(f"zenith must be (n_overpasses, H, W), got shape {z.shape}")
    z = z.rechunk({0: -1})
    parts = da.map_blocks(
        _zenith_sums_block, z, dtype=np.float64,
        chunks=(z.chunks[0], (2,), (1,) * len(z.chunks[1]), (1,) * len(z.chunks[2])),
    )
    totals = np.asarray(parts.sum(axis=(2, 3)).compute())
    sums, counts = totals[:, 0], totals[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def composite(
    stack: np.ndarray | da.Array,
    zenith: np.ndarray | da.Array,
    rule: str = "reference",
    order: np.ndarray | None = None,
) -> np.ndarray | da.Array:
    """Composite several overpasses of one day into one image.

    Parameters
    ----------
    stack
        ``(n_overpasses, bands, H, W)`` values of each granule on the grid.
    zenith
        ``(n_overpasses, H, W)`` sensor zenith angles; NaN where the granule has no data.
    rule
        ``"reference"``: granules ordered by mean zenith over the whole grid, each band
        of a pixel from the first granule valid there whose value of that band is not
        missing (BA-Net 0.6.7, per-band fill); ``"min_zenith"``: each band from the
        granule with the smallest valid zenith at that pixel among those with a value of
        the band (ties -> earliest).
    order
        ``"reference"`` only: the granule order when it is known beyond ``zenith`` (the
        mean zenith over a whole grid of which ``stack`` is one block); default: ranked
        by the mean zenith of ``zenith``.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 ``(bands, H, W)``, NaN where no valid granule has the band. With dask input the
        chunks follow ``stack``'s band/y/x chunks (the granule axis is gathered per block).
    """
    if rule not in COMPOSITE_RULES:
        raise InputError(f"unknown composite rule {rule!r}; choose from {COMPOSITE_RULES}")
    if np.ndim(stack) != 4 or np.ndim(zenith) != 3:
        raise InputError(
            f"stack must be (n, bands, H, W) and zenith (n, H, W); got {np.shape(stack)} "
            f"and {np.shape(zenith)}"
        )
    if not _is_dask(stack, zenith):
        if rule == "reference":
            if order is None:
                order = _composite.reference_order(_composite.mean_zenith(np.asarray(zenith)))
            return _composite.composite_by_order(stack, zenith, np.asarray(order, np.int64))
        return _composite.composite_min_zenith(stack, zenith)

    s = da.asarray(stack)
    z = da.asarray(zenith)
    if rule == "reference":
        if order is None:
            order = _composite.reference_order(granule_mean_zenith(z))
        return da.blockwise(
            _composite_order_block, "byx", s, "nbyx", z, "nyx",
            concatenate=True, dtype=np.float32, order=order,
        )
    return da.blockwise(
        _composite_min_block, "byx", s, "nbyx", z, "nyx", concatenate=True, dtype=np.float32
    )


# --------------------------------------------------------------------------- MIR
def mir_reflectance(
    m12: np.ndarray | da.Array, m15: np.ndarray | da.Array, sza: np.ndarray | da.Array
) -> np.ndarray | da.Array:
    """MIR reflectance (float32) from M12/M15 radiances and solar zenith in degrees.

    See :func:`firesmoke.kernels.mir.mir_reflectance`; inputs broadcast together.
    """
    if not _is_dask(m12, m15, sza):
        return _mir.mir_reflectance(m12, m15, sza)
    a, b, c = da.broadcast_arrays(da.asarray(m12), da.asarray(m15), da.asarray(sza))
    idx = "".join(chr(ord("a") + k) for k in range(a.ndim))
    # blockwise unifies the three chunkings before mapping the kernel over blocks
    return da.blockwise(_mir.mir_reflectance, idx, a, idx, b, idx, c, idx, dtype=np.float32)


# --------------------------------------------------------------------------- hotspots
def rasterize_stat(
    lat: np.ndarray,
    lon: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    transform: Sequence[float],
    shape: tuple[int, int],
    n_days: int,
    stat: str = "frp_sum",
    window: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """One statistic of points per day and cell, float32 ``(n_days, height, width)``.

    Dask inputs are computed first (a point table is small beside its grid). See
    :func:`firesmoke.kernels.hotspots.rasterize_points` for the rules (GDAL-identical cell
    assignment, float64 accumulation); ``window`` ``(row, col, height, width)`` returns
    that window of the grid only.
    """
    if stat not in _hotspots.STATS:
        raise InputError(f"unknown stat {stat!r}; choose from {_hotspots.STATS}")
    if _is_dask(lat, lon, day, value):
        lat, lon, day, value = dask.compute(lat, lon, day, value)
    grids = _hotspots.rasterize_points(lat, lon, day, value, transform, shape, n_days,
                                       stats=(stat,), window=window)
    if grids.n_dropped:
        log.debug("rasterize_stat: %d point(s) outside the grid or the days dropped",
                  grids.n_dropped)
    return grids[stat]


# --------------------------------------------------------------------------- regrid
def _regrid_block(lat, lon, values, transform, shape, method, window, kwargs):
    return _regrid.regrid_swath(lat, lon, values, transform, shape, method, window=window, **kwargs)


def regrid_swath(
    lat: np.ndarray | da.Array,
    lon: np.ndarray | da.Array,
    values: np.ndarray | da.Array,
    transform: Sequence[float],
    shape: tuple[int, int],
    method: str = "bilinear",
    *,
    chunks: tuple[int, int] | None = None,
    window: tuple[int, int, int, int] | None = None,
    rows_per_scan: int = 16,
    radius: float = 1.5,
    fill_scan_gaps: bool = True,
) -> np.ndarray | da.Array:
    """Regrid a swath granule onto a grid (see :func:`firesmoke.kernels.regrid.regrid_swath`).

    Parameters
    ----------
    lat, lon, values
        Swath arrays, numpy or dask (a granule is gathered whole for each output block).
    transform, shape
        The target grid (affine coefficients, ``(height, width)``).
    method
        ``"bilinear"``, ``"nearest"`` or ``"bucket"``.
    chunks
        ``(rows, cols)`` of the output blocks. With dask input or ``chunks`` given the
        result is a dask array (default chunks: 1024 x 1024); each block is the kernel run
        on a window of the grid, identical to the same window of a whole-grid result.
    window
        ``(row, col, height, width)``: regrid onto that window of the grid only (numpy
        result; not with ``chunks``).
    rows_per_scan, radius, fill_scan_gaps
        Passed to the kernel.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 ``(bands, height, width)`` (``(height, width)`` for 2-D values).
    """
    kwargs = {"rows_per_scan": rows_per_scan, "radius": radius, "fill_scan_gaps": fill_scan_gaps}
    if method not in _regrid.METHODS:
        raise InputError(f"unknown method {method!r}; choose from {_regrid.METHODS}")
    if window is not None:
        if chunks is not None:
            raise InputError("give either window or chunks")
        if _is_dask(lat, lon, values):
            lat, lon, values = dask.compute(lat, lon, values)
        return _regrid.regrid_swath(lat, lon, values, transform, shape, method, window=window, **kwargs)
    if not _is_dask(lat, lon, values) and chunks is None:
        return _regrid.regrid_swath(lat, lon, values, transform, shape, method, **kwargs)

    height, width = int(shape[0]), int(shape[1])
    ch_y, ch_x = chunks if chunks is not None else (1024, 1024)
    nd = len(np.shape(values))
    n_bands = None if nd == 2 else int(np.shape(values)[0])
    dtransform = tuple(float(x) for x in tuple(transform)[:6])
    if height == 0 or width == 0:
        out = _regrid.regrid_swath(lat, lon, values, transform, shape, method, **kwargs)
        return da.from_array(out)
    lat_d, lon_d, val_d = (dask.delayed(x) for x in (lat, lon, values))
    rows = []
    for r0 in range(0, height, ch_y):
        h = min(ch_y, height - r0)
        row = []
        for c0 in range(0, width, ch_x):
            w = min(ch_x, width - c0)
            block = dask.delayed(_regrid_block, pure=True)(
                lat_d, lon_d, val_d, dtransform, (height, width), method, (r0, c0, h, w), kwargs
            )
            bshape = (h, w) if n_bands is None else (n_bands, h, w)
            row.append(da.from_delayed(block, shape=bshape, dtype=np.float32))
        rows.append(row)
    # da.block joins the inner lists along the last axis (x), the outer along y
    return da.block(rows)
