"""Campaign reliability: SIGKILL and resume, a killed worker, corrupt granules and chunks.

All runs use a 128 x 384 px synthetic scenario of one month (generated once per session) and
the cheap stand-in tile model of ``_campaign_helpers`` (BA-Net is too slow on the CI
machine for several campaign runs per test), with ``torch_threads = 1`` everywhere so
that every run computes bit-identical numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from _campaign_helpers import MONTH, kill_campaign_after_first_unit, scenario_inputs, standin_model

from firesmoke.campaign.plan import plan_campaign
from firesmoke.campaign.run import run_campaign
from firesmoke.campaign.spec import load_spec
from firesmoke.grid import Region
from firesmoke.store import Ledger

TESTS = Path(__file__).resolve().parents[1]
N_UNITS = 3  # 128 x 384 px in blocks of 128, one month


def _spec(out: Path, region: dict, **kw) -> dict:
    spec = {
        "name": "rel", "output": str(out), "block_size": 128,
        "regions": [region],
        "periods": [{"start": f"{MONTH}-01", "end": f"{MONTH}-31"}],
        "products": {"burned": {"mode": "monthly"}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "processes": False,
                    "torch_threads": 1},
        "exports": {"geotiff": True},
    }
    spec.update(kw)
    return spec


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted campaign built from the raw inputs (two granules are corrupt)."""
    inp = scenario_inputs(tmp_path_factory)
    out = tmp_path_factory.mktemp("reference")
    spec = _spec(out, {"file": inp["region_json"]},
                 inputs={"viirs": [inp["viirs"]], "firms": [inp["firms"]]},
                 cluster={"n_workers": 1, "threads_per_worker": 2, "processes": False,
                          "torch_threads": 1})
    report = run_campaign(spec, model=standin_model(), progress=False)
    assert report.ok and len(report.done) == N_UNITS
    (store,) = report.stores
    cube = plan_campaign(spec).cubes["CAMP"]
    return {"inputs": inp, "report": report, "store": Path(store), "cube": cube, "out": out}


def _assert_same_store(a: Path, b: Path) -> None:
    """Every variable and coordinate identical, NaN positions included."""
    da, db = xr.open_zarr(a), xr.open_zarr(b)
    assert sorted(da.variables) == sorted(db.variables)
    for name in da.variables:
        va, vb = da[name].values, db[name].values
        assert va.dtype == vb.dtype, name
        if va.dtype.kind == "f":
            assert np.array_equal(va, vb, equal_nan=True), name
        else:
            assert np.array_equal(va, vb), name


def _cube_region(ref: dict) -> dict:
    r = Region.from_json(ref["inputs"]["region_json"])
    return {"name": r.name, "bbox": list(r.bbox), "pixel_size": r.pixel_size, "cube": str(ref["cube"])}


def test_corrupt_granules_are_skipped_and_listed(reference):
    rep = reference["report"]
    skipped = rep.skipped_inputs
    assert len(skipped) == 2, skipped  # one entry per granule whose file is damaged
    for bad, why in zip(reference["inputs"]["bad"], ("truncated", "not an HDF4 file"), strict=True):
        (entry,) = [s for s in skipped if bad in s["path"]]
        assert why in entry["reason"] and Path(bad).name in entry["reason"]
    doc = json.loads((reference["out"] / "rel_report.json").read_text())
    assert doc["skipped_inputs"] == skipped
    assert all(s["region"] == "CAMP" for s in doc["skipped_inputs"])
    # the product is complete and exported despite the bad granules
    assert doc["ok"] and len(doc["done"]) == N_UNITS
    assert sum(p.endswith(".tif") for p in doc["exports"]) == 2
    ds = xr.open_zarr(reference["store"])
    assert np.isfinite(ds.confidence.values).all() and (ds.burn_date.values > 0).any()


