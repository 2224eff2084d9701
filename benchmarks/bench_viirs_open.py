"""VIIRS 750 m readers: lazy open (metadata only) and full decode, beside naive eager reads.

- ``VmaesGranule``: the real LAADS ``NPP_VMAES_L1`` sample (7 HDF4 files, 800 x 1500);
  firesmoke's :func:`open_vmaes_granule` beside a naive eager pyhdf read of all layers
  (every global attribute, every SDS, numpy decoding) -- what the reference does per
  granule.
- ``L1bSwath``: a synthetic VNP02MOD/VNP03MOD pair (32 scans x 3200 pixels);
  :func:`open_l1b_swath` beside an eager ``xarray.open_dataset`` of both groups with CF
  decoding.

The real sample is looked up in ``$FIRESMOKE_REAL_DATA`` or ``../shared/data/real``; the
``VmaesGranule`` benchmarks are skipped when it is absent.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from firesmoke.io._core.handles import close_cached_files
from firesmoke.io.viirs import open_l1b_swath, open_vmaes_granule

ROOT = Path(__file__).resolve().parents[1]
REAL = (
    Path(os.environ.get("FIRESMOKE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
    / "viirs750"
)


def _naive_pyhdf_granule(files: list[Path]) -> dict[str, np.ndarray]:
    """Eager read of every layer with pyhdf, as a straightforward script would do it."""
    from pyhdf.SD import SD, SDC

    out = {}
    for f in files:
        sd = SD(str(f), SDC.READ)
        try:
            sd.attributes()  # all global metadata (StructMetadata, ODL...)
            for name in sd.datasets():
                sds = sd.select(name)
                raw = np.asarray(sds.get())
                attrs = sds.attributes()
                sds.endaccess()
                threshold = float(
                    re.search(r"=\s*(\S+)", attrs.get("FILL_TEST_VALUE", "= 65527")).group(1)
                )
                values = (raw * attrs.get("Scale", 1.0) + attrs.get("Offset", 0.0)).astype(
                    np.float32
                )
                bad = raw >= threshold if raw.dtype.kind == "u" else raw <= threshold
                values[bad] = np.nan
                out[name] = values
        finally:
            sd.end()
    return out


class VmaesGranule:
    """One real gridded granule (7 layers)."""

    def setup(self):
        if not REAL.is_dir():
            raise NotImplementedError(f"real VIIRS sample not found at {REAL}")
        self.folder = REAL
        self.files = sorted(REAL.glob("NPP_VMAES_L1.*.hdf"))

    def time_firesmoke_open_metadata(self):
        open_vmaes_granule(self.folder)

    def time_firesmoke_open_and_decode(self):
        open_vmaes_granule(self.folder).compute()

    def time_firesmoke_open_and_decode_chunked(self):
        open_vmaes_granule(self.folder, chunks={"y": 400, "x": 750}).compute()

    def time_naive_pyhdf_eager(self):
        _naive_pyhdf_granule(self.files)

    def peakmem_firesmoke_open_metadata(self):
        open_vmaes_granule(self.folder)


class L1bSwath:
    """One synthetic swath granule pair (32 scans x 3200 pixels, 5 bands + geolocation)."""

    def setup_cache(self):
        from firesmoke.synthetic.swath import swath_geometry, write_l1b_pair

        lat, lon, vza = swath_geometry(40.0, -5.0, -12.0, n_scans=32)
        rng = np.random.default_rng(0)
        bands = {b: rng.uniform(0.0, 0.5, lat.shape) for b in ("M05", "M07", "M10")}
        bands["M12"] = rng.uniform(0.1, 2.0, lat.shape)
        bands["M15"] = rng.uniform(3.0, 10.0, lat.shape)
        p02, p03 = write_l1b_pair(
            Path("l1b_bench"),
            datetime(2021, 7, 1, 13, 30),
            lat,
            lon,
            bands,
            rng.uniform(20, 60, lat.shape),
            vza,
        )
        return str(p02.resolve()), str(p03.resolve())

    def time_firesmoke_open_metadata(self, paths):
        close_cached_files()  # a cold open: the reader keeps netCDF handles open
        open_l1b_swath(*paths)

    def time_firesmoke_open_and_decode(self, paths):
        close_cached_files()
        open_l1b_swath(*paths).compute()

    def time_naive_xarray_eager(self, paths):
        import xarray as xr

        obs = xr.open_dataset(paths[0], group="observation_data", engine="netcdf4")
        geo = xr.open_dataset(paths[1], group="geolocation_data", engine="netcdf4")
        obs[["M05", "M07", "M10", "M12", "M15"]].load()
        geo[["latitude", "longitude", "solar_zenith", "sensor_zenith"]].load()
        obs.close()
        geo.close()
