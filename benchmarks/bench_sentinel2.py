"""Sentinel-2 reading: firesmoke readers beside the naive per-file rasterio loops they replace.

* chips: :func:`open_chip` (xarray with CRS, uint16) and :func:`read_chips` (batched,
  threaded, uint16) vs the reference-style loop (open every file, never close it, convert
  to float64, pad, select the 12 bands, stack);
* scenes: :func:`open_scene` through stackstac (lazy, dask, uint16/float32) vs reading every
  band COG with rasterio into float64 arrays; plus a bbox subset, where the COG tiles let
  stackstac read only what is needed.

Data are written once per benchmark class by the synthetic generator into a temp folder.
"""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import rasterio

from firesmoke.io.sentinel2.chips import BANDS, SMOKE_BANDS, open_chip, read_chips
from firesmoke.io.sentinel2.scenes import open_scene
from firesmoke.synthetic.s2_scenes import generate_scenes
from firesmoke.synthetic.sentinel2 import generate_chips

_SMOKE_IDX = [BANDS.index(b) for b in SMOKE_BANDS]


def naive_chip_loop(paths) -> np.ndarray:
    """What the reference did per sample: open, read all as float64, pad, pick 12 bands."""
    out = []
    for p in paths:
        src = rasterio.open(p)  # never closed, like the reference data loader
        img = src.read().astype(np.float64)
        h, w = img.shape[1:]
        img = np.pad(img, [(0, 0), (0, 120 - h), (0, 120 - w)], mode="edge")
        out.append(img[_SMOKE_IDX])
    return np.stack(out)


def naive_scene_read(band_paths, bands=SMOKE_BANDS, window=None) -> np.ndarray:
    """Read every band file of every scene fully with rasterio, as float64, then slice."""
    scenes = []
    for files in band_paths:
        layers = []
        for b in bands:
            with rasterio.open(files[b]) as src:
                a = src.read(1).astype(np.float64)
            if window is not None:
                a = a[window]
            layers.append(a)
        scenes.append(np.stack(layers))
    return np.stack(scenes)


class ChipReading:
    """64 chips of 13 x 120 x 120 (some undersized)."""

    timeout = 300

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="bench_s2_chips_")
        self.paths = generate_chips(self.dir, 32, 32, seed=0).paths

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_open_chip_loop(self):
        for p in self.paths:
            open_chip(p)

    def time_read_chips(self):
        read_chips(self.paths)

    def time_read_chips_one_thread(self):
        read_chips(self.paths, max_workers=1)

    def time_naive_rasterio_loop(self):
        naive_chip_loop(self.paths)

    def peakmem_read_chips(self):
        read_chips(self.paths)

    def peakmem_naive_rasterio_loop(self):
        naive_chip_loop(self.paths)


class SceneReading:
    """Two 1024 x 1024 scenes, 12 smoke bands, per-band COGs + STAC items."""

    timeout = 600

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="bench_s2_scenes_")
        self.scenes = generate_scenes(self.dir, n_scenes=2, size=1024, n_sites=3, seed=0)
        t = self.scenes.transform
        # 256 x 256 px window away from the tile grid origin
        self.bbox = (t.c + 3000, t.f - 6560, t.c + 5560, t.f - 4000)
        self.window = (slice(400, 656), slice(300, 556))

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_open_scene_uint16(self):
        open_scene(self.scenes.item_paths, dtype="uint16", chunksize=512).compute()

    def time_open_scene_float32(self):
        open_scene(self.scenes.item_paths, dtype="float32", chunksize=512).compute()

    def time_naive_rasterio_float64(self):
        naive_scene_read(self.scenes.band_paths)

    def time_open_scene_bbox(self):
        open_scene(self.scenes.item_paths, bbox=self.bbox, dtype="uint16").compute()

    def time_naive_rasterio_bbox(self):
        naive_scene_read(self.scenes.band_paths, window=self.window)

    def time_open_scene_graph_only(self):
        open_scene(self.scenes.item_paths, dtype="uint16")

    def peakmem_open_scene_float32(self):
        open_scene(self.scenes.item_paths, dtype="float32", chunksize=512).compute()

    def peakmem_naive_rasterio_float64(self):
        naive_scene_read(self.scenes.band_paths)


class Generation:
    """Writer throughput (chips with labels; one 512 px scene with 13 COGs + STAC)."""

    timeout = 300

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="bench_s2_gen_")

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_generate_16_chips(self):
        generate_chips(tempfile.mkdtemp(dir=self.dir), 8, 8, seed=1)

    def time_generate_scene_512(self):
        generate_scenes(tempfile.mkdtemp(dir=self.dir), n_scenes=1, size=512, n_sites=3, seed=1)