def test_sigkill_midway_then_rerun_is_identical(reference, tmp_path):
    spec_path = tmp_path / "campaign.toml"
    region = _cube_region(reference)
    spec_path.write_text(f"""
name = "rel"
output = "out"
block_size = 128
[[regions]]
name = "{region['name']}"
bbox = {region['bbox']}
pixel_size = {region['pixel_size']}
cube = "{region['cube']}"
[[periods]]
start = {MONTH}-01
end = {MONTH}-31
[products.burned]
mode = "monthly"
[cluster]
n_workers = 1
threads_per_worker = 1
processes = false
torch_threads = 1
[exports]
geotiff = true
""")
    store = plan_campaign(load_spec(spec_path)).stores[("burned-monthly", "CAMP")]
    killed_done = kill_campaign_after_first_unit(spec_path, store)
    assert 1 <= len(killed_done) < N_UNITS
    assert not (tmp_path / "out" / "rel_report.json").exists()

    rep = run_campaign(spec_path, model=standin_model(), progress=False)
    assert rep.ok
    assert len(rep.skipped) == len(killed_done) and len(rep.done) == N_UNITS - len(killed_done)
    _assert_same_store(store, reference["store"])


def test_killed_worker_units_are_rescheduled(reference, tmp_path):
    from distributed import Client, LocalCluster

    spec = _spec(tmp_path / "out", _cube_region(reference))
    store = plan_campaign(spec).stores[("burned-monthly", "CAMP")]
    result: dict = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids_before = client.run(os.getpid)

        def campaign():
            try:
                result["report"] = run_campaign(spec, client=client, model=standin_model(),
                                                progress=False)
            except BaseException as exc:  # pragma: no cover - reported below
                result["error"] = exc

        thread = threading.Thread(target=campaign)
        thread.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            busy = [w for w, keys in client.processing().items()
                    if any("firesmoke-unit" in str(k) for k in keys)]
            if busy and len(Ledger(store).finished()) < N_UNITS - 1:
                victim = busy[0]
            else:
                time.sleep(0.05)
        assert victim is not None, "no worker was seen running a unit"
        os.kill(pids_before[victim], signal.SIGKILL)
        thread.join(timeout=180)
        assert not thread.is_alive()
        pids_after = client.run(os.getpid)
    assert "error" not in result, result.get("error")
    rep = result["report"]
    assert rep.ok and sorted(rep.done) == sorted(u.id for u in plan_campaign(spec).units)
    assert pids_before[victim] not in pids_after.values()
    _assert_same_store(store, reference["store"])


def test_failed_units_are_reported_and_retried(reference, tmp_path):
    """A corrupt cube chunk fails the units of one region; the other region completes."""
    bad_cube = tmp_path / "bad_cube.zarr"
    shutil.copytree(reference["cube"], bad_cube)
    chunk = sorted(p for p in (bad_cube / "nir" / "c").rglob("*") if p.is_file())[0]
    original = chunk.read_bytes()
    chunk.write_bytes(b"\x00garbage" * 64)
    good = {**_cube_region(reference), "name": "GOOD"}
    bad = {**_cube_region(reference), "name": "BAD", "cube": str(bad_cube)}
    spec = _spec(tmp_path / "out", good, regions=[good, bad])
    rep = run_campaign(spec, model=standin_model(), progress=False)
    assert not rep.ok
    assert sorted(rep.done) == sorted(u.id for u in plan_campaign(spec).units if u.region == "GOOD")
    failed = {f["unit"]: f["reason"] for f in rep.failed}
    assert len(failed) == N_UNITS and all(u.startswith("BAD.") for u in failed)
    assert all(r for r in failed.values())
    doc = json.loads((tmp_path / "out" / "rel_report.json").read_text())
    assert not doc["ok"] and {f["unit"] for f in doc["failed"]} == set(failed)
    assert any("BAD" in w and "not exported" in w for w in doc["warnings"])
    assert sum("_GOOD_" in p for p in doc["exports"]) == 2

    chunk.write_bytes(original)  # the input is repaired: a rerun does only the failed units
    again = run_campaign(spec, model=standin_model(), progress=False)
    assert again.ok and sorted(again.done) == sorted(failed) and len(again.skipped) == N_UNITS
    stores = {Path(s).name: Path(s) for s in again.stores}
    _assert_same_store(stores["burned-monthly_BAD.zarr"], reference["store"])
