"""Campaigns: TOML specs, plans, the run against the whole-region pipeline, resume, exports."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from _campaign_helpers import make_cube, standin_model

from firesmoke.burned.periods import PERIOD_COORDS
from firesmoke.burned.predict import predict_burned
from firesmoke.campaign.run import plan_campaign, resume_campaign, run_campaign
from firesmoke.campaign.spec import load_spec
from firesmoke.cube.build import open_cube
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.store import Ledger, write_product

SPEC_TOML = """
name = "iberia"
output = "out"
block_size = 256
weights = ["w/a.pt", "banet_synthetic"]

[[regions]]
name = "PT"

[[regions]]
file = "regions/R_NW.json"

[[regions]]
name = "box"
bbox = [-8.0, 40.2, -5.44, 42.76]
pixel_size = 0.01
cube = "cubes/box.zarr"

[[periods]]
start = 2020-07-01
end = 2020-08-31

[[periods]]
start = "2020-08-15"
end = "2020-09-10"

[inputs]
viirs = ["granules/viirs750", "/abs/viirs"]
firms = "firms"

[products.burned]
mode = "monthly"
threshold = 0.4
blend = "centre"

[exports]
geotiff = true
events = true
periods = ["2020-08"]

[cluster]
address = "tcp://10.0.0.5:8786"
"""


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def cube_store(tmp_path_factory):
    return make_cube(tmp_path_factory.mktemp("cube") / "cube.zarr", shape=(160, 256))


def _spec(cube, out, region=None, **kw):
    region = region or Region.from_dataset(open_cube(cube))
    spec = {
        "name": "t", "output": str(out), "block_size": 128,
        "regions": [{"name": region.name, "bbox": list(region.bbox),
                     "pixel_size": region.pixel_size, "cube": str(cube)}],
        "periods": [{"start": "2020-08-01", "end": "2020-09-30"}],
        "products": {"burned": {"mode": "monthly"}},
        "cluster": {"torch_threads": 1},
    }
    spec.update(kw)
    return spec


# --------------------------------------------------------------------------- spec
def test_load_spec_full(tmp_path):
    (tmp_path / "regions").mkdir()
    Region("NW", (-9.0, 41.0, -8.0, 42.0), 0.01).to_json(tmp_path / "regions" / "R_NW.json")
    path = tmp_path / "campaign.toml"
    path.write_text(SPEC_TOML)
    spec = load_spec(path)
    assert spec.name == "iberia" and spec.block_size == 256
    assert spec.output == tmp_path.resolve() / "out"
    assert [e.region.name for e in spec.regions] == ["PT", "NW", "box"]
    assert spec.regions[0].region.shape == (800, 400) and spec.regions[0].cube is None
    assert spec.regions[1].region.bbox == (-9.0, 41.0, -8.0, 42.0)
    assert spec.regions[2].region.shape == (256, 256)
    assert spec.regions[2].cube == tmp_path.resolve() / "cubes" / "box.zarr"
    assert [(str(p.start), str(p.end)) for p in spec.periods] == [
        ("2020-07-01", "2020-08-31"), ("2020-08-15", "2020-09-10")]
    assert spec.weights == (str(tmp_path.resolve() / "w" / "a.pt"), "banet_synthetic")
    assert spec.inputs.viirs == (tmp_path.resolve() / "granules" / "viirs750", Path("/abs/viirs"))
    assert spec.inputs.firms == (tmp_path.resolve() / "firms",)
    (prod,) = spec.products
    assert (prod.name, prod.mode, prod.threshold, prod.blend, prod.tile, prod.step) == (
        "burned-monthly", "monthly", 0.4, "centre", 128, 100)
    assert spec.exports.geotiff and spec.exports.events and not spec.exports.quicklook
    assert spec.exports.periods == ("2020-08",)
    assert spec.cluster.address == "tcp://10.0.0.5:8786"
    # months of overlapping periods are planned once, in order
    plan = plan_campaign(spec)
    assert [s.label for s in plan.slots["burned-monthly"]] == ["2020-07", "2020-08", "2020-09"]
    assert plan.days["PT"] == (dt.date(2020, 6, 15), dt.date(2020, 10, 17))


@pytest.mark.parametrize(("patch", "field", "match"), [
    ({"block_size": 500}, "block_size", "multiple of 128"),
    ({"colour": "red"}, "<top level>", "unknown key"),
    ({"regions": [{"name": "x", "bbox": [1, 0, 0, 1], "pixel_size": 0.01}]}, "regions[0].bbox", "left"),
    ({"regions": [{"name": "../evil", "bbox": [0, 0, 1, 1], "pixel_size": 0.01}]},
     "regions[0].name", "path separators"),
    ({"regions": [{"name": "two words", "bbox": [0, 0, 1, 1], "pixel_size": 0.01}]},
     "regions[0].name", "plain name"),
    ({"regions": [{"name": "NOPE"}]}, "regions[0].name", "unknown region"),
    ({"regions": [{"name": "PT"}, {"name": "PT"}]}, "regions", "unique"),
    ({"periods": [{"start": "2020-09-01", "end": "2020-08-01"}]}, "periods[0]", "before"),
    ({"periods": []}, "periods", "at least one"),
    ({"products": {"burned": {"mode": "weekly"}}}, "products.burned[0].mode", "not one of"),
    ({"products": {"burned": {"tile": 100}}}, "products.burned[0].tile", "multiple of 32"),
    ({"products": {"burned": {"name": "a/b"}}}, "products.burned[0].name", "plain name"),
    ({"cluster": {"address": "tcp://x:1", "n_workers": 2}}, "cluster", "LocalCluster"),
    ({"name": ".."}, "name", "plain name"),
    ({"inputs": {}}, "inputs", "no cube store"),
])
def test_load_spec_errors_name_the_field(tmp_path, patch, field, match):
    spec = {"name": "c", "output": "out", "regions": [{"name": "PT"}],
            "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
            "products": {"burned": {}}, "inputs": {"viirs": ["v"]}}
    spec.update(patch)
    with pytest.raises(InputError, match=match) as info:
        load_spec(spec, base_dir=tmp_path)
    assert info.value.field == field


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(InputError, match="malformed TOML") as info:
        load_spec(bad)
    assert str(bad) in str(info.value)


def test_range_periods_with_the_same_first_day_are_refused(tmp_path):
    spec = {"name": "p", "output": str(tmp_path), "block_size": 128,
            "regions": [{"name": "A", "bbox": [0.0, 0.0, 1.0, 1.0], "pixel_size": 0.01}],
            "periods": [{"start": "2020-08-01", "end": "2020-08-15"},
                        {"start": "2020-08-01", "end": "2020-08-31"}],
            "products": {"burned": [{"mode": "range"}, {"mode": "monthly"}]},
            "inputs": {"viirs": ["v"]}}
    with pytest.raises(InputError, match="start on the same day") as info:
        plan_campaign(spec)
    assert info.value.field == "periods" and "burned-range" in str(info.value)
    spec["periods"][1]["start"] = "2020-08-02"  # distinct first days are fine
    plan = plan_campaign(spec)
    assert [s.label for s in plan.slots["burned-range"]] == ["2020-08-01..2020-08-15",
                                                             "2020-08-02..2020-08-31"]
    assert [s.label for s in plan.slots["burned-monthly"]] == ["2020-08"]  # merged, no clash


def test_plan_blocks_cover_region_once_with_stable_ids(tmp_path):
    spec = {"name": "p", "output": str(tmp_path), "block_size": 128,
            "regions": [{"name": "A", "bbox": [0.0, 0.0, 3.0, 2.0], "pixel_size": 0.01},
                        {"name": "B", "bbox": [10.0, 0.0, 11.0, 1.0], "pixel_size": 0.01}],
            "periods": [{"start": "2020-07-10", "end": "2020-08-05"},
                        {"start": "2021-01-01", "end": "2021-01-31"}],
            "products": {"burned": [{"mode": "monthly"}, {"mode": "nrt"}]},
            "inputs": {"viirs": ["v"]}}
    plan = plan_campaign(spec)
    assert [s.label for s in plan.slots["burned-monthly"]] == ["2020-07", "2020-08", "2021-01"]
    assert [s.label for s in plan.slots["burned-nrt"]] == ["nrt-2020-08-05", "nrt-2021-01-31"]
    # A: 200 x 300 px -> 2 x 3 blocks; B: 100 x 100 -> 1 block; (3 + 2) periods
    assert len(plan) == (6 + 1) * (3 + 2)
    ids = [u.id for u in plan.units]
    assert len(set(ids)) == len(ids)
    assert ids == [u.id for u in plan_campaign(spec).units]
    assert "A.burned-monthly.2020-08.y000128.x000256" in ids
    for (product, region), _store in plan.stores.items():
        h, w = {"A": (200, 300), "B": (100, 100)}[region]
        for slot in plan.slots[product]:
            cover = np.zeros((h, w), int)
            for u in plan.units_of(product, region):
                if u.period == slot.label:
                    assert u.rows[0] % 128 == 0 and u.cols[0] % 128 == 0
                    cover[slice(*u.rows), slice(*u.cols)] += 1
            assert (cover == 1).all()
    assert plan.stores[("burned-nrt", "B")] == tmp_path.resolve() / "burned-nrt_B.zarr"
    assert plan.days["A"][0] == dt.date(2020, 6, 3)  # start of the NRT window of 2020-08-05


# --------------------------------------------------------------------------- runs
def test_campaign_equals_whole_region_pipeline(cube_store, tmp_path, client):
    model = standin_model((0, 1))  # an ensemble of two
    spec = _spec(cube_store, tmp_path / "out",
                 exports={"geotiff": True, "quicklook": True, "events": True, "min_pixels": 4,
                          "periods": ["2020-08"]})
    rep = run_campaign(spec, client=client, model=model, progress=False)
    assert rep.ok and len(rep.done) == rep.n_units == 2 * 2 * 2 and not rep.skipped
    ref = predict_burned(open_cube(cube_store), model, "2020-08-01", "2020-09-30",
                         allow_partial=True).compute()  # the cube ends 2020-09-30
    (store,) = rep.stores
    out = xr.open_zarr(store)  # plain xarray: consolidated, CRS included
    assert out.rio.crs.to_epsg() == 4326
    assert list(out.period_label.values) == list(ref.period_label.values) == ["2020-08", "2020-09"]
    for k in ("period", "period_end"):  # datetime64 on both paths (issue 12)
        assert out[k].dtype == ref[k].dtype == "datetime64[ns]"
        np.testing.assert_array_equal(out[k].values, ref[k].values)
    ref_store = write_product(ref, tmp_path / "ref.zarr")  # predict_burned's path
    for k in PERIOD_COORDS:  # stored alike, byte for byte
        for meta in (".zarray", ".zattrs"):
            assert json.loads((Path(store) / k / meta).read_text()) == \
                json.loads((ref_store / k / meta).read_text()), (k, meta)
        assert xr.open_zarr(ref_store)[k].encoding["dtype"] == out[k].encoding["dtype"]
    np.testing.assert_array_equal(out.y.values, ref.y.values)
    np.testing.assert_array_equal(out.confidence.values, ref.confidence.values)
    np.testing.assert_array_equal(out.burn_date.values, ref.burn_date.values)
    np.testing.assert_array_equal(out.valid_days.values, ref.valid_days.values)
    # burn_date is int16 with _FillValue -1 (unobserved): CF decoding gives floats, NaN there
    raw = xr.open_zarr(store, mask_and_scale=False)
    assert raw.burn_date.dtype == np.int16 and out.confidence.dtype == np.float32
    assert raw.valid_days.dtype == np.int16 and raw.burn_date.attrs["_FillValue"] == -1
    for k in ("confidence", "burn_date", "valid_days"):  # the same metadata on both paths
        for meta in (".zarray", ".zattrs"):
            a = json.loads((Path(store) / k / meta).read_text())
            b = json.loads((ref_store / k / meta).read_text())
            keep = ("fill_value", "dtype") if meta == ".zarray" else set(a) | set(b)
            drop = ("coordinates",)  # observed_days is predict_burned's only
            assert {n: a.get(n) for n in keep if n not in drop} == \
                {n: b.get(n) for n in keep if n not in drop}, (k, meta)
    conf = ref.confidence.values
    assert 0.05 < conf.min() and conf.max() <= 1 and 0.01 < (conf < 0.5).mean() < 0.99  # not trivial
    assert out.attrs["product_mode"] == "monthly" and out.attrs["campaign"] == "t"
    assert "standin" in out.attrs["weights"] and out.attrs["campaign_fingerprint"]

    # exports of the requested month only: COGs equal to the store, PNG, GeoJSON
    names = sorted(os.path.basename(p) for p in rep.exports)
    assert names == [f"burned-monthly_SYN_2020-08_{s}" for s in
                     ("burn_date.tif", "confidence.tif", "events.geojson", "quicklook.png")]
    exp = {os.path.basename(p).rsplit("_", 1)[-1]: p for p in rep.exports}
    with rasterio.open(exp["confidence.tif"]) as src:
        assert src.crs.to_epsg() == 4326 and src.driver == "GTiff"
        assert src.transform.almost_equals(Region.from_dataset(out).transform, precision=1e-9)
        np.testing.assert_array_equal(src.read(1), out.confidence.values[0])
    with rasterio.open(f'ZARR:"{store}":/confidence') as src:  # GDAL's Zarr driver (issue 12)
        assert src.crs.to_epsg() == 4326
        np.testing.assert_array_equal(src.read(), out.confidence.values)
    with rasterio.open(exp["date.tif"]) as src:
        np.testing.assert_array_equal(src.read(1), out.burn_date.values[0])
        assert src.nodata == -1  # -1 unobserved; 0 (not burned) is a value (issue 12)
    assert open(exp["quicklook.png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    fc = json.loads(open(exp["events.geojson"]).read())
    assert fc["type"] == "FeatureCollection" and fc["features"]
    assert all(f["properties"]["area_ha"] > 0 for f in fc["features"])

    # the report is written beside the stores
    doc = json.loads((tmp_path / "out" / "t_report.json").read_text())
    assert doc["ok"] and sorted(doc["done"]) == sorted(rep.done) and doc["n_units"] == 8

    # rerun = resume: everything is in the ledger, nothing is recomputed
    marker = Ledger(store).root / sorted(Ledger(store).finished())[0]
    mtime = marker.stat().st_mtime_ns
    again = resume_campaign(spec, client=client, model=model, progress=False)
    assert sorted(again.skipped) == sorted(rep.done) and not again.done
    assert marker.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(xr.open_zarr(store).confidence.values, ref.confidence.values)


def test_block_size_does_not_change_the_product(cube_store, tmp_path, client):
    model = standin_model((3,))
    kw = dict(periods=[{"start": "2020-08-05", "end": "2020-08-25"}],
              products={"burned": {"mode": "range", "blend": "centre", "step": 96}})
    a = run_campaign(_spec(cube_store, tmp_path / "a", block_size=128, **kw), client=client,
                     model=model, progress=False)
    b = run_campaign(_spec(cube_store, tmp_path / "b", block_size=256, **kw), client=client,
                     model=model, progress=False)
    assert len(a.done) == 4 and len(b.done) == 1
    da_, db_ = xr.open_zarr(a.stores[0]), xr.open_zarr(b.stores[0])
    assert list(da_.period_label.values) == ["2020-08-05..2020-08-25"]
    assert da_.period_end.values[0] == np.datetime64("2020-08-25")
    assert da_.sel(period="2020-08").sizes["period"] == 1
    np.testing.assert_array_equal(da_.confidence.values, db_.confidence.values)
    np.testing.assert_array_equal(da_.burn_date.values, db_.burn_date.values)
    assert (da_.burn_date.values > 0).any()


def test_empty_blocks_are_not_computed_nor_written(tmp_path, client):
    cube = make_cube(tmp_path / "c.zarr", shape=(256, 384), start="2020-07-10", end="2020-09-20",
                     nan_box=(0, 256, 0, 256))
    spec = _spec(cube, tmp_path / "out", periods=[{"start": "2020-08-01", "end": "2020-08-31"}])
    rep = run_campaign(spec, client=client, model=standin_model(), progress=False)
    # blocks (0, 0) and (128, 0): the tiles touching them hold no observation at all
    assert sorted(rep.empty) == ["SYN.burned-monthly.2020-08.y000000.x000000",
                                 "SYN.burned-monthly.2020-08.y000128.x000000"]
    assert len(rep.done) == 4 and rep.ok
    store = Path(rep.stores[0])
    written = {p.relative_to(store / "confidence").as_posix()
               for p in (store / "confidence").rglob("*") if p.is_file() and p.name[0] != "."}
    # Zarr v2 chunk keys (GDAL reads v2); blocks x=128..255 were computed (their tiles reach
    # observed pixels) but hold no observation themselves: all nodata, so no chunk either
    assert written == {"0.0.2", "0.1.2"}
    out = xr.open_zarr(store, mask_and_scale=False)
    assert np.isnan(out.confidence.values[0, :, :256]).all()
    assert (out.burn_date.values[0, :, :256] == -1).all()  # nodata: not observed
    assert (out.valid_days.values[0, :, :256] == 0).all()
    assert np.isfinite(out.confidence.values[0, :, 256:]).all()
    assert (out.burn_date.values[0, :, 256:] >= 0).all() and (out.valid_days.values[0, :, 256:] > 0).all()
    assert Ledger(store).done("SYN.burned-monthly.2020-08.y000000.x000000")


def test_changed_configuration_is_refused_unless_overwrite(cube_store, tmp_path, client):
    small = make_cube(tmp_path / "small.zarr", shape=(128, 128))
    spec = _spec(small, tmp_path / "out", periods=[{"date": "2020-09-01"}],
                 products={"burned": {"mode": "nrt"}})
    assert run_campaign(spec, client=client, model=standin_model(), progress=False).ok
    spec["products"] = {"burned": {"mode": "nrt", "threshold": 0.3}}
    with pytest.raises(InputError, match="different campaign configuration"):
        run_campaign(spec, client=client, model=standin_model(), progress=False)
    rep = run_campaign(spec, client=client, model=standin_model(), progress=False, overwrite=True)
    assert len(rep.done) == 1 and not rep.skipped
    assert xr.open_zarr(rep.stores[0]).burn_date.attrs["threshold"] == 0.3


def test_resume_needs_an_existing_campaign(cube_store, tmp_path):
    with pytest.raises(InputError, match="nothing to resume"):
        resume_campaign(_spec(cube_store, tmp_path / "nowhere"), model=standin_model())


def test_missing_inputs_are_reported_before_starting(tmp_path):
    spec = {"name": "m", "output": str(tmp_path / "out"), "regions": [{"name": "PT"}],
            "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
            "products": {"burned": {}}, "inputs": {"viirs": [str(tmp_path / "absent")]}}
    with pytest.raises(InputError, match="VIIRS folder not found") as info:
        run_campaign(spec, model=standin_model(), progress=False)
    assert info.value.field == "inputs.viirs[0]"


def test_banet_ensemble_from_weights_files(tmp_path, client, monkeypatch):
    """Real BA-Net weights (random) through the spec: names/paths, ensemble, provenance."""
    import torch

    from firesmoke.models.banet import BANet
    from firesmoke.models.weights import save_weights

    shas = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = BANet()
        with torch.no_grad():
            net.final_conv.bias.fill_(-4.0)
        shas.append(save_weights(net.eval(), tmp_path / f"banet{seed}.pt"))
    # one 64 px tile per member (BA-Net's numbers are not the point here: a quarter of the
    # compute of a 128 px tile)
    cube = make_cube(tmp_path / "c.zarr", shape=(64, 64), start="2020-07-15", end="2020-09-16")
    spec = _spec(cube, tmp_path / "out", periods=[{"start": "2020-08-01", "end": "2020-08-31"}],
                 weights=["banet0.pt", str(tmp_path / "banet1.pt")],
                 products={"burned": {"mode": "monthly", "tile": 64, "step": 64}})
    monkeypatch.chdir(tmp_path)  # a mapping's relative paths are resolved against the cwd
    rep = run_campaign(spec, client=client, progress=False)
    assert rep.ok and len(rep.done) == 1
    out = xr.open_zarr(rep.stores[0])
    assert out.attrs["weights_sha256"] == ",".join(shas)
    assert json.loads(out.attrs["weights"]) == [str(tmp_path / "banet0.pt"), str(tmp_path / "banet1.pt")]
    conf = out.confidence.values
    assert np.isfinite(conf).all() and ((conf >= 0) & (conf <= 1)).all() and conf.std() > 0
