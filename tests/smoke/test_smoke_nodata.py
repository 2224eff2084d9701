"""Smoke masks: 255 = no data, distinct from 0 (no smoke), kept by exports and site areas."""

from __future__ import annotations

import numpy as np
import rasterio
import rioxarray  # noqa: F401
import xarray as xr

from firesmoke.smoke.sites import plume_timeseries
from firesmoke.store.geotiff import SMOKE_NODATA, export_smoke_mask


def _mask() -> xr.DataArray:
    m = np.zeros((20, 20), np.uint8)
    m[5:9, 5:9] = 1  # a plume next to the site
    m[:, 12:] = SMOKE_NODATA  # outside the scene's footprint
    x = 500_005.0 + 10.0 * np.arange(20)
    y = 4_000_195.0 - 10.0 * np.arange(20)
    return xr.DataArray(m, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(32633)


def test_no_data_is_not_smoke_in_cogs_nor_in_site_areas(tmp_path):
    mask = _mask()
    tif = export_smoke_mask(mask, tmp_path / "m.tif")
    with rasterio.open(tif) as src:
        assert src.nodata == SMOKE_NODATA == 255
        got = src.read(1)
        assert tuple(src.transform)[:6] == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_200.0)
    np.testing.assert_array_equal(got, mask.values)  # 255 stays no data, not smoke
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(500_075.0, 4_000_125.0)
    ts = plume_timeseries(mask, [("S", lon, lat)], radius_m=200.0)
    assert ts["plume_present"].all() and ts["plume_area_m2"].iloc[0] == 16 * 100.0
