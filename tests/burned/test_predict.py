"""Burned-area products: windows, correct days of year, reduction rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from firesmoke.burned.periods import monthly_windows
from firesmoke.burned.predict import predict_burned, window_block, window_input
from firesmoke.grid import Region


def make_cube(days, shape=(40, 50)):
    region = Region.from_shape("T", 0.0, 1.0, 0.01, *shape)
    ds = region.coords_dataset(time=days.values)
    for v in ("red", "nir", "mir", "frp"):
        ds[v] = (("time", "y", "x"), np.zeros((len(days), *shape), np.float32))
    return ds.chunk({"time": 16, "y": 20, "x": 25})


def frp_oracle(batch):
    """A 'model' that says: burned on the days where the FRP channel is hot."""
    frp = np.nan_to_num(batch[:, 3:4])
    return (frp > 0.5).astype(np.float32)


def test_monthly_dates_are_true_days_of_year():
    days = pd.date_range("2020-06-01", "2020-09-30")
    cube = make_cube(days)
    frp = cube["frp"].values
    burn = {(5, 5): "2020-07-03", (10, 30): "2020-07-31", (30, 40): "2020-08-15"}
    for (r, c), d in burn.items():
        frp[days.get_loc(d), r, c] = 3.0
    cube["frp"] = (("time", "y", "x"), frp)
    ds = predict_burned(cube, frp_oracle, "2020-07-01", "2020-08-31", tile=32, step=24).compute()
    assert list(ds.period_label.values) == ["2020-07", "2020-08"]
    assert ds.period.dtype == "datetime64[ns]" and ds.period_end.dtype == "datetime64[ns]"
    np.testing.assert_array_equal(ds.period.values, pd.to_datetime(["2020-07-01", "2020-08-01"]))
    np.testing.assert_array_equal(ds.period_end.values,
                                  pd.to_datetime(["2020-07-31", "2020-08-31"]))
    jul, aug = ds.sel(period="2020-07").squeeze("period"), ds.sel(period="2020-08-01")
    assert jul.sizes == aug.sizes == {"y": 40, "x": 50}  # partial date / exact day
    assert jul.burn_date.values[5, 5] == pd.Timestamp("2020-07-03").dayofyear
    assert jul.burn_date.values[10, 30] == pd.Timestamp("2020-07-31").dayofyear
    assert jul.burn_date.values[30, 40] == 0          # burned in August: not in July's map
    assert aug.burn_date.values[30, 40] == pd.Timestamp("2020-08-15").dayofyear
    assert jul.confidence.values[5, 5] == pytest.approx(1.0)
    assert (jul.burn_date.values > 0).sum() == 2 and (aug.burn_date.values > 0).sum() == 1
    assert ds.burn_date.dtype == np.int16
    assert ds.rio.crs.to_epsg() == 4326
    assert "window_rule" in ds.attrs and ds.attrs["product_mode"] == "monthly"


def test_missing_days_are_nan_in_window():
    days = pd.date_range("2020-07-01", "2020-07-31")  # window starts 2020-06-15: not in cube
    cube = make_cube(days)
    (w,) = monthly_windows("2020-07-01", "2020-07-31")
    x = window_input(cube, w).compute()
    assert x.shape == (4, 64, 40, 50)
    assert np.isnan(x[:, :16]).all() and not np.isnan(x[:, 16:47]).any()


def test_range_mode_one_map():
    days = pd.date_range("2020-05-01", "2020-10-31")
    cube = make_cube(days)
    frp = cube["frp"].values
    frp[days.get_loc("2020-06-20"), 3, 3] = 2.0
    frp[days.get_loc("2020-08-25"), 7, 8] = 2.0
    cube["frp"] = (("time", "y", "x"), frp)
    ds = predict_burned(cube, frp_oracle, "2020-06-01", "2020-09-15", mode="range",
                        tile=32, step=32).compute()
    assert ds.sizes["period"] == 1
    assert list(ds.period_label.values) == ["2020-06-01..2020-09-15"]
    assert ds.period.values[0] == np.datetime64("2020-06-01")
    assert ds.period_end.values[0] == np.datetime64("2020-09-15")
    bd = ds.burn_date.values[0]
    assert bd[3, 3] == pd.Timestamp("2020-06-20").dayofyear
    assert bd[7, 8] == pd.Timestamp("2020-08-25").dayofyear
    assert (bd > 0).sum() == 2


def test_bad_mode():
    cube = make_cube(pd.date_range("2020-07-01", "2020-07-31"))
    with pytest.raises(Exception, match="unknown mode"):
        predict_burned(cube, frp_oracle, "2020-07-01", mode="weekly")


def test_lacking_variables():
    cube = make_cube(pd.date_range("2020-07-01", "2020-07-31")).drop_vars("mir")
    with pytest.raises(Exception, match="lacks"):
        predict_burned(cube, frp_oracle, "2020-07-01", "2020-07-31")
    assert isinstance(cube, xr.Dataset)


@pytest.mark.parametrize("mode", ["monthly", "range"])
def test_tiles_shared_among_tasks_give_the_same_product(mode):
    """predict_burned(tasks=N) splits each chunk's tiles among tasks: the same product."""
    days = pd.date_range("2020-06-01", "2020-09-30")
    cube = make_cube(days, shape=(60, 70)).chunk({"time": 16, "y": 60, "x": 70})
    rng = np.random.default_rng(4)
    cube["frp"] = (("time", "y", "x"), (rng.random((len(days), 60, 70)) * 0.6).astype(np.float32))

    def soft(batch):
        return np.clip(np.nan_to_num(batch[:, 3:4]), 0, 1).astype(np.float32)

    kw = dict(mode=mode, tile=32, step=24)
    one = predict_burned(cube, soft, "2020-07-01", "2020-08-31", tasks=None, **kw)
    many = predict_burned(cube, soft, "2020-07-01", "2020-08-31", tasks=6, **kw)
    assert len(many.confidence.data.__dask_graph__()) > len(one.confidence.data.__dask_graph__())
    xr.testing.assert_identical(many.drop_attrs().compute(), one.drop_attrs().compute())


@pytest.mark.parametrize("gap", [False, True])
def test_window_block_equals_the_lazy_window_input(gap):
    """The campaign worker's eager block read and predict_burned's lazy window: the same
    values, days the cube lacks NaN (a cube ending inside the window, and one with a gap)."""
    days = pd.date_range("2020-06-20", "2020-09-10")
    if gap:
        days = days[(days < "2020-07-20") | (days > "2020-07-25")]
    cube = make_cube(days)
    rng = np.random.default_rng(3)
    for v in ("red", "nir", "mir", "frp"):
        cube[v] = cube[v].copy(data=rng.random(cube[v].shape, np.float32))
    (w,) = monthly_windows("2020-08-01", "2020-08-31")
    rows, cols = slice(7, 33), slice(11, 50)
    lazy = window_input(cube, w)[..., rows, cols].compute()
    eager = window_block(cube.compute(), w, rows, cols)  # a non-dask cube, as the worker's
    assert eager.dtype == np.float32 and eager.shape == lazy.shape
    np.testing.assert_array_equal(eager, lazy)
    missing = ~pd.DatetimeIndex(w.days).isin(days)
    assert missing.any() and np.isnan(eager[:, missing]).all()
    assert np.isfinite(eager[:, ~missing]).all()
