"""compat="banet-0.6.7" against an independent numpy re-implementation of the reference.

The reference rules are written here from ``reference/banet.md`` ("Details confirmed from
the reference code"), in plain numpy over the whole (zero-padded) region, one tile at a
time, using the same torch modules as the model. firesmoke's compat mode must agree:
identical confidence (bit for bit), burned masks and dates.
"""

from __future__ import annotations

import functools
import os

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from firesmoke.burned.predict import predict_burned
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.inference.model import TileModel, clear_model_cache
from firesmoke.inference.tiling import TilePlan, tile_origins
from firesmoke.models.normalization import BANET

H, W = 226, 205  # L mod 100 = 26 and 5: the reference has one more row/column of tiles
DAYS = pd.date_range("2020-06-10", "2020-10-25")
NO_VIIRS = pd.Timestamp("2020-08-10")  # no granule: FIRMS only


def _member(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Conv3d(4, 1, 3, padding=1)
    with torch.no_grad():
        net.weight.mul_(0.6)
        net.bias.fill_(-7.5)  # background daily p ~6e-4: only the fire area is burned
    return net.eval()


def _model() -> TileModel:
    return TileModel(builders=(functools.partial(_member, 0), functools.partial(_member, 1)),
                     key="compat-test", normalization=BANET)


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    rng = np.random.default_rng(7)
    T = len(DAYS)
    yy, xx = np.mgrid[0:H, 0:W]
    fire = np.exp(-(((yy - 120) / 40.0) ** 2 + ((xx - 90) / 50.0) ** 2))
    red = (0.05 + 0.25 * rng.random((T, H, W))).astype(np.float32)
    nir = (0.10 + 0.30 * rng.random((T, H, W))).astype(np.float32)
    mir = (0.02 + 0.15 * rng.random((T, H, W))).astype(np.float32)
    frp = np.zeros((T, H, W), np.float32)
    t_fire = slice(55, 75)  # early August
    frp[t_fire] = (np.log1p(40 * fire) * (rng.random((20, H, W)) < 0.3)).astype(np.float32)
    red[t_fire] -= 0.04 * fire[None].astype(np.float32)
    for a in (red, nir, mir):
        a[rng.random(a.shape) < 0.05] = np.nan  # clouds / gaps
    k = DAYS.get_loc(NO_VIIRS)
    red[k] = nir[k] = mir[k] = np.nan
    frp[k] = np.log1p(30 * fire).astype(np.float32)
    dims = ("time", "y", "x")
    ds = Region.from_shape("C", 10.0, 40.0, 0.01, H, W).coords_dataset(time=DAYS)
    for name, a in (("red", red), ("nir", nir), ("mir", mir), ("frp", frp)):
        ds[name] = (dims, a)
    return ds.chunk({"time": -1, "y": 128, "x": 110})


# ----------------------------------------------------------------- the reference, in numpy
def _ref_inputs(cube: xr.Dataset, days: pd.DatetimeIndex) -> np.ndarray:
    """Daily files as the reference stores and reads them: x100 uint16, 65535 = no data."""
    x = np.stack([cube[b].sel(time=days).values for b in ("red", "nir", "mir", "frp")])
    stored = x * np.float32(100)
    stored[np.isnan(stored)] = 65535
    stored[stored > 65535] = 65534
    stored = stored.astype(np.uint16)
    read = stored.copy()
    read[read == 65535] = 0
    out = (read / 100).astype(np.float16)
    for i, d in enumerate(days):
        day = cube[["red", "nir", "mir"]].sel(time=d)
        if not any(bool(np.isfinite(day[b].values).any()) for b in ("red", "nir", "mir")):
            out[:, i] = 0  # no VIIRS granule that day: no daily file, all zeros
    return out


_REF_CACHE: dict[tuple[int, pd.Timestamp], np.ndarray] = {}


def _ref_predict(cube: xr.Dataset, start: pd.Timestamp) -> np.ndarray:
    """``(64, H, W)`` float16 blended probabilities of the 64-day window from ``start``."""
    key = (id(cube), pd.Timestamp(start))
    if key not in _REF_CACHE:
        _REF_CACHE[key] = _ref_predict_uncached(cube, start)
    return _REF_CACHE[key]


def _ref_predict_uncached(cube: xr.Dataset, start: pd.Timestamp) -> np.ndarray:
    days = pd.date_range(start, periods=64)
    x = _ref_inputs(cube, days)
    rows = list(range(0, H - 1, 100))
    cols = list(range(0, W - 1, 100))
    ph, pw = rows[-1] + 128, cols[-1] + 128
    padded = np.zeros((4, 64, ph, pw), np.float16)
    padded[:, :, :H, :W] = x
    acc = np.zeros((64, ph, pw), np.float16)
    cnt = np.zeros((ph, pw), np.float16)
    mean = np.asarray(BANET.mean, np.float32)[:, None, None, None]
    std = np.asarray(BANET.std, np.float32)[:, None, None, None]
    members = [_member(0), _member(1)]
    for r in rows:
        for c in cols:
            t = padded[:, :, r : r + 128, c : c + 128].astype(np.float32)
            t = (t - mean) / std
            with torch.no_grad():
                ps = [torch.sigmoid(m(torch.from_numpy(t)[None]))[0, 0].numpy().astype(np.float16)
                      for m in members]
            p = np.mean(np.stack(ps), axis=0)  # float16
            acc[:, r : r + 128, c : c + 128] += p
            cnt[r : r + 128, c : c + 128] += 1
    return (acc / cnt)[:, :H, :W]


def _ref_product(p: np.ndarray, doy: np.ndarray, threshold: float):
    conf = np.minimum(p.sum(axis=0), np.float16(1))
    idx = np.argmax(p, axis=0)
    burned = conf >= threshold
    return conf.astype(np.float32), np.where(burned, doy[idx], 0), burned


def _month_window(month: str):
    m = pd.Timestamp(month)
    start = (m - pd.Timedelta(days=1)).replace(day=15)
    days = pd.date_range(start, periods=64)
    keep = np.flatnonzero((days.month == m.month) & (days.year == m.year))
    return start, days, keep


# ----------------------------------------------------------------- tests
@pytest.fixture(autouse=True)
def _fresh():
    clear_model_cache()
    yield
    clear_model_cache()


def _check(got_conf, got_date, ref_conf, ref_date, ref_burned):
    # bit-identical: the float16 blending and sums of the reference, in its order. A float32
    # accumulator would pass atol=1e-3 (it differs by one float16 step, 4.9e-4, in ~0.07 %
    # of the pixels), so nothing looser than equality pins the rule
    np.testing.assert_array_equal(got_conf, ref_conf)
    np.testing.assert_array_equal(got_date > 0, ref_burned)
    np.testing.assert_array_equal(got_date, ref_date)


def test_monthly_equals_the_reference(cube):
    with dask.config.set(scheduler="threads"):
        ds = predict_burned(cube, _model(), "2020-08-01", "2020-09-30", compat="banet-0.6.7",
                            device="cpu").compute()
    assert list(ds.period_label.values) == ["2020-08", "2020-09"]
    for i, month in enumerate(("2020-08", "2020-09")):
        start, days, keep = _month_window(month)
        p = _ref_predict(cube, start)[keep]
        doy = np.asarray(days[keep].dayofyear)
        conf, date, burned = _ref_product(p, doy, 0.5)
        assert i == 1 or (50 < burned.sum() and burned.mean() < 0.9)  # August: not trivial
        _check(ds.confidence.values[i], ds.burn_date.values[i], conf, date, burned)
        # the reference's dates: the argmax index counted from the window's first day
        ref_dates = np.where(burned, np.asarray(days.dayofyear)[np.argmax(p, axis=0)], 0)
        np.testing.assert_array_equal(ds.burn_date_reference.values[i], ref_dates)
        assert ((ds.burn_date.values[i] - ds.burn_date_reference.values[i])[burned] > 0).all()


def test_range_and_nrt_equal_the_reference(cube):
    with dask.config.set(scheduler="threads"):
        rng = predict_burned(cube, _model(), "2020-07-10", "2020-10-05", mode="range",
                             compat="banet-0.6.7", device="cpu").compute()
        nrt = predict_burned(cube, _model(), "2020-09-20", mode="nrt", compat="banet-0.6.7",
                             device="cpu").compute()
    # range: July and October (first and last month) skipped; Aug + Sep days concatenated
    ps, doys = [], []
    for month in ("2020-08", "2020-09"):
        start, days, keep = _month_window(month)
        ps.append(_ref_predict(cube, start)[keep])
        doys.append(np.asarray(days[keep].dayofyear))
    conf, date, burned = _ref_product(np.concatenate(ps), np.concatenate(doys), 0.05)
    assert 0.02 < burned.mean() < 0.98
    _check(rng.confidence.values[0], rng.burn_date.values[0], conf, date, burned)
    # NRT: the 64 days ending on the run date, all kept, threshold 0.1
    start = pd.Timestamp("2020-09-20") - pd.Timedelta(days=63)
    p = _ref_predict(cube, start)
    conf, date, burned = _ref_product(p, np.asarray(pd.date_range(start, periods=64).dayofyear),
                                      0.1)
    _check(nrt.confidence.values[0], nrt.burn_date.values[0], conf, date, burned)


def test_compat_differs_from_default_and_checks_its_arguments(cube):
    with dask.config.set(scheduler="threads"):
        a = predict_burned(cube, _model(), "2020-08-01", device="cpu").compute()
        b = predict_burned(cube, _model(), "2020-08-01", compat="banet-0.6.7",
                           device="cpu").compute()
    d = np.abs(a.confidence.values - b.confidence.values)
    assert d.max() > 1e-4  # quantisation, float16, the extra edge tiles, the FRP-only day
    assert "burn_date_reference" not in a and a.attrs["compat"] == ""
    assert b.attrs["compat"] == "banet-0.6.7"
    with pytest.raises(InputError, match="compat"):
        predict_burned(cube, _model(), "2020-08-01", compat="banet-0.5")
    with pytest.raises(InputError, match="reference tiling"):
        predict_burned(cube, _model(), "2020-08-01", compat="banet-0.6.7", blend="centre")
    with pytest.raises(InputError, match="strictly inside"):
        predict_burned(cube, _model(), "2020-08-03", "2020-09-20", mode="range",
                       compat="banet-0.6.7")


def test_reference_tile_plan():
    # one more row/column of tiles exactly when L mod 100 is 2..28
    for L in range(129, 1200):
        extra = len(tile_origins(L, 128, 100, "reference")) - len(tile_origins(L, 128, 100))
        assert extra == (1 if 2 <= L % 100 <= 28 else 0), L
    assert len(TilePlan(H, W, rule="reference")) == 9 and len(TilePlan(H, W)) == 4


def test_window_outside_the_cube_is_an_input_error(cube):
    short = cube.sel(time=slice("2020-07-01", "2020-08-31"))
    with pytest.raises(InputError, match=r"holds 48 of the 64 days"):
        predict_burned(short, _model(), "2020-08-01")
    ds = predict_burned(short, _model(), "2020-08-01", allow_partial=True, device="cpu")
    assert int(ds.observed_days.values[0]) == 48  # Jul 1 .. Aug 17 of Jun 15 .. Aug 17


def test_cli_predict_burned_compat_and_bad_device(cube, tmp_path, capsys):
    from distributed import LocalCluster

    from firesmoke.cli.main import main

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:  # worker processes: tests/cli
        _cli_compat(main, cluster.scheduler_address, cube, tmp_path, capsys)


def _cli_compat(main, scheduler, cube, tmp_path, capsys):
    from firesmoke.models.banet import BANet
    from firesmoke.models.weights import save_weights

    store = tmp_path / "cube.zarr"
    small = cube.isel(y=slice(0, 64), x=slice(0, 64)).sel(time=slice("2020-07-15", "2020-09-20"))
    small.chunk({"time": -1, "y": 64, "x": 64}).to_zarr(store, zarr_format=3)
    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    save_weights(BANet().eval(), weights)
    out = tmp_path / "ba.zarr"
    code = main(["predict", "burned", "--cube", str(store), "--start", "2020-08-01",
                 "--weights", str(weights), "--out", str(out), "--device", "gpu0"])
    assert code == 2 and "device" in capsys.readouterr().err  # a user error: exit 2
    code = main(["predict", "burned", "--cube", str(store), "--start", "2020-08-01",
                 "--weights", str(weights), "--out", str(out), "--compat", "banet-0.6.7",
                 "--device", "cpu", "--gpus", "0", "--scheduler", scheduler])
    assert code == 0
    ds = xr.open_zarr(out)
    assert ds.attrs["compat"] == "banet-0.6.7" and "burn_date_reference" in ds


def test_campaign_compat_equals_predict_burned(tmp_path):
    from _campaign_helpers import make_cube, standin_model
    from distributed import Client, LocalCluster

    from firesmoke.campaign.run import run_campaign
    from firesmoke.cube.build import open_cube
    from firesmoke.grid import Region

    store = make_cube(tmp_path / "cube.zarr", shape=(130, 205), start="2020-06-10",
                      end="2020-10-25")
    region = Region.from_dataset(open_cube(store))
    model = standin_model((0, 1))
    spec = {"name": "c", "output": str(tmp_path / "out"), "block_size": 128,
            "regions": [{"name": region.name, "bbox": list(region.bbox),
                         "pixel_size": region.pixel_size, "cube": str(store)}],
            "periods": [{"start": "2020-07-10", "end": "2020-10-05"}],
            "products": {"burned": [{"mode": "monthly", "compat": "banet-0.6.7",
                                     "name": "m"},
                                    {"mode": "range", "compat": "banet-0.6.7", "name": "r"}]},
            "cluster": {"torch_threads": 1}}
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        rep = run_campaign(spec, client=client, model=model, progress=False)
    assert rep.ok
    stores = {os.path.basename(s).split("_")[0]: s for s in rep.stores}
    cube = open_cube(store)
    import torch

    threads = torch.get_num_threads()
    # one torch thread in this thread, as the campaign's workers (torch_threads = 1): the
    # same float32 sums, so the same float16 roundings (OpenMP thread counts are per thread)
    torch.set_num_threads(1)
    with dask.config.set(scheduler="synchronous"):
        ref_m = predict_burned(cube, model, "2020-07-10", "2020-10-05", compat="banet-0.6.7",
                               device="cpu", allow_partial=True).compute()  # Oct: partial
        ref_r = predict_burned(cube, model, "2020-07-10", "2020-10-05", mode="range",
                               compat="banet-0.6.7", device="cpu").compute()
    torch.set_num_threads(threads)
    for key, ref in (("m", ref_m), ("r", ref_r)):
        out = xr.open_zarr(stores[key])
        assert out.attrs["compat"] == "banet-0.6.7"
        for v in ("confidence", "burn_date", "burn_date_reference"):
            np.testing.assert_array_equal(out[v].values, ref[v].values, err_msg=f"{key} {v}")
    assert (ref_r.burn_date.values > 0).any()
