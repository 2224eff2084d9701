"""Swath -> grid regridding vs plain numpy/Python references on synthetic VIIRS-like swaths."""

from __future__ import annotations

import dask.array as da
import numba
import numpy as np
import pytest

from firesmoke.cube import ops
from firesmoke.kernels.regrid import regrid_swath

RPS = 16


def swath(n_scans=5, rps=RPS, n_pix=48, lat0=40.30, lon0=10.0, dy=0.0068, dx=0.0085,
          bowtie=0.7, heading=0.12):
    """A VIIRS-like swath: scans of ``rps`` lines whose footprint grows towards the scan
    edges (bow-tie: consecutive scans overlap there, abut at nadir)."""
    i = np.arange(n_scans * rps)
    j = np.arange(n_pix)
    scan = i // rps
    r = i % rps - (rps - 1) / 2
    xoff = (j - (n_pix - 1) / 2) / ((n_pix - 1) / 2)
    growth = 1.0 + bowtie * xoff**2
    along = scan[:, None] * rps * dy + r[:, None] * dy * growth[None, :]
    across = ((j - (n_pix - 1) / 2) * dx * (1 + 0.3 * xoff**2))[None, :] + 0 * along
    lat = lat0 - along + heading * across
    lon = lon0 + across + heading * along
    return lat, lon


def linear_field(lat, lon):
    return 2.0 * lat - 3.0 * lon + 5.0


def grid_for(lat, lon, px=0.01, margin=0.03):
    left = np.floor((np.nanmin(lon) - margin) / px) * px
    top = np.ceil((np.nanmax(lat) + margin) / px) * px
    w = int(np.ceil((np.nanmax(lon) + margin - left) / px))
    h = int(np.ceil((top - np.nanmin(lat) + margin) / px))
    return (px, 0.0, float(left), 0.0, -px, float(top)), (h, w)


def centres(transform, shape):
    a, _, c, _, e, f = transform
    h, w = shape
    return f + (np.arange(h) + 0.5) * e, c + (np.arange(w) + 0.5) * a


# --------------------------------------------------------------------------- references
def _near(x, ref):
    return x - 360.0 * np.floor((x - ref) / 360.0 + 0.5)


def _cross2(p, q):
    return p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]


def _newton_inverse(p, q00, q01, q10, q11):
    s = t = 0.5
    for _ in range(50):
        pos = (1 - s) * (1 - t) * q00 + s * (1 - t) * q01 + (1 - s) * t * q10 + s * t * q11
        ds = (1 - t) * (q01 - q00) + t * (q11 - q10)
        dt = (1 - s) * (q10 - q00) + s * (q11 - q01)
        jac = np.array([[ds[0], dt[0]], [ds[1], dt[1]]])
        try:
            step = np.linalg.solve(jac, pos - p)
        except np.linalg.LinAlgError:
            return None
        s, t = s - step[0], t - step[1]
        if abs(step[0]) + abs(step[1]) < 1e-14:
            break
    pos = (1 - s) * (1 - t) * q00 + s * (1 - t) * q01 + (1 - s) * t * q10 + s * t * q11
    if np.hypot(*(pos - p)) > 1e-9 or not (-1e-9 <= s <= 1 + 1e-9 and -1e-9 <= t <= 1 + 1e-9):
        return None
    return min(max(s, 0), 1), min(max(t, 0), 1)


