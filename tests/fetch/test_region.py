"""fetch_for_region, the [fetch] spec table and `firesmoke fetch`, against servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib

import pytest
from _fetch_helpers import _no_proxy_for_local_servers, range_response  # noqa: F401
from werkzeug import Response

from firesmoke.cli.main import build_parser, main
from firesmoke.errors import InputError
from firesmoke.fetch import fetch_for_region, parse_fetch_table
from firesmoke.fetch.manifest import read_manifest
from firesmoke.fetch.region import resolve_bbox, split_products
from firesmoke.io.firms import read_firms

KEY = "feedfacefeedfacefeedfacefeedface"
CSV = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,"
       "version,bright_ti5,frp,daynight\n41.1,-8.1,330.5,0.39,0.36,2017-06-17,1342,N,VIIRS,h,2,290.1,55.0,D\n")


@pytest.fixture
def servers(httpserver, monkeypatch):
    """One server speaking CMR (UMM-JSON) and the FIRMS area API; env vars point at it."""
    blob = b"VNP64A1 tile bytes" * 100
    name = "VNP64A1.A2017152.h17v04.002.2022001000000.h5"
    item = {"meta": {"concept-id": "G1-LPCLOUD"}, "umm": {
        "RelatedUrls": [{"URL": httpserver.url_for(f"/lp/{name}"), "Type": "GET DATA"}],
        "DataGranule": {"ArchiveAndDistributionInformation": [
            {"Name": name, "SizeInBytes": len(blob),
             "Checksum": {"Value": hashlib.sha256(blob).hexdigest(), "Algorithm": "SHA-256"}}]},
        "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": "2017-06-01T00:00:00Z"}}}}
    cmr_args = []
    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(
        lambda r: cmr_args.append(dict(r.args)) or Response(json.dumps({"hits": 1, "items": [item]})))
    httpserver.expect_request(f"/lp/{name}").respond_with_handler(lambda r: range_response(blob, r))
    httpserver.expect_request(re.compile(r"/api/area/csv/.*")).respond_with_data(CSV)
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    monkeypatch.setenv("FIRESMOKE_FIRMS_URL", httpserver.url_for(""))
    monkeypatch.setenv("MAP_KEY", KEY)
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-region-test-000")
    return {"name": name, "blob": blob, "cmr_args": cmr_args}


def test_resolve_bbox_accepts_names_files_tuples_and_strings(tmp_path):
    assert resolve_bbox("PT")[0] == "PT"
    assert resolve_bbox("-10,36,-6,42") == ("bbox", (-10.0, 36.0, -6.0, 42.0))
    assert resolve_bbox((-10, 36, -6, 42))[1] == (-10.0, 36.0, -6.0, 42.0)
    with pytest.raises(InputError):
        resolve_bbox("-10,50,-6,42")  # bottom above top
    assert split_products(["viirs-l1b-noaa20", "VIIRS_SNPP_SP", "sentinel-2-l1c", "mcd64a1"]) == (
        ["VJ102MOD", "VJ103MOD", "MCD64A1"], ["VIIRS_SNPP_SP"], ["sentinel-2-l1c"])
    with pytest.raises(InputError, match="unknown product"):
        split_products(["VNP14IMG"])


def test_fetch_for_region_cmr_and_firms(servers, tmp_path):
    res = fetch_for_region("PT", "2017-06-01", "2017-06-30", ["VNP64A1", "VIIRS_SNPP_SP"], tmp_path)
    assert not res.failed
    assert (tmp_path / "burned_area" / servers["name"]).read_bytes() == servers["blob"]
    assert len(read_firms(tmp_path / "firms")) == 6  # 6 spans of <= 5 days, one detection each
    man = read_manifest(tmp_path)
    assert man[f"burned_area/{servers['name']}"]["checksum"].startswith("SHA-256:")
    assert servers["cmr_args"][0]["short_name"] == "VNP64A1"


def test_fetch_table_parses_and_runs(servers, tmp_path):
    spec = tomllib.loads("""
[fetch]
products = ["VNP64A1"]
out = "inputs"
pad_days = 10
versions = { vnp64a1 = "002" }
""")
    fs = parse_fetch_table(spec["fetch"], base_dir=tmp_path)
    assert fs.out == tmp_path / "inputs" and fs.versions == {"VNP64A1": "002"}
    assert fs.input_folders()["viirs"] == tmp_path / "inputs" / "viirs_l1b"
    assert fs.to_dict()["pad_days"] == 10 and json.dumps(fs.to_dict())
    res = fs.fetch("-10,36,-6,42", "2017-06-11", "2017-06-30")
    assert [e.status for e in res.entries] == ["downloaded"]
    args = servers["cmr_args"][0]
    assert args["version"] == "002" and args["temporal"].startswith("2017-06-01T00:00:00Z")  # padded


@pytest.mark.parametrize(("table", "field"), [
    ({}, "products"),
    ({"products": []}, "products"),
    ({"products": ["nope"]}, "products"),
    ({"products": ["MCD64A1"], "pad_days": -1}, "pad_days"),
    ({"products": ["MCD64A1"], "max_cloud": 120}, "max_cloud"),
    ({"products": ["MCD64A1"], "colour": "red"}, "colour"),
])
def test_fetch_table_errors_name_the_field(table, field):
    with pytest.raises(InputError) as exc:
        parse_fetch_table(table, path="campaign.toml")
    assert f"fetch.{field}" in str(exc.value) and "campaign.toml" in str(exc.value)


def test_cli_help_explains_credentials(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fetch", "--help"])
    text = capsys.readouterr().out
    for word in ("EARTHDATA_TOKEN", ".netrc", "urs.earthdata.nasa.gov", "MAP_KEY", "FIRESMOKE_CMR_URL"):
        assert word in text


def test_cli_fetch_runs_and_reports(servers, tmp_path, capsys):
    rc = main(["fetch", "--region=-10,36,-6,42", "--start", "2017-06-01", "--end", "2017-06-05",
               "--products", "VNP64A1", "--out", str(tmp_path), "--dry-run", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and servers["name"] in out and "1 file(s) would be fetched" in out
    assert not (tmp_path / "burned_area").exists()
    rc = main(["fetch", "--region=-10,36,-6,42", "--start", "2017-06-01", "--end", "2017-06-05",
               "--products", "VNP64A1", "VIIRS_NOAA20_SP", "--out", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "manifest" in out and "2 downloaded" in out
    assert KEY not in (tmp_path / "manifest.jsonl").read_text()


def test_cli_fetch_exit_status_on_failure(httpserver, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "nonexistent"))
    httpserver.expect_request("/search/granules.umm_json").respond_with_json({"errors": ["bad temporal"]}, status=400)
    rc = main(["fetch", "--region", "PT", "--start", "2017-06-01", "--end", "2017-06-02",
               "--products", "MCD64A1", "--out", str(tmp_path), "-q"])
    assert rc == 1
    assert "bad temporal" in capsys.readouterr().err
