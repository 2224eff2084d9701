"""Public hotspot entry: FIRMS-like tables -> (time, y, x) DataArray on a region."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio.features
from rasterio.enums import MergeAlg

from firesmoke.cube.frp import day_index, rasterize_hotspots
from firesmoke.errors import InputError, MissingColumnError
from firesmoke.grid import Region

REGION = Region("T", (-10.0, 43.4, -9.0, 44.0), 0.01)  # 60 x 100, PI pixel size


def table(n=3000, seed=0, start="2021-08-01", days=4):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    return pd.DataFrame({
        "latitude": rng.uniform(43.35, 44.05, n),
        "longitude": rng.uniform(-10.05, -8.95, n),
        "time": t0 + pd.to_timedelta(rng.uniform(-1, days + 1, n), unit="D"),
        "frp": rng.gamma(1.5, 12.0, n),
        "daynight": rng.choice(["D", "N"], n),
        "confidence": rng.choice(["low", "nominal", "high"], n),
        "confidence_pct": rng.uniform(0, 100, n),
    })


def reference_channel(df, region, start, n_days, values="frp"):
    """BA-Net reference: for each UTC day filter the table and rasterize with add."""
    out = np.zeros((n_days, *region.shape))
    day = (df["time"].dt.floor("D") - pd.Timestamp(start)).dt.days.to_numpy()
    for d in range(n_days):
        sub = df[day == d]
        shapes = [({"type": "Point", "coordinates": (x, y)}, v)
                  for x, y, v in zip(sub["longitude"], sub["latitude"],
                                     sub[values] if values else np.ones(len(sub)), strict=True)]
        if shapes:
            out[d] = rasterio.features.rasterize(
                shapes, out_shape=region.shape, transform=region.transform,
                merge_alg=MergeAlg.add, dtype="float64")
    return out


def test_default_is_the_banet_frp_channel():
    df = table()
    da_ = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-04")
    assert da_.dims == ("time", "y", "x") and da_.dtype == np.float32
    assert da_.shape == (4, *REGION.shape)
    assert da_.name == "frp" and "units" not in da_.attrs  # log(1 + MW): no UDUNITS unit
    assert da_.attrs["firesmoke_transform"] == "log1p" and da_.attrs["frp_units"] == "MW"
    assert "MW" in da_.attrs["long_name"]
    np.testing.assert_array_equal(
        da_["time"].values, pd.date_range("2021-08-01", "2021-08-04").values.astype("datetime64[ns]"))
    assert da_["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_allclose(da_["x"].values, REGION.x)
    np.testing.assert_allclose(da_["y"].values, REGION.y)
    assert da_.rio.crs.to_epsg() == 4326
    assert da_.rio.transform() == REGION.transform
    ref = np.log1p(reference_channel(df, REGION, "2021-08-01", 4)).astype(np.float32)
    np.testing.assert_array_equal(da_.values, ref)
    assert da_.attrs["n_detections_used"] + da_.attrs["n_detections_dropped"] == len(df)


@pytest.mark.parametrize(("stat", "units", "values"), [
    ("frp_sum", "MW", "frp"), ("count", "1", None)])
def test_sum_and_count_stats(stat, units, values):
    df = table(seed=1)
    out = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-04", stat=stat)
    assert out.attrs["units"] == units
    ref = reference_channel(df, REGION, "2021-08-01", 4, values=values).astype(np.float32)
    np.testing.assert_array_equal(out.values, ref)


def test_max_stat():
    df = table(seed=2, n=400)
    df.loc[:, "latitude"] = 43.995
    df.loc[:, "longitude"] = -9.995  # all in the upper-left cell
    out = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-04", stat="frp_max")
    assert out.attrs["units"] == "MW"
    day = (df["time"].dt.floor("D") - pd.Timestamp("2021-08-01")).dt.days
    for d in range(4):
        expect = df.loc[day == d, "frp"].max()
        assert out.values[d, 0, 0] == np.float32(expect)
    assert out.values[:, 1:, :].sum() == 0


def test_filters():
    df = table(seed=3)
    args = (REGION, "2021-08-01", "2021-08-04")
    day_only = rasterize_hotspots(df, *args, stat="count", daynight="D")
    ref = reference_channel(df[df["daynight"] == "D"], REGION, "2021-08-01", 4, values=None)
    np.testing.assert_array_equal(day_only.values, ref.astype(np.float32))
    night = rasterize_hotspots(df, *args, stat="count", daynight="night")
    allc = rasterize_hotspots(df, *args, stat="count")
    np.testing.assert_array_equal(day_only.values + night.values, allc.values)

    nominal = rasterize_hotspots(df, *args, stat="count", min_confidence="nominal")
    keep = df["confidence"].isin(["nominal", "high"])
    ref = reference_channel(df[keep], REGION, "2021-08-01", 4, values=None)
    np.testing.assert_array_equal(nominal.values, ref.astype(np.float32))

    pct = rasterize_hotspots(df, *args, stat="count", min_confidence=70)
    ref = reference_channel(df[df["confidence_pct"] >= 70], REGION, "2021-08-01", 4, values=None)
    np.testing.assert_array_equal(pct.values, ref.astype(np.float32))

    # VIIRS letters, and MODIS percent classes when only confidence_pct exists
    letters = df.assign(confidence=df["confidence"].str[0])
    np.testing.assert_array_equal(
        rasterize_hotspots(letters, *args, stat="count", min_confidence="nominal").values,
        nominal.values)
    modis = df.drop(columns=["confidence"])
    high = rasterize_hotspots(modis, *args, stat="count", min_confidence="high")
    ref = reference_channel(df[df["confidence_pct"] >= 80], REGION, "2021-08-01", 4, values=None)
    np.testing.assert_array_equal(high.values, ref.astype(np.float32))


def test_local_solar_day():
    # 23:00 UTC at 9.5 W is 22:22 local: same day; 01:00 UTC is 00:22 local: same day;
    # 00:30 UTC is 23:52 local of the day before
    df = pd.DataFrame({
        "latitude": [43.5, 43.5, 43.5],
        "longitude": [-9.5, -9.5, -9.5],
        "time": pd.to_datetime(["2021-08-01 23:00", "2021-08-02 01:00", "2021-08-02 00:30"]),
        "frp": [1.0, 2.0, 4.0],
    })
    utc = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-02", stat="frp_sum")
    solar = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-02", stat="frp_sum",
                               day="local_solar")
    r, c = REGION.rowcol(np.array([43.5]), np.array([-9.5]))
    assert list(utc.values[:, r[0], c[0]]) == [1.0, 6.0]
    assert list(solar.values[:, r[0], c[0]]) == [5.0, 2.0]
    assert "solar" in solar.attrs["day_definition"]
    t = pd.to_datetime(["2021-08-01 00:10"]).values.astype("datetime64[ns]").view(np.int64)
    assert day_index(t, np.array([170.0]), pd.Timestamp("2021-08-01"), "local_solar")[0] == 0
    assert day_index(t, np.array([-170.0]), pd.Timestamp("2021-08-01"), "local_solar")[0] == -1


def test_timezone_aware_times_and_outside_points():
    df = table(seed=4, n=500)
    aware = df.assign(time=df["time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Lisbon"))
    a = rasterize_hotspots(aware, REGION, "2021-08-01", "2021-08-04")
    b = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-04")
    np.testing.assert_array_equal(a.values, b.values)
    assert b.attrs["n_detections_dropped"] > 0  # outside the bbox or the period


def test_errors():
    df = table(n=10)
    with pytest.raises(MissingColumnError, match="frp"):
        rasterize_hotspots(df.drop(columns=["frp"]), REGION, "2021-08-01", "2021-08-02")
    with pytest.raises(InputError, match="unknown stat"):
        rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-02", stat="mean")
    with pytest.raises(InputError, match="before start"):
        rasterize_hotspots(df, REGION, "2021-08-03", "2021-08-02")
    with pytest.raises(MissingColumnError, match="daynight"):
        rasterize_hotspots(df.drop(columns=["daynight"]), REGION, "2021-08-01", "2021-08-02",
                           daynight="D")
    with pytest.raises(MissingColumnError, match="confidence_pct"):
        rasterize_hotspots(df.drop(columns=["confidence_pct"]), REGION, "2021-08-01",
                           "2021-08-02", min_confidence=50)
    with pytest.raises(InputError, match="confidence class"):
        rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-02", min_confidence="medium")
    with pytest.raises(InputError, match="day rule"):
        rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-02", day="local")


def test_empty_table():
    df = table(n=0)
    out = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-01", stat="count")
    assert out.shape == (1, *REGION.shape) and not out.values.any()


@pytest.mark.parametrize("stat", ["log1p_frp", "frp_sum", "count", "frp_max"])
def test_chunked_equals_eager(stat):
    df = table(n=5000, seed=4)
    eager = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-05", stat=stat)
    lazy = rasterize_hotspots(df, REGION, "2021-08-01", "2021-08-05", stat=stat,
                              chunks={"time": 2, "y": 16, "x": 35})
    assert lazy.chunks[0] == (2, 2, 1)
    assert set(lazy.chunks[1][:-1]) == {16} and set(lazy.chunks[2][:-1]) == {35}
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert lazy.attrs == eager.attrs


def test_chunked_memory_follows_chunks_not_region():
    """Each task of the chunked grid returns at most one chunk (issue 14: a 10 x 10 px
    read of a large region rasterised the whole region per time chunk)."""
    from dask.callbacks import Callback

    big = Region("BIG", (-10.0, 40.0, -5.0, 45.0), 0.01)  # 500 x 500 px
    df = table(n=4000, seed=5)
    sizes = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, id):
            sizes.append(getattr(result, "nbytes", 0))

    lazy = rasterize_hotspots(df, big, "2021-08-01", "2021-08-04",
                              chunks={"time": 4, "y": 50, "x": 50})
    with Sizes():
        part = lazy.isel(y=slice(340, 350), x=slice(10, 20)).compute(scheduler="synchronous")
    assert max(sizes) <= 4 * 50 * 50 * 4
    np.testing.assert_array_equal(
        part.values,
        rasterize_hotspots(df, big, "2021-08-01", "2021-08-04").values[:, 340:350, 10:20])
