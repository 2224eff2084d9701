"""The cube's angle layers and missing days on synthetic granules (run without ../shared):
solar and sensor zenith each come from their own layer file, and a day without granules
is NaN (no observation), never zero."""

from __future__ import annotations

import numpy as np
import pytest
from _viirs_helpers import decode_banet_rules

from firesmoke.cube.build import CUBE_VARIABLES, build_cube
from firesmoke.grid import Region
from firesmoke.synthetic import generate_scenario

START, END = "2020-07-10", "2020-07-12"


@pytest.fixture(scope="module")
def viirs(tmp_path_factory):
    region = Region.from_shape("ANG", -7.0, 41.0, 0.01, 32, 40)
    scn = generate_scenario(region, START, END, tmp_path_factory.mktemp("scn"), seed=1,
                            products=("viirs",))
    for f in scn.viirs_dir.glob("*.A2020193.*"):  # 2020-07-11: no granule that day
        f.unlink()
    return region, scn.viirs_dir


def _layer(folder, doy: str, layer: str) -> np.ndarray:
    (path,) = folder.glob(f"*.A2020{doy}.*.{layer}.hdf")
    return decode_banet_rules(path, layer)[0]


def test_zenith_layers_keep_their_order(viirs):
    region, folder = viirs
    c = build_cube(region, START, END, viirs=folder, angles=True).compute()
    for day, doy in (("2020-07-10", "192"), ("2020-07-12", "194")):
        got = c.sel(time=day)
        sza = _layer(folder, doy, "SolarZenithAngle")
        vza = _layer(folder, doy, "SatelliteZenithAngle")
        assert np.isfinite(vza).sum() > 100
        # the two angles differ here, so a swapped pair cannot pass
        assert np.nanmax(np.abs(sza - vza)) > 5
        np.testing.assert_array_equal(got["solar_zenith"].values, sza)
        np.testing.assert_array_equal(got["sensor_zenith"].values, vza)
        np.testing.assert_array_equal(got["red"].values, _layer(folder, doy, "Reflectance_M5"))


def test_a_day_without_granules_is_nan_not_zero(viirs):
    region, folder = viirs
    c = build_cube(region, START, END, viirs=folder, angles=True).compute()
    assert c.sizes["time"] == 3
    missing = c.sel(time="2020-07-11")
    for v in ("red", "nir", "mir", "solar_zenith", "sensor_zenith"):
        assert np.isnan(missing[v].values).all(), v
    assert all(np.isfinite(c.sel(time="2020-07-10")[v].values).any()
               for v in CUBE_VARIABLES if v != "frp")
