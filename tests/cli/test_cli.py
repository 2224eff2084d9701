"""The firesmoke command line: help, version, errors, synthetic -> cube -> predict."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from firesmoke._version import __version__
from firesmoke.cli.main import main
from firesmoke.grid import Region


def run(*argv):
    return subprocess.run([sys.executable, "-m", "firesmoke.cli.main", *argv], capture_output=True,
                          text=True, timeout=600)


def test_help_and_version(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out
    for cmd in (["synthetic"], ["cube"], ["demo"], ["train", "banet"], ["train", "smoke-classifier"],
                ["predict", "burned"], ["predict", "smoke"], ["campaign", "run"],
                ["campaign", "resume"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0
        assert "usage: firesmoke" in capsys.readouterr().out


def test_help_and_argument_errors_import_nothing_heavy():
    """``firesmoke --help`` and a missing argument answer without numpy, pandas, xarray,
    dask, zarr or torch (firesmoke.burned.modes holds the choices the parser offers)."""
    heavy = ("numpy", "pandas", "xarray", "dask", "distributed", "zarr", "torch", "rasterio")
    code = ("import sys, json\n"
            "from firesmoke.cli.main import main\n"
            "for argv in (['--help'], ['predict', 'burned', '--help'], ['predict', 'burned'],\n"
            "             ['fetch', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            f"print(json.dumps([m for m in {list(heavy)!r} if m in sys.modules]), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "R_bad.json"
    bad.write_text(json.dumps({"name": "bad", "bbox": [1, 0, 0, 1], "pixel_size": 0.01}))
    code = main(["synthetic", "--region", str(bad), "--start", "2020-07-01", "--end", "2020-07-02",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "left" in err  # a user error: exit 2
    code = main(["synthetic", "--region", "PT", "--start", "2020-07-05", "--end", "2020-07-01",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "before" in capsys.readouterr().err


def test_synthetic_cube_predict_chain(tmp_path, capsys):
    region = Region.from_shape("CLI", -7.0, 41.0, 0.01, 64, 64)
    rj = region.to_json(tmp_path)
    # the scenario in this process; the cube command (its own LocalCluster) as a program
    code = main(["synthetic", "--region", str(rj), "--start", "2020-07-01", "--end", "2020-07-06",
                 "--out", str(tmp_path / "scn"), "--seed", "3", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "VIIRS 750 m gridded" in out.out and "manifest" in out.out
    r = run("cube", "--region", str(rj), "--start", "2020-07-01", "--end", "2020-07-06",
            "--viirs", str(tmp_path / "scn" / "viirs750"), "--firms", str(tmp_path / "scn" / "firms"),
            "--out", str(tmp_path / "cube.zarr"), "--workers", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert "6 days x 64 x 64 px" in r.stdout
    from firesmoke.cube.build import open_cube

    cube = open_cube(tmp_path / "cube.zarr")
    assert np.isfinite(cube["red"].values).any()


def test_predict_smoke_chips(tmp_path, capsys):
    from firesmoke.synthetic.sentinel2 import generate_chips

    generate_chips(tmp_path / "chips", 3, 3, seed=4)
    code = main(["predict", "smoke", "--chips", str(tmp_path / "chips"), "--out",
                 str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "chips: 6 classified" in out.out
    assert (tmp_path / "out" / "chips.csv").exists()


def test_campaign_dry_run(capsys):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "examples" / "campaign.toml"
    assert main(["campaign", "run", str(spec), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip()
