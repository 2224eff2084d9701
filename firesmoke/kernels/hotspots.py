"""Hotspot rasterisation: points (lat, lon, day, value) -> per-day grids.

One kernel turns a table of active-fire detections into daily grids of FRP sum, detection
count, FRP maximum and ``log1p`` of the FRP sum (the BA-Net FRP channel), in one pass over
the points instead of one table scan and one rasterisation per day.

Cell assignment reproduces GDAL's point rasterisation (``rasterio.features.rasterize`` of
``Point`` geometries) bit for bit:

* GDAL builds a transformer from the raster's geotransform ``gt`` and applies its inverse
  ``igt`` computed by ``GDALInvGeoTransform``: for a north-up grid
  ``igt = (-c / a, 1 / a, 0, -f / e, 0, 1 / e)`` (affine order ``a, b, c, d, e, f``);
* the pixel coordinates are ``px = igt[0] + lon * igt[1] + lat * igt[2]`` and
  ``py = igt[3] + lon * igt[4] + lat * igt[5]``, evaluated left to right in float64;
* the cell is ``(floor(py), floor(px))`` (``GDALdllImagePoint``) and the point is burnt only
  when ``0 <= floor(px) < width`` and ``0 <= floor(py) < height``.

So a point lying exactly on an edge between two pixels goes to the pixel to its right (east)
or below it (south), *as long as the float64 arithmetic above lands on the integer*: with
``a = 0.01`` the inverse ``1 / a`` is not exact and a longitude that is "exactly" on an edge
in decimal may land a hair below the integer and go to the pixel to the west; the kernel
uses the same arithmetic and therefore makes the same choice. Points exactly on the right
or bottom boundary of the raster (``px == width`` or ``py == height``) are *not* burnt, like
in GDAL. Points on the left/top boundary are burnt into the first column/row.

Accumulation is in float64, in the order of the input points within each cell (the same order
GDAL adds burn values in ``MergeAlg.add`` mode), then rounded once to float32. The kernel is
deterministic: days are independent and each is processed by exactly one thread, so results
do not depend on the number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numba
import numpy as np

from firesmoke.errors import InputError

__all__ = [
    "STATS",
    "PointGrids",
    "gdal_inverse_geotransform",
    "point_cells",
    "rasterize_points",
]

#: The statistics :func:`rasterize_points` can produce.
STATS: tuple[str, ...] = ("frp_sum", "count", "frp_max", "log1p_frp")


def gdal_inverse_geotransform(transform: Sequence[float]) -> np.ndarray:
    """The inverse geotransform GDAL uses to map coordinates to pixel/line.

    Parameters
    ----------
    transform
        Affine coefficients in :class:`affine.Affine` order ``(a, b, c, d, e, f)``
        (``x = a * col + b * row + c``, ``y = d * col + e * row + f``); extra items (an
        ``Affine`` has 9) are ignored.

    Returns
    -------
    numpy.ndarray
        float64 ``(6,)`` in GDAL order: ``px = igt[0] + x * igt[1] + y * igt[2]``,
        ``py = igt[3] + x * igt[4] + y * igt[5]``, computed exactly as
        ``GDALInvGeoTransform`` does (special case for north-up grids, determinant form
        otherwise).
    """
    vals = [float(v) for v in tuple(transform)[:6]]
    if len(vals) != 6:
        raise InputError(f"transform needs 6 coefficients (a, b, c, d, e, f), got {transform!r}")
    a, b, c, d, e, f = vals
    # GDAL geotransform order: gt = (c, a, b, f, d, e)
    if b == 0.0 and d == 0.0 and a != 0.0 and e != 0.0:
        return np.array([-c / a, 1.0 / a, 0.0, -f / e, 0.0, 1.0 / e], dtype=np.float64)
    det = a * e - b * d
    magnitude = max(abs(a), abs(b), abs(d), abs(e))
    if abs(det) <= 1e-10 * magnitude * magnitude:
        raise InputError(f"transform {vals} is not invertible")
    inv_det = 1.0 / det
    return np.array(
        [
            (b * f - c * e) * inv_det,
            e * inv_det,
            -b * inv_det,
            (-a * f + c * d) * inv_det,
            -d * inv_det,
            a * inv_det,
        ],
        dtype=np.float64,
    )


class PointGrids(dict):
    """What :func:`rasterize_points` returns: ``{stat: float32 (n_days, height, width)}``.

    A plain ``dict`` with one more attribute, ``n_dropped``: the number of points not
    burnt (outside the grid, day index out of range, non-finite coordinate or value).
    """

    def __init__(self, grids: dict[str, np.ndarray], n_dropped: int) -> None:
        super().__init__(grids)
        self.n_dropped = int(n_dropped)

    def __repr__(self) -> str:
        shapes = {k: v.shape for k, v in self.items()}
        return f"PointGrids({shapes}, n_dropped={self.n_dropped})"


# --------------------------------------------------------------------------- kernels
@numba.njit(cache=True, nogil=True)
def _cell_of(lon: float, lat: float, igt: np.ndarray, height: int, width: int) -> int:
    px = igt[0] + lon * igt[1] + lat * igt[2]
    py = igt[3] + lon * igt[4] + lat * igt[5]
    if not (px >= 0.0 and px < width and py >= 0.0 and py < height):
        return -1  # also NaN
    col = math.floor(px)
    row = math.floor(py)
    if col >= width or row >= height:  # defensive; cannot happen for px < width
        return -1
    return row * width + col


@numba.njit(cache=True, nogil=True)
def _locate(lat, lon, day, value, igt, height, width, n_days, cells, days):
    """Flat cell index and day of every point; -1 where the point is dropped."""
    n = lat.shape[0]
    for i in range(n):
        d = day[i]
        v = value[i]
        c = -1
        if d >= 0 and d < n_days and math.isfinite(v):
            c = _cell_of(lon[i], lat[i], igt, height, width)
        cells[i] = c
        days[i] = d if c >= 0 else -1


@numba.njit(cache=True, nogil=True)
def _sort_by_day(cells, days, value, n_days):
    """Stable counting sort of the kept points by day (one pass to count, one to place)."""
    n = cells.shape[0]
    starts = np.zeros(n_days + 1, dtype=np.int64)
    for i in range(n):
        d = days[i]
        if d >= 0:
            starts[d + 1] += 1
    for d in range(n_days):
        starts[d + 1] += starts[d]
    n_kept = starts[n_days]
    s_cell = np.empty(n_kept, dtype=np.int64)
    s_val = np.empty(n_kept, dtype=np.float64)
    pos = starts[:-1].copy()
    for i in range(n):
        d = days[i]
        if d >= 0:
            k = pos[d]
            s_cell[k] = cells[i]
            s_val[k] = value[i]
            pos[d] = k + 1
    return starts, s_cell, s_val


@numba.njit(cache=True, parallel=True, nogil=True)
def _accumulate(starts, s_cell, s_val, n_cells, n_blocks, zero_days,
                out_sum, out_count, out_max, out_log):
    """Per-day accumulation; each block of days is owned by one thread (no shared writes).

    With ``zero_days`` each day's output rows are zeroed first (caller-provided buffers),
    by the thread that then fills them, while they are hot in cache."""
    n_days = starts.shape[0] - 1
    want_sum = out_sum.shape[0] > 0
    want_count = out_count.shape[0] > 0
    want_max = out_max.shape[0] > 0
    want_log = out_log.shape[0] > 0
    need_acc = want_sum or want_log
    for b in numba.prange(n_blocks):
        d0 = (b * n_days) // n_blocks
        d1 = ((b + 1) * n_days) // n_blocks
        acc = np.zeros(n_cells if need_acc else 1, dtype=np.float64)
        cnt = np.zeros(n_cells if want_count else 1, dtype=np.int64)
        mx = np.full(n_cells if want_max else 1, -np.inf, dtype=np.float64)
        for d in range(d0, d1):
            if zero_days:
                if want_sum:
                    out_sum[d, :] = 0.0
                if want_log:
                    out_log[d, :] = 0.0
                if want_count:
                    out_count[d, :] = 0.0
                if want_max:
                    out_max[d, :] = 0.0
            k0 = starts[d]
            k1 = starts[d + 1]
            for k in range(k0, k1):
                c = s_cell[k]
                v = s_val[k]
                if need_acc:
                    acc[c] += v
                if want_count:
                    cnt[c] += 1
                if want_max and v > mx[c]:
                    mx[c] = v
            for k in range(k0, k1):
                c = s_cell[k]
                if want_sum:
                    out_sum[d, c] = np.float32(acc[c])
                if want_log:
                    out_log[d, c] = np.float32(math.log1p(acc[c]))
                if want_count:
                    out_count[d, c] = np.float32(cnt[c])
                if want_max:
                    out_max[d, c] = np.float32(mx[c])
            for k in range(k0, k1):  # reset only what this day touched
                c = s_cell[k]
                if need_acc:
                    acc[c] = 0.0
                if want_count:
                    cnt[c] = 0
                if want_max:
                    mx[c] = -np.inf


# --------------------------------------------------------------------------- front
def _window_cells(
    cells: np.ndarray, days: np.ndarray, window: Sequence[int], height: int, width: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cells of the whole grid -> cells of ``window`` (-1, day -1 for points outside it)."""
    r0, c0, h, w = (int(v) for v in window)
    if r0 < 0 or c0 < 0 or h < 0 or w < 0 or r0 + h > height or c0 + w > width:
        raise InputError(f"window {tuple(window)} is not inside the grid {(height, width)}")
    row = cells // max(width, 1)
    col = cells % max(width, 1)
    inside = (cells >= 0) & (row >= r0) & (row < r0 + h) & (col >= c0) & (col < c0 + w)
    local = np.where(inside, (row - r0) * w + (col - c0), -1).astype(np.int64)
    return local, np.where(inside, days, -1).astype(np.int64), h, w


