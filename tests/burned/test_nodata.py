"""Nodata end to end and exact grids: unobserved pixels, _FillValue, COG nodata, alignment."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from firesmoke.burned.outputs import export_burned, export_files
from firesmoke.burned.predict import (
    UnobservedPeriodWarning,
    period_labels,
    predict_burned,
    unobserved_periods,
)
from firesmoke.burned.rules import BANET_0_6_7, DEFAULT, NODATA, mask_unobserved, observed_days
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.store import open_store, write_product

DAYS = pd.date_range("2020-07-15", "2020-09-16")  # the 64 days of August's window
AUGUST = slice(17, 48)  # the kept days (Aug 1..31) within DAYS


def cube_on(region: Region, seed: int = 0, nan_cols: int = 0) -> xr.Dataset:
    """Random reflectances on ``region`` (same values on the same global pixel, whatever
    the region) with the first ``nan_cols`` columns never observed."""
    rng = np.random.default_rng(seed)
    ds = region.coords_dataset(time=DAYS.values)
    h, w = region.shape
    for b, s in (("red", 0.3), ("nir", 0.4), ("mir", 0.2), ("frp", 1.0)):
        a = (rng.random((len(DAYS), h, w)) * s).astype(np.float32)
        if b != "frp":
            a[:, :, :nan_cols] = np.nan
        ds[b] = (("time", "y", "x"), a)
    return ds.chunk({"time": 16, "y": 16, "x": 16})


def oracle(batch: np.ndarray) -> np.ndarray:
    """A deterministic 'model' of the reflectances (NaN inputs arrive as 0)."""
    return np.clip(np.nan_to_num(batch[:, :1]) * 0.5, 0, 1).astype(np.float32)


def test_observed_days_and_mask_match_numpy():
    rng = np.random.default_rng(1)
    red, nir, mir = (np.where(rng.random((10, 4, 5)) < 0.6, np.nan, 1.0) for _ in range(3))
    red[:, 0, 0] = nir[:, 0, 0] = mir[:, 0, 0] = np.nan
    want = np.zeros((4, 5), np.int16)
    for t in range(10):
        for i in range(4):
            for j in range(5):
                want[i, j] += any(np.isfinite(a[t, i, j]) for a in (red, nir, mir))
    got = observed_days(red, nir, mir)
    assert got.dtype == np.int16 and np.array_equal(got, want) and got[0, 0] == 0
    out = mask_unobserved(np.stack([np.full((4, 5), 0.7), np.full((4, 5), 200.0)]), got)
    assert np.isnan(out[0, 0, 0]) and out[1, 0, 0] == -1
    assert (out[0][got > 0] == np.float32(0.7)).all() and (out[1][got > 0] == 200).all()


def test_all_nan_window_is_only_nodata_in_zarr_and_cog(tmp_path):
    region = Region.from_shape("N", -120.6, 41.3, 0.01, 24, 20)  # 41.300000000000004 in rioxarray
    cube = cube_on(region, nan_cols=20)  # no reflectance anywhere; FRP everywhere
    product = predict_burned(cube, oracle, "2020-08-01", tile=16, step=12)
    assert unobserved_periods(product.compute(), warn=False) == ["2020-08"]
    with pytest.warns(UnobservedPeriodWarning, match="2020-08"):
        unobserved_periods(product)
    assert product.attrs["Conventions"] == "CF-1.8"
    out = write_product(product, tmp_path / "p.zarr")
    # Zarr: _FillValue on data variables, none on x/y, CF-1.8, the CRS as a CF grid mapping
    for name, fill in (("confidence", "NaN"), ("burn_date", -1)):
        meta = json.loads((out / name / ".zattrs").read_text())
        assert json.loads((out / name / ".zarray").read_text())["fill_value"] == fill
        assert meta["grid_mapping"] == "spatial_ref"
    for dim in ("x", "y"):
        assert "_FillValue" not in json.loads((out / dim / ".zattrs").read_text())
        assert json.loads((out / dim / ".zarray").read_text())["fill_value"] is None
    assert "_FillValue" not in json.loads((out / "valid_days" / ".zattrs").read_text())
    raw = xr.open_zarr(out, mask_and_scale=False)
    assert raw.attrs["Conventions"] == "CF-1.8"
    assert (raw["burn_date"].values == -1).all() and raw["burn_date"].dtype == np.int16
    assert np.isnan(raw["confidence"].values).all() and (raw["valid_days"].values == 0).all()
    assert raw["burn_date"].attrs["flag_meanings"] == "not_observed not_burned"
    assert list(raw["burn_date"].attrs["flag_values"]) == [-1, 0]
    assert open_store(out).rio.crs.to_epsg() == 4326
    # COGs read back with rasterio: nodata tags set, every pixel nodata
    files = export_burned(open_store(out), tmp_path / "cog", "ba", quicklook=False, events=True)
    labels = [str(v) for v in open_store(out)["period_label"].values]
    assert files == export_files(labels, tmp_path / "cog", "ba", quicklook=False, events=True)
    files = files[:2]
    conf_tif, date_tif = (str(f) for f in files)
    with rasterio.open(date_tif) as src:
        assert src.nodata == -1 and src.dtypes[0] == "int16"
        assert (src.read(1) == -1).all()
    with rasterio.open(conf_tif) as src:
        assert np.isnan(src.nodata) and np.isnan(src.read(1)).all()
        assert tuple(src.transform)[:6] == (0.01, 0.0, -120.6, 0.0, -0.01, 41.3)
        assert src.crs.to_epsg() == 4326 and src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # a real COG


def test_partly_observed_period_masks_only_the_unobserved_pixels():
    region = Region.from_shape("P", -8.0, 41.0, 0.01, 24, 20)
    cube = cube_on(region, nan_cols=6)
    # one observed day only in column 6: still observed
    for b in ("red", "nir", "mir"):
        a = cube[b].values.copy()
        a[:, :, 6] = np.nan
        a[20, :, 6] = 0.1 if b == "red" else np.nan
        cube[b] = (("time", "y", "x"), a)
    p = predict_burned(cube, oracle, "2020-08-01", tile=16, step=12).isel(period=0).compute()
    valid = p["valid_days"].values
    assert (valid[:, :6] == 0).all() and (valid[:, 6] == 1).all() and (valid[:, 7:] == 31).all()
    assert np.isnan(p["confidence"].values[:, :6]).all() and (p["burn_date"].values[:, :6] == -1).all()
    assert np.isfinite(p["confidence"].values[:, 6:]).all() and (p["burn_date"].values[:, 6:] >= 0).all()
    assert p["burn_date"].encoding["_FillValue"] == NODATA["burn_date"] == -1


@pytest.mark.parametrize("rules", [DEFAULT, BANET_0_6_7])
def test_rules_keep_their_numbers_beside_the_nodata_mask(rules):
    """The mask only adds nodata: with a per-pixel model, the observed pixels of a cube with
    unobserved columns keep exactly the numbers of the fully observed cube, in firesmoke's
    rules and in the reference's (quantised inputs, float16 blending)."""
    region = Region.from_shape("Q", -8.0, 41.0, 0.01, 24, 20)
    full, holes = cube_on(region, seed=3), cube_on(region, seed=3, nan_cols=5)
    tile = dict(tile=16, step=12) if rules is DEFAULT else {}
    a = predict_burned(full, oracle, "2020-08-01", compat=rules, **tile).isel(period=0).compute()
    b = predict_burned(holes, oracle, "2020-08-01", compat=rules, **tile).isel(period=0).compute()
    assert (a["valid_days"].values == 31).all()
    assert np.isnan(b["confidence"].values[:, :5]).all()
    for name in rules.outputs:
        if name != "confidence":
            assert (b[name].values[:, :5] == -1).all()
        np.testing.assert_array_equal(a[name].values[:, 5:], b[name].values[:, 5:])
    assert (a["burn_date"].values > 0).any()  # the numbers compared are not all trivial


