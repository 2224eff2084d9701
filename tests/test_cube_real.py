"""Cube on the real VIIRS granule: one-day cube equals direct decoding."""

from __future__ import annotations

import numpy as np
from pyhdf.SD import SD, SDC

from firesmoke.cube import build_cube
from firesmoke.kernels.mir import mir_reflectance


def decode(folder, layer):
    """Independent decoding with pyhdf + numpy (banet.md rules)."""
    path = next(folder.glob(f"*.{layer}.hdf"))
    sd = SD(str(path), SDC.READ)
    sds = sd.select(layer)
    raw = sds.get()
    attrs = sds.attributes()
    sd.end()
    val = raw.astype(np.float64) * attrs["Scale"] + attrs["Offset"] if "Scale" in attrs else raw.astype(np.float64)
    bad = raw >= 65527 if raw.dtype == np.uint16 else raw <= -999
    return np.where(bad, np.nan, val).astype(np.float32)


def test_one_day_cube_equals_direct_decoding(real_viirs_dir):
    cube = build_cube("PI", "2017-10-26", "2017-10-28", viirs=real_viirs_dir, angles=True,
                      chunks={"time": 2, "y": 400, "x": 500})
    assert cube.sizes == {"time": 3, "y": 800, "x": 1500}
    assert cube.rio.crs.to_epsg() == 4326
    c = cube.compute()
    day = c.sel(time="2017-10-27")
    red = decode(real_viirs_dir, "Reflectance_M5")
    nir = decode(real_viirs_dir, "Reflectance_M7")
    vza = decode(real_viirs_dir, "SatelliteZenithAngle")
    np.testing.assert_array_equal(day["red"].values, red)
    np.testing.assert_array_equal(day["nir"].values, nir)
    np.testing.assert_array_equal(day["sensor_zenith"].values, vza)
    mir = mir_reflectance(decode(real_viirs_dir, "Radiance_M12"), decode(real_viirs_dir, "Radiance_M15"),
                          decode(real_viirs_dir, "SolarZenithAngle"))
    np.testing.assert_array_equal(day["mir"].values, mir)
    assert np.isfinite(day["red"].values).sum() == 248
    # the days without granules are all NaN (missing observation, not zero reflectance)
    assert np.isnan(c.sel(time="2017-10-26")["red"].values).all()
    assert np.isnan(c.sel(time="2017-10-28")["nir"].values).all()
    assert cube.attrs["n_granules"] == 1
