"""``s3://`` assets (Earth Search sentinel-2-l1c, requester pays) through s3fs, on moto's S3 server."""

from __future__ import annotations

import hashlib
import socket

import pytest

from firesmoke.fetch import Checksum
from firesmoke.fetch.http import new_session
from firesmoke.fetch.manifest import read_manifest
from firesmoke.fetch.remote import RemoteFile, download_all

BLOB = b"jp2 bytes " * 300


@pytest.fixture
def s3(monkeypatch, tmp_path):
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    endpoint = f"http://127.0.0.1:{port}"
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true"),
                       ("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none")),
                       ("AWS_CONFIG_FILE", str(tmp_path / "none")),
                       ("FIRESMOKE_S3_ENDPOINT_URL", endpoint)):
        monkeypatch.setenv(var, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="sentinel-s2-l1c")
    client.put_bucket_request_payment(Bucket="sentinel-s2-l1c",
                                      RequestPaymentConfiguration={"Payer": "Requester"})
    client.put_object(Bucket="sentinel-s2-l1c", Key="tiles/29/T/NE/B04.jp2", Body=BLOB)
    yield client
    srv.stop()


def test_s3_asset_downloaded_verified_and_failures_listed(s3, tmp_path):
    good = "s3://sentinel-s2-l1c/tiles/29/T/NE/B04.jp2"
    files = [RemoteFile(good, "s2/B04.jp2", len(BLOB), Checksum("SHA-256", hashlib.sha256(BLOB).hexdigest())),
             RemoteFile(good, "s2/wrong.jp2", len(BLOB) + 1),  # metadata disagrees
             RemoteFile("s3://sentinel-s2-l1c/tiles/missing.jp2", "s2/missing.jp2")]
    res = download_all(new_session(), files, tmp_path, workers=1)
    assert [e.status for e in res.entries] == ["downloaded", "failed", "failed"]
    assert (tmp_path / "s2" / "B04.jp2").read_bytes() == BLOB
    assert "size" in res.entries[1].error and "S3 read failed" in res.entries[2].error
    assert sorted(p.name for p in (tmp_path / "s2").iterdir()) == ["B04.jp2"]  # nothing partial
    again = download_all(new_session(), files[:1], tmp_path, workers=1)
    assert [e.status for e in again.entries] == ["skipped"]
    assert read_manifest(tmp_path)["s2/B04.jp2"]["status"] == "skipped"
