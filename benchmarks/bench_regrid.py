"""Swath -> grid regridding: firesmoke kernels beside straightforward alternatives.

A synthetic VIIRS-like swath (M-band geometry: 16-line scans with bow-tie overlap, 0.75 km
pixels growing towards the scan edges), 512 lines x 800 pixels, 3 bands, regridded onto
the 0.01 degree grid covering it:

* ``bilinear``: the kernel (quads, exact inverse bilinear, bow-tie rule) beside the same
  algorithm written with vectorised numpy (all quads at once, one pass per candidate-cell
  offset, priorities resolved with a sort) and, when installed, pyresample's
  ``NumpyBilinearResampler`` (optional: pyresample is not a firesmoke dependency).
  ``scipy.interpolate.griddata(method="linear")`` (Delaunay of all swath pixels) was tried
  too and left out: over 3 minutes per run on this swath;
* ``nearest``: the kernel beside a ``scipy.spatial.cKDTree`` query (and pyresample's
  ``resample_nearest``);
* ``bucket``: the kernel beside ``np.add.at``.

``setup`` checks agreement: bilinear and bucket equal the numpy versions (to rounding);
nearest equals the cKDTree query except on rare exactly-equidistant ties.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from firesmoke.kernels.regrid import regrid_swath

try:  # optional comparison only
    from pyresample import bilinear as pr_bilinear
    from pyresample import geometry as pr_geometry
    from pyresample import kd_tree as pr_kd_tree
except ImportError:  # pragma: no cover - depends on the environment
    pr_geometry = None

RPS = 16


def make_swath(n_scans=32, n_pix=800, lat0=41.0, lon0=-3.0, dy=0.0068, dx=0.0068,
               bowtie=0.7, heading=0.15):
    i = np.arange(n_scans * RPS)
    j = np.arange(n_pix)
    scan = i // RPS
    r = i % RPS - (RPS - 1) / 2
    xoff = (j - (n_pix - 1) / 2) / ((n_pix - 1) / 2)
    growth = 1.0 + bowtie * xoff**2
    along = scan[:, None] * RPS * dy + r[:, None] * dy * growth[None, :]
    across = ((j - (n_pix - 1) / 2) * dx * (1 + 0.5 * xoff**2))[None, :] + 0 * along
    lat = lat0 - along + heading * across
    lon = lon0 + across + heading * along
    return lat, lon


def grid_for(lat, lon, px=0.01):
    left = np.floor(lon.min() / px) * px
    top = np.ceil(lat.max() / px) * px
    w = int(np.ceil((lon.max() - left) / px))
    h = int(np.ceil((top - lat.min()) / px))
    return (px, 0.0, float(left), 0.0, -px, float(top)), (h, w)


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def numpy_quad_bilinear(lat, lon, values, transform, shape, rps=RPS):
    """The kernel's algorithm in vectorised numpy (no antimeridian handling)."""
    a, _, c, _, e, f = transform
    h, w = shape
    u = (lon - c) / a
    v = (lat - f) / e
    n_lines, n_pix = u.shape
    q = (slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None)), \
        (slice(1, None), slice(None, -1)), (slice(1, None), slice(1, None))
    u0, u1, u2, u3 = (u[s].ravel() for s in q)
    v0, v1, v2, v3 = (v[s].ravel() for s in q)
    crossing = np.repeat(np.arange(n_lines - 1) % rps == rps - 1, n_pix - 1)
    area = 0.5 * np.abs(_cross(u3 - u0, v3 - v0, u2 - u1, v2 - v1))
    x1 = _cross(u1 - u0, v1 - v0, u3 - u1, v3 - v1)
    x2 = _cross(u3 - u1, v3 - v1, u2 - u3, v2 - v3)
    x3 = _cross(u2 - u3, v2 - v3, u0 - u2, v0 - v2)
    x4 = _cross(u0 - u2, v0 - v2, u1 - u0, v1 - v0)
    convex = ((x1 > 0) & (x2 > 0) & (x3 > 0) & (x4 > 0)) | ((x1 < 0) & (x2 < 0) & (x3 < 0) & (x4 < 0))
    usable = np.isfinite(area) & (area > 0) & (~crossing | convex)
    ia = np.ceil(np.minimum(np.minimum(v0, v1), np.minimum(v2, v3)) - 0.5).astype(np.int64)
    ib = np.floor(np.maximum(np.maximum(v0, v1), np.maximum(v2, v3)) - 0.5).astype(np.int64)
    ja = np.ceil(np.minimum(np.minimum(u0, u1), np.minimum(u2, u3)) - 0.5).astype(np.int64)
    jb = np.floor(np.maximum(np.maximum(u0, u1), np.maximum(u2, u3)) - 0.5).astype(np.int64)
    eu, ev, fu, fv = u1 - u0, v1 - v0, u2 - u0, v2 - v0
    gu, gv = u0 - u1 - u2 + u3, v0 - v1 - v2 + v3
    k2 = _cross(gu, gv, fu, fv)
    parts = []
    qidx = np.arange(u0.size)
    for di in range(int((ib - ia).max()) + 1):
        for dj in range(int((jb - ja).max()) + 1):
            gi, gj = ia + di, ja + dj
            m = usable & (gi <= ib) & (gj <= jb) & (gi >= 0) & (gi < h) & (gj >= 0) & (gj < w)
            k = qidx[m]
            hu, hv = gj[m] + 0.5 - u0[k], gi[m] + 0.5 - v0[k]
            k1 = _cross(eu[k], ev[k], fu[k], fv[k]) + _cross(hu, hv, gu[k], gv[k])
            k0 = _cross(hu, hv, eu[k], ev[k])
            disc = np.maximum(k1 * k1 - 4.0 * k0 * k2[k], 0.0)
            sq = np.sqrt(disc)
            qq = np.where(k1 >= 0, -0.5 * (k1 + sq), -0.5 * (k1 - sq))
            with np.errstate(all="ignore"):
                for t in (k0 / qq, qq / k2[k]):
                    du, dv = eu[k] + t * gu[k], ev[k] + t * gv[k]
                    s = np.where(np.abs(du) >= np.abs(dv), (hu - t * fu[k]) / du,
                                 (hv - t * fv[k]) / dv)
                    ok = (t >= -1e-9) & (t <= 1 + 1e-9) & (s >= -1e-9) & (s <= 1 + 1e-9)
                    parts.append((gi[m][ok] * w + gj[m][ok], k[ok], np.clip(s[ok], 0, 1),
                                  np.clip(t[ok], 0, 1)))
    cell, k, s, t = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.lexsort((k, area[k], crossing[k], cell))
    cell, k, s, t = cell[order], k[order], s[order], t[order]
    first = np.r_[True, cell[1:] != cell[:-1]]
    cell, k, s, t = cell[first], k[first], s[first], t[first]
    wts = np.stack([(1 - s) * (1 - t), s * (1 - t), (1 - s) * t, s * t])
    out = np.full((values.shape[0], h * w), np.nan, dtype=np.float32)
    for b in range(values.shape[0]):
        vals = np.stack([values[b][sl].ravel()[k] for sl in q])
        good = ~np.isnan(vals)
        num = np.where(good, wts * vals, 0).sum(axis=0)
        den = np.where(good, wts, 0).sum(axis=0)
        with np.errstate(all="ignore"):
            out[b, cell] = np.where(den > 0, num / den, np.nan)
    return out.reshape(-1, h, w)


