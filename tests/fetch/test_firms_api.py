"""FIRMS area API (5-day spans, MAP_KEY masking) and archive CSV/ZIP files, on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile

import pytest
from _fetch_helpers import FAST, _no_proxy_for_local_servers  # noqa: F401
from werkzeug import Response

from firesmoke.fetch import AuthError, fetch_firms_archive, fetch_firms_area
from firesmoke.fetch.firms import day_spans
from firesmoke.fetch.manifest import read_manifest
from firesmoke.io.firms import read_firms

KEY = "0123456789abcdef0123456789abcdef"
VIIRS_HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,"
                "confidence,version,bright_ti5,frp,daynight")
MODIS_HEADER = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,"
                "confidence,version,bright_t31,frp,daynight,type")


def _viirs_rows(first: dt.date, days: int) -> str:
    rows = [VIIRS_HEADER]
    for i in range(days):
        d = first + dt.timedelta(days=i)
        rows.append(f"40.{i:02d}1,-8.{i:02d}2,330.5,0.39,0.36,{d.isoformat()},1342,N,VIIRS,n,2.0NRT,290.1,{3 + i}.5,D")
    return "\n".join(rows) + "\n"


def _client_log(caplog) -> str:
    """Log text of the client side (the test server's own access log is not ours)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))


def test_day_spans_split_at_five_days():
    """The area API accepts DAY_RANGE 1..5 ("Invalid day range. Expects [1..5].")."""
    spans = day_spans("2020-08-01", "2020-08-13")
    assert [(s.isoformat(), n) for s, n in spans] == [("2020-08-01", 5), ("2020-08-06", 5), ("2020-08-11", 3)]
    assert day_spans("2020-08-01", "2020-08-01") == [(dt.date(2020, 8, 1), 1)]
    with pytest.raises(ValueError, match="DAY_RANGE"):
        day_spans("2020-08-01", "2020-08-13", max_days=10)


def test_area_api_spans_files_readable_and_key_masked(httpserver, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FIRESMOKE_FIRMS_URL", httpserver.url_for(""))
    monkeypatch.setenv("MAP_KEY", KEY)
    asked = []

    def handler(req):
        parts = req.path.strip("/").split("/")  # api area csv KEY SOURCE BBOX DAYS DATE
        assert parts[:3] == ["api", "area", "csv"] and parts[3] == KEY
        source, box, days, first = parts[4], parts[5], int(parts[6]), dt.date.fromisoformat(parts[7])
        asked.append((source, box, days, first))
        if not 1 <= days <= 5:  # what the real API answers
            return Response("Invalid day range. Expects [1..5].", status=400)
        return Response(_viirs_rows(first, days), content_type="text/csv")

    httpserver.expect_request(__import__("re").compile(r"/api/area/csv/.*")).respond_with_handler(handler)
    caplog.set_level(logging.DEBUG)
    res = fetch_firms_area(["VIIRS_SNPP_SP"], (-10, 36, 5, 44), "2020-08-01", "2020-08-15", tmp_path,
                           policy=FAST, today=dt.date(2026, 1, 1))
    assert [(s, b, n, f.isoformat()) for s, b, n, f in asked] == [
        ("VIIRS_SNPP_SP", "-10,36,5,44", 5, "2020-08-01"), ("VIIRS_SNPP_SP", "-10,36,5,44", 5, "2020-08-06"),
        ("VIIRS_SNPP_SP", "-10,36,5,44", 5, "2020-08-11")]
    assert [e.path for e in res.entries] == ["firms/VIIRS_SNPP_SP_20200801_20200805.csv",
                                             "firms/VIIRS_SNPP_SP_20200806_20200810.csv",
                                             "firms/VIIRS_SNPP_SP_20200811_20200815.csv"]
    df = read_firms(tmp_path / "firms")
    assert len(df) == 15
    assert str(df["time"].min().date()) == "2020-08-01" and str(df["time"].max().date()) == "2020-08-15"
    assert set(df["satellite"]) == {"S-NPP"}
    assert KEY not in _client_log(caplog)  # urllib3 debug lines included
    assert "***" in _client_log(caplog)
    assert KEY not in (tmp_path / "manifest.jsonl").read_text()
    assert "***" in read_manifest(tmp_path)["firms/VIIRS_SNPP_SP_20200801_20200805.csv"]["url"]
    # a second run skips the finished spans
    res2 = fetch_firms_area(["VIIRS_SNPP_SP"], (-10, 36, 5, 44), "2020-08-01", "2020-08-15", tmp_path,
                            policy=FAST, today=dt.date(2026, 1, 1))
    assert {e.status for e in res2.entries} == {"skipped"} and len(asked) == 3


def test_recent_nrt_spans_are_refreshed(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("MAP_KEY", KEY)
    n = []
    httpserver.expect_request(__import__("re").compile(r"/api/area/csv/.*")).respond_with_handler(
        lambda r: n.append(1) or Response(VIIRS_HEADER + "\n"))
    for _ in range(2):
        fetch_firms_area(["VIIRS_NOAA20_NRT"], (0, 0, 1, 1), "2026-11-30", "2026-12-03", tmp_path,
                         firms_url=httpserver.url_for(""), policy=FAST, today=dt.date(2026, 12, 4))
    assert len(n) == 2  # fetched again: NRT data for the last days still change
    assert len(read_firms(tmp_path / "firms")) == 0  # header-only answer: no fires, still valid


def test_invalid_key_and_missing_key(httpserver, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MAP_KEY", raising=False)
    monkeypatch.delenv("FIRMS_MAP_KEY", raising=False)
    with pytest.raises(AuthError, match="MAP_KEY"):
        fetch_firms_area(["MODIS_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-02", tmp_path)
    httpserver.expect_request(__import__("re").compile(r"/api/.*")).respond_with_data("Invalid MAP_KEY.", status=400)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError, match="MAP_KEY") as exc:
        fetch_firms_area(["MODIS_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-02", tmp_path, map_key=KEY,
                         firms_url=httpserver.url_for(""), policy=FAST)
    assert KEY not in str(exc.value) and KEY not in _client_log(caplog)


def test_area_api_429_then_ok(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("MAP_KEY", KEY)
    n = []

    def handler(req):
        n.append(1)
        if len(n) == 1:
            return Response("Too many requests", status=429, headers={"Retry-After": "1"})
        return Response(_viirs_rows(dt.date(2020, 1, 1), 2))

    httpserver.expect_request(__import__("re").compile(r"/api/.*")).respond_with_handler(handler)
    res = fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-02", tmp_path,
                           firms_url=httpserver.url_for(""), policy=FAST)
    assert len(n) == 2 and res.entries[0].status == "downloaded"


def test_archive_zip_is_unpacked_safely(httpserver, tmp_path):
    modis = MODIS_HEADER + "\n-33.5,150.2,320.1,1.0,1.0,2019-12-30,0310,T,MODIS,87,6.03,295.0,40.2,D,0\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("DL_FIRE_M-C61_1234/fire_archive_M-C61_1234.csv", modis)
        zf.writestr("../../evil.csv", modis)  # zip-slip attempt: flattened into firms/
        zf.writestr("Readme.txt", "not a csv")
    data = buf.getvalue()
    httpserver.expect_request("/archive/DL_FIRE_M-C61_1234.zip").respond_with_data(data)
    httpserver.expect_request("/archive/fire_nrt_SV-C2_1.csv").respond_with_data(_viirs_rows(dt.date(2020, 1, 1), 3))
    res = fetch_firms_archive([httpserver.url_for("/archive/DL_FIRE_M-C61_1234.zip"),
                               httpserver.url_for("/archive/fire_nrt_SV-C2_1.csv")], tmp_path, policy=FAST)
    paths = sorted(e.path for e in res.entries)
    assert paths == ["firms/archive/DL_FIRE_M-C61_1234.zip", "firms/evil.csv",
                     "firms/fire_archive_M-C61_1234.csv", "firms/fire_nrt_SV-C2_1.csv"]
    assert not (tmp_path.parent / "evil.csv").exists()
    df = read_firms(tmp_path / "firms")
    assert len(df) == 5 and set(df["instrument"]) == {"MODIS", "VIIRS"}


def test_antimeridian_box_is_asked_in_two_parts_and_dry_run_sends_nothing(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("MAP_KEY", KEY)
    boxes = []
    httpserver.expect_request(__import__("re").compile(r"/api/.*")).respond_with_handler(
        lambda r: boxes.append(r.path.split("/")[6]) or Response(VIIRS_HEADER + "\n"))
    plan = fetch_firms_area(["VIIRS_SNPP_SP"], (170, 50, 190, 60), "2020-01-01", "2020-01-03", tmp_path,
                            firms_url=httpserver.url_for(""), dry_run=True)
    assert [e.status for e in plan.entries] == ["planned", "planned"] and boxes == []
    res = fetch_firms_area(["VIIRS_SNPP_SP"], (170, 50, 190, 60), "2020-01-01", "2020-01-03", tmp_path,
                           firms_url=httpserver.url_for(""), policy=FAST, today=dt.date(2026, 1, 1))
    assert sorted(boxes) == ["-180,50,-170,60", "170,50,180,60"]
    assert [e.path for e in res.entries] == ["firms/VIIRS_SNPP_SP_20200101_20200103_part1.csv",
                                             "firms/VIIRS_SNPP_SP_20200101_20200103_part2.csv"]


@pytest.mark.real
def test_real_firms_files_through_the_archive_client(real_data, httpserver, tmp_path):
    """Real FIRMS downloads served as archive CSV and ZIP read back exactly like the originals."""
    nrt = real_data / "firms" / "SUOMI_VIIRS_C2_Europe_24h_20220905.csv"
    arch = real_data / "firms" / "fire_archive_M6_96619.csv"
    if not (nrt.is_file() and arch.is_file()):
        pytest.skip("real FIRMS samples not found")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(arch, f"DL_FIRE_M6_96619/{arch.name}")
    httpserver.expect_request(f"/d/{nrt.name}").respond_with_data(nrt.read_bytes(), content_type="text/csv")
    httpserver.expect_request("/d/DL_FIRE_M6_96619.zip").respond_with_data(buf.getvalue(),
                                                                           content_type="application/zip")
    fetch_firms_archive([httpserver.url_for(f"/d/{nrt.name}"), httpserver.url_for("/d/DL_FIRE_M6_96619.zip")],
                        tmp_path, policy=FAST)
    for original in (nrt, arch):
        got = read_firms(tmp_path / "firms" / original.name)
        ref = read_firms(original)
        assert len(got) == len(ref) and len(got) in (1205, 36011)
        assert (got["frp"].values == ref["frp"].values).all()
