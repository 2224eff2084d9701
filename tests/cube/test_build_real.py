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

    from firesmoke.io._core.handles import close_cached_files
    from firesmoke.io.viirs.discovery import find_granules
    from firesmoke.io.viirs.readers import CUBE_BANDS, open_reader

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
    close_cached_files()


def test_subset_region_cube_equals_cropped_full_cube(real_viirs_dir):
    """A 256 px region inside PI reads its window of the granule: exactly the full cube
    cropped; a region half outside the granule gets the covered half, NaN elsewhere."""
    from firesmoke.grid import Region

    full = build_cube("PI", "2017-10-27", "2017-10-27", viirs=real_viirs_dir, angles=True,
                      chunks={"y": 400, "x": 500}).compute()
    names = ("red", "nir", "mir", "solar_zenith", "sensor_zenith")
    pi = Region.named("PI")
    sub = build_cube(pi.subset("PI_256", 544, 800, 700, 956), "2017-10-27", "2017-10-27",
                     viirs=real_viirs_dir, angles=True, chunks={"y": 128, "x": 128}).compute()
    assert sub.attrs["n_granules"] == 1 and sub.attrs["skipped_inputs"] == "[]"
    for n in names:
        np.testing.assert_array_equal(sub[n].values, full[n].values[:, 544:800, 700:956], n)
    assert np.isfinite(sub["red"].values).sum() == 248  # every valid pixel of the sample
    t = pi.transform
    part = Region.from_shape("PI_south", t.c + 700 * t.a, t.f + 672 * t.e, t.a, 256, 256)
    half = build_cube(part, "2017-10-27", "2017-10-27", viirs=real_viirs_dir, angles=True,
                      chunks={"y": 128, "x": 128}).compute()
    assert half.attrs["n_granules"] == 1
    for n in names:
        np.testing.assert_array_equal(half[n].values[:, :128], full[n].values[:, 672:800, 700:956])
        assert np.isnan(half[n].values[:, 128:]).all()