def numpy_kdtree_nearest(lat, lon, values, transform, shape, radius):
    a, _, c, _, e, f = transform
    u = ((lon - c) / a).ravel()
    v = ((lat - f) / e).ravel()
    tree = cKDTree(np.column_stack([u, v]))
    h, w = shape
    gv, gu = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    dist, idx = tree.query(np.column_stack([gu.ravel(), gv.ravel()]),
                           distance_upper_bound=radius)
    ok = np.isfinite(dist)
    out = np.full((values.shape[0], h * w), np.nan, dtype=np.float32)
    for b in range(values.shape[0]):
        out[b, ok] = values[b].ravel()[idx[ok]]
    return out.reshape(-1, h, w)


def numpy_bucket(lat, lon, values, transform, shape):
    a, _, c, _, e, f = transform
    h, w = shape
    u = (lon - c) / a
    v = (lat - f) / e
    ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    cell = np.floor(v[ok]).astype(np.int64) * w + np.floor(u[ok]).astype(np.int64)
    out = np.full((values.shape[0], h * w), np.nan, dtype=np.float32)
    n = np.bincount(cell, minlength=h * w)
    for b in range(values.shape[0]):
        s = np.zeros(h * w)
        np.add.at(s, cell, values[b][ok])
        out[b, n > 0] = s[n > 0] / n[n > 0]
    return out.reshape(-1, h, w)


