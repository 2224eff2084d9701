"""Datacube stores: written one time chunk at a time, resumable, honest about completeness.

:func:`write_cube` writes a lazy ``(time, y, x)`` cube to a Zarr store (local folder or
any fsspec URL) under the store's writer lock; each written time chunk is recorded in
the store's ledger (``time-YYYYMMDD-YYYYMMDD``). :func:`open_cube` checks the ledger
covers every day of the store and refuses an incomplete store (a writer killed
mid-run) unless ``partial=True``.

The cube's variable names and default chunks are given by :mod:`firesmoke.cube.build`
(which wraps these functions), so this module knows storage, not cube contents.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.errors import (
    GridMismatchError,
    IncompleteStoreError,
    IncompleteStoreWarning,
    InputError,
)
from firesmoke.grid import dataset_crs, grid_transform
from firesmoke.store.ledger import Ledger, StoreLock
from firesmoke.store.location import Location, StoreOptions
from firesmoke.store.zarr_store import create_template, finalize_store, open_store, quiet_zarr

__all__ = ["IncompleteStoreError", "IncompleteStoreWarning", "missing_days", "open_cube_store",
           "write_cube_store"]

log = logging.getLogger(__name__)

_TIME_BLOCK = re.compile(r"^time-(\d{8})-(\d{8})$")


def _time_blocks(n: int, size: int, offset: int = 0) -> list[tuple[int, int]]:
    """Blocks ``[a, b)`` over ``[offset, offset + n)`` aligned to multiples of ``size``."""
    out = []
    a = offset
    while a < offset + n:
        b = min((a // size + 1) * size, offset + n)
        out.append((a, b))
        a = b
    return out


def _block_id(t0: pd.Timestamp, t1: pd.Timestamp) -> str:
    return f"time-{t0:%Y%m%d}-{t1:%Y%m%d}"


def missing_days(store: Any, times: Sequence[Any] | None = None,
                 storage_options: StoreOptions = None) -> pd.DatetimeIndex | None:
    """Days of a cube store that no finished time chunk of its ledger covers.

    ``None`` when the store has no firesmoke ledger (written elsewhere: unknown).
    """
    ledger = Ledger(store, storage_options)
    if not ledger.is_firesmoke:
        return None
    if times is None:
        times = open_store(ledger.location)["time"].values
    t = pd.DatetimeIndex(times).normalize()
    if not ledger.template_done():
        return t
    covered = np.zeros(len(t), bool)
    for name in ledger.finished():
        m = _TIME_BLOCK.match(name)
        if m:
            a, b = pd.Timestamp(m.group(1)), pd.Timestamp(m.group(2))
            covered |= (t >= a) & (t <= b)
    return t[~covered]


def _write_region(part: xr.Dataset, loc: Location, region: Mapping[str, slice]) -> None:
    out = part.drop_vars([c for c in part.coords if c not in ("time",)], errors="ignore")
    out = out.drop_vars("time")
    out.attrs = {}
    for v in out.data_vars.values():
        v.attrs = {}
        v.encoding = {}
    with quiet_zarr():
        out.to_zarr(**loc.zarr_args(), region={"time": region["time"]}, consolidated=False)


def write_cube_store(
    ds: xr.Dataset,
    store: Any,
    variables: Sequence[str],
    default_chunks: Mapping[str, int],
    mode: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
    compute_kwargs: Mapping[str, Any] | None = None,
    storage_options: StoreOptions = None,
    zarr_format: int = 3,
) -> Any:
    """Write a cube to a Zarr store; see :func:`firesmoke.cube.build.write_cube`."""
    loc = Location.of(store, storage_options)
    if mode not in ("auto", "w"):
        raise InputError(f"unknown mode {mode!r}; use 'auto' or 'w'", field="mode")
    grid_transform(ds)  # a regular north-up grid, or an InputError before anything is written
    if dataset_crs(ds) is None:
        log.warning("cube written to %s has no CRS: attach one (ds.rio.write_crs) to predict "
                    "from it", loc.url)
    tchunk = int(ds.chunks["time"][0]) if ds.chunks and "time" in ds.chunks else default_chunks["time"]
    ychunk = int(ds.chunks["y"][0]) if ds.chunks else default_chunks["y"]
    xchunk = int(ds.chunks["x"][0]) if ds.chunks else default_chunks["x"]
    zchunks = {"time": tchunk, "y": ychunk, "x": xchunk}
    new_times = pd.DatetimeIndex(ds["time"].values)
    if (not loc.local or loc.path.is_dir()) and loc.is_zarr() and not Ledger(loc).is_firesmoke:
        # (before the lock leaves a trace in it)
        raise InputError("is a Zarr store firesmoke did not write (no .firesmoke ledger); "
                         "refusing to write into it", path=loc.url)
    with StoreLock(loc, purpose="write_cube"):
        ledger = Ledger(loc)
        create_template(ds, loc, chunks=zchunks, overwrite=(mode == "w"), zarr_format=zarr_format)
        existing = open_store(loc)
        offset = _prepare_days(ds, existing, new_times, loc, variables, ledger, zchunks)
        blocks = _time_blocks(len(new_times), zchunks["time"], offset)
        total = len(blocks)
        for i, (a, b) in enumerate(blocks):
            t0 = new_times[a - offset]
            t1 = new_times[b - 1 - offset]
            bid = _block_id(t0, t1)
            if ledger.done(bid):
                log.info("chunk %s already written, skipping", bid)
            else:
                part = ds.isel(time=slice(a - offset, b - offset))
                part = part.chunk({"time": b - a, "y": zchunks["y"], "x": zchunks["x"]})
                with dask.config.set(**(dict(compute_kwargs) if compute_kwargs else {})):
                    _write_region(part, loc, {"time": slice(a, b)})
                ledger.mark(bid, {"days": [str(t0.date()), str(t1.date())]})
            if progress is not None:
                progress(i + 1, total, "cube chunks")
        finalize_store(loc)
    return loc.path if loc.local else loc.url


def _check_same_grid(ds: xr.Dataset, existing: xr.Dataset, url: str) -> None:
    """GridMismatchError unless the cube and the store share shape, transform and CRS."""
    a, b = grid_transform(ds), grid_transform(existing)
    shape_a, shape_b = (ds.sizes["y"], ds.sizes["x"]), (existing.sizes["y"], existing.sizes["x"])
    if shape_a != shape_b or not a.almost_equals(b, 1e-9):
        raise GridMismatchError(f"cube and store are on different grids: {shape_a} "
                                f"{tuple(a)[:6]} vs {shape_b} {tuple(b)[:6]}", path=url)
    crs_a, crs_b = dataset_crs(ds), dataset_crs(existing)
    if crs_a != crs_b:
        raise GridMismatchError(f"cube CRS {crs_a and crs_a.to_string()} differs from the "
                                f"store's {crs_b and crs_b.to_string()}", path=url)


def _prepare_days(ds: xr.Dataset, existing: xr.Dataset, new_times: pd.DatetimeIndex,
                  loc: Location, variables: Sequence[str], ledger: Ledger,
                  zchunks: dict[str, int]) -> int:
    """Check the cube continues the store; append new days' metadata; the time offset."""
    _check_same_grid(ds, existing, loc.url)
    if existing.attrs.get("region") != ds.attrs.get("region"):
        raise GridMismatchError(
            f"store holds region {existing.attrs.get('region')!r}, cube is "
            f"{ds.attrs.get('region')!r}; refusing to mix regions", path=loc.url)
    old_times = pd.DatetimeIndex(existing["time"].values)
    zchunks["time"] = int(existing[variables[0]].encoding.get("chunks", (zchunks["time"],))[0])
    if new_times[0] < old_times[0] or (new_times[0] > old_times[-1] + pd.Timedelta(days=1)):
        raise InputError(
            f"cube days {new_times[0].date()}..{new_times[-1].date()} do not continue the "
            f"store's {old_times[0].date()}..{old_times[-1].date()} (gaps or earlier days)",
            path=loc.url)
    appended = new_times[new_times > old_times[-1]]
    if len(appended):
        ledger.unmark_template()  # a kill while appending leaves a recognisably torn store
        # metadata only (compute=False): the days are written chunk by chunk afterwards
        with quiet_zarr():
            ds.sel(time=appended).to_zarr(**loc.zarr_args(), append_dim="time", compute=False,
                                          consolidated=False, safe_chunks=False)
        ledger.mark_template({"appended": [str(appended[0].date()), str(appended[-1].date())]})
        log.info("appended %d day(s) to %s", len(appended), loc.url)
        old_times = pd.DatetimeIndex(open_store(loc)["time"].values)
    return int(np.searchsorted(old_times, new_times[0]))


