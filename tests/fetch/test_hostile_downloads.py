"""Downloads against hostile servers on 127.0.0.1: verification, concurrency, bounds, bad URLs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _fetch_helpers import FAST, range_response, raw_server
from werkzeug import Response

from firesmoke.errors import UnsafePathError
from firesmoke.fetch import Checksum, ChecksumError, FetchError, RetryPolicy, download_file
from firesmoke.fetch.http import check_url, new_session
from firesmoke.fetch.manifest import Manifest, ManifestEntry, read_manifest
from firesmoke.fetch.remote import RemoteFile, download_all

DATA = bytes(range(256)) * 40  # 10,240 bytes
REPO = Path(__file__).resolve().parents[2]


def _sha(b: bytes) -> Checksum:
    return Checksum("SHA-256", hashlib.sha256(b).hexdigest())


def test_right_size_wrong_checksum_on_disk_is_downloaded_again(httpserver, tmp_path):
    """The planted bug: a file of the right size but other bytes must not pass as verified."""
    hits = []
    httpserver.expect_request("/g.h5").respond_with_handler(lambda r: hits.append(1) or range_response(DATA, r))
    dest = tmp_path / "g.h5"
    dest.write_bytes(b"\0" * len(DATA))  # same size, wrong bytes
    entry = download_file(new_session(), httpserver.url_for("/g.h5"), dest, size=len(DATA),
                          checksum=_sha(DATA), policy=FAST)
    assert entry.status == "downloaded" and len(hits) == 1
    assert dest.read_bytes() == DATA


def test_without_published_checksum_the_manifest_record_is_used(httpserver, tmp_path):
    """No size/checksum from the service: the manifest's record catches a damaged or truncated file."""
    hits = []
    httpserver.expect_request("/n.bin").respond_with_handler(lambda r: hits.append(1) or Response(DATA))
    f = RemoteFile(httpserver.url_for("/n.bin"), "n.bin")
    first = download_all(new_session(), [f], tmp_path, policy=FAST)
    rec = read_manifest(tmp_path)["n.bin"]
    assert first.entries[0].status == "downloaded"
    assert rec["size"] == len(DATA) and rec["checksum"] == str(_sha(DATA))
    assert [e.status for e in download_all(new_session(), [f], tmp_path, policy=FAST).entries] == ["skipped"]
    (tmp_path / "n.bin").write_bytes(b"")  # truncated to 0 bytes (the race of the issue)
    assert [e.status for e in download_all(new_session(), [f], tmp_path, policy=FAST).entries] == ["downloaded"]
    (tmp_path / "n.bin").write_bytes(DATA[::-1])  # right size, other bytes
    assert [e.status for e in download_all(new_session(), [f], tmp_path, policy=FAST).entries] == ["downloaded"]
    assert (tmp_path / "n.bin").read_bytes() == DATA and len(hits) == 3


def test_empty_file_with_nothing_to_check_is_not_complete(httpserver, tmp_path):
    httpserver.expect_request("/e.bin").respond_with_data(DATA)
    (tmp_path / "e.bin").write_bytes(b"")
    entry = download_file(new_session(), httpserver.url_for("/e.bin"), tmp_path / "e.bin", policy=FAST)
    assert entry.status == "downloaded" and (tmp_path / "e.bin").read_bytes() == DATA


_RACE = textwrap.dedent("""
    import json, sys
    from firesmoke.fetch import RetryPolicy
    from firesmoke.fetch.http import new_session
    from firesmoke.fetch.remote import RemoteFile, download_all
    base, out = sys.argv[1], sys.argv[2]
    files = [RemoteFile(f"{base}/f{i}.bin", f"d/f{i}.bin") for i in range(3)]
    res = download_all(new_session(), files, out, workers=3,
                       policy=RetryPolicy(attempts=2, backoff=0.01, timeout=(5, 5)))
    print(json.dumps([e.status for e in res.entries]))
""")


def test_two_processes_into_one_folder_neither_crashes_nor_truncates(httpserver, tmp_path):
    """Two real `fetch` processes on the same files: one downloads each, the other waits and skips."""
    def slow(req):
        def gen():
            for i in range(0, len(DATA), 2048):
                time.sleep(0.05)
                yield DATA[i:i + 2048]
        return Response(gen(), headers={"Content-Length": str(len(DATA))},
                        content_type="application/octet-stream")

    for i in range(3):
        httpserver.expect_request(f"/f{i}.bin").respond_with_handler(slow)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    cmd = [sys.executable, "-c", _RACE, httpserver.url_for("").rstrip("/"), str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    statuses = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    for i in range(3):
        assert sorted(s[i] for s in statuses) == ["downloaded", "skipped"]  # one waited for the other
        assert (tmp_path / "d" / f"f{i}.bin").read_bytes() == DATA
    assert not list((tmp_path / "d").glob("*.part")) and not list((tmp_path / "d").glob("*.lock"))
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(x)["path"].startswith("d/f") for x in lines)  # no torn line