class SwathRegrid:
    """512 x 800 swath pixels, 3 bands -> ~0.01 degree grid."""

    timeout = 600
    number = 1
    repeat = 3

    def setup(self):
        self.lat, self.lon = make_swath()
        rng = np.random.default_rng(0)
        lin = 2.0 * self.lat - 3.0 * self.lon
        self.values = np.stack([lin, np.sin(5 * self.lat), rng.random(self.lat.shape)]
                               ).astype(np.float32)
        self.transform, self.shape = grid_for(self.lat, self.lon)
        self.radius = 1.0
        # agreement checks (once)
        ours = regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape)
        ref = numpy_quad_bilinear(self.lat, self.lon, self.values, self.transform, self.shape)
        assert np.isfinite(ours).mean() > 0.5
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
        near = regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape,
                            "nearest", radius=self.radius)
        kd = numpy_kdtree_nearest(self.lat, self.lon, self.values, self.transform,
                                  self.shape, self.radius)
        same = np.isfinite(near) & np.isfinite(kd)
        assert np.mean(near[same] == kd[same]) > 0.999  # equidistant ties may differ
        np.testing.assert_array_equal(np.isfinite(near), np.isfinite(kd))
        buck = regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape, "bucket")
        np.testing.assert_allclose(buck, numpy_bucket(self.lat, self.lon, self.values,
                                                      self.transform, self.shape),
                                   rtol=1e-6, equal_nan=True)
        if pr_geometry is not None:
            a, _, c, _, e, f = self.transform
            h, w = self.shape
            self.swath_def = pr_geometry.SwathDefinition(lons=self.lon, lats=self.lat)
            self.area_def = pr_geometry.AreaDefinition(
                "grid", "grid", "grid", "EPSG:4326", w, h, (c, f + h * e, c + w * a, f))
            self.pr_values = np.moveaxis(self.values, 0, -1)

    def time_firesmoke_bilinear(self):
        regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape, "bilinear")

    def time_numpy_bilinear(self):
        numpy_quad_bilinear(self.lat, self.lon, self.values, self.transform, self.shape)

    def time_firesmoke_nearest(self):
        regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape, "nearest",
                     radius=self.radius)

    def time_scipy_ckdtree_nearest(self):
        numpy_kdtree_nearest(self.lat, self.lon, self.values, self.transform, self.shape,
                             self.radius)

    def time_firesmoke_bucket(self):
        regrid_swath(self.lat, self.lon, self.values, self.transform, self.shape, "bucket")

    def time_numpy_bucket(self):
        numpy_bucket(self.lat, self.lon, self.values, self.transform, self.shape)

    def time_pyresample_nearest(self):
        if pr_geometry is None:
            raise NotImplementedError("pyresample not installed")
        pr_kd_tree.resample_nearest(self.swath_def, self.pr_values, self.area_def,
                                    radius_of_influence=1500, fill_value=None)

    def time_pyresample_bilinear(self):
        if pr_geometry is None:
            raise NotImplementedError("pyresample not installed")
        resampler = pr_bilinear.NumpyBilinearResampler(self.swath_def, self.area_def,
                                                       radius_of_influence=5000, neighbours=32)
        resampler.resample(self.pr_values, fill_value=None)
