"""Hotspot rasterisation kernel vs rasterio (cell assignment) and a plain numpy reference."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import rasterio.features
from affine import Affine
from rasterio.enums import MergeAlg

from firesmoke.kernels.hotspots import (
    STATS,
    gdal_inverse_geotransform,
    point_cells,
    rasterize_points,
)

# a small grid with the PI pixel size (0.01 is not exact in binary: the hard case)
T = Affine(0.01, 0.0, -10.0, 0.0, -0.01, 44.0)
SHAPE = (60, 90)


# --------------------------------------------------------------------------- references
def rio_sum(lon, lat, values, transform, shape):
    """rasterio/GDAL: burn each point with MergeAlg.add into a float64 grid."""
    shapes = [({"type": "Point", "coordinates": (float(x), float(y))}, float(v))
              for x, y, v in zip(lon, lat, values, strict=True)]
    if not shapes:
        return np.zeros(shape)
    return rasterio.features.rasterize(
        shapes, out_shape=shape, transform=transform, merge_alg=MergeAlg.add, dtype="float64"
    )


def numpy_cells(lon, lat, transform, shape):
    """GDAL's arithmetic written with numpy: inverse geotransform, left to right, floor."""
    a, b, c, d, e, f = tuple(transform)[:6]
    assert b == 0 and d == 0
    ig0, ig1, ig3, ig5 = -c / a, 1.0 / a, -f / e, 1.0 / e
    px = ig0 + lon * ig1 + lat * 0.0
    py = ig3 + lon * 0.0 + lat * ig5
    ok = (px >= 0) & (px < shape[1]) & (py >= 0) & (py < shape[0])
    col = np.where(ok, np.floor(np.where(ok, px, 0)), -1).astype(np.int64)
    row = np.where(ok, np.floor(np.where(ok, py, 0)), -1).astype(np.int64)
    return row, col


def numpy_reference(lat, lon, day, value, transform, shape, n_days):
    """Plain numpy: per-day sum/count/max with np.add.at / np.maximum.at."""
    row, col = numpy_cells(lon, lat, transform, shape)
    keep = (row >= 0) & (day >= 0) & (day < n_days) & np.isfinite(value)
    h, w = shape
    flat = (day[keep] * h + row[keep]) * w + col[keep]
    s = np.zeros(n_days * h * w)
    n = np.zeros(n_days * h * w)
    m = np.full(n_days * h * w, -np.inf)
    np.add.at(s, flat, value[keep])
    np.add.at(n, flat, 1)
    np.maximum.at(m, flat, value[keep])
    m[n == 0] = 0
    shp = (n_days, h, w)
    return {
        "frp_sum": s.reshape(shp).astype(np.float32),
        "count": n.reshape(shp).astype(np.float32),
        "frp_max": m.reshape(shp).astype(np.float32),
        "log1p_frp": np.log1p(s).reshape(shp).astype(np.float32),
    }, int((~keep).sum())


def edge_points(transform, shape, rng, n):
    """Points exactly on pixel edges/corners and the outer bounds, in two spellings."""
    h, w = shape
    cols = rng.integers(0, w + 1, n)
    rows = rng.integers(0, h + 1, n)
    a, _, c, _, e, f = tuple(transform)[:6]
    lon = np.concatenate([c + cols * a, np.round(c + cols * a, 6), c + (cols + 0.5) * a])
    lat = np.concatenate([f + rows * e, np.round(f + rows * e, 6), f + rows * e])
    return lat, lon


# --------------------------------------------------------------------------- tests
def test_cells_match_rasterio_on_edges_corners_and_bounds():
    rng = np.random.default_rng(0)
    lat, lon = edge_points(T, SHAPE, rng, 3000)
    # include the four corners and the four outer bounds explicitly
    h, w = SHAPE
    corners_lon = np.array([T.c, T.c + w * T.a, T.c, T.c + w * T.a, T.c + 5 * T.a, T.c + w * T.a])
    corners_lat = np.array([T.f, T.f, T.f + h * T.e, T.f + h * T.e, T.f + h * T.e, T.f + 7 * T.e])
    lat = np.concatenate([lat, corners_lat])
    lon = np.concatenate([lon, corners_lon])
    # one point at a time through rasterio gives its exact cell
    sel = rng.choice(lat.size - 6, 600, replace=False)
    sel = np.concatenate([sel, np.arange(lat.size - 6, lat.size)])
    rows, cols = point_cells(lat[sel], lon[sel], T, SHAPE)
    for k, i in enumerate(sel):
        img = rio_sum([lon[i]], [lat[i]], [1.0], T, SHAPE)
        nz = np.argwhere(img)
        expect = tuple(nz[0]) if len(nz) else (-1, -1)
        assert (rows[k], cols[k]) == expect, (lon[i], lat[i])
    # the documented GDAL rules on the bounds
    r, c = point_cells(corners_lat, corners_lon, T, SHAPE)
    assert (r[0], c[0]) == (0, 0)  # upper-left corner: burnt in the first pixel
    assert r[1] == -1 and r[2] == -1 and r[3] == -1  # right / bottom bounds: not burnt
    assert r[4] == -1 and r[5] == -1


