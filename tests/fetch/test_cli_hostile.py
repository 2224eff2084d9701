"""`firesmoke fetch` on bad values and hostile servers: one line, exit 2 (values) or 1, no traceback."""

from __future__ import annotations

import logging

import pytest

from firesmoke.cli.main import main

KEY = "cli-map-key/with+plus0"
BASE = ["fetch", "--region=-10,36,-6,42", "--products", "VIIRS_SNPP_SP"]


def _run(capsys, tmp_path, *extra, start="2020-01-01", end="2020-01-02"):
    rc = main([*BASE, "--start", start, "--end", end, "--out", str(tmp_path / "out"), "-q", *extra])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize(("extra", "dates", "word"), [
    (["--catalog", "notaurl"], {}, "catalog"),
    (["--firms-archive", "file:///etc/passwd"], {}, "firms_archive"),
    (["--firms-url", "firms.example"], {}, "firms_url"),
    (["--cmr-url", "ftp://cmr.example"], {}, "cmr_url"),
    ([], {"start": "0001-01-01", "end": "9999-12-31"}, "start"),
    ([], {"start": "2020-01-05", "end": "2020-01-01"}, "before"),
    (["--workers", "-3"], {}, "workers"),
    (["--max-cloud", "-50"], {}, "max_cloud"),
])
def test_bad_values_exit_2_with_one_line(capsys, tmp_path, monkeypatch, extra, dates, word):
    monkeypatch.setenv("MAP_KEY", KEY)
    rc, _out, err = _run(capsys, tmp_path, *extra, **dates)
    assert rc == 2, err
    assert word in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before any work


def test_out_as_url_or_file_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MAP_KEY", KEY)
    rc = main([*BASE, "--start", "2020-01-01", "--end", "2020-01-02", "--out", "ftp://host/x", "-q"])
    assert rc == 2 and "local folder" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    rc = main([*BASE, "--start", "2020-01-01", "--end", "2020-01-02", "--out", str(tmp_path / "afile"), "-q"])
    assert rc == 2 and "not a folder" in capsys.readouterr().err


def test_header_only_sites_csv_is_refused(capsys, tmp_path):
    sites = tmp_path / "sites.csv"
    sites.write_text("name,lon,lat\n")
    rc = main(["fetch", "--region=-10,36,-6,42", "--products", "sentinel-2-l2a", "--start", "2021-08-01",
               "--end", "2021-08-02", "--sites-csv", str(sites), "--out", str(tmp_path / "o"), "-q"])
    assert rc == 2 and "no sites" in capsys.readouterr().err


def test_unreachable_firms_lists_failures_without_the_key_even_at_vv(capsys, tmp_path, monkeypatch, caplog):
    from firesmoke.fetch.http import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "wait", lambda self, attempt, retry_after=None: 0.0)  # no backoff
    monkeypatch.setenv("MAP_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    rc = main([*BASE, "--start", "2020-01-01", "--end", "2020-01-02", "--out", str(tmp_path / "out"),
               "--firms-url", "http://127.0.0.1:1", "-vv"])
    cap = capsys.readouterr()
    assert rc == 1 and "failed" in cap.err and "Traceback" not in cap.err
    everything = cap.out + cap.err + caplog.text + (tmp_path / "out" / "manifest.jsonl").read_text()
    for form in (KEY, "cli-map-key%2Fwith%2Bplus0", "cli-map-key/with%2Bplus0"):
        assert form not in everything


def test_token_with_control_characters_is_one_line_without_the_token(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "secret-tok\x07beep")
    rc = main(["fetch", "--region=-10,36,-6,42", "--products", "MCD64A1", "--start", "2020-01-01",
               "--end", "2020-01-02", "--out", str(tmp_path / "o"), "-q", "--cmr-url", "http://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 1 and "EARTHDATA_TOKEN" in err and "secret-tok" not in err
    assert len(err.strip().splitlines()) == 1