def _endless(sock, stop):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
    block = b"x" * 4096
    while not stop.is_set():
        sock.sendall(block)


def test_endless_stream_stops_at_the_announced_size(tmp_path):
    data = b"x" * 1200
    with raw_server(_endless) as base:
        entry = download_file(new_session(), base + "/g.h5", tmp_path / "g.h5", size=1200,
                              checksum=_sha(data), policy=FAST)
    assert entry.ok and (tmp_path / "g.h5").stat().st_size == 1200


def test_endless_stream_without_a_size_stops_at_the_cap(tmp_path):
    policy = RetryPolicy(attempts=2, backoff=0.01, timeout=(5, 5), max_download=100_000)
    with raw_server(_endless) as base, pytest.raises(FetchError, match="max_download"):
        download_file(new_session(), base + "/g.h5", tmp_path / "g.h5", policy=policy)
    assert not (tmp_path / "g.h5").exists()
    part = tmp_path / "g.h5.part"
    assert not part.exists() or part.stat().st_size == 0


def _trickle(sock, stop):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
    while not stop.is_set():
        sock.sendall(b"x")
        time.sleep(0.2)


def test_a_byte_at_a_time_is_stopped_by_the_total_deadline(tmp_path):
    """Each read returns within the read timeout, so only the total deadline stops it."""
    policy = RetryPolicy(attempts=2, backoff=0.01, timeout=(5, 5), deadline=1.0)
    t0 = time.monotonic()
    with raw_server(_trickle) as base, pytest.raises(FetchError, match="deadline"):
        download_file(new_session(), base + "/t.bin", tmp_path / "t.bin", policy=policy)
    assert time.monotonic() - t0 < 4.0
    assert not (tmp_path / "t.bin").exists()


def test_retry_after_is_clamped():
    p = RetryPolicy(backoff=1.0, max_wait=30.0)
    for value in ("nan", "NaN", "-5", "-inf", "1e308", "inf", "99999999999999999999", "x" * 10_000):
        w = p.wait(0, value)
        assert math.isfinite(w) and 0.0 <= w <= 30.0, value
    assert p.wait(0, "-5") == 0.0 and p.wait(0, "1e308") == 30.0


def test_retry_after_nan_from_a_server_is_survived(httpserver, tmp_path):
    n = []

    def handler(req):
        n.append(1)
        if len(n) == 1:
            return Response("busy", status=503, headers={"Retry-After": "nan"})
        return range_response(DATA, req)

    httpserver.expect_request("/r.bin").respond_with_handler(handler)
    waits = []
    download_file(new_session(), httpserver.url_for("/r.bin"), tmp_path / "r.bin", policy=FAST,
                  sleep=waits.append)
    assert len(waits) == 1 and math.isfinite(waits[0]) and (tmp_path / "r.bin").read_bytes() == DATA


def test_manifest_symlink_is_refused_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "manifest.jsonl")
    with pytest.raises(UnsafePathError, match="manifest"):
        Manifest(out).add(ManifestEntry("u", "p", 1, None, "written"))
    with pytest.raises(UnsafePathError):
        read_manifest(out)
    assert outside.read_text() == "keep\n"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:1/a/..", "http://127.0.0.1:1/a/%2e%2e", "http://127.0.0.1:1/a\x00b",
    "file:///etc/passwd", "ftp://127.0.0.1/x", "http:///nohost", "http://127.0.0.1:99999/x",
    "https://h/x\r\nInjected: 1",
])
def test_unusable_urls_are_refused_before_any_request(url):
    with pytest.raises(FetchError) as info:
        check_url(url)
    assert "\x00" not in str(info.value) and "\r" not in str(info.value)