def test_all_edge_points_match_rasterio_in_bulk():
    rng = np.random.default_rng(1)
    lat, lon = edge_points(T, SHAPE, rng, 20000)
    vals = rng.uniform(0.1, 100, lat.size)
    got = rasterize_points(lat, lon, np.zeros(lat.size, int), vals, T, SHAPE, 1,
                           stats=("frp_sum", "count"))
    ref_sum = rio_sum(lon, lat, vals, T, SHAPE)
    ref_cnt = rio_sum(lon, lat, np.ones_like(vals), T, SHAPE)
    np.testing.assert_array_equal(got["count"][0], ref_cnt.astype(np.float32))
    np.testing.assert_array_equal(got["frp_sum"][0], ref_sum.astype(np.float32))


@pytest.mark.parametrize("transform", [
    Affine(0.01, 0.0, -10.0, 0.0, -0.01, 44.0),
    Affine(0.25, 0.0, 146.0, 0.0, -0.25, -26.0),  # exact binary pixel size
    Affine(1 / 3, 0.0, 10.1, 0.0, -0.2, 55.3),
    Affine(0.02, 0.005, 3.0, 0.004, -0.02, 40.0),  # rotated: GDAL's general inverse
])
def test_random_points_match_rasterio(transform):
    rng = np.random.default_rng(2)
    h, w = 40, 50
    corners = [transform @ (0, 0), transform @ (w, h), transform @ (0, h), transform @ (w, 0)]
    xs, ys = zip(*corners, strict=True)
    n = 5000
    lon = rng.uniform(min(xs) - 0.1, max(xs) + 0.1, n)
    lat = rng.uniform(min(ys) - 0.1, max(ys) + 0.1, n)
    vals = rng.gamma(1.5, 10.0, n)
    got = rasterize_points(lat, lon, np.zeros(n, int), vals, transform, (h, w), 1,
                           stats=("frp_sum", "count"))
    dropped = got.n_dropped
    ref_sum = rio_sum(lon, lat, vals, transform, (h, w))
    ref_cnt = rio_sum(lon, lat, np.ones(n), transform, (h, w))
    np.testing.assert_array_equal(got["count"][0], ref_cnt.astype(np.float32))
    np.testing.assert_array_equal(got["frp_sum"][0], ref_sum.astype(np.float32))
    assert dropped == n - int(ref_cnt.sum())
    assert 0 < dropped < n


def test_matches_numpy_reference_all_stats_with_drops():
    rng = np.random.default_rng(3)
    n, n_days = 40000, 9
    lat = rng.uniform(43.3, 44.1, n)  # part of them north of the grid
    lon = rng.uniform(-10.1, -9.0, n)  # part west of it
    day = rng.integers(-2, n_days + 2, n)  # some days out of range
    val = rng.gamma(1.2, 15.0, n)
    lat[:50] = np.nan
    val[50:80] = np.nan
    val[80:90] = np.inf
    # many detections in one cell: float64 accumulation matters
    lat[100:2100] = 43.995
    lon[100:2100] = -9.995
    day[100:2100] = 4
    val[100:2100] = rng.uniform(0, 1e4, 2000)
    got = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=STATS)
    dropped = got.n_dropped
    ref, ref_dropped = numpy_reference(lat, lon, day, val, T, SHAPE, n_days)
    assert dropped == ref_dropped
    assert dropped > 100
    for s in STATS:
        assert got[s].dtype == np.float32 and got[s].shape == (n_days, *SHAPE)
        np.testing.assert_array_equal(got[s], ref[s], err_msg=s)
    assert got["count"][4, 0, 0] == 2000
    np.testing.assert_array_equal(
        got["frp_sum"][4, 0, 0], np.float32(np.sum(val[100:2100], dtype=np.float64)))


