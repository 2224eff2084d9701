"""Sentinel-2 through a STAC API (item search with paging, cloud filter, PC signing) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
import rasterio
from _fetch_helpers import FAST, _no_proxy_for_local_servers, range_response  # noqa: F401
from rasterio.transform import from_origin
from werkzeug import Response

from firesmoke.fetch import PlanetaryComputerSigner, Site, fetch_sentinel2, search_sentinel2
from firesmoke.fetch.manifest import read_manifest
from firesmoke.fetch.stac import site_bbox

CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
]


def _tif(value: int) -> bytes:
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=20, height=20, count=1, dtype="uint16", crs="EPSG:32629",
                      transform=from_origin(500000, 4500200, 10, 10)) as ds:
            ds.write(np.full((1, 20, 20), value, np.uint16))
        buf.write(mem.read())
    return buf.getvalue()


def _item(i: int, cloud: float, base: str, blobs: dict[str, bytes], collection="sentinel-2-l2a"):
    iid = f"S2B_29TNE_2021080{i}_0_L2A"
    assets = {}
    for key, value in (("red", 100 * i + 4), ("nir", 100 * i + 8), ("scl", 5)):
        path = f"/assets/{iid}/{key.upper()}.tif"
        blobs[path] = _tif(value)
        assets[key] = {"href": base + path, "type": "image/tiff; application=geotiff", "roles": ["data"],
                       "file:size": len(blobs[path]),
                       "file:checksum": "1220" + hashlib.sha256(blobs[path]).hexdigest()}
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": collection,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[-9.0, 40.6], [-8.99, 40.6], [-8.99, 40.61], [-9.0, 40.61], [-9.0, 40.6]]]},
        "bbox": [-9.0, 40.6, -8.99, 40.61],
        "properties": {"datetime": f"2021-08-0{i}T11:21:00Z", "eo:cloud_cover": cloud, "proj:epsg": 32629,
                       "proj:shape": [20, 20], "proj:transform": [10, 0, 500000, 0, -10, 4500200]},
        "links": [{"rel": "self", "href": f"{base}/collections/{collection}/items/{iid}"}],
        "assets": assets,
    }


@pytest.fixture
def stac_api(httpserver):
    base = httpserver.url_for("").rstrip("/")
    blobs: dict[str, bytes] = {}
    items = [_item(1, 5.0, base, blobs), _item(2, 80.0, base, blobs), _item(3, 12.0, base, blobs)]
    searches: list[dict] = []

    def landing(req):
        return Response(json.dumps({
            "type": "Catalog", "id": "test", "stac_version": "1.0.0", "description": "test API",
            "conformsTo": CONFORMS,
            "links": [{"rel": "self", "href": base + "/"}, {"rel": "root", "href": base + "/"},
                      {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "GET"},
                      {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"}],
        }), content_type="application/json")

    def search(req):
        body = req.get_json(silent=True) or {}
        args = {**{k: v for k, v in req.args.items()}, **body}
        searches.append(args)
        query = args.get("query")
        if isinstance(query, str):
            query = json.loads(query)
        lim = (query or {}).get("eo:cloud_cover", {}).get("lte", 100)
        ok = [it for it in items if it["properties"]["eo:cloud_cover"] <= lim]  # server-side filter
        page = int(args.get("token", 0) or 0)
        chunk = ok[page: page + 1]  # one item per page: paging must be followed
        links = []
        if page + 1 < len(ok):
            if req.method == "POST":
                links.append({"rel": "next", "href": base + "/search", "method": "POST",
                              "body": {**body, "token": page + 1}})
            else:
                links.append({"rel": "next", "href": f"{base}/search?token={page + 1}"})
        return Response(json.dumps({"type": "FeatureCollection", "features": chunk, "links": links}),
                        content_type="application/geo+json")

    httpserver.expect_request("/").respond_with_handler(landing)
    httpserver.expect_request("/search").respond_with_handler(search)
    for path, data in blobs.items():
        httpserver.expect_request(path).respond_with_handler(lambda r, d=data: range_response(d, r))
    return {"base": base, "searches": searches, "items": items, "blobs": blobs}


def test_search_follows_pages_and_filters_clouds(stac_api):
    items = search_sentinel2(bbox=(-9.1, 40.5, -8.9, 40.7), start="2021-08-01", end="2021-08-31",
                             catalog=stac_api["base"], max_cloud=20)
    assert [it["id"] for it in items] == ["S2B_29TNE_20210801_0_L2A", "S2B_29TNE_20210803_0_L2A"]
    first = stac_api["searches"][0]
    assert first["collections"] == ["sentinel-2-l2a"]
    assert first["query"] == {"eo:cloud_cover": {"lte": 20.0}}
    assert first["datetime"] == "2021-08-01T00:00:00Z/2021-08-31T23:59:59Z"
    assert len(stac_api["searches"]) == 2  # second page followed


def test_site_buffer_bbox():
    left, bottom, right, top = site_bbox(Site("plant", -8.99, 40.605, buffer_m=1000))
    assert top - bottom == pytest.approx(2 * 1000 / 111195, rel=1e-3)
    assert (right - left) > (top - bottom)  # longitude degrees are shorter at 40 N


def test_items_only_writes_item_collection(stac_api, tmp_path):
    res = fetch_sentinel2(tmp_path, "2021-08-01", "2021-08-31", sites=[Site("plant", -8.995, 40.605)],
                          catalog=stac_api["base"], max_cloud=None)
    coll = json.loads((tmp_path / "sentinel2" / "plant" / "items.json").read_text())
    assert coll["type"] == "FeatureCollection" and len(coll["features"]) == 3
    assert coll["features"][0]["assets"]["red"]["href"].startswith("http://")
    assert [e.status for e in res.entries] == ["written"]
    assert stac_api["searches"][0]["bbox"] == pytest.approx(list(site_bbox(Site("plant", -8.995, 40.605))))


def test_assets_downloaded_verified_and_stackable(stac_api, tmp_path):
    from firesmoke.io.sentinel2.scenes import open_scene

    res = fetch_sentinel2(tmp_path, "2021-08-01", "2021-08-31", bbox=(-9.1, 40.5, -8.9, 40.7),
                          catalog=stac_api["base"], max_cloud=20, assets=["B04", "B08"], policy=FAST)
    downloaded = sorted(e.path for e in res.entries if e.status == "downloaded")
    assert downloaded == [f"sentinel2/sentinel-2-l2a/S2B_29TNE_2021080{i}_0_L2A/{k}.tif"
                          for i in (1, 3) for k in ("nir", "red")]
    man = read_manifest(tmp_path)
    assert all(man[p]["checksum"].startswith("SHA-256:") for p in downloaded)
    items_json = tmp_path / "sentinel2" / "bbox" / "items.json"
    cube = open_scene(items_json, bands=("B04", "B08"), resolution=10, dtype="uint16").compute()
    assert cube.sizes["time"] == 2
    np.testing.assert_array_equal(cube.sel(band="B04").max(("y", "x")).values, [104, 304])
    np.testing.assert_array_equal(cube.sel(band="B08").max(("y", "x")).values, [108, 308])
    again = fetch_sentinel2(tmp_path, "2021-08-01", "2021-08-31", bbox=(-9.1, 40.5, -8.9, 40.7),
                            catalog=stac_api["base"], max_cloud=20, assets=["B04", "B08"], policy=FAST)
    assert {e.status for e in again.entries} == {"skipped", "written"}


def test_planetary_computer_signing_uses_token_endpoint(httpserver, stac_api, tmp_path, monkeypatch):
    calls = []

    def token(req):
        calls.append(req.path)
        return Response(json.dumps({"msft:expiry": "2099-01-01T00:00:00Z", "token": "st=2099&se=2099&sig=SECRETSIG"}),
                        content_type="application/json")

    httpserver.expect_request("/api/sas/v1/token/sentinel-2-l2a").respond_with_handler(token)
    signer = PlanetaryComputerSigner(httpserver.url_for("/api/sas/v1"), hosts=("localhost",))
    assert signer.sign("https://other.example/x.tif", "sentinel-2-l2a") == "https://other.example/x.tif"
    fetch_sentinel2(tmp_path, "2021-08-01", "2021-08-31", bbox=(-9.1, 40.5, -8.9, 40.7),
                    catalog=stac_api["base"], max_cloud=20, assets=["B04"], signer=signer, policy=FAST)
    assert calls == ["/api/sas/v1/token/sentinel-2-l2a"]  # fetched once, cached
    asset_queries = [req.query_string.decode() for req, _ in httpserver.log if req.path.startswith("/assets/")]
    assert asset_queries == ["st=2099&se=2099&sig=SECRETSIG"] * 2  # both B04 files, signed
    assert "SECRETSIG" not in (tmp_path / "manifest.jsonl").read_text()
    assert "SECRETSIG" not in (tmp_path / "sentinel2" / "bbox" / "items.json").read_text()


def test_cli_fetch_sentinel2_for_sites_csv(stac_api, tmp_path, capsys):
    from firesmoke.cli.main import main

    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,lon,lat\nplant_a,-8.995,40.605\nplant_b,-8.99,40.61\n")
    rc = main(["fetch", "--region=-9.1,40.5,-8.9,40.7", "--start", "2021-08-01", "--end", "2021-08-31",
               "--products", "sentinel-2-l2a", "--catalog", stac_api["base"], "--sites-csv", str(sites),
               "--max-cloud", "50", "--out", str(tmp_path / "out"), "-q"])
    assert rc == 0 and "2 written" in capsys.readouterr().out
    for site in ("plant_a", "plant_b"):
        coll = json.loads((tmp_path / "out" / "sentinel2" / site / "items.json").read_text())
        assert [f["id"] for f in coll["features"]] == ["S2B_29TNE_20210801_0_L2A", "S2B_29TNE_20210803_0_L2A"]
