"""Cube Zarr I/O: round trip, append, resume after interruption, refusing mixed grids."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from firesmoke.cube.build import CUBE_VARIABLES, open_cube, write_cube
from firesmoke.errors import GridMismatchError, InputError
from firesmoke.grid import Region
from firesmoke.store import Ledger


def fake_cube(days, region=None, seed=0, chunks=None):
    region = region or Region.from_shape("T", 0.0, 1.0, 0.01, 40, 48)
    rng = np.random.default_rng(seed)
    ds = region.coords_dataset(time=days.values)
    for v in CUBE_VARIABLES:
        data = rng.random((len(days), *region.shape)).astype(np.float32)
        data[:, :5, :5] = np.nan
        # values depend on the day so that misplaced days show
        data += np.arange(len(days), dtype=np.float32)[:, None, None]
        ds[v] = (("time", "y", "x"), data, {"units": "1", "long_name": v})
    ds.attrs.update({"region": region.name, "region_json": json.dumps(region.to_dict()),
                     "title": "test cube"})
    return ds.chunk(chunks or {"time": 4, "y": 16, "x": 16})


def test_round_trip_keeps_values_attrs_crs(tmp_path):
    days = pd.date_range("2021-01-01", periods=10)
    cube = fake_cube(days)
    store = write_cube(cube, tmp_path / "c.zarr")
    out = open_cube(store)
    for v in CUBE_VARIABLES:
        np.testing.assert_array_equal(out[v].values, cube[v].values)
        assert out[v].attrs["long_name"] == v
        assert out[v].encoding["chunks"] == (4, 16, 16)
    assert out.rio.crs.to_epsg() == 4326
    assert out.attrs["region"] == "T"
    assert (out.time.values == days.values).all()
    assert len(Ledger(store).finished()) == 3  # days 0-3, 4-7, 8-9


def test_append_new_days_without_rewriting(tmp_path):
    days = pd.date_range("2021-01-01", periods=10)
    full = fake_cube(pd.date_range("2021-01-01", periods=17))
    store = write_cube(full.isel(time=slice(0, 10)), tmp_path / "c.zarr")
    # mark the files of the first time chunk: they must not be rewritten
    first = sorted((store / "red" / "c" / "0").rglob("*"))
    mtimes = {p: p.stat().st_mtime_ns for p in first if p.is_file()}
    write_cube(full, store)  # days 0..16: 10..16 appended, 0..9 already there
    out = open_cube(store)
    assert out.sizes["time"] == 17
    np.testing.assert_array_equal(out["nir"].values, full["nir"].values)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert days[0] == pd.Timestamp(out.time.values[0])


def test_resume_after_interruption(tmp_path):
    cube = fake_cube(pd.date_range("2021-03-01", periods=12))
    store = tmp_path / "c.zarr"
    calls = {"n": 0}

    def boom(done, total, label):
        calls["n"] += 1
        if done == 2:
            raise KeyboardInterrupt  # the process is stopped after two chunks

    with pytest.raises(KeyboardInterrupt):
        write_cube(cube, store, progress=boom)
    assert len(Ledger(store).finished()) == 2
    write_cube(cube, store)  # resumes: only the last chunk is computed and written
    out = open_cube(store)
    np.testing.assert_array_equal(out["mir"].values, cube["mir"].values)
    assert len(Ledger(store).finished()) == 3


def test_refuses_other_region_or_gaps(tmp_path):
    days = pd.date_range("2021-01-01", periods=8)
    store = write_cube(fake_cube(days), tmp_path / "c.zarr")
    other = fake_cube(days, region=Region.from_shape("U", 3.0, 1.0, 0.01, 40, 48))
    with pytest.raises(GridMismatchError):
        write_cube(other, store)
    later = fake_cube(pd.date_range("2021-02-01", periods=4))
    with pytest.raises(InputError, match="do not continue"):
        write_cube(later, store)


def test_open_cube_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_cube(tmp_path / "nope.zarr")
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(tmp_path / "other.zarr", zarr_format=3)
    with pytest.raises(InputError, match="not a firesmoke cube"):
        open_cube(tmp_path / "other.zarr")


def test_write_cube_progress_bar(tmp_path, capsys):
    """progress=True: a tqdm bar over the time chunks (stderr); the store is the same."""
    days = pd.date_range("2021-01-01", periods=10)
    cube = fake_cube(days)
    store = write_cube(cube, tmp_path / "c.zarr", progress=True)
    err = capsys.readouterr().err
    assert "cube chunks" in err
    assert "3/3" in err
    np.testing.assert_array_equal(open_cube(store)["red"].values, cube["red"].values)
    write_cube(cube, tmp_path / "d.zarr", progress=False)
    assert capsys.readouterr().err == ""
