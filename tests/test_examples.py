"""The scripts in examples/ run end to end on tiny inputs (so they never rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import rioxarray  # noqa: F401  (.rio accessor)
import xarray as xr

from firesmoke.campaign.plan import plan_campaign
from firesmoke.campaign.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, out: Path, timeout: float = 400) -> str:
    env = {**os.environ, "FIRESMOKE_EXAMPLES_TINY": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(out), "--tiny"],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=out.parent)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_campaign_toml_is_a_valid_spec():
    spec = load_spec(EXAMPLES / "campaign.toml")
    assert spec.name == "iberia-2020" and spec.block_size == 512
    assert spec.regions[0].region.name == "PT" and spec.inputs.viirs == (EXAMPLES / "data" / "viirs750",)
    assert spec.exports.geotiff and spec.exports.quicklook and spec.exports.events
    plan = plan_campaign(spec)
    # PT is 800 x 400 px: 2 x 1 blocks of 512, two months
    assert len(plan) == 4 and [s.label for s in plan.slots["burned-monthly"]] == ["2020-08", "2020-09"]


@pytest.mark.slow
def test_burned_area_region_month(tmp_path):
    out = tmp_path / "month"
    text = run_example("burned_area_region_month.py", out)
    assert "burned pixels 2020-08" in text
    ds = xr.open_zarr(out / "burned_2020-08.zarr", consolidated=False)
    assert ds.sizes == {"period": 1, "y": 64, "x": 128}
    assert ds.period_label.values.tolist() == ["2020-08"] and ds.period.dtype == "datetime64[ns]"
    conf = ds.confidence.values
    assert ((conf >= 0) & (conf <= 1)).all()
    with rasterio.open(out / "confidence_2020-08.tif") as src:
        assert src.crs.to_epsg() == 4326 and src.shape == (64, 128)
    assert (out / "quicklook_2020-08.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "events_2020-08.geojson").read_text())["type"] == "FeatureCollection"
    if "RANDOMLY INITIALISED" in text:  # no shipped weights: the fallback says so and is saved
        assert (out / "banet_random.pt").exists()


def test_smoke_scene(tmp_path):
    out = tmp_path / "smoke"
    text = run_example("smoke_scene.py", out)
    assert "IoU" in text
    tifs = sorted(out.glob("smoke_mask_*.tif"))
    assert len(tifs) == 1
    with rasterio.open(tifs[0]) as src:
        assert src.crs.to_epsg() // 100 in (326, 327)  # UTM
        assert set(src.read(1).ravel().tolist()) <= {0, 1}
    assert (out / "plumes.csv").read_text().startswith("site_id,time,plume_present")


@pytest.mark.slow
def test_campaign_local_cluster(tmp_path):
    out = tmp_path / "campaign"
    text = run_example("campaign_local_cluster.py", out)
    assert "rerun: 2 unit(s) already done, 0 computed" in text
    report = json.loads((out / "campaign" / "iberia-2020_report.json").read_text())
    assert report["n_units"] == 2 and len(report["skipped"]) == 2  # the last run: the resume
    ds = xr.open_zarr(out / "campaign" / "burned-monthly_DEMO_TINY.zarr")
    assert ds.rio.crs.to_epsg() == 4326 and ds.sizes == {"period": 1, "y": 64, "x": 256}
    exports = sorted(p.name for p in (out / "campaign" / "exports").iterdir())
    assert exports == [f"burned-monthly_DEMO_TINY_2020-08_{s}" for s in
                       ("burn_date.tif", "confidence.tif", "events.geojson", "quicklook.png")]