def test_bad_records_are_listed_failures_and_the_rest_is_fetched(httpserver, tmp_path):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/ok.bin").respond_with_data(DATA)
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    httpserver.expect_request("/tofile").respond_with_data("", status=302,
                                                           headers={"Location": "file:///etc/passwd"})
    files = [RemoteFile(base + "/x/..", "a.bin"), RemoteFile(base + "/x\x00y", "b.bin"),
             RemoteFile("file:///etc/passwd", "c.bin"), RemoteFile(base + "/loop", "d.bin"),
             RemoteFile(base + "/tofile", "e.bin"), RemoteFile(base + "/ok.bin", "ok.bin")]
    res = download_all(new_session(), files, tmp_path, policy=FAST, workers=1)
    assert [e.status for e in res.entries] == ["failed"] * 5 + ["downloaded"]
    errors = [e.error for e in res.failed]
    assert "'..'" in errors[0] and "control" in errors[1] and "scheme" in errors[2]
    assert "redirects" in errors[3] and "unusable URL" in errors[4]
    assert (tmp_path / "ok.bin").read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl", "ok.bin"]
    assert len(read_manifest(tmp_path)) == 6


def test_wrong_size_from_an_overlong_server_is_rejected(httpserver, tmp_path):
    """Metadata says 1000 bytes, the server sends and announces 10,240: refused, not kept."""
    httpserver.expect_request("/o.bin").respond_with_data(DATA)
    with pytest.raises(ChecksumError, match="size"):
        download_file(new_session(), httpserver.url_for("/o.bin"), tmp_path / "o.bin", size=1000, policy=FAST)
    assert not (tmp_path / "o.bin").exists()


_MEMBER_UNDER_RLIMIT = textwrap.dedent("""
    import resource, sys, zipfile
    from pathlib import Path
    from firesmoke.fetch.firms import _extract_csvs
    from firesmoke.fetch.manifest import Manifest
    zpath, root = Path(sys.argv[1]), Path(sys.argv[2])
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (24 << 20), vm + (24 << 20)))
    try:  # the control: reading the member whole does not fit
        with zipfile.ZipFile(zpath) as zf:
            zf.open("big.csv").read()
        print("control-fitted")
    except MemoryError:
        print("control-memoryerror")
    entries = _extract_csvs(zpath, root, Manifest(root), "http://127.0.0.1/DL.zip")
    print([e.status for e in entries], (root / "firms" / "big.csv").stat().st_size)
""")


def test_zip_member_is_streamed_under_a_memory_limit(tmp_path):
    """A 48 MB member unpacks in a process allowed 24 MB more than it has: streamed, not read whole."""
    header = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,"
              "version,bright_ti5,frp,daynight\n")
    row = "41.1,-8.1,330.5,0.39,0.36,2020-01-01,1342,N,VIIRS,h,2,290.1,55.0,D\n"
    body = header + row * (48_000_000 // len(row))
    zpath = tmp_path / "DL.zip"
    import zipfile

    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.csv", body)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _MEMBER_UNDER_RLIMIT, str(zpath), str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "control-memoryerror"
    assert lines[1] == f"['written'] {len(body)}"


def test_atomic_writer_leaves_nothing_on_failure_and_never_writes_through_a_link(tmp_path):
    from firesmoke.paths import atomic_writer

    dest = tmp_path / "a.csv"
    with pytest.raises(RuntimeError), atomic_writer(dest, root=tmp_path) as f:
        f.write(b"half")
        raise RuntimeError("cut")
    assert list(tmp_path.iterdir()) == []
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    os.symlink(victim, dest)
    with pytest.raises(UnsafePathError):
        with atomic_writer(dest, root=tmp_path) as f:
            f.write(b"new")
    assert victim.read_text() == "keep"
    os.unlink(dest)
    with atomic_writer(dest, root=tmp_path) as f:
        f.write(b"whole")
    assert dest.read_bytes() == b"whole" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "victim.txt"]


def _trickle_headers(sock, stop):
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.is_set():
        sock.sendall(b"X")  # one endless header line, a byte at a time
        time.sleep(0.2)


@pytest.mark.parametrize("stream", [True, False])
def test_headers_a_byte_at_a_time_are_stopped_by_the_answer_deadline(stream):
    from firesmoke.fetch.http import request

    policy = RetryPolicy(attempts=3, backoff=0.01, timeout=(5, 5), answer_deadline=1.0)
    t0 = time.monotonic()
    with raw_server(_trickle_headers) as base, pytest.raises(FetchError, match="within 1 s"):
        request(new_session(), "GET", base + "/x", policy=policy, stream=stream)
    assert time.monotonic() - t0 < 4.0  # one try: a deadline is not retried
