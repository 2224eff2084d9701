"""Cube building from synthetic granules: throughput and peak memory vs number of days.

A 512 x 512 px scenario is generated once (``setup_cache``); the cube of its first
``days`` days is built and written to Zarr. ``track_pixel_days_per_second`` records the
throughput; ``peakmem_build_and_write`` must stay flat as ``days`` grows (tasks are per
day and block, so memory is bounded by chunks, not by the period).

Parameters: 16, 48 and 120 days. Generating the 120-day scenario (``setup_cache``) takes
about 2 minutes on 2 cores, once per asv run.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from firesmoke.cube import build_cube, write_cube
from firesmoke.grid import Region
from firesmoke.synthetic import generate_scenario

START = "2020-07-01"
DAYS = (16, 48, 120)
REGION = Region.from_shape("BENCH512", -8.0, 42.76, 0.01, 512, 512)


def _end(days: int) -> str:
    import pandas as pd

    return str((pd.Timestamp(START) + pd.Timedelta(days=days - 1)).date())


class CubeBuild:
    params = DAYS
    param_names = ("days",)
    timeout = 1200
    number = 1
    repeat = 1

    def setup_cache(self):
        root = Path(tempfile.mkdtemp(prefix="firesmoke-bench-cube-"))
        generate_scenario(REGION, START, _end(max(DAYS)), root, seed=7, products=("viirs", "firms"))
        return str(root)

    def setup(self, root, days):
        self.out = Path(tempfile.mkdtemp(prefix="firesmoke-bench-store-"))

    def teardown(self, root, days):
        shutil.rmtree(self.out, ignore_errors=True)

    def _run(self, root, days):
        cube = build_cube(REGION, START, _end(days), viirs=Path(root) / "viirs750",
                          firms=Path(root) / "firms")
        write_cube(cube, self.out / "cube.zarr", mode="w")

    def time_build_and_write(self, root, days):
        self._run(root, days)

    def peakmem_build_and_write(self, root, days):
        self._run(root, days)

    def track_pixel_days_per_second(self, root, days):
        t = time.perf_counter()
        self._run(root, days)
        return REGION.shape[0] * REGION.shape[1] * days / (time.perf_counter() - t)

    track_pixel_days_per_second.unit = "pixel-days/s"
