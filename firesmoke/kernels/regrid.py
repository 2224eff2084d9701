"""Swath -> grid regridding of L1B granules (VIIRS M bands) onto a regular lat/lon grid.

Inputs are the swath geolocation ``lat``, ``lon`` ``(lines, pixels)`` and the values
``(bands, lines, pixels)``; the target is a north-up grid given by its affine coefficients
``(a, 0, c, 0, e, f)`` and shape, or a window ``(row0, col0, height, width)`` of it (so a
chunked caller gets exactly the same numbers as a whole-grid call). Output is float32
``(bands, height, width)``, NaN where no data.

Grid coordinates: ``u = (lon - c) / a`` (columns) and ``v = (lat - f) / e`` (rows), so
cell ``(i, j)`` has its centre at ``(u, v) = (j + 0.5, i + 0.5)``.

Methods
-------
``bilinear`` (what the reference data used)
    The swath is cut into quads of 4 neighbouring pixels ``(i, j), (i, j+1), (i+1, j),
    (i+1, j+1)``. For each grid cell centre inside a quad the exact inverse bilinear map
    gives the swath coordinates ``(s, t)`` in ``[0, 1]^2`` and the value is interpolated
    bilinearly from the 4 corners (corners whose value is NaN are left out and the
    weights of the others renormalised; NaN if no corner is valid). A quad with a corner
    of invalid geolocation is skipped, so cells beyond the swath edge stay NaN.

    VIIRS scans ``rows_per_scan`` (16 for M bands) lines at once and consecutive scans
    overlap away from nadir (bow-tie). Quads within one scan have priority. Where quads
    of two scans cover the same cell (bow-tie overlap), the cell takes the quad with the
    *smaller area* on the grid (the less stretched, higher-resolution one); ties go to the
    first quad in swath order. Quads that straddle a scan boundary (last line of one scan
    and first line of the next) are folded in the bow-tie zone and are never used there:
    with ``fill_scan_gaps=True`` (default) a *convex* straddling quad is used only for
    cells that no within-scan quad covers (near nadir, where scans abut without overlap,
    this closes the one-line gap between scans); with ``fill_scan_gaps=False`` they are
    skipped altogether, as in the plain rule.

``nearest``
    Each cell takes, band by band, the value of the nearest swath pixel (centre to
    centre distance in grid pixels) within ``radius`` grid pixels whose value is not NaN;
    ties go to the first pixel in swath order.

``bucket``
    Each cell takes, band by band, the mean of the non-NaN values of the swath pixels
    whose centre falls in it (``floor(u), floor(v)``).

Antimeridian: longitudes are moved by multiples of 360 degrees towards the centre of the
grid (per quad for ``bilinear``, after unwrapping the quad's corners to one side), so a
granule spanning 179.5 .. -179.5 lands correctly on a grid with ``left=179, right=181`` or
``left=-181, right=-179``.

Determinism: output rows are split into bands, each owned by one thread (no shared
writes); a band visits only the (scan, 64-pixel segment) pieces of the swath that reach
its rows. The choice for a cell is an explicit minimum of (priority, area, quad index) or
(distance, pixel index), and ``bucket`` sums in swath order, so results do not depend on
the number of threads, the visiting order, nor on how the output is windowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from firesmoke.errors import InputError

__all__ = ["METHODS", "regrid_swath"]

#: Regridding methods offered by :func:`regrid_swath`.
METHODS: tuple[str, ...] = ("bilinear", "nearest", "bucket")

_EPS = 1e-9
_NO_PRIORITY = 127


# --------------------------------------------------------------------------- helpers
@numba.njit(cache=True, nogil=True)
def _near(x: float, ref: float) -> float:
    """``x`` moved by a multiple of 360 to lie within 180 degrees of ``ref``."""
    return x - 360.0 * math.floor((x - ref) / 360.0 + 0.5)


@numba.njit(cache=True, nogil=True)
def _cross(ax: float, ay: float, bx: float, by: float) -> float:
    return ax * by - ay * bx


_SEG = 64  # swath pixels per segment of a scan (the unit of work given to a band of rows)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _segment_row_ranges(lat, rps, extra_line, f, e, pad):
    """Grid row range ``[lo, hi]`` (a little wide) of each (scan, 64-pixel segment).

    ``extra_line`` adds the first line of the next scan (for quads straddling scans) and
    one pixel to the right (for quads of the segment's last column)."""
    n_lines, n_pix = lat.shape
    n_scans = (n_lines + rps - 1) // rps
    n_segs = (n_pix + _SEG - 1) // _SEG
    lo = np.empty((n_scans, n_segs), dtype=np.int64)
    hi = np.empty((n_scans, n_segs), dtype=np.int64)
    for s in range(n_scans):
        l0 = s * rps
        l1 = min((s + 1) * rps + extra_line, n_lines)
        for g in range(n_segs):
            p0 = g * _SEG
            p1 = min((g + 1) * _SEG + extra_line, n_pix)
            vmin = np.inf
            vmax = -np.inf
            for i in range(l0, l1):
                for j in range(p0, p1):
                    la = lat[i, j]
                    if math.isfinite(la):
                        v = (la - f) / e
                        vmin = min(vmin, v)
                        vmax = max(vmax, v)
            if vmin <= vmax:
                lo[s, g] = math.floor(vmin - pad) - 1
                hi[s, g] = math.floor(vmax + pad) + 1
            else:
                lo[s, g] = 1
                hi[s, g] = 0  # empty
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _band_rows(b, n_bands, h):
    return (b * h) // n_bands, ((b + 1) * h) // n_bands


# --------------------------------------------------------------------------- bilinear
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _inverse_bilinear(pu, pv, au, av, bu, bv, cu, cv, du, dv):
    """(s, t, ok) with p = a + s (b - a) + t (c - a) + s t (a - b - c + d)."""
    eu = bu - au
    ev = bv - av
    fu = cu - au
    fv = cv - av
    gu = au - bu - cu + du
    gv = av - bv - cv + dv
    hu = pu - au
    hv = pv - av
    k2 = _cross(gu, gv, fu, fv)
    k1 = _cross(eu, ev, fu, fv) + _cross(hu, hv, gu, gv)
    k0 = _cross(hu, hv, eu, ev)
    disc = k1 * k1 - 4.0 * k0 * k2
    if disc < 0.0:
        if disc < -1e-12 * (k1 * k1 + abs(4.0 * k0 * k2)):
            return 0.0, 0.0, False
        disc = 0.0
    sq = math.sqrt(disc)
    q = -0.5 * (k1 + sq) if k1 >= 0.0 else -0.5 * (k1 - sq)
    for r in range(2):
        if r == 0:
            if q == 0.0:
                continue
            t = k0 / q
        else:
            if k2 == 0.0:
                continue
            t = q / k2
        if not (t >= -_EPS and t <= 1.0 + _EPS):
            continue
        den_u = eu + t * gu
        den_v = ev + t * gv
        if abs(den_u) >= abs(den_v):
            if den_u == 0.0:
                continue
            s = (hu - t * fu) / den_u
        else:
            s = (hv - t * fv) / den_v
        if s >= -_EPS and s <= 1.0 + _EPS:
            return min(max(s, 0.0), 1.0), min(max(t, 0.0), 1.0), True
    return 0.0, 0.0, False


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _bilinear(lat, lon, values, rps, a, c, e, f, centre, r0, c0, h, w,
              fill_gaps, scan_lo, scan_hi, n_bands_rows, out):
    n_lines, n_pix = lat.shape
    n_val = values.shape[0]
    n_scans = scan_lo.shape[0]
    n_segs = scan_lo.shape[1]
    for band in numba.prange(n_bands_rows):
        row_a, row_b = _band_rows(band, n_bands_rows, h)
        if row_a >= row_b:
            continue
        best_pri = np.full((row_b - row_a, w), _NO_PRIORITY, dtype=np.int8)
        best_area = np.full((row_b - row_a, w), np.inf, dtype=np.float64)
        best_quad = np.full((row_b - row_a, w), -1, dtype=np.int64)
        for s in range(n_scans):
            for sg in range(n_segs):
                if scan_hi[s, sg] < r0 + row_a or scan_lo[s, sg] >= r0 + row_b:
                    continue
                i0 = s * rps
                i1 = min((s + 1) * rps, n_lines - 1)  # quads (i, i+1) with i < i1
                for i in range(i0, i1):
                    cross_scan = (i % rps) == rps - 1
                    if cross_scan and not fill_gaps:
                        continue
                    pri = 1 if cross_scan else 0
                    for j in range(sg * _SEG, min((sg + 1) * _SEG, n_pix - 1)):
                        la0 = lat[i, j]
                        la1 = lat[i, j + 1]
                        la2 = lat[i + 1, j]
                        la3 = lat[i + 1, j + 1]
                        lo0 = lon[i, j]
                        lo1 = lon[i, j + 1]
                        lo2 = lon[i + 1, j]
                        lo3 = lon[i + 1, j + 1]
                        if not (math.isfinite(la0) and math.isfinite(la1) and math.isfinite(la2)
                                and math.isfinite(la3) and math.isfinite(lo0)
                                and math.isfinite(lo1) and math.isfinite(lo2)
                                and math.isfinite(lo3)):
                            continue
                        # rows first (cheap rejection, no wrap in latitude)
                        v0 = (la0 - f) / e
                        v1 = (la1 - f) / e
                        v2 = (la2 - f) / e
                        v3 = (la3 - f) / e
                        vmin = min(min(v0, v1), min(v2, v3))
                        vmax = max(max(v0, v1), max(v2, v3))
                        ia = max(math.ceil(vmin - 0.5), r0 + row_a)
                        ib = min(math.floor(vmax - 0.5), r0 + row_b - 1)
                        if ia > ib:
                            continue
                        # longitudes: unwrap around corner 0, then move towards grid centre
                        lo1 = _near(lo1, lo0)
                        lo2 = _near(lo2, lo0)
                        lo3 = _near(lo3, lo0)
                        mid = 0.25 * (lo0 + lo1 + lo2 + lo3)
                        shift = _near(mid, centre) - mid
                        u0 = (lo0 + shift - c) / a
                        u1 = (lo1 + shift - c) / a
                        u2 = (lo2 + shift - c) / a
                        u3 = (lo3 + shift - c) / a
                        umin = min(min(u0, u1), min(u2, u3))
                        umax = max(max(u0, u1), max(u2, u3))
                        ja = max(math.ceil(umin - 0.5), c0)
                        jb = min(math.floor(umax - 0.5), c0 + w - 1)
                        if ja > jb:
                            continue
                        area = 0.5 * abs(_cross(u3 - u0, v3 - v0, u2 - u1, v2 - v1))
                        qid = i * n_pix + j
                        if not area > 0.0:
                            continue
                        if cross_scan:
                            # convex check, corners in cyclic order 0 -> 1 -> 3 -> 2
                            x1 = _cross(u1 - u0, v1 - v0, u3 - u1, v3 - v1)
                            x2 = _cross(u3 - u1, v3 - v1, u2 - u3, v2 - v3)
                            x3 = _cross(u2 - u3, v2 - v3, u0 - u2, v0 - v2)
                            x4 = _cross(u0 - u2, v0 - v2, u1 - u0, v1 - v0)
                            if not ((x1 > 0 and x2 > 0 and x3 > 0 and x4 > 0)
                                    or (x1 < 0 and x2 < 0 and x3 < 0 and x4 < 0)):
                                continue
                        for gi in range(ia, ib + 1):
                            li = gi - r0 - row_a
                            pv = gi + 0.5
                            for gj in range(ja, jb + 1):
                                lj = gj - c0
                                bp = best_pri[li, lj]
                                if pri > bp:
                                    continue
                                if pri == bp:
                                    ba = best_area[li, lj]
                                    if area > ba or (area == ba and qid > best_quad[li, lj]):
                                        continue
                                pu = gj + 0.5
                                ss, tt, ok = _inverse_bilinear(pu, pv, u0, v0, u1, v1, u2, v2, u3, v3)
                                if not ok:
                                    continue
                                best_pri[li, lj] = pri
                                best_area[li, lj] = area
                                best_quad[li, lj] = qid
                                w0 = (1.0 - ss) * (1.0 - tt)
                                w1 = ss * (1.0 - tt)
                                w2 = (1.0 - ss) * tt
                                w3 = ss * tt
                                for k in range(n_val):
                                    acc = 0.0
                                    wsum = 0.0
                                    x = values[k, i, j]
                                    if not math.isnan(x):
                                        acc += w0 * x
                                        wsum += w0
                                    x = values[k, i, j + 1]
                                    if not math.isnan(x):
                                        acc += w1 * x
                                        wsum += w1
                                    x = values[k, i + 1, j]
                                    if not math.isnan(x):
                                        acc += w2 * x
                                        wsum += w2
                                    x = values[k, i + 1, j + 1]
                                    if not math.isnan(x):
                                        acc += w3 * x
                                        wsum += w3
                                    out[k, gi - r0, lj] = np.float32(acc / wsum) if wsum > 0.0 else np.nan


# --------------------------------------------------------------------------- nearest
@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _nearest(lat, lon, values, rps, a, c, e, f, centre, r0, c0, h, w, radius,
             scan_lo, scan_hi, n_bands_rows, out):
    n_lines, n_pix = lat.shape
    n_val = values.shape[0]
    n_scans = scan_lo.shape[0]
    n_segs = scan_lo.shape[1]
    r2 = radius * radius
    for band in numba.prange(n_bands_rows):
        row_a, row_b = _band_rows(band, n_bands_rows, h)
        if row_a >= row_b:
            continue
        best = np.full((n_val, row_b - row_a, w), np.inf, dtype=np.float64)
        best_pix = np.full((n_val, row_b - row_a, w), -1, dtype=np.int64)
        for s in range(n_scans):
            for sg in range(n_segs):
                if scan_hi[s, sg] < r0 + row_a or scan_lo[s, sg] >= r0 + row_b:
                    continue
                for i in range(s * rps, min((s + 1) * rps, n_lines)):
                    for j in range(sg * _SEG, min((sg + 1) * _SEG, n_pix)):
                        la = lat[i, j]
                        lo = lon[i, j]
                        if not (math.isfinite(la) and math.isfinite(lo)):
                            continue
                        pv = (la - f) / e
                        ia = max(math.ceil(pv - 0.5 - radius), r0 + row_a)
                        ib = min(math.floor(pv - 0.5 + radius), r0 + row_b - 1)
                        if ia > ib:
                            continue
                        pu = (_near(lo, centre) - c) / a
                        pid = i * n_pix + j
                        ja = max(math.ceil(pu - 0.5 - radius), c0)
                        jb = min(math.floor(pu - 0.5 + radius), c0 + w - 1)
                        for gi in range(ia, ib + 1):
                            dv = gi + 0.5 - pv
                            li = gi - r0 - row_a
                            for gj in range(ja, jb + 1):
                                du = gj + 0.5 - pu
                                d2 = du * du + dv * dv
                                if d2 > r2:
                                    continue
                                lj = gj - c0
                                for k in range(n_val):
                                    x = values[k, i, j]
                                    if math.isnan(x):
                                        continue
                                    bd = best[k, li, lj]
                                    if d2 > bd or (d2 == bd and pid > best_pix[k, li, lj]):
                                        continue
                                    best[k, li, lj] = d2
                                    best_pix[k, li, lj] = pid
                                    out[k, gi - r0, lj] = np.float32(x)


# --------------------------------------------------------------------------- bucket
@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _bucket(lat, lon, values, rps, a, c, e, f, centre, r0, c0, h, w,
            scan_lo, scan_hi, n_bands_rows, out):
    n_lines, n_pix = lat.shape
    n_val = values.shape[0]
    n_scans = scan_lo.shape[0]
    n_segs = scan_lo.shape[1]
    for band in numba.prange(n_bands_rows):
        row_a, row_b = _band_rows(band, n_bands_rows, h)
        if row_a >= row_b:
            continue
        acc = np.zeros((n_val, row_b - row_a, w), dtype=np.float64)
        cnt = np.zeros((n_val, row_b - row_a, w), dtype=np.int64)
        for s in range(n_scans):
            for sg in range(n_segs):
                if scan_hi[s, sg] < r0 + row_a or scan_lo[s, sg] >= r0 + row_b:
                    continue
                for i in range(s * rps, min((s + 1) * rps, n_lines)):
                    for j in range(sg * _SEG, min((sg + 1) * _SEG, n_pix)):
                        la = lat[i, j]
                        lo = lon[i, j]
                        if not (math.isfinite(la) and math.isfinite(lo)):
                            continue
                        pv = (la - f) / e
                        if not (pv >= r0 + row_a and pv < r0 + row_b):
                            continue
                        pu = (_near(lo, centre) - c) / a
                        if not (pu >= c0 and pu < c0 + w):
                            continue
                        li = math.floor(pv) - r0 - row_a
                        lj = math.floor(pu) - c0
                        if li < 0 or li >= row_b - row_a or lj < 0 or lj >= w:
                            continue
                        for k in range(n_val):
                            x = values[k, i, j]
                            if not math.isnan(x):
                                acc[k, li, lj] += x
                                cnt[k, li, lj] += 1
        for k in range(n_val):
            for li in range(row_b - row_a):
                for lj in range(w):
                    n = cnt[k, li, lj]
                    if n > 0:
                        out[k, row_a + li, lj] = np.float32(acc[k, li, lj] / n)


# --------------------------------------------------------------------------- front
def regrid_swath(
    lat: np.ndarray,
    lon: np.ndarray,
    values: np.ndarray,
    transform: Sequence[float],
    shape: tuple[int, int],
    method: str = "bilinear",
    *,
    rows_per_scan: int = 16,
    window: tuple[int, int, int, int] | None = None,
    radius: float = 1.5,
    fill_scan_gaps: bool = True,
) -> np.ndarray:
    """Regrid one swath granule onto a regular north-up grid.

    Parameters
    ----------
    lat, lon
        Swath geolocation ``(lines, pixels)`` in degrees; NaN where invalid.
    values
        ``(bands, lines, pixels)`` or ``(lines, pixels)``; NaN = fill (ignored).
    transform
        Grid affine coefficients ``(a, b, c, d, e, f)`` with ``b == d == 0``.
    shape
        ``(height, width)`` of the whole grid.
    method
        ``"bilinear"``, ``"nearest"`` or ``"bucket"`` (see the module docstring).
    rows_per_scan
        Swath lines per scan (16 for VIIRS M bands, 32 for I bands; 10 for MODIS 1 km).
    window
        ``(row0, col0, height, width)``: compute only this part of the grid (results are
        identical to the same part of a whole-grid call).
    radius
        Search radius of ``nearest`` in grid pixels.
    fill_scan_gaps
        Use convex quads straddling a scan boundary where no within-scan quad covers a
        cell (``bilinear`` only).

    Returns
    -------
    numpy.ndarray
        float32 ``(bands, height, width)`` (or ``(height, width)`` for 2-D ``values``), NaN
        where no data.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {METHODS}")
    la = np.ascontiguousarray(lat, dtype=np.float64)
    lo = np.ascontiguousarray(lon, dtype=np.float64)
    vals = np.asarray(values)
    squeeze = vals.ndim == 2
    if squeeze:
        vals = vals[None]
    if la.ndim != 2 or la.shape != lo.shape or vals.ndim != 3 or vals.shape[1:] != la.shape:
        raise InputError(
            f"expected lat, lon (lines, pixels) and values ([bands,] lines, pixels); got "
            f"{np.shape(lat)}, {np.shape(lon)}, {np.shape(values)}"
        )
    # one compiled specialisation: values are interpolated in float64 from float32 inputs
    vals = np.ascontiguousarray(vals, dtype=np.float32)
    coeffs = [float(x) for x in tuple(transform)[:6]]
    a, b, c, d, e, f = coeffs
    if b != 0.0 or d != 0.0 or a == 0.0 or e == 0.0:
        raise InputError(f"only north-up grids (b == d == 0) are supported, got {coeffs}")
    height, width = int(shape[0]), int(shape[1])
    r0, c0, h, w = (0, 0, height, width) if window is None else (int(x) for x in window)
    if h < 0 or w < 0:
        raise InputError(f"negative window {window}")
    rps = int(rows_per_scan)
    if rps < 1:
        raise InputError(f"rows_per_scan must be >= 1, got {rows_per_scan}")
    centre = c + a * width / 2.0
    out = np.full((vals.shape[0], h, w), np.nan, dtype=np.float32)
    if h == 0 or w == 0 or la.size == 0 or vals.shape[0] == 0:
        return out[0] if squeeze else out
    n_band_rows = max(1, min(h, 4 * numba.get_num_threads(), -(-h // 8)))
    if method == "bilinear":
        lo_s, hi_s = _segment_row_ranges(la, rps, 1, f, e, 0.0)
        _bilinear(la, lo, vals, rps, a, c, e, f, centre, r0, c0, h, w,
                  bool(fill_scan_gaps), lo_s, hi_s, n_band_rows, out)
    elif method == "nearest":
        rad = float(radius)
        if not rad > 0:
            raise InputError(f"radius must be > 0, got {radius}")
        lo_s, hi_s = _segment_row_ranges(la, rps, 0, f, e, rad)
        _nearest(la, lo, vals, rps, a, c, e, f, centre, r0, c0, h, w, rad,
                 lo_s, hi_s, n_band_rows, out)
    else:
        lo_s, hi_s = _segment_row_ranges(la, rps, 0, f, e, 0.0)
        _bucket(la, lo, vals, rps, a, c, e, f, centre, r0, c0, h, w,
                lo_s, hi_s, n_band_rows, out)
    return out[0] if squeeze else out
