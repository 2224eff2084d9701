"""Synthetic scenario generator: end-to-end speed and its hot spots beside the naive way.

* ``ScenarioGeneration``: :func:`generate_scenario` (VIIRS + FIRMS + MCD64A1) on a small
  region (64 x 64 px, 30 days) and on the demo region (256 x 256 px, 120 days; the target
  is < 60 s on a 2-core machine).
* ``GranuleWriting``: writing the seven HDF4 layer files of one VIIRS granule with the
  cached character-attribute buffers of :mod:`firesmoke.synthetic.hdf4write` beside
  plain pyhdf ``attr.set`` (which fills every character through Python; the 32000-char
  ``StructMetadata.0`` of every file dominated the run time).
* ``RandomFields``: :func:`smooth_field` (one separable Gaussian filter in the Fourier
  domain) beside ``scipy.ndimage.gaussian_filter`` of white noise, for cloud-sized fields.
* ``Physics``: the burn truth (first-passage fire spread) and one overpass of the
  radiometric model on the demo region.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import ndimage

from firesmoke.grid import Region
from firesmoke.synthetic import demo_region, generate_scenario
from firesmoke.synthetic.fire import simulate_burn_truth, smooth_field
from firesmoke.synthetic.orbit import overpass_schedule
from firesmoke.synthetic.surface import simulate_overpass
from firesmoke.synthetic.viirs_gridded import (
    LAYERS,
    _global_attributes,
    encode_layer,
    granule_metadata,
    write_viirs_granule,
)

SMALL = Region("BENCH64", (-8.62, 40.02, -7.98, 40.66), 0.01)


class ScenarioGeneration:
    """End to end: truth, VIIRS granules, FIRMS CSVs, MCD64A1 tiles, manifest."""

    params: ClassVar[list[str]] = ["small-64px-30d", "demo-256px-120d"]
    param_names: ClassVar[list[str]] = ["scenario"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, scenario):
        self.dir = tempfile.mkdtemp(prefix="bench_synthetic_")

    def teardown(self, scenario):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_generate_scenario(self, scenario):
        if scenario.startswith("small"):
            generate_scenario(SMALL, "2022-07-20", "2022-08-18", self.dir, seed=1)
        else:
            generate_scenario(demo_region(), "2022-07-01", "2022-10-28", self.dir, seed=1)


def _write_granule_plain_pyhdf(out: Path, region, fields, overpass, granule_ms, order) -> None:
    """The same seven files written with pyhdf's own attribute setter (no buffer cache)."""
    from pyhdf.SD import SD, SDC

    types = {
        "CHAR8": SDC.CHAR8,
        "FLOAT32": SDC.FLOAT32,
        "FLOAT64": SDC.FLOAT64,
        "UINT8": SDC.UINT8,
        "INT8": SDC.INT8,
        "INT32": SDC.INT32,
    }
    meta = granule_metadata(overpass, granule_ms)
    for layer, spec in LAYERS.items():
        arr = encode_layer(fields[spec.field], spec)
        sd = SD(os.fspath(out / f"{layer}.hdf"), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
        for name, typ, value in _global_attributes(
            region, overpass, granule_ms, granule_ms, order, meta, layer
        ):
            if isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, list):
                value = [v.item() if isinstance(v, np.generic) else v for v in value]
            sd.attr(name).set(types[typ], value)
        ds = sd.create(layer, SDC.UINT16 if arr.dtype == np.uint16 else SDC.FLOAT32, arr.shape)
        ds.setcompress(SDC.COMP_DEFLATE, value=4)
        ds[:] = arr
        ds.endaccess()
        sd.end()


class GranuleWriting:
    """Seven layer files of one 256 x 256 granule."""

    timeout = 120

    def setup(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bench_granule_"))
        self.region = demo_region()
        truth = simulate_burn_truth(self.region, np.datetime64("2022-07-01"), 5, 0)
        self.fields = simulate_overpass(truth, 1, 0)
        self.overpass = overpass_schedule(self.region, truth.date(1))[0]
        g = int(np.unique(self.fields["granule"][self.fields["valid"]])[0])
        self.granule_ms = g * 360_000

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_firesmoke_writer(self):
        write_viirs_granule(
            self.dir / "a",
            self.region,
            self.fields,
            self.overpass,
            self.granule_ms,
            order="000500000000",
        )

    def time_plain_pyhdf_attributes(self):
        out = self.dir / "b"
        out.mkdir(exist_ok=True)
        _write_granule_plain_pyhdf(
            out, self.region, self.fields, self.overpass, self.granule_ms, "000500000000"
        )


class RandomFields:
    """A 512 x 512 cloud-scale field (sigma 14 px)."""

    def setup(self):
        self.shape = (512, 512)

    def time_smooth_field_fft(self):
        smooth_field(np.random.default_rng(0), self.shape, 14.0)

    def time_gaussian_filter_reference(self):
        noise = np.random.default_rng(0).standard_normal(self.shape)
        ndimage.gaussian_filter(noise, 14.0, mode="wrap")


class Physics:
    """Burn truth and one overpass on the demo region."""

    timeout = 120

    def setup(self):
        self.region = demo_region()
        self.truth = simulate_burn_truth(self.region, np.datetime64("2022-07-01"), 120, 0)
        simulate_overpass(self.truth, 10, 0)  # warm caches (static surface)

    def time_burn_truth_120_days(self):
        simulate_burn_truth(self.region, np.datetime64("2022-07-01"), 120, 0)

    def time_one_overpass(self):
        simulate_overpass(self.truth, 11, 0)

    def peakmem_burn_truth_120_days(self):
        simulate_burn_truth(self.region, np.datetime64("2022-07-01"), 120, 0)