def test_per_day_equals_rasterio_per_day():
    """The reference method: filter the table for each day, rasterize with add."""
    rng = np.random.default_rng(4)
    n, n_days = 6000, 5
    lat = rng.uniform(43.4, 44.0, n)
    lon = rng.uniform(-10.0, -9.1, n)
    day = rng.integers(0, n_days, n)
    val = rng.gamma(1.5, 10, n)
    got = rasterize_points(lat, lon, day, val, T, SHAPE, n_days)  # default: log1p_frp
    assert list(got) == ["log1p_frp"]
    for d in range(n_days):
        m = day == d
        ref = np.log1p(rio_sum(lon[m], lat[m], val[m], T, SHAPE)).astype(np.float32)
        np.testing.assert_array_equal(got["log1p_frp"][d], ref)


def test_result_does_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    n, n_days = 30000, 23
    lat = rng.uniform(43.4, 44.0, n)
    lon = rng.uniform(-10.0, -9.1, n)
    day = rng.integers(0, n_days, n)
    val = rng.gamma(1.5, 10, n)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=STATS)
    finally:
        numba.set_num_threads(before)
    many = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=STATS)
    for s in STATS:
        np.testing.assert_array_equal(one[s], many[s])


def test_out_buffers_are_overwritten_entirely():
    rng = np.random.default_rng(6)
    n, n_days = 5000, 4
    lat = rng.uniform(43.4, 44.0, n)
    lon = rng.uniform(-10.0, -9.1, n)
    day = rng.integers(0, n_days, n)
    val = rng.gamma(1.5, 10, n)
    expect = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=("frp_sum", "count"))
    bufs = {s: np.full((n_days, *SHAPE), 7.0, np.float32) for s in ("frp_sum", "count")}
    got = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=("frp_sum", "count"),
                           out=bufs)
    for s in ("frp_sum", "count"):
        assert got[s] is bufs[s]
        np.testing.assert_array_equal(bufs[s], expect[s])
    empty = rasterize_points([], [], [], [], T, SHAPE, n_days, stats="count", out=bufs)
    assert not empty["count"].any()
    with pytest.raises(ValueError, match="C-contiguous float32"):
        rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats="count",
                         out={"count": np.zeros((n_days, *SHAPE))})


def test_empty_and_degenerate_inputs():
    got = rasterize_points([], [], [], [], T, SHAPE, 3, stats=("count", "frp_max"))
    assert got.n_dropped == 0
    assert got["count"].shape == (3, *SHAPE) and not got["count"].any()
    assert not got["frp_max"].any()
    got = rasterize_points([43.5], [-9.5], [0], [5.0], T, SHAPE, 0, stats="frp_sum")
    assert got["frp_sum"].shape == (0, *SHAPE) and got.n_dropped == 1
    with pytest.raises(ValueError, match="unknown stat"):
        rasterize_points([1.0], [1.0], [0], [1.0], T, SHAPE, 1, stats=("mean",))
    with pytest.raises(ValueError, match="one size"):
        rasterize_points([1.0, 2.0], [1.0], [0], [1.0], T, SHAPE, 1)


def test_gdal_inverse_geotransform_north_up():
    ig = gdal_inverse_geotransform(T)
    assert ig[1] == 1.0 / 0.01 and ig[0] == 10.0 / 0.01 and ig[2] == 0.0
    with pytest.raises(ValueError, match="not invertible"):
        gdal_inverse_geotransform((1.0, 1.0, 0.0, 1.0, 1.0, 0.0))


def test_window_equals_the_window_of_the_whole_grid():
    rng = np.random.default_rng(11)
    n, n_days = 20000, 5
    lat = rng.uniform(43.3, 44.1, n)
    lon = rng.uniform(-10.1, -9.0, n)
    day = rng.integers(-1, n_days + 1, n)
    val = rng.gamma(1.2, 15.0, n)
    whole = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=STATS)
    for window in [(0, 0, *SHAPE), (7, 13, 21, 17), (SHAPE[0] - 5, SHAPE[1] - 9, 5, 9), (3, 4, 0, 6)]:
        r0, c0, h, w = window
        got = rasterize_points(lat, lon, day, val, T, SHAPE, n_days, stats=STATS, window=window)
        for s in STATS:
            assert got[s].shape == (n_days, h, w)
            np.testing.assert_array_equal(got[s], whole[s][:, r0:r0 + h, c0:c0 + w], err_msg=s)
    with pytest.raises(ValueError, match="not inside"):
        rasterize_points(lat, lon, day, val, T, SHAPE, n_days, window=(0, 0, SHAPE[0] + 1, 2))
