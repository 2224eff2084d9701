"""CMR search (UMM-JSON and JSON, CMR-Search-After paging) and Earthdata downloads, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json

import pytest
from _fetch_helpers import FAST, _no_proxy_for_local_servers, range_response  # noqa: F401
from werkzeug import Response

from firesmoke.fetch import AuthError, fetch_earthdata, search_granules
from firesmoke.fetch.cmr import parse_granules
from firesmoke.fetch.manifest import read_manifest


def _umm_item(name: str, url: str, data: bytes, *, checksum: str | None = None, short: str = "VNP64A1"):
    return {
        "meta": {"concept-id": f"G{abs(hash(name)) % 10**9}-LPCLOUD", "provider-id": "LPCLOUD",
                 "native-id": name},
        "umm": {
            "GranuleUR": name.rsplit(".", 1)[0],
            "CollectionReference": {"ShortName": short, "Version": "002"},
            "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": "2020-08-01T00:00:00.000Z",
                                                 "EndingDateTime": "2020-08-31T23:59:59.000Z"}},
            "DataGranule": {
                "ArchiveAndDistributionInformation": [
                    {"Name": name, "SizeInBytes": len(data), "Size": len(data) / 1e6, "SizeUnit": "MB",
                     "Checksum": {"Value": checksum or hashlib.md5(data).hexdigest(), "Algorithm": "MD5"}},
                    {"Name": name + ".xml", "SizeInBytes": 100},
                ],
                "DayNightFlag": "Unspecified", "ProductionDateTime": "2021-01-01T00:00:00Z",
            },
            "RelatedUrls": [
                {"URL": f"s3://bucket/{name}", "Type": "GET DATA VIA DIRECT ACCESS"},
                {"URL": url, "Type": "GET DATA", "Description": "Download " + name},
                {"URL": url + ".xml", "Type": "EXTENDED METADATA"},
            ],
        },
    }


def _cmr_pages(httpserver, pages: list[list[dict]], seen: list[dict]):
    """UMM-JSON granule search that pages with CMR-Search-After like CMR does."""
    total = sum(len(p) for p in pages)

    def handler(req):
        seen.append({"args": dict(req.args), "after": req.headers.get("CMR-Search-After")})
        after = req.headers.get("CMR-Search-After")
        i = 0 if after is None else int(json.loads(after)[1])
        body = {"hits": total, "took": 5, "items": pages[i] if i < len(pages) else []}
        headers = {"CMR-Hits": str(total), "Content-Type": "application/vnd.nasa.cmr.umm_results+json"}
        if i + 1 < len(pages):
            headers["CMR-Search-After"] = json.dumps(["lpcloud", i + 1])
        return Response(json.dumps(body), headers=headers)

    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(handler)


def test_search_pages_with_search_after_and_reads_umm(httpserver, monkeypatch):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    files = {f"VNP64A1.A2020{d:03d}.h17v04.002.2021001000000.h5": bytes([d % 256]) * 50 for d in (214, 245, 275)}
    items = [_umm_item(n, httpserver.url_for(f"/data/{n}"), b) for n, b in files.items()]
    seen: list[dict] = []
    _cmr_pages(httpserver, [items[:2], items[2:]], seen)
    grans = search_granules("VNP64A1", "2020-08-01", "2020-10-31", (-10, 36, 5, 44), version="002",
                            policy=FAST, page_size=2)
    assert [g.name for g in grans] == list(files)
    assert len(seen) == 2 and seen[0]["after"] is None and seen[1]["after"] == '["lpcloud", 1]'
    args = seen[0]["args"]
    assert args["short_name"] == "VNP64A1" and args["version"] == "002"
    assert args["temporal"] == "2020-08-01T00:00:00Z,2020-10-31T23:59:59Z"
    assert args["bounding_box"] == "-10,36,5,44"
    g = grans[0]
    assert g.url.startswith("http://") and g.url.endswith(g.name)  # the HTTPS/HTTP link, not s3://
    assert g.size == 50 and g.checksum.algorithm == "MD5"
    assert g.start.year == 2020 and g.concept_id.startswith("G")


def test_json_format_feed_is_parsed():
    body = {"feed": {"entry": [{
        "id": "G1-LAADS", "time_start": "2020-08-01T12:00:00.000Z", "producer_granule_id": "x",
        "links": [{"rel": "http://esipfed.org/ns/fedsearch/1.1/data#", "href": "https://e/VNP02MOD.A2020214.1200.002.nc"},
                  {"rel": "http://esipfed.org/ns/fedsearch/1.1/browse#", "href": "https://e/b.jpg"}],
    }]}}
    (g,) = parse_granules(body, "VNP02MOD")
    assert g.name == "VNP02MOD.A2020214.1200.002.nc" and g.checksum is None


def test_fetch_earthdata_pairs_l1b_downloads_and_verifies(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-abcdef-123456")
    blobs = {}
    per_product: dict[str, list[dict]] = {}
    for short, times in (("VNP02MOD", ("1200", "1206", "1212")), ("VNP03MOD", ("1200", "1206"))):
        for t in times:
            name = f"{short}.A2020214.{t}.002.2021100000000.nc"
            blobs[name] = (short + t).encode() * 1000
            per_product.setdefault(short, []).append(
                _umm_item(name, httpserver.url_for(f"/data/{name}"), blobs[name], short=short))
    auth = []

    def search(req):
        auth.append(("search", req.headers.get("Authorization")))
        return Response(json.dumps({"hits": 9, "items": per_product[req.args["short_name"]]}),
                        headers={"Content-Type": "application/json"})

    def data(req):
        auth.append(req.headers.get("Authorization"))
        return range_response(blobs[req.path.rsplit("/", 1)[1]], req)

    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(search)
    for name in blobs:
        httpserver.expect_request(f"/data/{name}").respond_with_handler(data)
    progress = []
    res = fetch_earthdata(["VNP02MOD"], "2020-08-01", "2020-08-01", (-10, 36, 5, 44), tmp_path,
                          policy=FAST, workers=2, progress=lambda d, t, w: progress.append((d, t, w)))
    got = sorted(e.path for e in res.entries)
    assert got == sorted(f"viirs_l1b/{n}" for n in blobs if ".1212." not in n)  # unpaired left out
    assert all(e.status == "downloaded" for e in res.entries)
    for e in res.entries:
        assert (tmp_path / e.path).read_bytes() == blobs[e.path.split("/")[1]]
    from firesmoke.io.viirs.discovery import find_granules

    assert len(find_granules(tmp_path / "viirs_l1b", kind="l1b")) == 2  # pairs found as downloaded
    assert set(auth) == {"Bearer tok-abcdef-123456", ("search", None)}  # the token goes to data hosts only
    assert progress and progress[-1][0] == progress[-1][1]
    man = read_manifest(tmp_path)
    assert len(man) == 4 and all(r["checksum"].startswith("MD5:") for r in man.values())
    again = fetch_earthdata(["VNP03MOD"], "2020-08-01", "2020-08-01", None, tmp_path, policy=FAST)
    assert {e.status for e in again.entries} == {"skipped"}


def test_wrong_cmr_checksum_fails_that_granule_only(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    good, bad = b"g" * 3000, b"b" * 3000
    items = [_umm_item("MCD64A1.A2020214.h17v04.061.2021001000000.hdf", httpserver.url_for("/d/good.hdf"), good, short="MCD64A1"),
             _umm_item("MCD64A1.A2020245.h17v04.061.2021001000000.hdf", httpserver.url_for("/d/bad.hdf"), bad,
                       checksum="f" * 32, short="MCD64A1")]
    items[0]["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"] = "good.hdf"
    items[1]["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"] = "bad.hdf"
    httpserver.expect_request("/search/granules.umm_json").respond_with_json({"hits": 2, "items": items})
    httpserver.expect_request("/d/good.hdf").respond_with_handler(lambda r: range_response(good, r))
    httpserver.expect_request("/d/bad.hdf").respond_with_handler(lambda r: range_response(bad, r))
    res = fetch_earthdata(["MCD64A1"], "2020-08-01", "2020-09-30", (0, 40, 1, 41), tmp_path, policy=FAST)
    status = {e.path: e.status for e in res.entries}
    assert status == {"burned_area/good.hdf": "downloaded", "burned_area/bad.hdf": "failed"}
    assert not (tmp_path / "burned_area" / "bad.hdf").exists()
    assert not (tmp_path / "burned_area" / "bad.hdf.part").exists()


def test_download_401_stops_with_credentials_hint(httpserver, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    secret = "very-secret-token-0001"
    monkeypatch.setenv("EARTHDATA_TOKEN", secret)
    item = _umm_item("VNP64A1.A2020214.h17v04.002.2021001000000.h5", httpserver.url_for("/p/x.h5"), b"x")
    httpserver.expect_request("/search/granules.umm_json").respond_with_json({"hits": 1, "items": [item]})
    httpserver.expect_request("/p/x.h5").respond_with_data("HTTP Basic: Access denied.", status=401)
    caplog.set_level("DEBUG")
    with pytest.raises(AuthError, match="netrc"):
        fetch_earthdata(["VNP64A1"], "2020-08-01", "2020-08-31", None, tmp_path, policy=FAST)
    assert secret not in caplog.text


def test_cmr_429_then_ok(httpserver, monkeypatch):
    monkeypatch.setenv("FIRESMOKE_CMR_URL", httpserver.url_for(""))
    n = []

    def handler(req):
        n.append(1)
        if len(n) == 1:
            return Response("{}", status=429, headers={"Retry-After": "0"})
        return Response(json.dumps({"hits": 0, "items": []}))

    httpserver.expect_request("/search/granules.umm_json").respond_with_handler(handler)
    assert search_granules("MCD64A1", "2020-01-01", "2020-01-31", policy=FAST) == []
    assert len(n) == 2
