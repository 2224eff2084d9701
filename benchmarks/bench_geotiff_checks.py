"""GeoTIFF integrity checks: a checked read (:func:`verify_blocks` + GDAL) beside GDAL's plain
read it replaces, for LZW (structure scan) and deflate (zlib checksums) tiles.

The ratio ``time_checked / time_plain`` is the price of refusing damaged blocks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from firesmoke.io._core.geotiff import verify_blocks


def _write(path: Path, compress: str) -> Path:
    yy, xx = np.mgrid[0:1024, 0:1024]
    rng = np.random.default_rng(0)
    px = np.stack([1000 + 300 * np.sin(yy / 9.0 + b) + 200 * np.cos(xx / 7.0)
                   + rng.integers(0, 40, yy.shape) for b in range(4)]).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=1024, height=1024, count=4,
                       dtype="uint16", crs="EPSG:32631", transform=from_origin(0, 0, 10, 10),
                       compress=compress, predictor=2, tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(px)
    return path


class CheckedRead:
    """A 1024 x 1024 x 4 uint16 GeoTIFF in 256 px tiles, read whole."""

    params = ("lzw", "deflate")
    param_names = ("compress",)
    timeout = 300

    def setup(self, compress):
        self.tmp = Path(tempfile.mkdtemp())
        self.path = _write(self.tmp / f"{compress}.tif", compress)
        with rasterio.open(self.path) as src:
            verify_blocks(src, self.path)  # compile the Numba kernel outside the timing

    def teardown(self, compress):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_plain(self, compress):
        with rasterio.Env(GDAL_CACHEMAX=1), rasterio.open(self.path) as src:
            src.read()

    def time_checked(self, compress):
        with rasterio.Env(GDAL_CACHEMAX=1), rasterio.open(self.path) as src:
            verify_blocks(src, self.path)
            src.read()
