"""Cube on the real VIIRS granule: one-day cube equals direct decoding."""

from __future__ import annotations

import numpy as np
from _viirs_helpers import decode_banet_rules

from firesmoke.cube.build import build_cube
from firesmoke.kernels.mir import mir_reflectance


def decode(folder, layer):
    """Independent decoding with pyhdf + numpy (banet.md rules)."""
    return decode_banet_rules(next(folder.glob(f"*.{layer}.hdf")), layer)[0]


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


def test_reader_windows_equal_direct_decoding(real_viirs_dir):
    """The window reader of the cube decodes exactly as pyhdf + numpy (any window)."""
    import pickle

    from firesmoke.io.viirs.discovery import find_granules
    from firesmoke.io.viirs.readers import CUBE_BANDS, close_cached_handles, open_reader

    (granule,) = find_granules(real_viirs_dir).granules
    reader = pickle.loads(pickle.dumps(open_reader(granule, "PI")))
    layers = {"M05": "Reflectance_M5", "M07": "Reflectance_M7", "M12": "Radiance_M12",
              "M15": "Radiance_M15", "solar_zenith": "SolarZenithAngle",
              "sensor_zenith": "SatelliteZenithAngle"}
    full = {b: decode(real_viirs_dir, layers[b]) for b in CUBE_BANDS}
    whole = reader.read()
    for i, b in enumerate(CUBE_BANDS):
        np.testing.assert_array_equal(whole[i], full[b], err_msg=b)
    for r0, c0, h, w in [(0, 0, 1, 1), (123, 457, 200, 301), (799, 1499, 1, 1), (400, 0, 400, 1500)]:
        got = reader.read((r0, c0, h, w), ("sensor_zenith", "M05"))
        np.testing.assert_array_equal(got[0], full["sensor_zenith"][r0:r0 + h, c0:c0 + w])
        np.testing.assert_array_equal(got[1], full["M05"][r0:r0 + h, c0:c0 + w])
    close_cached_handles()