def python_bilinear(lat, lon, values, transform, shape, rps=RPS, fill_gaps=True):
    """Quad by quad in Python: Newton inverse bilinear, rule (priority, area, order)."""
    a, _, c, _, e, f = transform
    h, w = shape
    centre = c + a * w / 2
    nb = values.shape[0]
    out = np.full((nb, h, w), np.nan)
    key = {}
    n_lines, n_pix = lat.shape
    for i in range(n_lines - 1):
        cross = i % rps == rps - 1
        if cross and not fill_gaps:
            continue
        for j in range(n_pix - 1):
            idx = [(i, j), (i, j + 1), (i + 1, j), (i + 1, j + 1)]
            la = np.array([lat[k] for k in idx])
            lo = np.array([lon[k] for k in idx])
            if not (np.isfinite(la).all() and np.isfinite(lo).all()):
                continue
            lo = np.array([lo[0]] + [_near(x, lo[0]) for x in lo[1:]])
            mid = lo.mean()
            lo = lo + (_near(mid, centre) - mid)
            uv = np.stack([(lo - c) / a, (la - f) / e], axis=1)
            area = 0.5 * abs(_cross2(uv[3] - uv[0], uv[2] - uv[1]))
            if area <= 0:
                continue
            if cross:
                ring = uv[[0, 1, 3, 2]]
                edges = np.roll(ring, -1, axis=0) - ring
                turns = _cross2(edges, np.roll(edges, -1, axis=0))
                if not ((turns > 0).all() or (turns < 0).all()):
                    continue
            pri = 1 if cross else 0
            for gi in range(max(int(np.ceil(uv[:, 1].min() - 0.5)), 0),
                            min(int(np.floor(uv[:, 1].max() - 0.5)), h - 1) + 1):
                for gj in range(max(int(np.ceil(uv[:, 0].min() - 0.5)), 0),
                                min(int(np.floor(uv[:, 0].max() - 0.5)), w - 1) + 1):
                    if key.get((gi, gj), (9, np.inf)) <= (pri, area):
                        continue
                    st = _newton_inverse(np.array([gj + 0.5, gi + 0.5]), *uv)
                    if st is None:
                        continue
                    s, t = st
                    key[(gi, gj)] = (pri, area)
                    wts = np.array([(1 - s) * (1 - t), s * (1 - t), (1 - s) * t, s * t])
                    for b in range(nb):
                        v = np.array([values[b][k] for k in idx])
                        ok = ~np.isnan(v)
                        out[b, gi, gj] = (wts[ok] * v[ok]).sum() / wts[ok].sum() if wts[ok].sum() > 0 else np.nan
    return out


def numpy_nearest(lat, lon, values, transform, shape, radius):
    a, _, c, _, e, f = transform
    h, w = shape
    centre = c + a * w / 2
    pu = ((_near(lon, centre) - c) / a).ravel()
    pv = ((lat - f) / e).ravel()
    gv, gu = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    du = gu.ravel()[:, None] - pu[None, :]
    dv = gv.ravel()[:, None] - pv[None, :]
    d2 = du * du + dv * dv
    d2[:, ~np.isfinite(pu + pv)] = np.inf
    out = np.full((values.shape[0], h * w), np.nan)
    for b in range(values.shape[0]):
        db = np.where(np.isnan(values[b].ravel())[None, :], np.inf, d2)
        k = np.argmin(db, axis=1)
        best = db[np.arange(h * w), k]
        ok = best <= radius * radius
        out[b, ok] = values[b].ravel()[k[ok]]
    return out.reshape(-1, h, w)


