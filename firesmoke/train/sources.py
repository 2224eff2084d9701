"""Cubes paired with their burned-fraction targets, and per-cell target sums.

:class:`CubeSource` pairs a Zarr datacube (:func:`firesmoke.cube.build.open_cube`) with its
daily ``bafrac`` targets (:func:`write_targets` / :func:`open_targets`), checked to share
grid and days (:func:`open_source`). :func:`cell_sums` reads a target array chunk by chunk
into per-cell sums from which :mod:`firesmoke.train.sampler` gets the burned-fraction sum
of every candidate window with box sums (:func:`box_sums`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.cube.build import CUBE_VARIABLES, DEFAULT_CHUNKS, open_cube
from firesmoke.errors import GridMismatchError, InputError

__all__ = [
    "TARGET_VARIABLE",
    "CubeSource",
    "box_sums",
    "cell_sums",
    "open_source",
    "open_targets",
    "write_targets",
]

logger = logging.getLogger(__name__)

TARGET_VARIABLE = "bafrac"

# --------------------------------------------------------------------------- sources


@dataclass
class CubeSource:
    """One datacube and its daily burned-fraction targets on the same grid and days.

    Attributes
    ----------
    name
        Label used in logs and metadata (the store name by default).
    cube
        Lazy cube with ``red, nir, mir, frp`` ``(time, y, x)``.
    targets
        Lazy ``bafrac`` ``(time, y, x)`` float32 in [0, 1], NaN where unobserved.
    """

    name: str
    cube: xr.Dataset
    targets: xr.DataArray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.cube.sizes["time"], self.cube.sizes["y"], self.cube.sizes["x"])

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.cube["time"].values)


def write_targets(
    bafrac: xr.DataArray,
    store: str | os.PathLike[str],
    like: xr.Dataset | None = None,
    chunks: Mapping[str, int] | None = None,
) -> Path:
    """Write daily burned fractions to a Zarr v3 store (variable ``bafrac``).

    Parameters
    ----------
    bafrac
        ``(time, y, x)`` burned fraction, e.g. from
        :func:`firesmoke.cube.build.burned_fraction_cube` (lazy is fine: it is written chunk by
        chunk by xarray/dask).
    store
        Output path (overwritten).
    like
        A cube whose chunking the targets should share (recommended: a training window
        then reads the same chunk grid in both stores).
    chunks
        Explicit ``{"time", "y", "x"}`` chunks (default: ``like``'s, else
        :data:`firesmoke.cube.build.DEFAULT_CHUNKS`).

    Returns
    -------
    pathlib.Path
    """
    path = Path(store)
    ch = dict(DEFAULT_CHUNKS)
    if like is not None and like.chunks:
        ch.update({d: int(like.chunks[d][0]) for d in ("time", "y", "x") if d in like.chunks})
    ch.update(chunks or {})
    da_ = bafrac.astype(np.float32).rename(TARGET_VARIABLE)
    da_ = da_.chunk({d: ch[d] for d in ("time", "y", "x")})
    ds = da_.to_dataset()
    for v in ds.variables.values():
        v.encoding = {}
    ds[TARGET_VARIABLE].encoding["chunks"] = tuple(ch[d] for d in ("time", "y", "x"))
    try:
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    except OSError as exc:
        raise InputError(f"cannot write the target store: {exc}", path=path) from exc
    logger.info("wrote targets %s to %s (chunks %s)", bafrac.shape, path, ch)
    return path


def open_targets(store: str | os.PathLike[str]) -> xr.DataArray:
    """Open a target store written by :func:`write_targets` (lazy, dask chunks = Zarr chunks)."""
    path = Path(store)
    if not path.exists():
        raise InputError("target store not found", path=path)
    try:
        ds = xr.open_zarr(path, chunks={}, consolidated=False)
    except Exception as exc:  # zarr raises many types for broken stores
        raise InputError(f"not a readable Zarr target store ({exc})", path=path) from exc
    if TARGET_VARIABLE not in ds:
        raise InputError(f"no {TARGET_VARIABLE!r} variable in the target store", path=path)
    return ds[TARGET_VARIABLE]


def _as_cube(cube: Any) -> tuple[xr.Dataset, str]:
    if isinstance(cube, xr.Dataset):
        return cube, str(cube.attrs.get("region", "cube"))
    path = Path(cube)
    return open_cube(path), path.name.removesuffix(".zarr")


def _as_targets(targets: Any) -> xr.DataArray:
    if isinstance(targets, xr.DataArray):
        return targets
    if isinstance(targets, xr.Dataset):
        if TARGET_VARIABLE not in targets:
            raise InputError(f"targets dataset has no {TARGET_VARIABLE!r} variable", field="targets")
        return targets[TARGET_VARIABLE]
    return open_targets(targets)


def open_source(cube: Any, targets: Any, name: str | None = None) -> CubeSource:
    """Pair a cube with its targets and check that they share grid and days.

    Parameters
    ----------
    cube
        Path of a Zarr cube (:func:`firesmoke.cube.build.write_cube`) or a cube Dataset.
    targets
        Path of a target store (:func:`write_targets`), a ``bafrac`` DataArray or a
        Dataset holding one. Targets covering more days than the cube are cut to the
        cube's days.
    name
        Label (default: the cube store's name or the cube's region).

    Raises
    ------
    InputError
        Missing variables, days of the cube without targets.
    GridMismatchError
        Different grid sizes or coordinates.
    """
    ds, default_name = _as_cube(cube)
    missing = [v for v in CUBE_VARIABLES if v not in ds]
    if missing:
        raise InputError(f"cube lacks variables {missing}", field="cube")
    tg = _as_targets(targets)
    if tuple(tg.dims) != ("time", "y", "x"):
        raise InputError(f"targets must have dims (time, y, x), got {tg.dims}", field="targets")
    if (tg.sizes["y"], tg.sizes["x"]) != (ds.sizes["y"], ds.sizes["x"]):
        raise GridMismatchError(f"targets grid {tg.sizes['y']}x{tg.sizes['x']} differs from "
                                f"the cube's {ds.sizes['y']}x{ds.sizes['x']}")
    for d in ("y", "x"):
        step = abs(float(ds[d].values[-1] - ds[d].values[0])) / max(ds.sizes[d] - 1, 1)
        if d in tg.coords and not np.allclose(tg[d].values, ds[d].values, rtol=0,
                                              atol=1e-3 * step + 1e-12):
            raise GridMismatchError(f"targets and cube {d} coordinates differ")
    cube_t = pd.DatetimeIndex(ds["time"].values)
    tg_t = pd.DatetimeIndex(tg["time"].values)
    if not cube_t.equals(tg_t):
        absent = cube_t.difference(tg_t)
        if len(absent):
            raise InputError(
                f"targets lack {len(absent)} day(s) of the cube, e.g. {absent[0].date()}",
                field="targets",
            )
        tg = tg.sel(time=cube_t)
    return CubeSource(name or default_name, ds, tg)


# --------------------------------------------------------------------------- cell sums


def _blocks_of(arr: Any) -> Iterator[tuple[tuple[int, ...], Any]]:
    """``(origin, block)`` of each chunk of a dask array (or the whole numpy array)."""
    import dask.array as da

    if not isinstance(arr, da.Array):
        yield (0,) * np.ndim(arr), arr
        return
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in arr.chunks]
    for idx in np.ndindex(*arr.numblocks):
        yield tuple(int(s[i]) for s, i in zip(starts, idx, strict=True)), arr.blocks[idx]


def _reduce_cells(block: np.ndarray, origin: Sequence[int],
                  cell: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sum a block into the cells it intersects; returns the sums and the cell ids per axis."""
    out = block
    ids = []
    for axis, (o, c) in enumerate(zip(origin, cell, strict=True)):
        g = (o + np.arange(block.shape[axis])) // c
        cuts = np.flatnonzero(np.diff(g)) + 1
        starts = np.concatenate([[0], cuts])
        out = np.add.reduceat(out, starts, axis=axis)
        ids.append(g[starts])
    return out, ids


