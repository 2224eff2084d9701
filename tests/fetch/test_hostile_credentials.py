"""Credentials go only where they belong, and no secret shows in a message, traceback or log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import traceback

import pytest
from _fetch_helpers import FAST, range_response
from werkzeug import Response

from firesmoke.fetch import (
    AuthError,
    FetchError,
    PlanetaryComputerSigner,
    download_file,
    fetch_firms_area,
)
from firesmoke.fetch.config import earthdata_credentials, earthdata_host, firms_map_key, redact
from firesmoke.fetch.http import new_session, request

DATA = b"granule" * 100


def _auth_recorder(httpserver, path="/g.h5"):
    seen = []
    httpserver.expect_request(path).respond_with_handler(
        lambda r: seen.append(r.headers.get("Authorization")) or range_response(DATA, r))
    return seen


@pytest.mark.parametrize(("url", "ok"), [
    ("https://data.lpdaac.earthdatacloud.nasa.gov/x.h5", True),
    ("https://ladsweb.modaps.eosdis.nasa.gov/x.hdf", True),
    ("https://e4ftl01.cr.usgs.gov/x.hdf", True),
    ("https://urs.earthdata.nasa.gov/oauth", True),
    ("http://data.lpdaac.earthdatacloud.nasa.gov/x.h5", False),  # plain http
    ("https://earthdata.nasa.gov.evil.example/x", False),  # look-alike suffix
    ("https://evilearthdata.nasa.gov/x", False),  # not a sub-domain
    ("https://bucket.s3.us-west-2.amazonaws.com/x", False),  # the signed S3 redirect
    ("ftp://urs.earthdata.nasa.gov/x", False),
])
def test_earthdata_allow_list(url, ok, monkeypatch):
    monkeypatch.delenv("FIRESMOKE_EARTHDATA_HOSTS")
    assert earthdata_host(url) is ok


def test_allow_list_extended_for_a_mirror(monkeypatch):
    monkeypatch.setenv("FIRESMOKE_EARTHDATA_HOSTS", "mirror.example.org, .daac.example.net")
    assert earthdata_host("https://mirror.example.org/x")
    assert earthdata_host("https://a.daac.example.net/x")
    assert not earthdata_host("http://mirror.example.org/x")
    assert not earthdata_host("https://example.org/x")


def test_token_not_sent_to_a_host_off_the_allow_list(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-not-for-strangers-1")
    monkeypatch.setenv("FIRESMOKE_EARTHDATA_HOSTS", "daac.example.org")
    seen = _auth_recorder(httpserver)
    download_file(new_session(earthdata_credentials()), httpserver.url_for("/g.h5"), tmp_path / "g.h5",
                  policy=FAST)
    assert seen == [None]


def test_token_not_sent_over_plain_http_without_the_loopback_switch(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-https-only-22")
    monkeypatch.delenv("FIRESMOKE_ALLOW_HTTP_LOOPBACK")
    seen = _auth_recorder(httpserver)
    download_file(new_session(earthdata_credentials()), httpserver.url_for("/g.h5"), tmp_path / "g.h5",
                  policy=FAST)
    assert seen == [None]
    monkeypatch.setenv("FIRESMOKE_ALLOW_HTTP_LOOPBACK", "1")  # the test-only switch
    (tmp_path / "g.h5").unlink()
    download_file(new_session(earthdata_credentials()), httpserver.url_for("/g.h5"), tmp_path / "g.h5",
                  policy=FAST)
    assert seen[-1] == "Bearer tok-https-only-22"


def test_netrc_password_not_sent_over_http(httpserver, tmp_path, monkeypatch):
    login = f"127.0.0.1:{httpserver.port}"
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {login} login alice password pw-never-plain\n")
    os.chmod(netrc, 0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.delenv("FIRESMOKE_ALLOW_HTTP_LOOPBACK")
    seen = _auth_recorder(httpserver, "/oauth")
    session = new_session(earthdata_credentials(host=login))
    request(session, "GET", httpserver.url_for("/oauth"), policy=FAST)
    assert seen == [None]  # requests' own netrc lookup is overruled too


def test_token_with_a_trailing_newline_is_stripped_and_one_with_controls_refused(httpserver, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-crlf-0123456\r\n")
    seen = _auth_recorder(httpserver)
    download_file(new_session(earthdata_credentials()), httpserver.url_for("/g.h5"), tmp_path / "g.h5",
                  policy=FAST)
    assert seen == ["Bearer tok-crlf-0123456"]
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-inner\nInjected: yes")
    with pytest.raises(AuthError) as info:
        earthdata_credentials()
    assert "tok-inner" not in str(info.value) and "EARTHDATA_TOKEN" in str(info.value)


def test_pc_subscription_key_never_follows_a_redirect_to_another_host(httpserver, monkeypatch):
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "pc-key-stays-home-77")
    other = []
    httpserver.expect_request("/sas/token/sentinel-2-l2a").respond_with_data(
        "", status=302, headers={"Location": f"http://localhost:{httpserver.port}/steal"})
    httpserver.expect_request("/steal").respond_with_handler(
        lambda r: other.append(r.headers.get("Ocp-Apim-Subscription-Key")) or Response("{}"))
    signer = PlanetaryComputerSigner(f"http://127.0.0.1:{httpserver.port}/sas", policy=FAST)
    with pytest.raises(FetchError, match="another host") as info:
        signer.token("sentinel-2-l2a")
    assert other == [] and "pc-key-stays-home-77" not in str(info.value)


def test_pc_token_renewed_before_expiry(httpserver):
    n = []

    def token(req):
        n.append(1)
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)  # inside the renewal margin
        return Response(json.dumps({"token": f"sig=tok{len(n)}", "msft:expiry": soon.isoformat()}))

    httpserver.expect_request("/sas/token/c").respond_with_handler(token)
    signer = PlanetaryComputerSigner(httpserver.url_for("/sas"), policy=FAST)
    assert signer.token("c") == "sig=tok1" and signer.token("c") == "sig=tok2"


def test_map_key_masked_in_connection_errors_and_debug_logs(tmp_path, caplog):
    key = "k3y/needs+encoding=yes&1"  # its %-encoded form is what urllib3 logs
    caplog.set_level(logging.DEBUG)
    res = fetch_firms_area(["VIIRS_SNPP_SP"], (0, 0, 1, 1), "2020-01-01", "2020-01-02", tmp_path,
                           map_key=key, firms_url="http://127.0.0.1:1", policy=FAST)  # refused port
    assert [e.status for e in res.entries] == ["failed"]
    text = caplog.text + (tmp_path / "manifest.jsonl").read_text() + res.entries[0].error
    for form in (key, "k3y%2Fneeds%2Bencoding%3Dyes%261", "k3y/needs%2Bencoding"):
        assert form not in text
    assert "***" in text


def test_requests_exceptions_never_carry_the_secret(monkeypatch):
    key = "map-key-in-a-url-0042"
    firms_map_key(key)
    for url in (f"http://127.0.0.1:1/api/{key}", f"http://256.0.0.1/api/{key}",
                f"http://127.0.0.1:99999/api/{key}", f"ftp://x/{key}", f"firms.example/{key}"):
        with pytest.raises(FetchError) as info:
            request(new_session(), "GET", url, policy=FAST, sleep=lambda s: None)
        shown = "".join(traceback.format_exception(info.value))
        assert key not in shown, url
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


def test_redact_masks_encoded_forms():
    firms_map_key("abc/def+ghi")
    assert redact("x abc%2Fdef%2Bghi y abc%2fdef%2bghi z abc/def+ghi") == "x *** y *** z ***"
