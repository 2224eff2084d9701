"""One validation for every entry (issue 22): bad CLI values are refused before any work,
as one line with exit code 2 (a traceback only with -v), and nothing is written."""

from __future__ import annotations

import pytest

from firesmoke.cli.main import main

PREDICT = ["predict", "burned", "--start", "2020-08-01", "--end", "2020-08-31"]
CUBE = ["cube", "--region", "PT", "--start", "2020-07-01", "--end", "2020-07-03"]


def _refused(capsys, argv, match):
    code = main([*argv, "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert match in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("extra", "match"), [
    (["--batch-size", "-1"], "batch-size"),
    (["--batch-size", "1000000000"], "batch-size"),
    (["--threshold", "7"], "threshold"),
    (["--threshold", "nan"], "threshold"),
    (["--memory-limit", "banana"], "memory-limit"),
    (["--memory-limit", "-5 potatoes"], "memory-limit"),
    (["--scheduler", "notanaddress"], "scheduler"),
    (["--workers", "-3"], "workers"),
])
def test_predict_values_are_refused_before_work(tmp_path, capsys, extra, match):
    out = tmp_path / "p.zarr"
    _refused(capsys, [*PREDICT, "--cube", str(tmp_path / "c.zarr"), "--out", str(out), *extra],
             match)
    assert not out.exists()


def test_reversed_predict_dates_and_bad_out_urls(tmp_path, capsys):
    cube = str(tmp_path / "c.zarr")
    _refused(capsys, ["predict", "burned", "--start", "2020-08-01", "--end", "2020-07-01",
                      "--cube", cube, "--out", str(tmp_path / "p.zarr")], "before start")
    _refused(capsys, [*PREDICT, "--cube", cube, "--out", "ftp://host/p.zarr"], "ftp://")


def test_cube_values_are_refused_before_work(tmp_path, capsys):
    out = tmp_path / "c.zarr"
    _refused(capsys, [*CUBE, "--out", str(out), "--workers", "-3"], "workers")
    _refused(capsys, ["cube", "--region", "PT", "--start", "1900-01-01", "--end", "2100-12-31",
                      "--out", str(out)], "1900-01-01")
    _refused(capsys, ["cube", "--region", "PT", "--start", "2000-01-01", "--end", "2099-12-31",
                      "--out", str(out)], "36,525 days")
    assert not out.exists()


def test_synthetic_spans_and_sizes_are_bounded(tmp_path, capsys):
    out = tmp_path / "s"
    _refused(capsys, ["synthetic", "--start", "0001-01-01", "--end", "9999-12-31", "--out",
                      str(out)], "0001-01-01")
    # just under the 1e9 px region limit: refused with the memory it would need
    from firesmoke.grid import Region

    rj = Region.from_shape("BIG", 0.0, 10.0, 0.0001, 31_000, 32_000).to_json(tmp_path)
    err = _refused(capsys, ["synthetic", "--region", str(rj), "--start", "2020-07-01", "--end",
                            "2020-07-02", "--out", str(out)], "GiB of memory")
    assert "31,000 x 32,000 px" in err
    assert not out.exists()


def test_verbose_shows_the_traceback(tmp_path, capsys):
    code = main([*PREDICT, "--cube", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
                 "--threshold", "7", "-v"])
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_demo_out_an_existing_file(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("keep")
    _refused(capsys, ["demo", "--out", str(f), "--days", "3"], "not a folder")
    assert f.read_text() == "keep"


def test_s3_output_without_credentials(tmp_path, capsys, monkeypatch):
    for k in [k for k in __import__("os").environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _refused(capsys, [*CUBE, "--out", "s3://bucket/c.zarr"], "no AWS credentials")
    _refused(capsys, [*PREDICT, "--cube", str(tmp_path / "c.zarr"), "--out", "s3://b/p.zarr"],
             "no AWS credentials")


def test_years_out_of_range_and_header_only_sites(tmp_path, capsys):
    _refused(capsys, ["predict", "burned", "--mode", "nrt", "--start", "0001-01-01", "--cube",
                      str(tmp_path / "c.zarr"), "--out", str(tmp_path / "p.zarr")], "0001-01-01")
    from firesmoke.errors import InputError
    from firesmoke.smoke.sites import read_sites

    (tmp_path / "sites.csv").write_text("site_id,lon,lat\n")
    with pytest.raises(InputError, match="no sites"):
        read_sites(tmp_path / "sites.csv")


def test_an_unexpected_failure_is_one_line_too(tmp_path, capsys, monkeypatch):
    import firesmoke.cli.main as cli

    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setitem(cli._COMMANDS, "cube", boom)
    assert main([*CUBE, "--out", str(tmp_path / "c.zarr"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("firesmoke cube: error: RuntimeError: something broke "
                           "(run with -v for the traceback)")
    with pytest.raises(RuntimeError):
        main([*CUBE, "--out", str(tmp_path / "c.zarr"), "-v"])


@pytest.mark.parametrize("extra", [["--batch-size", "-1"], ["--steps", "0"], ["--lr-max", "nan"]])
def test_train_values_are_refused_before_work(tmp_path, capsys, extra):
    _refused(capsys, ["train", "banet", "--cube", str(tmp_path / "c.zarr"), "--targets",
                      str(tmp_path / "t"), "--out", str(tmp_path / "o"), *extra], extra[0][2:])
    assert not (tmp_path / "o").exists()