def cell_sums(data: xr.DataArray, cell: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell sum of a ``(time, y, x)`` array and per-cell count of finite values.

    The array is read once, chunk by chunk (never whole), in its dask chunks; cells
    straddling chunks are accumulated from their parts, so any chunking works.

    Parameters
    ----------
    data
        ``(time, y, x)`` array (NaN = unobserved, counted as 0 in the sums).
    cell
        Cell size ``(days, px, px)``.

    Returns
    -------
    sums, counts
        float64 and int64 arrays of shape ``ceil(shape / cell)``.
    """
    import dask
    import dask.array as da

    arr = data.data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=tuple(DEFAULT_CHUNKS.values()))
    shape = tuple(-(-n // c) for n, c in zip(arr.shape, cell, strict=True))
    sums = np.zeros(shape, np.float64)
    counts = np.zeros(shape, np.int64)
    for origin, block in _blocks_of(arr):
        (b,) = dask.compute(block, scheduler="synchronous")
        b = np.asarray(b, np.float64)
        finite = np.isfinite(b)
        s, ids = _reduce_cells(np.where(finite, b, 0.0), origin, cell)
        n, _ = _reduce_cells(finite.astype(np.int64), origin, cell)
        sel = np.ix_(*ids)
        sums[sel] += s
        counts[sel] += n
    return sums, counts


def box_sums(table: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Sum of every ``size`` box of ``table`` (valid positions only), via a summed-volume table."""
    s = np.zeros(tuple(n + 1 for n in table.shape), np.float64)
    s[1:, 1:, 1:] = table.cumsum(0).cumsum(1).cumsum(2)
    a, b, c = size
    return (s[a:, b:, c:] - s[:-a, b:, c:] - s[a:, :-b, c:] - s[a:, b:, :-c]
            + s[:-a, :-b, c:] + s[:-a, b:, :-c] + s[a:, :-b, :-c] - s[:-a, :-b, :-c])
