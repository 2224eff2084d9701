"""Tiny cubes and targets written to Zarr for the BA-Net sampler and training tests."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.cube.build import open_cube, write_cube
from firesmoke.grid import Region
from firesmoke.train.sampler import write_targets

BANDS = ("red", "nir", "mir", "frp")


def make_arrays(nt: int, ny: int, nx: int, seed: int = 0, burns=((20, 8, 8, 12),)):
    """Random inputs (with NaN gaps) and targets with square burns ``(day, y, x, side)``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, size=(4, nt, ny, nx)).astype(np.float32)
    x[3] = 0.0
    x[:, rng.random((nt, ny, nx)) < 0.05] = np.nan
    y = np.zeros((nt, ny, nx), np.float32)
    for d, r, c, s in burns:
        y[d, r : r + s, c : c + s] = 1.0
        x[1, d:, r : r + s, c : c + s] *= 0.3  # NIR drop after the burn
        x[3, d, r : r + s, c : c + s] = 3.0  # active fire on the burn day
    return x, y


def write_pair(tmp_path, name, x, y, chunks=(8, 32, 32), start="2021-06-01", target_nan=None):
    """Write a cube (with :func:`write_cube`) and its targets (:func:`write_targets`)."""
    nt, ny, nx = y.shape
    region = Region.from_shape(name, 10.0, 20.0, 0.01, ny, nx)
    days = pd.date_range(start, periods=nt, freq="D")
    ds = region.coords_dataset(time=days.values)
    ck = dict(zip(("time", "y", "x"), chunks, strict=True))
    for i, b in enumerate(BANDS):
        ds[b] = (("time", "y", "x"), da.from_array(x[i], chunks=chunks))
    cube_path = write_cube(ds.chunk(ck), tmp_path / f"{name}.zarr", mode="w")
    tg = y.copy()
    if target_nan is not None:
        tg[target_nan] = np.nan
    bafrac = xr.DataArray(tg, dims=("time", "y", "x"),
                          coords={"time": days.values, "y": ds["y"], "x": ds["x"]})
    cube = open_cube(cube_path)
    tg_path = write_targets(bafrac, tmp_path / f"{name}_targets.zarr", like=cube)
    return cube_path, tg_path
