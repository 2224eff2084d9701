"""Datacube end to end on a synthetic scenario: truth, FRP, chunking and worker independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio.features
from rasterio.enums import MergeAlg

from firesmoke.cube.build import build_cube
from firesmoke.grid import Region
from firesmoke.io.firms import read_firms
from firesmoke.synthetic import generate_scenario, simulate_burn_truth, simulate_overpass
from firesmoke.synthetic.orbit import overpass_schedule

START, END = "2020-07-10", "2020-07-24"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    region = Region.from_shape("CUBE", -7.0, 41.0, 0.01, 64, 80)
    out = tmp_path_factory.mktemp("scn")
    return generate_scenario(region, START, END, out, seed=5)


def expected_day(truth, day):
    """Reference composite of the model's own fields (no files): granule = 6-min piece."""
    fields, zen = [], []
    for k, _ in enumerate(overpass_schedule(truth.region, truth.date(day))):
        f = simulate_overpass(truth, day, k)
        for g in np.unique(f["granule"][f["valid"]]):
            inside = f["granule"] == g
            fields.append({n: np.where(inside, f[n], np.nan) for n in ("M05", "M07", "mir")})
            zen.append(np.where(inside, f["sensor_zenith"], np.nan))
    if not fields:
        return None
    means = [np.nanmean(z) for z in zen]
    out = {n: np.full(truth.region.shape, np.nan, np.float32) for n in ("M05", "M07", "mir")}
    done = np.zeros(truth.region.shape, bool)
    for i in np.argsort(means, kind="stable"):
        take = np.isfinite(zen[i]) & ~done
        for n in out:
            out[n][take] = fields[i][n][take]
        done |= take
    return out


def test_cube_matches_truth_within_quantisation(scenario):
    cube = build_cube(scenario.region, START, END, viirs=scenario.viirs_dir, firms=scenario.firms_dir,
                      chunks={"time": 8, "y": 32, "x": 48}).compute()
    truth = simulate_burn_truth(scenario.region, np.datetime64(START), scenario.n_days, scenario.seed)
    checked = 0
    for day in range(scenario.n_days):
        exp = expected_day(truth, day)
        got = cube.isel(time=day)
        if exp is None:
            assert np.isnan(got["red"].values).all()
            continue
        both = np.isfinite(exp["M05"]) & np.isfinite(got["red"].values)
        # the cube is NaN only where the expected composite is, or on granule-edge band fill
        assert both.sum() >= 0.9 * np.isfinite(exp["M05"]).sum()
        assert not (np.isfinite(got["red"].values) & ~np.isfinite(exp["M05"])).any()
        # HDF4 uint16 quantisation: Scale ~2.44e-5 -> half a step
        np.testing.assert_allclose(got["red"].values[both], exp["M05"][both], atol=2e-5)
        np.testing.assert_allclose(got["nir"].values[both], exp["M07"][both], atol=2e-5)
        ok = both & np.isfinite(got["mir"].values)
        err = np.abs(got["mir"].values[ok] - exp["mir"][ok])
        assert np.quantile(err, 0.99) < 3e-3
        checked += int(both.sum())
    assert checked > 10_000


def test_frp_matches_per_day_rasterio(scenario):
    region = scenario.region
    cube = build_cube(region, START, END, firms=scenario.firms_dir)
    frp = cube["frp"].compute().values
    table = read_firms(scenario.firms_dir)
    assert len(table) > 50
    days = pd.date_range(START, END)
    for i, d in enumerate(days):
        rows = table[table["time"].dt.normalize() == d]
        if len(rows):
            shapes = [({"type": "Point", "coordinates": (lo, la)}, v) for lo, la, v in
                      zip(rows.longitude, rows.latitude, rows.frp.astype(np.float64), strict=True)]
            ref = rasterio.features.rasterize(shapes, out_shape=region.shape, transform=region.transform,
                                              fill=0, merge_alg=MergeAlg.add, dtype="float64")
        else:
            ref = np.zeros(region.shape)
        np.testing.assert_allclose(frp[i], np.log1p(ref).astype(np.float32), rtol=1e-6, atol=1e-6)
    assert (frp > 0).sum() > 20