def point_cells(
    lat: np.ndarray,
    lon: np.ndarray,
    transform: Sequence[float],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each point, exactly as GDAL rasterises points; -1 outside.

    Parameters
    ----------
    lat, lon
        Point coordinates in the grid's CRS (y and x), any float dtype, same shape.
    transform
        Affine coefficients ``(a, b, c, d, e, f)`` of the grid.
    shape
        ``(height, width)``.

    Returns
    -------
    rows, cols
        int64 arrays; both -1 for points outside the grid or with NaN coordinates.
    """
    lat64 = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    lon64 = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    if lat64.shape != lon64.shape:
        raise InputError(f"lat and lon differ in size: {lat64.size} vs {lon64.size}")
    height, width = int(shape[0]), int(shape[1])
    igt = gdal_inverse_geotransform(transform)
    cells = np.empty(lat64.size, dtype=np.int64)
    days = np.empty(lat64.size, dtype=np.int64)
    _locate(lat64, lon64, np.zeros(lat64.size, np.int64), np.zeros(lat64.size), igt,
            height, width, 1, cells, days)
    inside = cells >= 0
    rows = np.where(inside, cells // max(width, 1), -1)
    cols = np.where(inside, cells % max(width, 1), -1)
    return rows, cols


def rasterize_points(
    lat: np.ndarray,
    lon: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    transform: Sequence[float],
    shape: tuple[int, int],
    n_days: int,
    stats: Sequence[str] = ("log1p_frp",),
    out: Mapping[str, np.ndarray] | None = None,
    window: tuple[int, int, int, int] | None = None,
) -> PointGrids:
    """Per-day, per-cell statistics of point values on a regular grid.

    Parameters
    ----------
    lat, lon
        Point coordinates (y, x in the grid CRS), 1-D, any float dtype.
    day
        Day index of each point (integer); points outside ``[0, n_days)`` are dropped.
    value
        Value of each point (e.g. FRP in MW); points with a non-finite value are dropped.
    transform
        Affine coefficients ``(a, b, c, d, e, f)`` of the grid (an :class:`affine.Affine`
        works).
    shape
        ``(height, width)`` of the grid.
    n_days
        Number of days (length of the time axis of the output).
    stats
        Any of :data:`STATS`, all computed in the same pass: ``frp_sum`` (sum of values),
        ``count`` (number of points), ``frp_max`` (maximum value), ``log1p_frp``
        (``log1p`` of the sum; the default, the BA-Net FRP channel).
    out
        Optional buffers to fill instead of allocating: ``{stat: float32 C-contiguous
        (n_days, height, width)}`` for every requested stat (e.g. reused from one call to
        the next, which saves the first-touch cost of fresh memory). They are overwritten
        entirely.
    window
        Optional ``(row, col, height, width)``: only this window of the grid is returned
        (``(n_days, height, width)``); cells are assigned on the whole grid first, so the
        result equals the same window of a whole-grid result.

    Returns
    -------
    PointGrids
        A dict mapping each requested stat to a float32 array ``(n_days, height, width)``,
        0 where no point fell, with attribute ``n_dropped``: the number of points not
        burnt (outside the grid, day out of range, or non-finite coordinate/value).

    Notes
    -----
    Accumulation is in float64 in input order, then rounded to float32 once; cells are
    assigned as GDAL does (see the module docstring).
    """
    if isinstance(stats, str):
        stats = (stats,)
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise InputError(f"unknown stat(s) {unknown}; choose from {STATS}")
    lat64 = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    lon64 = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    day64 = np.ascontiguousarray(day, dtype=np.int64).ravel()
    val64 = np.ascontiguousarray(value, dtype=np.float64).ravel()
    n = lat64.size
    if not (lon64.size == day64.size == val64.size == n):
        raise InputError(
            f"lat, lon, day and value must have one size, got "
            f"{n}, {lon64.size}, {day64.size}, {val64.size}"
        )
    height, width = int(shape[0]), int(shape[1])
    n_days = int(n_days)
    if height < 0 or width < 0 or n_days < 0:
        raise InputError(f"negative shape {shape} or n_days {n_days}")
    igt = gdal_inverse_geotransform(transform)
    n_cells = height * width

    cells = np.empty(n, dtype=np.int64)
    days = np.empty(n, dtype=np.int64)
    if n:
        _locate(lat64, lon64, day64, val64, igt, height, width, n_days, cells, days)
    if window is not None:
        cells, days, height, width = _window_cells(cells, days, window, height, width)
        n_cells = height * width
    starts, s_cell, s_val = _sort_by_day(cells, days, val64, n_days)
    n_dropped = n - int(starts[-1])

    empty = np.zeros((0, 0), dtype=np.float32)
    outs = {s: empty for s in STATS}
    given = out is not None
    for s in stats:
        if given:
            buf = out.get(s) if isinstance(out, Mapping) else None
            if (not isinstance(buf, np.ndarray) or buf.dtype != np.float32
                    or buf.shape != (n_days, height, width) or not buf.flags.c_contiguous
                    or not buf.flags.writeable):
                raise InputError(
                    f"out[{s!r}] must be a writeable C-contiguous float32 array of shape "
                    f"{(n_days, height, width)}")
            outs[s] = buf.reshape(n_days, n_cells)
        else:
            # np.zeros: pages of days/rows without any point are never touched
            outs[s] = np.zeros((n_days, n_cells), dtype=np.float32)
    if n_days and n_cells and (s_cell.size or given):
        n_blocks = min(n_days, max(1, 2 * numba.get_num_threads()))
        _accumulate(starts, s_cell, s_val, n_cells, n_blocks, given,
                    outs["frp_sum"], outs["count"], outs["frp_max"], outs["log1p_frp"])
    return PointGrids(
        {s: out[s] if given else outs[s].reshape(n_days, height, width) for s in stats},
        n_dropped,
    )
