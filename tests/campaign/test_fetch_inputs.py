"""A campaign whose ``[fetch]`` table downloads its inputs (CMR + FIRMS on 127.0.0.1)
before the region's cube is built (issue 12: "campaign specs can fetch what a unit needs")."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import numpy as np
import pytest
from _campaign_helpers import standin_model
from _fetch_helpers import _no_proxy_for_local_servers, range_response  # noqa: F401
from werkzeug import Response

from firesmoke.campaign.run import run_campaign
from firesmoke.campaign.spec import load_spec
from firesmoke.cube.build import open_cube
from firesmoke.errors import InputError
from firesmoke.fetch.manifest import read_manifest

KEY = "0badc0de0badc0de0badc0de0badc0de"
HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,"
          "confidence,version,bright_ti5,frp,daynight")
FIRE = (40.505, -7.495)  # inside the region below, pixel (49, 50)
TILE = "VNP64A1.A2020214.h17v04.002.2022001000000.h5"


@pytest.fixture
def servers(httpserver, monkeypatch):
    """CMR (UMM-JSON + a download) and the FIRMS area API (one fire a day) on one server."""
    blob = b"VNP64A1 tile" * 50
    item = {"meta": {"concept-id": "G1-LPCLOUD"}, "umm": {
        "RelatedUrls": [{"URL": httpserver.url_for(f"/lp/{TILE}"), "Type": "GET DATA"}],
        "DataGranule": {"ArchiveAndDistributionInformation": [
            {"Name": TILE, "SizeInBytes": len(blob),
             "Checksum": {"Value": hashlib.sha256(blob).hexdigest(), "Algorithm": "SHA-256"}}]},
        "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": "2020-08-01T00:00:00Z"}}}}
    asked = {"cmr": [], "firms": []}

    def cmr(req):
        asked["cmr"].append(dict(req.args))
        return Response(json.dumps({"hits": 1, "items": [item]}))

    def firms(req):  # /api/area/csv/KEY/SOURCE/BBOX/DAYS/DATE
        *_, key, source, box, days, first = req.path.strip("/").split("/")
        assert key == KEY
        asked["firms"].append((source, box, int(days), first))
        d0 = dt.date.fromisoformat(first)
        rows = [f"{FIRE[0]},{FIRE[1]},330.5,0.39,0.36,{d0 + dt.timedelta(days=i)},1342,N,VIIRS,n,"
                f"2.0NRT,290.1,{10 + i}.0,D" for i in range(int(days))]
        return Response("\n".join([HEADER, *rows]) + "\n", content_type="text/csv")

    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(cmr)
    httpserver.expect_request(f"/lp/{TILE}").respond_with_handler(lambda r: range_response(blob, r))
    httpserver.expect_request(re.compile(r"/api/area/csv/.*")).respond_with_handler(firms)
    monkeypatch.setenv("MAP_KEY", KEY)
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-campaign-fetch-0")
    return {"url": httpserver.url_for("").rstrip("/"), "asked": asked, "blob": blob}


def _spec(tmp_path, url, **fetch):
    return {
        "name": "f", "output": str(tmp_path / "out"), "block_size": 128,
        "regions": [{"name": "FET", "bbox": [-8.0, 40.0, -7.0, 41.0], "pixel_size": 0.01}],
        "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
        "products": {"burned": {"mode": "monthly"}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "processes": False,
                    "torch_threads": 1},
        "fetch": {"products": ["VIIRS_SNPP_SP", "VNP64A1"], "out": str(tmp_path / "inputs"),
                  "cmr_url": url,
                  "firms_url": url, "workers": 1, **fetch},
    }


def test_fetch_table_gives_the_inputs(tmp_path):
    spec = load_spec(_spec(tmp_path, "http://127.0.0.1:9"), base_dir=tmp_path)
    inputs = tmp_path.resolve() / "inputs"
    assert spec.fetch is not None and spec.fetch.out == inputs
    assert spec.inputs.firms == (inputs / "firms",) and spec.inputs.viirs == ()  # no L1B fetched
    assert spec.to_dict()["fetch"]["products"] == ["VIIRS_SNPP_SP", "VNP64A1"]
    l1b = load_spec(_spec(tmp_path, "http://127.0.0.1:9", products=["viirs-l1b-noaa20"]), base_dir=tmp_path)
    assert l1b.inputs.viirs == (inputs / "viirs_l1b",) and l1b.inputs.firms == ()
    # explicit [inputs] win over the fetched folders
    both = load_spec({**_spec(tmp_path, "http://127.0.0.1:9"), "inputs": {"firms": ["mine"]}}, base_dir=tmp_path)
    assert both.inputs.firms == (tmp_path.resolve() / "mine",)
    # burned-area tiles alone cannot build a cube
    with pytest.raises(InputError, match="no cube store") as info:
        load_spec(_spec(tmp_path, "http://127.0.0.1:9", products=["VNP64A1"]), base_dir=tmp_path)
    assert info.value.field == "inputs"
    with pytest.raises(InputError) as info:
        load_spec(_spec(tmp_path, "http://127.0.0.1:9", colour="red"), base_dir=tmp_path)
    assert info.value.field == "fetch.colour"


def test_campaign_fetches_before_building_the_cube(servers, tmp_path):
    spec = _spec(tmp_path, servers["url"])
    rep = run_campaign(spec, model=standin_model((0,)), progress=False)
    assert rep.ok and len(rep.done) == 1 and not rep.warnings
    inputs = tmp_path / "inputs"
    # FIRMS over the cube's days (the 64-day window of 2020-08), in spans of <= 5 days
    spans = servers["asked"]["firms"]
    assert spans[0][3] == "2020-07-15" and sum(s[2] for s in spans) == 64
    assert {s[1] for s in spans} == {"-8,40,-7,41"}
    assert servers["asked"]["cmr"][0]["short_name"] == "VNP64A1"
    assert (inputs / "burned_area" / TILE).read_bytes() == servers["blob"]
    assert len(read_manifest(inputs)) == len(spans) + 1
    # the cube was built from the fetched detections: FRP at the fire, every day
    cube = open_cube(tmp_path / "out" / "cubes" / "FET.zarr")
    frp = cube["frp"].sel(y=FIRE[0], x=FIRE[1], method="nearest").values
    assert np.isfinite(frp).all() and (frp > 0).all()
    np.testing.assert_allclose(frp[0], np.log1p(10.0), rtol=1e-6)
    # a rerun reuses the complete cube: nothing is fetched again
    n = len(spans)
    again = run_campaign(spec, model=standin_model((0,)), progress=False)
    assert again.ok and again.skipped == rep.done and not again.done
    assert len(servers["asked"]["firms"]) == n