def open_cube_store(
    store: Any,
    variables: Sequence[str],
    chunks: Any = None,
    partial: bool = False,
    storage_options: StoreOptions = None,
) -> xr.Dataset:
    """Open a cube store; see :func:`firesmoke.cube.build.open_cube`."""
    import rioxarray  # noqa: F401

    loc = Location.of(store, storage_options)
    if not loc.exists():
        raise InputError("cube store not found", path=loc.url)
    try:
        ds = open_store(loc, chunks=chunks, consolidated=None)
    except Exception as exc:  # zarr raises many types for broken stores
        raise InputError(f"not a readable Zarr cube ({type(exc).__name__}: {exc}); if a write "
                         "was interrupted, rerun it", path=loc.url) from exc
    missing = [v for v in variables if v not in ds]
    if missing:
        raise InputError(f"not a firesmoke cube: missing {missing}", path=loc.url)
    gaps = missing_days(loc, ds["time"].values)
    if gaps is not None and len(gaps):
        msg = (f"incomplete cube: {len(gaps)} of {ds.sizes['time']} day(s) were never written "
               f"(first {gaps[0].date()}, last {gaps[-1].date()}); a write was interrupted: "
               "rerun it to complete the store")
        if not partial:
            raise IncompleteStoreError(msg + ", or open with partial=True", path=loc.url)
        warnings.warn(f"{loc.url}: {msg}", IncompleteStoreWarning, stacklevel=3)
        ds.attrs["incomplete_days"] = json.dumps([str(d.date()) for d in gaps])
    return ds