def test_independent_of_chunks_and_workers(scenario):
    from distributed import Client, LocalCluster

    # 6 of the scenario's days: 2 x 4 x 3 chunks against one
    kw = dict(viirs=scenario.viirs_dir, firms=scenario.firms_dir, composite="min_zenith")
    end = "2020-07-15"
    a = build_cube(scenario.region, START, end, chunks={"time": 3, "y": 20, "x": 30}, **kw)
    b = build_cube(scenario.region, START, end, chunks={"time": 16, "y": 64, "x": 80}, **kw)
    assert a["red"].data.numblocks == (2, 4, 3) and b["red"].data.numblocks == (1, 1, 1)
    ref = b.compute(scheduler="synchronous")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                      processes=True) as cluster, Client(cluster):
        two = a.compute()
    for v in ("red", "nir", "mir", "frp"):
        np.testing.assert_array_equal(two[v].values, ref[v].values)
    assert np.isfinite(ref["red"].values).any()


def test_rules_differ_but_choose_valid_pixels(scenario):
    r = build_cube(scenario.region, START, END, viirs=scenario.viirs_dir, angles=True).compute()
    m = build_cube(scenario.region, START, END, viirs=scenario.viirs_dir, angles=True,
                   composite="min_zenith").compute()
    # min-zenith never picks a larger zenith than the reference rule
    both = np.isfinite(r["sensor_zenith"].values) & np.isfinite(m["sensor_zenith"].values)
    assert (m["sensor_zenith"].values[both] <= r["sensor_zenith"].values[both] + 1e-6).all()
    assert np.array_equal(np.isfinite(r["sensor_zenith"].values), np.isfinite(m["sensor_zenith"].values))


def test_bad_granule_is_skipped_and_listed(scenario, tmp_path):
    import shutil

    folder = tmp_path / "viirs"
    shutil.copytree(scenario.viirs_dir, folder)
    victim = sorted(folder.glob("*Reflectance_M7.hdf"))[0]
    victim.write_bytes(victim.read_bytes()[:2000])  # truncated
    cube = build_cube(scenario.region, START, END, viirs=folder)
    import json

    skipped = json.loads(cube.attrs["skipped_inputs"])
    assert len(skipped) == 1 and victim.name in skipped[0]["path"]
    assert "truncated" in skipped[0]["reason"]
    assert np.isfinite(cube["red"].compute().values).any()


def test_each_layer_file_is_checked_once_and_validate_false_agrees(scenario, monkeypatch):
    from firesmoke.io.viirs import vmaes_metadata

    calls = []
    real = vmaes_metadata.read_vmaes_metadata
    monkeypatch.setattr(vmaes_metadata, "read_vmaes_metadata", lambda p: calls.append(p) or real(p))
    kw = dict(viirs=scenario.viirs_dir, angles=True, chunks={"time": 4, "y": 32, "x": 40})
    checked = build_cube(scenario.region, START, END, **kw).compute(scheduler="synchronous")
    assert len(calls) == len(set(calls)) > 0  # metadata of each file read once per build
    lazy = build_cube(scenario.region, START, END, validate=False, **kw)
    assert len(calls) == len(set(calls))  # nothing opened before computing
    lazy = lazy.compute(scheduler="synchronous")
    for v in checked.data_vars:
        np.testing.assert_array_equal(lazy[v].values, checked[v].values)
    assert lazy.attrs["n_granules"] == checked.attrs["n_granules"]


def test_frp_memory_follows_chunks_not_region(scenario):
    """A small window of the FRP channel runs tasks of at most one chunk each."""
    from dask.callbacks import Callback

    table = read_firms(scenario.firms_dir)
    big = Region.from_shape("BIG", -9.0, 43.0, 0.01, 600, 700)  # holds the scenario
    sizes = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, id):
            sizes.append(getattr(result, "nbytes", 0))

    cube = build_cube(big, START, START, firms=table, chunks={"time": 1, "y": 64, "x": 64})
    with Sizes():
        cube["frp"].isel(y=slice(200, 210), x=slice(100, 110)).compute(scheduler="synchronous")
    assert 0 < max(sizes) <= 64 * 64 * 4