def numpy_bucket(lat, lon, values, transform, shape):
    a, _, c, _, e, f = transform
    h, w = shape
    centre = c + a * w / 2
    pu = (_near(lon, centre) - c) / a
    pv = (lat - f) / e
    ok = np.isfinite(pu) & np.isfinite(pv) & (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
    cell = np.floor(pv[ok]).astype(int) * w + np.floor(pu[ok]).astype(int)
    out = np.full((values.shape[0], h * w), np.nan)
    for b in range(values.shape[0]):
        v = values[b][ok]
        good = ~np.isnan(v)
        s = np.zeros(h * w)
        n = np.zeros(h * w)
        np.add.at(s, cell[good], v[good])
        np.add.at(n, cell[good], 1)
        out[b, n > 0] = s[n > 0] / n[n > 0]
    return out.reshape(-1, h, w)


# --------------------------------------------------------------------------- bilinear
def test_bilinear_reproduces_linear_field_across_bowtie():
    lat, lon = swath(n_scans=6, n_pix=60)
    vals = linear_field(lat, lon)
    t, shape = grid_for(lat, lon)
    out = regrid_swath(lat, lon, vals, t, shape, "bilinear")
    assert out.dtype == np.float32 and out.shape == shape
    yc, xc = centres(t, shape)
    truth = linear_field(yc[:, None], xc[None, :])
    ok = np.isfinite(out)
    assert ok.sum() > 0.5 * out.size
    np.testing.assert_allclose(out[ok], truth[ok], atol=2e-5)
    # smooth non-linear field: close (second-order error of ~1 km quads)
    smooth = np.sin(5 * lat) + np.cos(4 * lon)
    out2 = regrid_swath(lat, lon, smooth, t, shape, "bilinear")
    truth2 = np.sin(5 * yc[:, None]) + np.cos(4 * xc[None, :])
    assert np.nanmax(np.abs(out2 - truth2)) < 2e-3


def test_bilinear_matches_python_reference_bowtie_rule():
    """Values constant per scan: the chosen scan in the bow-tie overlap is visible."""
    lat, lon = swath(n_scans=4, n_pix=30, bowtie=0.9)
    scan_id = (np.arange(lat.shape[0]) // RPS)[:, None] * np.ones((1, lat.shape[1]))
    vals = np.stack([scan_id, linear_field(lat, lon)])
    vals[0, 20, 5] = np.nan  # NaN values are left out of the interpolation
    lat = lat.copy()
    lat[40, 12] = np.nan  # invalid geolocation: its 4 quads are skipped
    t, shape = grid_for(lat, lon)
    got = regrid_swath(lat, lon, vals, t, shape, "bilinear")
    ref = python_bilinear(lat, lon, vals, t, shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-5, equal_nan=True)
    # the overlap really exists: some cells take a value strictly between two scans
    frac = got[0][np.isfinite(got[0])] % 1
    assert ((frac > 1e-3) & (frac < 1 - 1e-3)).any()


def test_bowtie_overlap_takes_less_stretched_quad():
    # two scans of 2 lines; the quads overlap around cell centre (0.5, 0.5) of a 1-px grid
    t = (1.0, 0.0, 0.0, 0.0, -1.0, 1.0)  # cell (0, 0) centre at lon 0.5, lat 0.5
    lon = np.array([[0.0, 1.0], [0.0, 1.0], [0.2, 0.8], [0.2, 0.8]])
    lat = np.array([[1.0, 1.0], [0.0, 0.0], [0.8, 0.8], [0.2, 0.2]])  # scan 1 is smaller
    vals = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [2.0, 2.0]])
    out = regrid_swath(lat, lon, vals, t, (1, 1), rows_per_scan=2)
    assert out[0, 0] == 2.0
    # same size: the first scan in swath order wins
    lat2 = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    lon2 = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert regrid_swath(lat2, lon2, vals, t, (1, 1), rows_per_scan=2)[0, 0] == 1.0


def test_scan_gaps_filled_only_where_no_scan_covers():
    lat, lon = swath(n_scans=4, n_pix=40, bowtie=0.0, dy=0.011)  # scans abut, no overlap
    vals = linear_field(lat, lon)
    t, shape = grid_for(lat, lon)
    filled = regrid_swath(lat, lon, vals, t, shape, fill_scan_gaps=True)
    plain = regrid_swath(lat, lon, vals, t, shape, fill_scan_gaps=False)
    both = np.isfinite(plain)
    np.testing.assert_array_equal(filled[both], plain[both])
    extra = np.isfinite(filled) & ~both
    assert extra.sum() > 10  # the gaps between scans
    yc, xc = centres(t, shape)
    truth = linear_field(yc[:, None], xc[None, :])
    np.testing.assert_allclose(filled[extra], truth[extra], atol=2e-5)


def test_swath_edge_is_nan_and_fill_values_ignored():
    lat, lon = swath(n_scans=3, n_pix=24)
    vals = linear_field(lat, lon)
    t, shape = grid_for(lat, lon, margin=0.05)
    out = regrid_swath(lat, lon, vals, t, shape)
    # margins (beyond the swath edges) stay NaN
    assert np.isnan(out[:, :3]).all() and np.isnan(out[:, -3:]).all()
    assert np.isnan(out[:3]).all() and np.isnan(out[-3:]).all()
    # a fill value at one pixel: neighbours interpolate without it, nothing becomes NaN
    v2 = vals.copy()
    v2[17, 10] = np.nan
    out2 = regrid_swath(lat, lon, v2, t, shape)
    np.testing.assert_array_equal(np.isfinite(out2), np.isfinite(out))
    yc, xc = centres(t, shape)
    truth = linear_field(yc[:, None], xc[None, :])
    dev = np.abs(out2 - truth)[np.isfinite(out2)]
    # only the few cells inside the 4 quads around the fill pixel deviate (renormalised
    # weights of 3 corners), and only a little
    assert 1 <= (dev > 2e-5).sum() <= 6
    assert dev.max() < 0.02


