"""CLI and the store layer: URLs, locks, sidecar reports, R_<name>.json, -v/-q, quiet logs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from firesmoke.cli.main import build_parser, main
from firesmoke.cube.build import open_cube
from firesmoke.grid import Region
from firesmoke.store import StoreLock


def test_verbose_and_quiet_on_nested_subcommands():
    p = build_parser()
    a = p.parse_args(["predict", "burned", "--cube", "c", "--start", "2020-08-01", "--out", "o",
                      "-vv", "-q"])
    assert a.verbose == 2 and a.quiet
    a = p.parse_args(["campaign", "run", "x.toml", "-v"])
    assert a.verbose == 1
    a = p.parse_args(["-v", "campaign", "resume", "x.toml"])
    assert a.verbose == 1 and not a.quiet
    help_text = p._subparsers._group_actions[0].choices["predict"]._subparsers._group_actions[0] \
        .choices["burned"].format_help()
    for flag in ("--device", "--mode", "--threshold"):
        assert flag in help_text
    assert "default: monthly" in help_text


@pytest.fixture(scope="module")
def scheduler():
    """One in-process cluster for the commands here (worker processes: tests/cli/test_cli.py)."""
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_cube_to_a_url_and_a_locked_store(tmp_path, capsys, scheduler):
    region = Region.from_shape("TINY", 5.0, 1.0, 0.01, 32, 32)
    rj = region.to_json(tmp_path)
    args = ["cube", "--region", str(rj), "--start", "2020-07-01", "--end", "2020-07-03",
            "--scheduler", scheduler, "-q"]
    assert main([*args, "--out", "memory://cli/c.zarr"]) == 0
    assert open_cube("memory://cli/c.zarr").sizes["time"] == 3
    assert not (tmp_path / "memory:").exists()
    out = tmp_path / "c.zarr"
    with StoreLock(out, purpose="firesmoke cube"):
        assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "being written by firesmoke cube" in err and "Traceback" not in err
    assert main([*args, "--out", str(out), "--zarr-format", "2"]) == 0
    report = json.loads((tmp_path / "c.zarr.report.json").read_text())
    assert report == {"skipped_inputs": [], "firms_report": []}
    assert (out / ".zgroup").exists() and np.isnan(open_cube(out)["red"].values).all()


def test_synthetic_writes_its_region_and_logs_stay_quiet(tmp_path):
    region = Region.from_shape("SMALL", -7.0, 41.0, 0.01, 32, 32)
    rj = region.to_json(tmp_path)
    cmd = [sys.executable, "-m", "firesmoke.cli.main"]
    # the scenario in this process; the cube command (a LocalCluster's logs) in its own
    assert main(["synthetic", "--region", str(rj), "--start", "2020-07-01", "--end",
                 "2020-07-02", "--out", str(tmp_path / "scn"), "--products", "firms", "-q"]) == 0
    written = tmp_path / "scn" / "R_SMALL.json"
    assert Region.from_json(written) == region
    r = subprocess.run([*cmd, "cube", "--region", str(written), "--start", "2020-07-01", "--end",
                        "2020-07-02", "--firms", str(tmp_path / "scn" / "firms"), "--out",
                        str(tmp_path / "c.zarr"), "--workers", "1", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "INFO" not in r.stderr and "distributed" not in r.stderr
