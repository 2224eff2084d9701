"""A user's own georeferenced cube through write_cube/open_cube and `predict burned --geotiff`;
CLI errors in the CLI's words (flags), one line, no traceback."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor, as a user has it)
import torch
import xarray as xr

from firesmoke.cli.main import _option_flags, build_parser, cli_message, main
from firesmoke.cube.build import open_cube, write_cube
from firesmoke.errors import InputError

DAYS = pd.date_range("2020-07-15", "2020-09-16")  # August's 64-day window


def user_cube(n: int = 32, days=DAYS, crs: str | None = "EPSG:32629") -> xr.Dataset:
    """A cube as a user makes it: UTM 29N, 500 m pixels, plain numpy coordinates."""
    rng = np.random.default_rng(5)
    x = 500_250.0 + 500.0 * np.arange(n)
    y = 4_600_250.0 - 500.0 * np.arange(n)
    ds = xr.Dataset({b: (("time", "y", "x"), (rng.random((len(days), n, n)) * s).astype(np.float32))
                     for b, s in (("red", 0.3), ("nir", 0.4), ("mir", 0.2), ("frp", 0.5))},
                    coords={"time": days, "y": y, "x": x})
    ds["red"][:, :, :4] = np.nan  # never observed there: nodata in the product
    ds["nir"][:, :, :4] = np.nan
    ds["mir"][:, :, :4] = np.nan
    return ds.rio.write_crs(crs) if crs else ds


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from firesmoke.models.banet import BANet
    from firesmoke.models.weights import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w.pt"
    save_weights(BANet().eval(), path)
    return path


@pytest.fixture(scope="module")
def scheduler():
    """One in-process cluster for the predictions here (worker processes: tests/cli/test_cli.py)."""
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _predict(cube, weights, out, *more, scheduler=None):
    where = ["--scheduler", scheduler] if scheduler else ["--workers", "1", "--memory-limit", "2GiB"]
    return main(["predict", "burned", "--cube", str(cube), "--start", "2020-08-01",
                 "--weights", str(weights), "--out", str(out), "--device", "cpu", "--gpus", "0",
                 *where, "-q", *more])


def test_user_cube_crs_round_trips_to_the_cogs(tmp_path, weights, capsys, scheduler):
    store = write_cube(user_cube().chunk({"time": 16}), tmp_path / "cube.zarr")
    cube = open_cube(store)
    assert cube.rio.crs.to_epsg() == 32629 and "spatial_ref" in cube.coords
    assert cube.attrs["Conventions"] == "CF-1.8"
    assert "_FillValue" not in cube["x"].encoding and "_FillValue" not in cube["y"].encoding
    out = tmp_path / "ba.zarr"
    assert _predict(store, weights, out, "--geotiff", scheduler=scheduler) == 0, capsys.readouterr().err
    product = xr.open_zarr(out, decode_coords="all")
    assert product.rio.crs.to_epsg() == 32629
    assert (product["valid_days"].values[0, :, :4] == 0).all()
    assert (product["valid_days"].values[0, :, 4:] == 31).all()
    with rasterio.open(tmp_path / "ba_2020-08_burn_date.tif") as src:
        assert src.crs.to_epsg() == 32629 and src.nodata == -1
        assert tuple(src.transform)[:6] == (500.0, 0.0, 500_000.0, 0.0, -500.0, 4_600_500.0)
        date = src.read(1)
    with rasterio.open(tmp_path / "ba_2020-08_confidence.tif") as src:
        conf = src.read(1)
    assert (date[:, :4] == -1).all() and np.isnan(conf[:, :4]).all()
    assert (date[:, 4:] >= 0).all() and np.isfinite(conf[:, 4:]).all()
    # the store gone, its exports still there: refused before any work, unless --overwrite
    shutil.rmtree(out)
    capsys.readouterr()
    assert _predict(store, weights, out, "--geotiff", scheduler=scheduler) == 2
    err = capsys.readouterr().err
    assert "3 export file(s) exist" in err and "--overwrite" in err and not out.exists()
    tif = tmp_path / "ba_2020-08_burn_date.tif"
    os.utime(tif, ns=(0, 0))
    assert _predict(store, weights, out, "--geotiff", "--overwrite", scheduler=scheduler) == 0
    assert tif.stat().st_mtime_ns > 0 and out.exists()


def test_cube_without_crs_is_one_line_error(tmp_path, weights, capsys):
    store = tmp_path / "nocrs.zarr"
    user_cube(crs=None).to_zarr(store)
    assert _predict(store, weights, tmp_path / "o.zarr") == 2  # a user error
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CRS" in err and "Traceback" not in err
    assert "MissingCRS" not in err and not (tmp_path / "o.zarr").exists()


def test_partial_window_error_names_the_cli_flag(tmp_path, weights, capsys):
    store = write_cube(user_cube(days=DAYS[16:]).chunk({"time": 16}), tmp_path / "short.zarr")
    assert _predict(store, weights, tmp_path / "o.zarr") == 2  # a user error
    err = capsys.readouterr().err
    assert "--allow-partial" in err and "allow_partial" not in err


def test_cli_message_rewrites_parameters_as_flags():
    flags = _option_flags(build_parser())
    assert flags["allow_partial"] == "--allow-partial" and flags["threshold"] == "--threshold"
    exc = InputError("must be in [0, 1], got threshold=2; or pass allow_partial=True",
                     field="threshold")
    assert cli_message(exc, flags) == ("--threshold: must be in [0, 1], got --threshold 2; "
                                       "or pass --allow-partial")
    other = InputError("x=1 and partial_thing=True stay", field="nothing_like_a_flag")
    assert cli_message(other, flags) == str(other)
    # only the flags of the subcommand that ran: a campaign spec's `weights` field is not
    # `predict burned --weights`
    parser = build_parser()
    run_flags = _option_flags(parser, parser.parse_args(["campaign", "run", "x.toml"]))
    assert "weights" not in run_flags and "verbose" in run_flags
    spec_err = InputError("no weights given", path="x.toml", field="weights")
    assert cli_message(spec_err, run_flags) == str(spec_err)
    burned = _option_flags(parser, parser.parse_args(
        ["predict", "burned", "--cube", "c", "--start", "2020-08-01", "--out", "o"]))
    assert burned["allow_partial"] == "--allow-partial" and burned["weights"] == "--weights"
