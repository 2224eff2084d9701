"""Hotspot rasterisation: the firesmoke kernel beside the BA-Net reference method.

One year (365 days) of 1,000,000 synthetic detections on the PI grid (800 x 1500), output
the ``(365, 800, 1500)`` float32 cube of log1p(daily FRP sum) in every method:

* ``time_firesmoke_kernel``: :func:`firesmoke.kernels.hotspots.rasterize_points`, one pass
  over the points (GDAL-identical cells, float64 sums);
* ``time_numpy_add_at``: GDAL's cell arithmetic in numpy, then ``np.unique`` + ``np.add.at``
  over the touched (day, cell) pairs (a cube-sized float64 accumulator would need 3.5 GB);
* ``time_reference_rasterio_per_day``: the reference method: for each day, filter the table
  for that day, build GeoJSON points and ``rasterio.features.rasterize`` them with
  ``MergeAlg.add`` into a float64 grid, then ``log1p``.

The ``*_into_buffer`` variants write into a cube allocated (and first touched) in
``setup``: a fresh 1.75 GB cube costs its page faults (83 % of its pages get a detection
here), which on a small VM is most of the kernel's time and the same for every method.

``setup_cache`` checks once that all three give identical cubes (the reference on every
5th day, to keep ``asv run --quick`` short; the unit tests compare every day on smaller
cases). The reference takes about a minute per run.
"""

from __future__ import annotations

import numpy as np
import rasterio.features
from rasterio.enums import MergeAlg

from firesmoke.grid import Region
from firesmoke.kernels.hotspots import gdal_inverse_geotransform, rasterize_points

N_POINTS = 1_000_000
N_DAYS = 365


def make_points(region: Region, n: int = N_POINTS, n_days: int = N_DAYS, seed: int = 0):
    """Clustered detections (fires) over and around the region, FRP gamma-distributed."""
    rng = np.random.default_rng(seed)
    left, bottom, right, top = region.bbox
    n_fires = n // 20
    fx = rng.uniform(left - 0.2, right + 0.2, n_fires)
    fy = rng.uniform(bottom - 0.2, top + 0.2, n_fires)
    fd = rng.integers(0, n_days, n_fires)
    k = rng.integers(0, n_fires, n)
    lon = fx[k] + rng.normal(0, 0.02, n)
    lat = fy[k] + rng.normal(0, 0.02, n)
    day = np.clip(fd[k] + rng.integers(-3, 4, n), 0, n_days - 1)
    frp = rng.gamma(1.3, 15.0, n)
    return lat, lon, day.astype(np.int64), frp


def kernel_cube(lat, lon, day, frp, region, out=None):
    grids = rasterize_points(lat, lon, day, frp, region.transform, region.shape, N_DAYS,
                             stats=("log1p_frp",),
                             out=None if out is None else {"log1p_frp": out})
    return grids["log1p_frp"]


def numpy_add_at_cube(lat, lon, day, frp, region):
    h, w = region.shape
    ig = gdal_inverse_geotransform(region.transform)
    px = ig[0] + lon * ig[1] + lat * ig[2]
    py = ig[3] + lon * ig[4] + lat * ig[5]
    ok = (px >= 0) & (px < w) & (py >= 0) & (py < h) & (day >= 0) & (day < N_DAYS)
    flat = (day[ok] * h + np.floor(py[ok]).astype(np.int64)) * w + np.floor(px[ok]).astype(np.int64)
    cells, inverse = np.unique(flat, return_inverse=True)
    acc = np.zeros(cells.size)
    np.add.at(acc, inverse, frp[ok])
    out = np.zeros(N_DAYS * h * w, dtype=np.float32)
    out[cells] = np.log1p(acc)
    return out.reshape(N_DAYS, h, w)


def reference_day(lat, lon, day, frp, region, d):
    m = day == d
    shapes = [({"type": "Point", "coordinates": (x, y)}, v)
              for x, y, v in zip(lon[m].tolist(), lat[m].tolist(), frp[m].tolist(), strict=True)]
    if not shapes:
        return np.zeros(region.shape, dtype=np.float32)
    img = rasterio.features.rasterize(shapes, out_shape=region.shape, transform=region.transform,
                                      merge_alg=MergeAlg.add, dtype="float64")
    return np.log1p(img).astype(np.float32)


def reference_cube(lat, lon, day, frp, region, out=None):
    if out is None:
        out = np.zeros((N_DAYS, *region.shape), dtype=np.float32)
    for d in range(N_DAYS):
        out[d] = reference_day(lat, lon, day, frp, region, d)
    return out


class HotspotRasterisation:
    """1e6 detections, 365 days, PI grid (800 x 1500): kernel vs np.add.at vs reference."""

    timeout = 1200
    number = 1
    repeat = 1
    warmup_time = 0

    def setup_cache(self):
        region = Region.named("PI")
        lat, lon, day, frp = make_points(region)
        ours = kernel_cube(lat, lon, day, frp, region)
        assert ours.any()
        np.testing.assert_array_equal(numpy_add_at_cube(lat, lon, day, frp, region), ours)
        for d in range(0, N_DAYS, 5):
            np.testing.assert_array_equal(reference_day(lat, lon, day, frp, region, d), ours[d])
        return {"lat": lat, "lon": lon, "day": day, "frp": frp}

    def setup(self, data):
        self.region = Region.named("PI")
        self.args = (data["lat"], data["lon"], data["day"], data["frp"], self.region)
        kernel_cube(*self.args)  # compiled (or loaded from the numba cache) before timing
        # a cube buffer reused by the *_into_buffer variants (first touch paid here)
        self.buffer = np.ones((N_DAYS, *self.region.shape), dtype=np.float32)

    def teardown(self, data):
        del self.buffer

    def time_firesmoke_kernel(self, data):
        kernel_cube(*self.args)

    def time_numpy_add_at(self, data):
        numpy_add_at_cube(*self.args)

    def time_reference_rasterio_per_day(self, data):
        reference_cube(*self.args)

    def time_firesmoke_kernel_into_buffer(self, data):
        kernel_cube(*self.args, out=self.buffer)

    def time_reference_rasterio_per_day_into_buffer(self, data):
        reference_cube(*self.args, out=self.buffer)

    # the kernels take ~0.1-0.3 s: several samples (median) outside ``--quick``
    time_firesmoke_kernel.repeat = 7
    time_firesmoke_kernel_into_buffer.repeat = 7
    time_numpy_add_at.repeat = 3


class HotspotStatsOnePass:
    """All four statistics at once (sum, count, max, log1p) in one pass, 30 days."""

    number = 1
    repeat = 3

    def setup(self):
        self.region = Region.named("PI")
        lat, lon, day, frp = make_points(self.region, n=100_000, n_days=30, seed=1)
        self.args = (lat, lon, day, frp, self.region.transform, self.region.shape, 30)
        rasterize_points(*self.args, stats=("count",))

    def time_all_stats(self):
        rasterize_points(*self.args, stats=("frp_sum", "count", "frp_max", "log1p_frp"))

    def peakmem_all_stats(self):
        rasterize_points(*self.args, stats=("frp_sum", "count", "frp_max", "log1p_frp"))