def test_products_on_a_subset_and_its_parent_align_pixel_for_pixel():
    parent = Region.from_shape("PAR", -8.0, 41.0, 0.01, 48, 40)
    sub = parent.subset("SUB", 8, 40, 4, 36)
    whole = cube_on(parent)
    part = sub.coords_dataset(time=DAYS.values)  # the subset's own grid, not a slice
    for b in ("red", "nir", "mir", "frp"):
        part[b] = (("time", "y", "x"), whole[b].values[:, 8:40, 4:36])
    a = predict_burned(whole, oracle, "2020-08-01", tile=16, step=12).compute()
    b = predict_burned(part, oracle, "2020-08-01", tile=16, step=12).compute()
    total = a["confidence"] + b["confidence"]  # xarray aligns on exact coordinate labels
    assert total.sizes == {"period": 1, "y": 32, "x": 32}
    assert np.isfinite(total.values).all()
    assert np.array_equal(a["y"].values[8:40], b["y"].values)


def test_cube_without_crs_or_with_bad_axes_is_one_input_error():
    region = Region.from_shape("C", -8.0, 41.0, 0.01, 24, 20)
    cube = cube_on(region)
    calls = []

    def model(batch):
        calls.append(1)
        return oracle(batch)

    with pytest.raises(InputError, match="no CRS"):
        predict_burned(cube.drop_vars("spatial_ref"), model, "2020-08-01")
    flipped = cube.isel(y=slice(None, None, -1))
    with pytest.raises(InputError, match="north to south"):
        predict_burned(flipped, model, "2020-08-01")
    bent = cube.assign_coords(x=cube["x"].values + np.r_[0, 0.003, np.zeros(18)])
    with pytest.raises(InputError, match="irregular"):
        predict_burned(bent, model, "2020-08-01")
    assert not calls


def test_window_without_any_cube_day_warns_naming_the_period():
    region = Region.from_shape("W", -8.0, 41.0, 0.01, 16, 16)
    cube = cube_on(region).isel(time=slice(0, 2))  # July 15-16 only: none of September's
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        predict_burned(cube, oracle, "2020-10-01", tile=16, step=12, allow_partial=True)
    assert any(issubclass(w.category, UnobservedPeriodWarning) and "2020-10" in str(w.message)
               for w in got)


@pytest.mark.parametrize(("mode", "start", "end"), [("monthly", "2020-08-01", None),
                                                    ("range", "2020-07-10", "2020-09-10"),
                                                    ("nrt", "2020-08-20", None)])
@pytest.mark.parametrize("compat", [None, "banet-0.6.7"])
def test_period_labels_are_those_of_the_product(mode, start, end, compat):
    region = Region.from_shape("N", -120.6, 41.3, 0.01, 24, 20)
    tiling = {} if compat else {"tile": 16, "step": 12}
    product = predict_burned(cube_on(region), oracle, start, end, mode=mode, compat=compat,
                             allow_partial=True, **tiling)  # lazy: the labels are coordinates
    labels = [str(v) for v in np.atleast_1d(product["period_label"].values)]
    assert period_labels(mode, start, end, compat) == labels
