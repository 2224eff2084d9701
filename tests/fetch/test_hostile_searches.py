"""Hostile CMR, STAC and FIRMS answers on 127.0.0.1: every search bounded, one bad record one failure."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import zipfile

import pytest
from _fetch_helpers import FAST, range_response
from werkzeug import Response

from firesmoke.fetch import (
    FetchError,
    fetch_earthdata,
    fetch_firms_archive,
    fetch_firms_area,
    search_granules,
)
from firesmoke.fetch import cmr as cmr_mod
from firesmoke.fetch import firms as firms_mod
from firesmoke.fetch import stac as stac_mod
from firesmoke.fetch.manifest import read_manifest
from firesmoke.fetch.stac import fetch_sentinel2, search_sentinel2

DATA = b"tile" * 500
HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,"
          "version,bright_ti5,frp,daynight\n")
ROW = "41.1,-8.1,330.5,0.39,0.36,2020-01-01,1342,N,VIIRS,h,2,290.1,55.0,D\n"


def _item(name: str, url, checksum=None, size=None):
    info = {"Name": name, "SizeInBytes": len(DATA) if size is None else size,
            "Checksum": checksum if checksum is not None else
            {"Algorithm": "SHA-256", "Value": hashlib.sha256(DATA).hexdigest()}}
    return {"meta": {"concept-id": f"G-{name}"},
            "umm": {"CollectionReference": {"ShortName": "MCD64A1"},
                    "DataGranule": {"ArchiveAndDistributionInformation": [info]},
                    "RelatedUrls": [{"URL": url, "Type": "GET DATA"}]}}


def test_damaged_cmr_records_are_listed_and_the_rest_fetched(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    base = httpserver.url_for("").rstrip("/")
    items = [
        _item("good.hdf", base + "/d/good.hdf"),
        _item("dots.hdf", base + "/d/.."),  # URL ending in /..
        _item("nul.hdf", base + "/d/n\x00ul.hdf"),  # NUL
        _item("ck.hdf", base + "/d/ck.hdf", checksum={"Algorithm": "MD5", "Value": 12345}),  # not a string
        _item("file.hdf", "file:///etc/passwd"),  # no http(s) GET DATA: left out with a warning
        "not an object",
    ]
    httpserver.expect_request("/search/granules.umm_json").respond_with_json(
        {"hits": len(items), "items": items}, headers={"CMR-Hits": "a lot"})  # non-integer hits
    httpserver.expect_request("/d/good.hdf").respond_with_handler(lambda r: range_response(DATA, r))
    res = fetch_earthdata(["MCD64A1"], "2020-08-01", "2020-08-31", None, tmp_path, policy=FAST)
    status = {e.path: e.status for e in res.entries}
    assert status["burned_area/good.hdf"] == "downloaded"
    failed = sorted(e.path for e in res.failed)
    assert failed == ["burned_area/record:?", "burned_area/record:G-ck.hdf", "burned_area/record:G-dots.hdf",
                      "burned_area/record:G-nul.hdf"]
    assert (tmp_path / "burned_area" / "good.hdf").read_bytes() == DATA
    assert len(read_manifest(tmp_path)) == 5


@pytest.mark.parametrize("body", [{"items": None}, {"feed": {"entry": 7}}, [1, 2], {"errors": ["boom"]}])
def test_malformed_cmr_page_fails_the_search_as_one_listed_failure(httpserver, tmp_path, monkeypatch, body):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    httpserver.expect_request("/search/granules.umm_json").respond_with_json(body)
    with pytest.raises(FetchError):
        search_granules("MCD64A1", "2020-08-01", "2020-08-31", policy=FAST)
    res = fetch_earthdata(["MCD64A1"], "2020-08-01", "2020-08-31", None, tmp_path, policy=FAST)
    assert [(e.path, e.status) for e in res.entries] == [("burned_area/search:MCD64A1", "failed")]


def test_endless_cmr_paging_stops(httpserver, monkeypatch):
    monkeypatch.setattr(cmr_mod, "MAX_PAGES", 5)
    n = itertools.count()
    base = httpserver.url_for("").rstrip("/")

    def endless(req):
        i = next(n)
        return Response(json.dumps({"items": [_item(f"g{i}.hdf", f"{base}/g{i}.hdf")]}),
                        headers={"CMR-Search-After": f'["x", {i}]', "CMR-Hits": "999999999"})

    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(endless)
    with pytest.raises(FetchError, match="MAX_PAGES"):
        search_granules("MCD64A1", "2020-01-01", "2020-01-31", cmr_url=base, policy=FAST)
    assert next(n) == 5


def test_repeated_search_after_is_a_paging_loop(httpserver):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/search/granules.umm_json").respond_with_json(
        {"items": [_item("g.hdf", base + "/g.hdf")]}, headers={"CMR-Search-After": '["same"]'})
    with pytest.raises(FetchError, match="paging loop"):
        search_granules("MCD64A1", "2020-01-01", "2020-01-31", cmr_url=base, policy=FAST)


def test_cmr_page_size_follows_the_service_rule():
    with pytest.raises(ValueError, match="2000"):
        search_granules("MCD64A1", "2020-01-01", "2020-01-31", page_size=5000)
    assert cmr_mod.PAGE_SIZE == 2000


def test_oversized_json_answer_is_refused(httpserver, monkeypatch):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/search/granules.umm_json").respond_with_data(b" " * 20_000 + b"{}")
    small = type(FAST)(attempts=1, timeout=(5, 5), max_body=10_000)
    with pytest.raises(FetchError, match="limit"):
        search_granules("MCD64A1", "2020-01-01", "2020-01-31", cmr_url=base, policy=small)


# ----------------------------------------------------------------------------- STAC
def _landing(base):
    return {"type": "Catalog", "id": "t", "stac_version": "1.0.0", "description": "t",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
            "links": [{"rel": "self", "href": base + "/"}, {"rel": "root", "href": base + "/"},
                      {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "GET"},
                      {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"}]}


def _feature(iid, href, **extra):
    return {"type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": "sentinel-2-l2a",
            "geometry": {"type": "Point", "coordinates": [0, 0]}, "bbox": [0, 0, 0, 0],
            "properties": {"datetime": "2021-08-01T00:00:00Z", "eo:cloud_cover": 1.0},
            "links": [], "assets": {"red": {"href": href, "file:size": len(DATA)}}, **extra}


def test_endless_stac_next_links_stop(httpserver, monkeypatch):
    monkeypatch.setattr(stac_mod, "MAX_REQUESTS", 6)
    base = httpserver.url_for("").rstrip("/")
    n = itertools.count()
    httpserver.expect_request("/").respond_with_json(_landing(base))
    httpserver.expect_request("/search").respond_with_handler(lambda r: Response(json.dumps(
        {"type": "FeatureCollection", "features": [_feature(f"S2_{next(n)}", base + "/x.tif")],
         "links": [{"rel": "next", "href": f"{base}/search?token={next(n)}", "method": "GET"}]})))
    with pytest.raises(FetchError, match="MAX_REQUESTS"):
        search_sentinel2(bbox=(0, 0, 1, 1), start="2021-08-01", end="2021-08-02", catalog=base,
                         max_cloud=None, policy=FAST)


def _no_aws_credentials(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_bad_stac_items_and_assets_are_listed_failures(httpserver, tmp_path, monkeypatch):
    _no_aws_credentials(monkeypatch, tmp_path)
    base = httpserver.url_for("").rstrip("/")
    good = _feature("S2_GOOD", base + "/a/good.tif")
    feats = [good,
             _feature("S2_FILE", "file:///etc/passwd"),
             _feature("S2_DOTS", base + "/a/.."),
             {**_feature("S2_NOASSETS", ""), "assets": None},
             {"type": "Feature", "properties": {}},  # no id
             _feature("S2_CK", base + "/a/ck.tif") | {"assets": {"red": {"href": base + "/a/ck.tif",
                                                                         "file:checksum": 1220}}},
             _feature("S2_S3", "s3://sentinel-s2-l1c/tiles/x/B04.jp2")]
    httpserver.expect_request("/").respond_with_json(_landing(base))
    httpserver.expect_request("/search").respond_with_json({"type": "FeatureCollection", "features": feats,
                                                            "links": []})
    httpserver.expect_request("/a/good.tif").respond_with_handler(lambda r: range_response(DATA, r))
    res = fetch_sentinel2(tmp_path, "2021-08-01", "2021-08-02", bbox=(0, 0, 1, 1), catalog=base,
                          max_cloud=None, assets=["red"], policy=FAST, workers=1)
    by = {e.path: e for e in res.entries}
    assert by["sentinel2/sentinel-2-l2a/S2_GOOD/red.tif"].status == "downloaded"
    failed = {e.path: e.error for e in res.failed}
    assert set(failed) == {"sentinel2/bbox/item:S2_NOASSETS", "sentinel2/bbox/item:?",
                           "sentinel2/sentinel-2-l2a/S2_FILE/red", "sentinel2/sentinel-2-l2a/S2_DOTS/red",
                           "sentinel2/sentinel-2-l2a/S2_CK/red.tif", "sentinel2/sentinel-2-l2a/S2_S3/red.jp2"}
    assert "AWS credentials" in failed["sentinel2/sentinel-2-l2a/S2_S3/red.jp2"]
    assert by["sentinel2/bbox/items.json"].status == "written"


def test_bad_catalog_value_is_refused_before_any_request():
    with pytest.raises(ValueError, match="catalog"):
        search_sentinel2(bbox=(0, 0, 1, 1), start="2021-08-01", end="2021-08-02", catalog="notaurl")


# ----------------------------------------------------------------------------- FIRMS
def test_firms_answer_is_streamed_with_a_cap(httpserver, tmp_path, monkeypatch):
    monkeypatch.setattr(firms_mod, "MAX_CSV_BYTES", 5_000)
    httpserver.expect_request("/api/area/csv/KEYKEYKEY/VIIRS_SNPP_SP/0,0,1,1/1/2020-01-01").respond_with_data(
        HEADER + ROW * 1000)  # 64 kB
    httpserver.expect_request("/api/area/csv/KEYKEYKEY/VIIRS_SNPP_SP/0,0,1,1/1/2020-01-02").respond_with_data(
        HEADER + ROW)
    httpserver.expect_request("/api/area/csv/KEYKEYKEY/VIIRS_SNPP_SP/0,0,1,1/1/2020-01-03").respond_with_data(
        "<html>maintenance</html>")
    res = fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-01", tmp_path,
                           map_key="KEYKEYKEY", firms_url=httpserver.url_for(""), policy=FAST,
                           today=dt.date(2026, 1, 1))
    assert [e.status for e in res.entries] == ["failed"] and "MAX_CSV_BYTES" in res.entries[0].error
    assert not list((tmp_path / "firms").glob("*"))  # nothing partial left
    ok = fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-02", "2020-01-02", tmp_path,
                          map_key="KEYKEYKEY", firms_url=httpserver.url_for(""), policy=FAST,
                          today=dt.date(2026, 1, 1))
    assert ok.entries[0].extra["rows"] == 1
    bad = fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-03", "2020-01-03", tmp_path,
                           map_key="KEYKEYKEY", firms_url=httpserver.url_for(""), policy=FAST,
                           today=dt.date(2026, 1, 1))
    assert bad.entries[0].status == "failed" and "not a detection CSV" in bad.entries[0].error
    assert sorted(p.name for p in (tmp_path / "firms").iterdir()) == ["VIIRS_SNPP_SP_20200102_20200102.csv"]


def test_zip_members_streamed_capped_and_damaged_ones_listed(httpserver, tmp_path, monkeypatch):
    monkeypatch.setattr(firms_mod, "MAX_CSV_BYTES", 5_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.csv", HEADER + ROW * 1000)  # 64 kB unpacked, ~1 kB packed: a small bomb
        zf.writestr("small.csv", HEADER + ROW)
        zf.writestr("login.csv", "<html>Earthdata Login</html>")
    httpserver.expect_request("/a/DL.zip").respond_with_data(buf.getvalue())
    httpserver.expect_request("/a/broken.zip").respond_with_data(b"PK\x03\x04 not a zip at all")
    res = fetch_firms_archive([httpserver.url_for("/a/DL.zip"), httpserver.url_for("/a/broken.zip"),
                               "file:///etc/passwd"], tmp_path, policy=FAST)
    st = {e.path: e.status for e in res.entries}
    assert st["firms/small.csv"] == "written"
    assert st["firms/big.csv"] == "failed" and st["firms/login.csv"] == "failed"
    assert st["firms/archive/broken.zip"] == "failed"  # downloaded, then refused as an archive
    assert sum(1 for e in res.failed if "file:" in e.url) == 1
    assert sorted(p.name for p in (tmp_path / "firms").glob("*.csv")) == ["small.csv"]


def test_trickling_search_answer_is_cut_by_the_answer_deadline():
    import time

    from _fetch_helpers import raw_server

    def trickle(sock, stop):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nContent-Type: application/json\r\n\r\n{")
        while not stop.is_set():
            sock.sendall(b" ")
            time.sleep(0.2)

    policy = type(FAST)(attempts=1, timeout=(5, 5), answer_deadline=1.0)
    t0 = time.monotonic()
    with raw_server(trickle) as base, pytest.raises(FetchError, match="within 1 s"):
        search_granules("MCD64A1", "2020-01-01", "2020-01-31", cmr_url=base, policy=policy)
    assert time.monotonic() - t0 < 4.0


def test_damaged_firms_span_is_fetched_again_not_skipped(httpserver, tmp_path):
    hits = []
    httpserver.expect_request("/api/area/csv/KEYKEYKEY/VIIRS_SNPP_SP/0,0,1,1/2/2020-01-01").respond_with_handler(
        lambda r: hits.append(1) or Response(HEADER + ROW))

    def run():
        return fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-02", tmp_path,
                                map_key="KEYKEYKEY", firms_url=httpserver.url_for(""), policy=FAST,
                                today=dt.date(2026, 1, 1)).entries[0].status

    span = tmp_path / "firms" / "VIIRS_SNPP_SP_20200101_20200102.csv"
    assert run() == "downloaded" and run() == "skipped" and len(hits) == 1
    span.write_text(HEADER + ROW.replace("55.0", "99.9"))  # same size, other bytes
    assert run() == "downloaded" and span.read_text() == HEADER + ROW
    span.write_bytes(b"")  # truncated
    assert run() == "downloaded" and len(hits) == 3
    assert run() == "skipped"