@pytest.mark.parametrize("method", ["bilinear", "nearest", "bucket"])
def test_antimeridian(method):
    lat, lon = swath(n_scans=3, n_pix=40, lon0=179.9, heading=0.0)  # 179.7 .. 180.1
    wrapped = (lon + 180.0) % 360.0 - 180.0
    assert (wrapped < 0).any() and (wrapped > 179).any()
    vals = linear_field(lat, lon - 180.0)
    t_east, shape = grid_for(lat, lon)  # left ~179.6, right ~180.2
    a, _, c, _, e, f = t_east
    t_west = (a, 0.0, c - 360.0, 0.0, e, f)  # the same place spelled -180.4 .. -179.8
    ref = regrid_swath(lat, lon, vals, t_east, shape, method)
    assert np.isfinite(ref).sum() > 0.3 * ref.size
    # the same cells; values equal up to the rounding of lon +- 360 in the quad positions
    for lo_, t_ in [(wrapped, t_east), (wrapped, t_west), (lon - 360.0, t_west)]:
        got = regrid_swath(lat, lo_, vals, t_, shape, method)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-6, equal_nan=True)
    # a grid on the other side of the Earth sees nothing (no 360-degree-wide quads)
    far = (a, 0.0, c - 180.0, 0.0, e, f)
    assert np.isnan(regrid_swath(lat, wrapped, vals, far, shape, method)).all()


# --------------------------------------------------------------------------- nearest, bucket
@pytest.mark.parametrize("radius", [0.8, 1.5])
def test_nearest_matches_numpy(radius):
    lat, lon = swath(n_scans=2, n_pix=30)
    rng = np.random.default_rng(0)
    vals = np.stack([linear_field(lat, lon), rng.normal(size=lat.shape)]).astype(np.float32)
    vals[1][rng.random(lat.shape) < 0.2] = np.nan
    lat = lat.copy()
    lat[3, 4] = np.nan
    t, shape = grid_for(lat, lon)
    got = regrid_swath(lat, lon, vals, t, shape, "nearest", radius=radius)
    ref = numpy_nearest(lat, lon, vals, t, shape, radius)
    np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_bucket_matches_numpy():
    lat, lon = swath(n_scans=3, n_pix=40, dy=0.004, dx=0.004)  # several pixels per cell
    rng = np.random.default_rng(1)
    vals = np.stack([rng.normal(size=lat.shape), rng.normal(size=lat.shape)]).astype(np.float32)
    vals[0][rng.random(lat.shape) < 0.3] = np.nan
    t, shape = grid_for(lat, lon)
    got = regrid_swath(lat, lon, vals, t, shape, "bucket")
    ref = numpy_bucket(lat, lon, vals, t, shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-6, equal_nan=True)


# --------------------------------------------------------------------------- determinism, dask
@pytest.mark.parametrize("method", ["bilinear", "nearest", "bucket"])
def test_windows_dask_chunks_and_threads_give_identical_results(method):
    lat, lon = swath(n_scans=4, n_pix=50)
    vals = np.stack([linear_field(lat, lon), np.sin(30 * lat)]).astype(np.float32)
    t, shape = grid_for(lat, lon)
    full = ops.regrid_swath(lat, lon, vals, t, shape, method)
    for chunks in [(7, 11), (shape[0], 5)]:
        lazy = ops.regrid_swath(lat, lon, vals, t, shape, method, chunks=chunks)
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), full)
    dl = ops.regrid_swath(da.from_array(lat, chunks=(16, 20)), da.from_array(lon, chunks=20),
                          da.from_array(vals, chunks=(1, 30, 25)), t, shape, method)
    np.testing.assert_array_equal(dl.compute(), full)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = regrid_swath(lat, lon, vals, t, shape, method)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, full)


def test_bad_arguments():
    lat, lon = swath(n_scans=1, n_pix=4)
    with pytest.raises(ValueError, match="method"):
        regrid_swath(lat, lon, lat, (0.01, 0, 0, 0, -0.01, 0), (2, 2), "cubic")
    with pytest.raises(ValueError, match="north-up"):
        regrid_swath(lat, lon, lat, (0.01, 0.001, 0, 0, -0.01, 0), (2, 2))
    with pytest.raises(ValueError, match="lines, pixels"):
        regrid_swath(lat, lon, lat[:3], (0.01, 0, 0, 0, -0.01, 0), (2, 2))
