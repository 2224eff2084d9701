"""Resumable, verified, atomic downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest
from _fetch_helpers import FAST, _no_proxy_for_local_servers, range_response  # noqa: F401
from werkzeug import Response

from firesmoke.errors import InputError
from firesmoke.fetch import (
    AuthError,
    Checksum,
    ChecksumError,
    FetchError,
    RetryPolicy,
    download_file,
)
from firesmoke.fetch.config import earthdata_credentials, redact
from firesmoke.fetch.http import new_session
from firesmoke.fetch.manifest import read_manifest
from firesmoke.fetch.remote import RemoteFile, download_all
from firesmoke.paths import server_path

DATA = bytes(range(256)) * 2400  # 614,400 bytes


def _md5(b: bytes) -> Checksum:
    return Checksum("MD5", hashlib.md5(b).hexdigest())


def test_download_verifies_writes_manifest_and_skips_when_present(httpserver, tmp_path):
    calls = []
    httpserver.expect_request("/data/A.h5").respond_with_handler(
        lambda r: calls.append(r.headers.get("Range")) or range_response(DATA, r))
    f = RemoteFile(httpserver.url_for("/data/A.h5"), "VNP64A1/A.h5", len(DATA), _md5(DATA), source="t")
    res = download_all(new_session(), [f], tmp_path, policy=FAST)
    assert [e.status for e in res.entries] == ["downloaded"]
    assert (tmp_path / "VNP64A1" / "A.h5").read_bytes() == DATA
    assert not (tmp_path / "VNP64A1" / "A.h5.part").exists()
    res2 = download_all(new_session(), [f], tmp_path, policy=FAST)
    assert [e.status for e in res2.entries] == ["skipped"]
    assert len(calls) == 1  # the second run did not download
    man = read_manifest(tmp_path)
    rec = man["VNP64A1/A.h5"]
    assert rec["status"] == "skipped" and rec["size"] == len(DATA)
    assert rec["checksum"] == f"MD5:{hashlib.md5(DATA).hexdigest()}"
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines] == ["downloaded", "skipped"]


def test_connection_dropped_mid_file_resumes_from_part(httpserver, tmp_path):
    ranges = []

    def handler(req):
        ranges.append(req.headers.get("Range"))
        return range_response(DATA, req, drop_after=400_000 if len(ranges) == 1 else None)

    httpserver.expect_request("/f.bin").respond_with_handler(handler)
    waits = []
    entry = download_file(new_session(), httpserver.url_for("/f.bin"), tmp_path / "f.bin",
                          checksum=Checksum("SHA-256", hashlib.sha256(DATA).hexdigest()),
                          policy=FAST, sleep=waits.append)
    assert entry.status == "resumed"
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert ranges[0] is None
    assert ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0  # continued, not restarted
    assert len(waits) == 1


def test_resumes_existing_part_file_with_range(httpserver, tmp_path):
    ranges = []
    httpserver.expect_request("/g.bin").respond_with_handler(
        lambda r: ranges.append(r.headers.get("Range")) or range_response(DATA, r))
    (tmp_path / "g.bin.part").write_bytes(DATA[:300_000])
    entry = download_file(new_session(), httpserver.url_for("/g.bin"), tmp_path / "g.bin",
                          size=len(DATA), checksum=_md5(DATA), policy=FAST)
    assert ranges == ["bytes=300000-"]
    assert entry.status == "resumed"
    assert (tmp_path / "g.bin").read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(httpserver, tmp_path):
    httpserver.expect_request("/h.bin").respond_with_data(DATA)  # always 200, whole file
    (tmp_path / "h.bin.part").write_bytes(b"garbage" * 10)
    download_file(new_session(), httpserver.url_for("/h.bin"), tmp_path / "h.bin", policy=FAST)
    assert (tmp_path / "h.bin").read_bytes() == DATA


def test_wrong_checksum_is_rejected_and_not_left_as_complete(httpserver, tmp_path):
    httpserver.expect_request("/bad.bin").respond_with_handler(lambda r: range_response(DATA, r))
    with pytest.raises(ChecksumError, match="MD5"):
        download_file(new_session(), httpserver.url_for("/bad.bin"), tmp_path / "bad.bin",
                      checksum=Checksum("MD5", "0" * 32), policy=FAST)
    assert not (tmp_path / "bad.bin").exists()
    assert not (tmp_path / "bad.bin.part").exists()
    # in a batch the failure is recorded in the manifest and the others go on
    httpserver.expect_request("/ok.bin").respond_with_handler(lambda r: range_response(DATA, r))
    files = [RemoteFile(httpserver.url_for("/bad.bin"), "bad.bin", checksum=Checksum("MD5", "0" * 32)),
             RemoteFile(httpserver.url_for("/ok.bin"), "ok.bin", size=len(DATA))]
    res = download_all(new_session(), files, tmp_path, policy=FAST, workers=2)
    assert [e.status for e in res.entries] == ["failed", "downloaded"]
    assert "does not match" in res.failed[0].error
    assert read_manifest(tmp_path)["bad.bin"]["status"] == "failed"


def test_short_body_is_resumed_and_wrong_size_rejected(httpserver, tmp_path):
    httpserver.expect_request("/s.bin").respond_with_handler(lambda r: range_response(DATA, r))
    with pytest.raises(ChecksumError, match="size"):
        download_file(new_session(), httpserver.url_for("/s.bin"), tmp_path / "s.bin",
                      size=len(DATA) - 1, policy=FAST)  # metadata says one byte less
    assert not (tmp_path / "s.bin").exists()


def test_429_retry_after_is_honoured(httpserver, tmp_path):
    n = []

    def handler(req):
        n.append(1)
        if len(n) <= 2:
            return Response("slow down", status=429, headers={"Retry-After": "3"})
        return range_response(DATA, req)

    httpserver.expect_request("/r.bin").respond_with_handler(handler)
    waits = []
    download_file(new_session(), httpserver.url_for("/r.bin"), tmp_path / "r.bin",
                  policy=RetryPolicy(attempts=4, backoff=0.01, max_wait=60), sleep=waits.append)
    assert waits == [3.0, 3.0]
    assert (tmp_path / "r.bin").read_bytes() == DATA


def test_5xx_backoff_is_bounded(httpserver, tmp_path):
    httpserver.expect_request("/e.bin").respond_with_data("down", status=503)
    waits = []
    with pytest.raises(FetchError, match="giving up after 3 attempts"):
        download_file(new_session(), httpserver.url_for("/e.bin"), tmp_path / "e.bin",
                      policy=RetryPolicy(attempts=3, backoff=0.5, max_wait=10), sleep=waits.append)
    assert len(waits) == 2 and 0.5 <= waits[0] < waits[1] <= 10  # exponential
    assert not (tmp_path / "e.bin").exists()


def test_401_raises_auth_error_and_token_never_logged(httpserver, tmp_path, monkeypatch, caplog):
    token = "eyJ0eXAiOiJKV1QiLCJzZWNyZXQtdG9rZW4tOTk5"
    monkeypatch.setenv("EARTHDATA_TOKEN", token)
    seen = []

    def handler(req):
        seen.append(req.headers.get("Authorization"))
        return Response("unauthorised", status=401)

    httpserver.expect_request("/p.bin").respond_with_handler(handler)
    caplog.set_level(logging.DEBUG)
    session = new_session(earthdata_credentials())
    with pytest.raises(AuthError, match="EARTHDATA_TOKEN") as exc:
        download_file(session, httpserver.url_for("/p.bin"), tmp_path / "p.bin", policy=FAST)
    assert seen == [f"Bearer {token}"]  # sent to the server...
    assert token not in str(exc.value)  # ...never shown
    assert token not in caplog.text
    assert token not in repr(earthdata_credentials())
    assert redact(f"x{token}y") == "x***y"


def test_netrc_login_goes_to_login_host_only(httpserver, tmp_path, monkeypatch):
    """The DAAC redirects to the login host, which wants basic auth, then back with a cookie."""
    login = f"127.0.0.1:{httpserver.port}"
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {login} login alice password s3cr3t-pw\n")
    os.chmod(netrc, 0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    creds = earthdata_credentials(host=login)
    assert creds.login == "alice"
    # the data URL uses "localhost" (another host name), the login host 127.0.0.1
    data_url = f"http://localhost:{httpserver.port}/daac/Z.h5"
    auth_seen = {}

    def daac(req):
        auth_seen["daac"] = req.headers.get("Authorization")
        if req.args.get("code") == "granted" or req.cookies.get("daac") == "ok":
            return range_response(DATA, req)
        return Response(status=302, headers={"Location": f"http://{login}/oauth"})

    def oauth(req):
        auth_seen["login"] = req.headers.get("Authorization")
        if not req.authorization or req.authorization.password != "s3cr3t-pw":
            return Response(status=401)
        return Response(status=302, headers={"Location": data_url + "?code=granted"})

    httpserver.expect_request("/daac/Z.h5").respond_with_handler(daac)
    httpserver.expect_request("/oauth").respond_with_handler(oauth)
    session = new_session(creds)
    session.trust_env = False  # only firesmoke's login-host rule, not requests' own netrc lookup
    entry = download_file(session, data_url, tmp_path / "Z.h5", policy=FAST)
    assert entry.ok and (tmp_path / "Z.h5").read_bytes() == DATA
    assert auth_seen["login"].startswith("Basic ")
    assert auth_seen["daac"] is None  # the password never went to the data host


def test_symlinked_part_file_is_refused(httpserver, tmp_path):
    httpserver.expect_request("/l.bin").respond_with_data(DATA)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out").mkdir()
    os.symlink(victim, tmp_path / "out" / "l.bin.part")
    with pytest.raises(FetchError, match="symlink"):
        download_file(new_session(), httpserver.url_for("/l.bin"), tmp_path / "out" / "l.bin", policy=FAST)
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("name", ["../evil.h5", "/etc/passwd", "a/../../b", "..", "C:/x"])
def test_server_names_cannot_escape_the_output_folder(tmp_path, name):
    with pytest.raises(InputError):
        server_path(tmp_path, name)


def test_server_path_cleans_odd_characters(tmp_path):
    p = server_path(tmp_path, "VNP64A1/VNP64A1 x;y.h5")
    assert p == tmp_path / "VNP64A1" / "VNP64A1_x_y.h5"
    assert server_path(tmp_path, ".hidden").name == "_hidden"


def test_html_login_page_is_not_saved_as_data(httpserver, tmp_path):
    httpserver.expect_request("/VNP64A1.h5").respond_with_data("<html>Earthdata Login</html>",
                                                               content_type="text/html; charset=utf-8")
    with pytest.raises(AuthError, match="HTML page"):
        download_file(new_session(), httpserver.url_for("/VNP64A1.h5"), tmp_path / "VNP64A1.h5", policy=FAST)
    assert not (tmp_path / "VNP64A1.h5").exists() and not (tmp_path / "VNP64A1.h5.part").exists()


def test_part_file_locked_by_another_download(httpserver, tmp_path):
    import fcntl

    httpserver.expect_request("/k.bin").respond_with_data(DATA)
    part = tmp_path / "k.bin.part"
    part.write_bytes(b"x")
    with open(part, "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(FetchError, match="another process"):
            download_file(new_session(), httpserver.url_for("/k.bin"), tmp_path / "k.bin", policy=FAST)
    assert part.read_bytes() == b"x"


def test_bearer_token_is_not_forwarded_to_another_host(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok-do-not-forward-1")
    monkeypatch.setenv("FIRESMOKE_EARTHDATA_HOSTS", "localhost")  # the DAAC; 127.0.0.1 is "S3"
    seen = {}

    def first(req):
        seen["first"] = req.headers.get("Authorization")
        return Response(status=302, headers={"Location": f"http://127.0.0.1:{httpserver.port}/signed/x.bin"})

    def signed(req):  # e.g. a pre-signed S3 URL: a second Authorization would be refused
        seen["signed"] = req.headers.get("Authorization")
        return range_response(DATA, req)

    httpserver.expect_request("/daac/x.bin").respond_with_handler(first)
    httpserver.expect_request("/signed/x.bin").respond_with_handler(signed)
    session = new_session(earthdata_credentials())
    download_file(session, f"http://localhost:{httpserver.port}/daac/x.bin", tmp_path / "x.bin", policy=FAST)
    assert seen == {"first": "Bearer tok-do-not-forward-1", "signed": None}


def test_retry_after_http_date_and_cap():
    import email.utils
    import time

    p = RetryPolicy(backoff=1.0, max_wait=30.0)
    assert p.wait(0, "5") == 5.0
    assert p.wait(0, "600") == 30.0  # capped
    later = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= p.wait(0, later) <= 10.5
    assert 1.0 <= p.wait(0, "garbage") <= 1.1 and 4.0 <= p.wait(2) <= 4.4  # backoff with jitter


def test_traversing_server_name_fails_that_file_only(httpserver, tmp_path):
    httpserver.expect_request("/ok.bin").respond_with_data(DATA)
    files = [RemoteFile(httpserver.url_for("/evil"), "sentinel2/../../../evil.tif"),
             RemoteFile(httpserver.url_for("/ok.bin"), "ok.bin")]
    res = download_all(new_session(), files, tmp_path / "out", policy=FAST)
    assert [e.status for e in res.entries] == ["failed", "downloaded"]
    assert not list(tmp_path.rglob("evil*"))
