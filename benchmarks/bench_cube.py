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

from firesmoke.cube.build import build_cube, write_cube
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


# --------------------------------------------------------------------------- vs decoding
SMALL = Region.from_shape("BENCH256", -8.0, 42.76, 0.01, 256, 256)
SMALL_DAYS = 8
#: layers the cube reads from every gridded granule (M10 is not used)
CUBE_LAYERS = ("Reflectance_M5", "Reflectance_M7", "Radiance_M12", "Radiance_M15",
               "SolarZenithAngle", "SatelliteZenithAngle")


def decode_layer_files(files) -> int:
    """pyhdf only: open each file, read its SDS whole (``SDreaddata``), close. The floor
    under any cube build from these files."""
    from pyhdf.SD import SD, SDC

    n = 0
    for f in files:
        sd = SD(str(f), SDC.READ)
        try:
            name = next(iter(sd.datasets()))
            sds = sd.select(name)
            n += sds.get().size
            sds.endaccess()
        finally:
            sd.end()
    return n


def build_and_write(root: str, out: Path, workers: int = 1) -> None:
    """Cube of the 256 x 256 px x 8-day scenario written to Zarr with ``workers`` threads."""
    import dask

    sched = {"scheduler": "synchronous"} if workers == 1 else {"scheduler": "threads",
                                                                "num_workers": workers}
    with dask.config.set(**sched):
        cube = build_cube(SMALL, START, _end(SMALL_DAYS), viirs=Path(root) / "viirs750",
                          firms=Path(root) / "firms")
        write_cube(cube, out / "cube.zarr", mode="w")


def build_and_compute(root: str, workers: int = 1) -> None:
    """The same cube computed into memory (no Zarr): the cube's own share."""
    import dask

    sched = {"scheduler": "synchronous"} if workers == 1 else {"scheduler": "threads",
                                                                "num_workers": workers}
    with dask.config.set(**sched):
        build_cube(SMALL, START, _end(SMALL_DAYS), viirs=Path(root) / "viirs750",
                   firms=Path(root) / "firms").compute()


class CubeVsDecode:
    """Cube build + Zarr write beside pyhdf decoding the same layer files (one run).

    ``track_ratio_to_decode`` is the target of issue 13 (at most 4x, goal 2.5x) with one
    thread (synchronous scheduler, one Numba thread); ``track_pixel_days_per_second``
    gives the throughput with 1 and 2 worker threads.
    """

    params = (1, 2)
    param_names = ("workers",)
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self):
        root = Path(tempfile.mkdtemp(prefix="firesmoke-bench-cube256-"))
        generate_scenario(SMALL, START, _end(SMALL_DAYS), root, seed=11, products=("viirs", "firms"))
        return str(root)

    def setup(self, root, workers):
        import numba

        self.out = Path(tempfile.mkdtemp(prefix="firesmoke-bench-store-"))
        self.files = sorted(p for p in (Path(root) / "viirs750").rglob("*.hdf")
                            if p.name.rsplit(".", 2)[-2] in CUBE_LAYERS)
        self._threads = numba.get_num_threads()
        numba.set_num_threads(min(workers, numba.config.NUMBA_NUM_THREADS))
        build_and_write(root, self.out, workers)  # warm: Numba caches, imports

    def teardown(self, root, workers):
        import numba

        numba.set_num_threads(self._threads)
        shutil.rmtree(self.out, ignore_errors=True)

    def time_build_and_write(self, root, workers):
        build_and_write(root, self.out, workers)

    def time_build_and_compute(self, root, workers):
        build_and_compute(root, workers)

    def time_decode_only(self, root, workers):
        decode_layer_files(self.files)

    def track_ratio_to_decode(self, root, workers):
        t0 = time.perf_counter()
        decode_layer_files(self.files)
        t1 = time.perf_counter()
        build_and_write(root, self.out, workers)
        t2 = time.perf_counter()
        return (t2 - t1) / (t1 - t0)

    track_ratio_to_decode.unit = "x decode time"

    def track_pixel_days_per_second(self, root, workers):
        t = time.perf_counter()
        build_and_write(root, self.out, workers)
        return SMALL.shape[0] * SMALL.shape[1] * SMALL_DAYS / (time.perf_counter() - t)

    track_pixel_days_per_second.unit = "pixel-days/s"


# --------------------------------------------------------------------------- sub-region
def subset_cube(root: str, rows: int = 64) -> None:
    """Cube of a ``rows x rows`` px sub-grid of the 256 px scenario (window reads)."""
    import dask

    sub = SMALL.subset("SUB", 96, 96 + rows, 96, 96 + rows)
    with dask.config.set(scheduler="synchronous"):
        build_cube(sub, START, _end(SMALL_DAYS), viirs=Path(root) / "viirs750").compute()


def full_cube_cropped(root: str, rows: int = 64) -> None:
    """What a sub-region cost before issue 20: the granule grid's whole cube, cropped."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        cube = build_cube(SMALL, START, _end(SMALL_DAYS), viirs=Path(root) / "viirs750")
        cube.isel(y=slice(96, 96 + rows), x=slice(96, 96 + rows)).compute()


class CubeSubsetVsFullGrid:
    """A sub-region of the granule grid reads only its window: its cube beside the whole
    grid's cube cropped to it (same values; ``track_ratio_to_full`` < 1 is the saving).

    The granules are on the 256 x 256 px grid; the sub-region is ``rows`` x ``rows`` px.
    """

    params = (64, 128)
    param_names = ("rows",)
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self):
        root = Path(tempfile.mkdtemp(prefix="firesmoke-bench-cube256-"))
        generate_scenario(SMALL, START, _end(SMALL_DAYS), root, seed=11, products=("viirs",))
        return str(root)

    def setup(self, root, rows):
        subset_cube(root, rows)  # warm: Numba caches, imports

    def time_subset(self, root, rows):
        subset_cube(root, rows)

    def time_full_cropped(self, root, rows):
        full_cube_cropped(root, rows)

    def track_ratio_to_full(self, root, rows):
        t0 = time.perf_counter()
        full_cube_cropped(root, rows)
        t1 = time.perf_counter()
        subset_cube(root, rows)
        t2 = time.perf_counter()
        return (t2 - t1) / (t1 - t0)

    track_ratio_to_full.unit = "x full-grid time"
