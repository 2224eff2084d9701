"""Every product kind opens with rasterio/GDAL (GDAL's Zarr driver and COGs), with its
CRS, transform, values and an explicit nodata that never collides with a real value."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import xarray as xr
from _store_helpers import small_cube

from firesmoke.burned.periods import period_coords
from firesmoke.cube.build import write_cube
from firesmoke.grid import Region
from firesmoke.store import write_product
from firesmoke.store.geotiff import (
    BURN_DATE_NODATA,
    SMOKE_NODATA,
    export_burned_period,
    export_geotiff,
    smoke_mask_for_export,
)

REGION = Region.from_shape("T", 10.0, 1.0, 0.01, 40, 48)


def _product() -> xr.Dataset:
    rng = np.random.default_rng(1)
    conf = rng.random((2, *REGION.shape)).astype(np.float32)
    conf[:, :4, :4] = np.nan  # unobserved
    bd = np.where(conf > 0.5, rng.integers(200, 240, conf.shape), 0).astype(np.int16)
    ds = REGION.coords_dataset().assign_coords(period_coords(  # as predict_burned
        ["2020-08", "2020-09"], ["2020-08-01", "2020-09-01"], ["2020-08-31", "2020-09-30"]))
    ds["confidence"] = (("period", "y", "x"), conf, {"grid_mapping": "spatial_ref"})
    ds["burn_date"] = (("period", "y", "x"), bd, {"grid_mapping": "spatial_ref"})
    return ds


def _check_grid(src) -> None:
    assert src.crs.to_epsg() == 4326
    assert src.transform.almost_equals(REGION.transform)
    assert (src.height, src.width) == REGION.shape


def test_product_store_opens_in_gdal(tmp_path):
    ds = _product()
    store = write_product(ds, tmp_path / "burned_area.zarr")
    for name in ("confidence", "burn_date"):
        with rasterio.open(f'ZARR:"{store}":/{name}') as src:
            _check_grid(src)
            assert src.count == 2
            np.testing.assert_array_equal(src.read(), ds[name].values)
    # period: whole days since 1970 as int32; labels as variable-length strings (not
    # fixed-width UTF-32): the same on every path (tests/test_campaign.py compares them)
    for k in ("period", "period_end"):
        assert json.loads((store / k / ".zarray").read_text())["dtype"] == "<i4"
        assert json.loads((store / k / ".zattrs").read_text())["units"] == "days since 1970-01-01"
    assert json.loads((store / "period_label" / ".zarray").read_text())["dtype"] == "|O"
    back = xr.open_zarr(store)
    assert back["period"].dtype == "datetime64[ns]"
    assert list(back["period_label"].values) == ["2020-08", "2020-09"]
    np.testing.assert_array_equal(back["period_end"].values, ds["period_end"].values)
    sep = back.sel(period="2020-09")  # partial-date selection
    assert list(sep.period_label.values) == ["2020-09"]
    # GDAL reads the period axis as whole days
    with rasterio.open(f'ZARR:"{store}":/period') as src:
        assert src.read(1).ravel().tolist() == [18475, 18506]


def test_cube_store_in_zarr_v2_opens_in_gdal(tmp_path):
    cube = small_cube(6)
    store = write_cube(cube, tmp_path / "c.zarr", zarr_format=2)
    with rasterio.open(f'ZARR:"{store}":/red') as src:
        assert src.count == 6 and np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(), cube["red"].values)


def test_burned_cogs_have_collision_free_nodata(tmp_path):
    ds = _product()
    conf_tif, bd_tif = export_burned_period(ds.isel(period=0), tmp_path / "exports", "p_2020-08")
    with rasterio.open(conf_tif) as src:
        _check_grid(src)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), ds["confidence"].values[0])
    with rasterio.open(bd_tif) as src:
        _check_grid(src)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.nodata == BURN_DATE_NODATA == -1
        got = src.read(1)
    unobserved = np.isnan(ds["confidence"].values[0])
    assert (got[unobserved] == -1).all()
    np.testing.assert_array_equal(got[~unobserved], ds["burn_date"].values[0][~unobserved])
    assert (got == 0).any()  # "not burned" is a real value, not nodata


def test_smoke_mask_has_a_separate_nodata(tmp_path):
    m = REGION.coords_dataset()
    data = np.zeros(REGION.shape, np.float32)
    data[10:20, 10:20] = 1
    data[:2] = np.nan  # outside the scene
    mask = xr.DataArray(data, dims=("y", "x"), coords={"y": m.y, "x": m.x}).rio.write_crs(4326)
    tif = export_geotiff(smoke_mask_for_export(mask), tmp_path / "mask.tif", nodata=SMOKE_NODATA)
    with rasterio.open(tif) as src:
        _check_grid(src)
        assert src.nodata == 255
        got = src.read(1)
    assert (got[:2] == 255).all() and (got[10:20, 10:20] == 1).all() and (got[2:10] == 0).all()


def test_report_sidecar_is_complete_json(tmp_path):
    from firesmoke.store import write_report

    rows = [f"file_{i}.csv: {i} rows" for i in range(20_000)]  # > 100,000 characters
    path = write_report(tmp_path / "c.zarr", {"firms_report": rows})
    assert path.name == "c.zarr.report.json"
    assert json.loads(path.read_text())["firms_report"] == rows


def test_product_from_a_v3_cube_is_written_as_v2(tmp_path):
    """Coordinates read from a Zarr v3 cube carry v3 encodings; a v2 product drops them."""
    from firesmoke.cube.build import open_cube

    cube = open_cube(write_cube(small_cube(4), tmp_path / "c.zarr"))
    prod = cube[["red"]].isel(time=slice(0, 2)).rename(time="period")
    store = write_product(prod, tmp_path / "p.zarr")
    with rasterio.open(f'ZARR:"{store}":/red') as src:
        np.testing.assert_array_equal(src.read(), cube["red"].values[:2])
