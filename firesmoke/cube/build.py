"""Daily datacubes ``(time, y, x)`` on a region grid, built lazily from readers + kernels.

:func:`build_cube` returns a lazy :class:`xarray.Dataset` with float32 variables ``red``
(M05), ``nir`` (M07), ``mir`` (3.7 um reflectance from M12/M15, reference/banet.md) and
``frp`` (log1p of the daily FRP sum, MW), optionally ``solar_zenith`` and
``sensor_zenith``; NaN = no observation.

Inputs are read through *readers* (:mod:`firesmoke.io.viirs.readers`): discovery describes the
granules, :func:`build_cube` opens one reader per granule (each file's metadata read and
checked once; a bad granule is skipped and listed) and the tasks read windows through
them (cached open handles per process) and call the kernels through :mod:`firesmoke.cube.ops`.
No xarray object is built inside a task. The task graph has, per day and spatial block:

1. a small per-day task ranks the day's granules by mean sensor zenith over the grid
   (the reference compositing order; only needed for ``composite="reference"``);
2. per (day, block) task: read the block's window of every granule of the day (gridded
   granules window by window: a granule grid aligned with the region -- the same grid, a
   larger one, or one covering part of the region -- reads only the window the block
   covers, NaN elsewhere; a grid of another pixel size or alignment is resampled onto
   the block with ``regrid``, as swaths are; swath granules are decoded once per process
   and regridded onto the block only), composite the overpasses, compute MIR;
3. FRP per (time chunk, block) from the hotspot table, each task given only the
   detections that fall in its chunk (:func:`firesmoke.cube.frp.rasterize_hotspots`
   with ``chunks``).

Default chunks are ``{"time": 16, "y": 256, "x": 256}``: spatial chunks are multiples of
the 128 px model tile and 16 divides the 64-day model window, so tiles and windows map
cleanly onto chunks, and peak memory is bounded by the chunk size (times the number of
overpasses of a day), not by the number of days; only the per-day ordering task reads
one granule's zenith layer over the whole grid at a time.

:func:`write_cube` / :func:`open_cube` store cubes in Zarr (local or any fsspec URL;
zstd-compressed, CF attrs and CRS kept) through the store layer
(:mod:`firesmoke.store.cubes`): new days are appended without rewriting old ones, an
interruption is resumed and an incomplete store is never read as complete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from firesmoke import bounds
from firesmoke._version import __version__
from firesmoke.cube import ops
from firesmoke.cube.frp import STAT_ATTRS, rasterize_hotspots
from firesmoke.dates import as_date
from firesmoke.errors import InputError, SkippedInput
from firesmoke.grid import Region
from firesmoke.io.burned_area.fraction import daily_burned_fraction
from firesmoke.io.firms import read_firms
from firesmoke.io.viirs.discovery import GranuleIndex, find_granules
from firesmoke.io.viirs.readers import CUBE_BANDS, open_reader
from firesmoke.store.cubes import open_cube_store, write_cube_store
from firesmoke.store.progress import Progress, part_progress
from firesmoke.store.zarr_store import report_location, write_report

__all__ = [
    "CUBE_VARIABLES",
    "DEFAULT_CHUNKS",
    "build_cube",
    "burned_fraction_cube",
    "open_cube",
    "rasterize_hotspots",
    "write_cube",
]

log = logging.getLogger(__name__)

CUBE_VARIABLES = ("red", "nir", "mir", "frp")
DEFAULT_CHUNKS: dict[str, int] = {"time": 16, "y": 256, "x": 256}

_ATTRS = {
    "red": {"long_name": "red reflectance (VIIRS M5, 0.672 um)", "units": "1", "source_band": "M05"},
    "nir": {"long_name": "near-infrared reflectance (VIIRS M7, 0.865 um)", "units": "1", "source_band": "M07"},
    "mir": {"long_name": "middle-infrared reflectance (3.7 um, from M12 and M15)", "units": "1",
            "source_band": "M12,M15"},
    "frp": {k: v for k, v in STAT_ATTRS["log1p_frp"].items() if k != "name"},  # no UDUNITS unit
    "solar_zenith": {"long_name": "solar zenith angle", "units": "degree"},
    "sensor_zenith": {"long_name": "sensor zenith angle", "units": "degree"},
}


# --------------------------------------------------------------------------- day tasks
def _gridded_block(reader: Any, region: Region, window: tuple[int, int, int, int],
                   regrid: str, bands: Sequence[str] = CUBE_BANDS) -> np.ndarray:
    """``(len(bands), h, w)`` float32 of a gridded granule on one block of the region grid.

    An aligned grid reads the granule window the block covers (NaN elsewhere); another
    pixel size or alignment reads the granule window around the block and regrids its
    pixel centres onto the block with the swath kernels (``regrid``; one "scan" = the
    whole window, so there are no scan seams; ``nearest`` searches 1.5 granule pixels;
    ``bucket`` suits granules finer than the region only).
    """
    p = reader.placement
    if p is None or p.kind == "aligned":
        return reader.read_region(window, bands) if p is not None else reader.read(window, bands)
    _, _, h, w = window
    src = p.source_window(window)
    if src is None:
        return np.full((len(bands), h, w), np.nan, np.float32)
    lat, lon = p.centres(src)
    values = reader.read(src, bands)
    # nearest: search far enough to reach a coarser granule's nearest pixel centre
    ratio = max(abs(p.transform[0] / p.region_transform[0]), abs(p.transform[4] / p.region_transform[4]))
    return ops.regrid_swath(lat, lon, values, tuple(region.transform)[:6], region.shape,
                            method=regrid, rows_per_scan=src[2], window=window,
                            radius=max(1.5, 1.5 * ratio))


def _reader_block(reader: Any, region: Region, window: tuple[int, int, int, int],
                  regrid: str) -> np.ndarray:
    """``(6, h, w)`` float32 of one granule on one block of the region grid."""
    if reader.kind == "vmaes":
        return _gridded_block(reader, region, window, regrid)
    sw = reader.read_swath(CUBE_BANDS)
    return ops.regrid_swath(sw.lat, sw.lon, sw.values, tuple(region.transform)[:6], region.shape,
                            method=regrid, rows_per_scan=sw.rows_per_scan, window=window)


def _reader_mean_zenith(reader: Any, region: Region) -> float:
    """Mean sensor zenith of a granule over the region grid (NaN ignored)."""
    try:
        if reader.kind == "vmaes":
            z = _gridded_block(reader, region, (0, 0, *region.shape), "bilinear",
                               ("sensor_zenith",))[0]
        else:
            sw = reader.read_swath(CUBE_BANDS)
            left, bottom, right, top = region.bbox
            lon = np.where(sw.lon < left, sw.lon + 360.0, sw.lon)
            inside = (sw.lat >= bottom) & (sw.lat <= top) & (lon >= left) & (lon <= right)
            z = np.where(inside, sw.values[CUBE_BANDS.index("sensor_zenith")], np.nan)
    except InputError as exc:
        log.warning("skipping granule %s: %s", reader, exc)
        return np.nan
    with np.errstate(invalid="ignore"):
        return float(np.nanmean(z)) if np.isfinite(z).any() else np.nan


def _day_order(readers: Sequence[Any], region: Region) -> np.ndarray:
    """The reference order of a day's granules (ascending mean zenith; absent last)."""
    means = np.array([_reader_mean_zenith(r, region) for r in readers], np.float64)
    means = np.where(np.isfinite(means), means, np.inf)
    return np.argsort(means, kind="stable").astype(np.int64)


def _day_block(readers: Sequence[Any], order: np.ndarray | None, region: Region,
               window: tuple[int, int, int, int], rule: str, regrid: str,
               n_out: int) -> np.ndarray:
    """``(n_out, 1, h, w)``: red, nir, mir[, sza, vza] of one day on one block."""
    _, _, h, w = window
    stacks = []
    keep = []
    for i, r in enumerate(readers):
        try:
            stacks.append(_reader_block(r, region, window, regrid))
            keep.append(i)
        except InputError as exc:
            log.warning("day %s: skipping granule %s: %s", r.start.date(), r, exc)
    out = np.full((n_out, 1, h, w), np.nan, np.float32)
    if not stacks:
        return out
    stack = np.stack(stacks)                   # (n, 6, h, w)
    zen = stack[:, 5]
    sub_order = None
    if rule == "reference":
        assert order is not None
        pos = {g: j for j, g in enumerate(keep)}
        sub_order = np.array([pos[i] for i in order if i in pos], np.int64)
    comp = ops.composite(stack, zen, rule, order=sub_order)
    out[0, 0] = comp[0]
    out[1, 0] = comp[1]
    out[2, 0] = ops.mir_reflectance(comp[2], comp[3], comp[4])
    if n_out > 3:
        out[3, 0] = comp[4]
        out[4, 0] = comp[5]
    return out


def _open_readers(granules: Sequence[Any], region: Region) -> tuple[list[Any], list[SkippedInput]]:
    """One reader per granule (each file's metadata read and checked once); bad granules
    are skipped and listed."""
    readers, skipped = [], []
    for g in granules:
        try:
            readers.append(open_reader(g, region, CUBE_BANDS))
        except InputError as exc:
            log.warning("skipping granule %s: %s", g, exc)
            skipped.append(SkippedInput(", ".join(str(p) for p in g.files), str(exc)))
    return readers, skipped


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(size, n - s)) for s in range(0, n, size)]


def _viirs_arrays(by_day: Mapping[dt.date, Any], region: Region, days: pd.DatetimeIndex, rule: str,
                  regrid: str, chunks: Mapping[str, int], angles: bool) -> list[da.Array]:
    """One lazy ``(time, y, x)`` array per output layer.

    ``by_day`` maps a day to its readers (a list) or, without validation, to a delayed
    task that opens them.
    """
    H, W = region.shape
    n_out = 5 if angles else 3
    yb = _blocks(H, chunks["y"])
    xb = _blocks(W, chunks["x"])
    nan_blocks: dict[tuple[int, int], da.Array] = {}
    day_planes: list[list[list[da.Array]]] = []
    for day in days:
        readers = by_day.get(day.date())
        has = readers is not None and (not isinstance(readers, list) or len(readers) > 0)
        if isinstance(readers, list) and readers:
            # one graph literal per day that every block refers to (not traversed per task)
            readers = dask.delayed(tuple(readers), traverse=False)
        order = None
        if has and rule == "reference":
            order = dask.delayed(_day_order, pure=True)(readers, region)
        plane = []
        for r0, h in yb:
            row = []
            for c0, w in xb:
                if has:
                    blk = dask.delayed(_day_block, pure=True)(
                        readers, order, region, (r0, c0, h, w), rule, regrid, n_out
                    )
                    row.append(da.from_delayed(blk, shape=(n_out, 1, h, w), dtype=np.float32))
                else:
                    if (h, w) not in nan_blocks:
                        nan_blocks[(h, w)] = da.full((n_out, 1, h, w), np.nan, dtype=np.float32,
                                                     chunks=(n_out, 1, h, w))
                    row.append(nan_blocks[(h, w)])
            plane.append(row)
        day_planes.append(plane)
    # (layer, time, y, x): da.block nests the lists along time, y and x
    stack = da.block([day_planes])
    return [stack[k].rechunk({0: chunks["time"], 1: chunks["y"], 2: chunks["x"]})
            for k in range(n_out)]


def _open_day_readers(granules: Sequence[Any], region: Region) -> list[Any]:
    """Readers of a day's granules, opened inside the graph (``validate=False``)."""
    return _open_readers(granules, region)[0]


def _as_index(viirs: Any, start: dt.date, end: dt.date) -> tuple[Any, list[SkippedInput]]:
    if viirs is None:
        return None, []
    if isinstance(viirs, GranuleIndex):
        return viirs, list(viirs.skipped)
    folders = [viirs] if isinstance(viirs, (str, os.PathLike)) else list(viirs)
    granules, skipped = [], []
    for f in folders:
        idx = find_granules(f, start, end)
        granules.extend(idx.granules)
        skipped.extend(idx.skipped)
    granules.sort(key=lambda g: g.start)
    return GranuleIndex(granules, skipped), skipped


def _as_table(firms: Any, start: dt.date, end: dt.date, region: Region) -> tuple[pd.DataFrame | None, list]:
    if firms is None:
        return None, []
    if isinstance(firms, pd.DataFrame):
        return firms, []
    left, bottom, right, top = region.bbox
    res = read_firms(firms, start=start, end=end, bbox=(left, bottom, right, top))
    table = getattr(res, "table", res)
    report = getattr(res, "report", None) or table.attrs.get("firesmoke_report", [])
    return table, list(report) if report is not None else []


def build_cube(
    region: Region | str | os.PathLike[str],
    start: Any,
    end: Any,
    viirs: Any = None,
    firms: Any = None,
    composite: str = "reference",
    angles: bool = False,
    chunks: Mapping[str, int] | None = None,
    regrid: str = "bilinear",
    validate: bool = True,
) -> xr.Dataset:
    """Build the daily datacube of a region lazily.

    Parameters
    ----------
    region
        A :class:`~firesmoke.grid.Region`, a shipped region name or an ``R_*.json`` path.
    start, end
        First and last UTC day (inclusive).
    viirs
        Folder(s) of VIIRS granules (gridded ``NPP_VMAES_L1`` HDF4 and/or L1B swath
        netCDF pairs, found with :func:`~firesmoke.io.viirs.discovery.find_granules`), or a
        ``GranuleIndex``. ``None``: reflectance variables are all NaN.
    firms
        FIRMS CSV path(s)/folder, or a table from :func:`~firesmoke.io.firms.read_firms`.
        ``None``: ``frp`` is all NaN.
    composite
        ``"reference"`` (granules ranked by mean zenith over the grid, first valid wins)
        or ``"min_zenith"`` (per-pixel smallest sensor zenith).
    angles
        Also return ``solar_zenith`` and ``sensor_zenith`` of the composite.
    chunks
        Dask/Zarr chunks, default :data:`DEFAULT_CHUNKS`.
    regrid
        Swath regridding method: ``"bilinear"`` (as the reference data), ``"nearest"``,
        ``"bucket"``; also used for gridded granules whose grid has another pixel size
        or alignment than the region (aligned grids are read as they are; a granule
        that does not overlap the region is skipped and listed).
    validate
        Open every granule's reader now (each file's metadata read and checked once) so
        that bad granules are skipped and listed in ``attrs["skipped_inputs"]`` before
        any computation. ``False``: each day's readers are opened by a task of the graph
        (nothing is opened here; bad granules are then only logged).

    Returns
    -------
    xarray.Dataset
        Lazy cube; ``attrs`` record region, inputs, composite rule, skipped inputs, the
        FIRMS read report (``firms_report``: one line per file, complete; counts in
        ``firms_summary``) and the package version. :func:`write_cube` moves the FIRMS
        report to a sidecar JSON file.

    Examples
    --------
    >>> from firesmoke import Region, build_cube, generate_scenario
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> _ = generate_scenario(region, "2020-07-01", "2020-07-02", "scenario", seed=1)
    >>> cube = build_cube(region, "2020-07-01", "2020-07-02", viirs="scenario/viirs750",
    ...                   firms="scenario/firms")
    >>> dict(cube.sizes), sorted(cube.data_vars)
    ({'time': 2, 'y': 16, 'x': 16}, ['frp', 'mir', 'nir', 'red'])
    >>> cube.rio.crs.to_epsg()
    4326
    """
    reg = Region.resolve(region)
    s = as_date(start, "start")
    e = as_date(end, "end")
    if e < s:
        raise InputError(f"end {e} is before start {s}", field="end")
    bounds.check_date_span(s, e, "end")  # a typo'd year must not plan 73,000 days
    if composite not in ops.COMPOSITE_RULES:
        raise InputError(f"unknown composite rule {composite!r}; choose from {ops.COMPOSITE_RULES}",
                         field="composite")
    ch = dict(DEFAULT_CHUNKS)
    ch.update(chunks or {})
    days = pd.date_range(s, e, freq="D")
    index, skipped = _as_index(viirs, s, e)
    n_granules = 0
    by_day: dict[dt.date, Any] = {}
    if index is not None:
        for day, granules in index.by_day().items():
            if validate:
                readers, bad = _open_readers(granules, reg)
                skipped.extend(bad)
                n_granules += len(readers)
                if readers:
                    by_day[day] = readers
            else:
                n_granules += len(granules)
                by_day[day] = dask.delayed(_open_day_readers, pure=True)(granules, reg)
    table, firms_report = _as_table(firms, s, e, reg)

    ds = reg.coords_dataset(time=days.values)
    dims = ("time", "y", "x")
    if index is not None:
        arrays = _viirs_arrays(by_day, reg, days, composite, regrid, ch, angles)
    else:
        nan = da.full((len(days), *reg.shape), np.nan, dtype=np.float32,
                      chunks=(ch["time"], ch["y"], ch["x"]))
        arrays = [nan] * (5 if angles else 3)
    names = ["red", "nir", "mir"] + (["solar_zenith", "sensor_zenith"] if angles else [])
    for name, arr in zip(names, arrays, strict=True):
        ds[name] = (dims, arr, dict(_ATTRS[name]))
    if table is not None:
        frp = rasterize_hotspots(table, reg, s, e, stat="log1p_frp", chunks=ch)
        ds["frp"] = (dims, frp.data, dict(_ATTRS["frp"]))
    else:
        nan = da.full((len(days), *reg.shape), np.nan, dtype=np.float32,
                      chunks=(ch["time"], ch["y"], ch["x"]))
        ds["frp"] = (dims, nan, {**_ATTRS["frp"], "comment": "no FIRMS input given"})
    for name in ds.data_vars:
        ds[name].attrs["grid_mapping"] = "spatial_ref"
    ds = ds[[*CUBE_VARIABLES, *(["solar_zenith", "sensor_zenith"] if angles else [])]]
    ds.attrs.update({
        "title": f"firesmoke daily datacube {reg.name} {s}..{e}",
        "Conventions": "CF-1.8",
        "region": reg.name,
        "region_json": json.dumps(reg.to_dict()),
        "composite_rule": composite,
        "swath_regrid": regrid,
        "n_granules": n_granules,
        "skipped_inputs": json.dumps([{"path": k.path, "reason": k.reason} for k in skipped]),
        "firms_report": json.dumps([str(r) for r in firms_report]),  # a store: in the sidecar
        "firms_summary": json.dumps(_firms_summary(firms_report)),
        "firesmoke_version": __version__,
        "history": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} firesmoke.cube.build.build_cube",
    })
    if skipped:
        log.warning("%d input(s) skipped; see attrs['skipped_inputs']", len(skipped))
    return ds


def _firms_summary(reports: Sequence[Any]) -> dict[str, int]:
    """Counts over the per-file FIRMS reports (any report object: missing counts are 0)."""
    def total(name: str) -> int:
        return int(sum(int(getattr(r, name, 0) or 0) for r in reports))

    return {"files": len(reports), "rows_read": total("rows_read"),
            "rows_selected": total("rows_selected"), "bad_rows": total("bad_rows"),
            "files_with_bad_rows": sum(1 for r in reports if getattr(r, "bad_rows", 0))}


REPORT_ATTRS = ("skipped_inputs", "firms_report")
"""Cube attributes that :func:`write_cube` writes complete to the sidecar report."""


def _split_reports(ds: xr.Dataset, sidecar: str) -> tuple[xr.Dataset, dict[str, Any]]:
    """The cube with the attributes a store keeps, and the complete reports of its attrs.

    ``firms_report`` (one line per FIRMS file: long on long runs) leaves the store's
    attributes for the sidecar ``sidecar``; the counts (``firms_summary``) and the skipped
    inputs stay.
    """
    reports: dict[str, Any] = {}
    for key in REPORT_ATTRS:
        if key in ds.attrs:
            try:
                reports[key] = json.loads(ds.attrs[key])
            except (TypeError, ValueError):  # not JSON (e.g. an older truncated attribute)
                reports[key] = ds.attrs[key]
    attrs = {k: v for k, v in ds.attrs.items() if k not in ("firms_report", "report")}
    if reports:
        attrs["report"] = sidecar
    out = ds.copy(deep=False)
    out.attrs = attrs
    return out, reports


def burned_fraction_cube(
    region: Region | str | os.PathLike[str],
    sources: Any,
    start: Any,
    end: Any,
    like: xr.Dataset | None = None,
    denominator: str = "observed",
) -> xr.DataArray:
    """Daily MCD64A1 burned fraction ``bafrac`` on the cube's grid and time axis.

    Wraps :func:`firesmoke.io.burned_area.fraction.daily_burned_fraction`; with ``like`` (a
    cube), the grid and time axis are checked against it. ``denominator="all"`` gives the
    reference software's fraction (all cells); months without a file are in
    ``attrs["skipped_inputs"]``.
    """
    reg = Region.resolve(region)
    if like is not None:
        reg.check_same_grid(Region.from_dataset(like), "targets and cube")
        t = pd.DatetimeIndex(like["time"].values)
        start, end = t[0], t[-1]
    frac = daily_burned_fraction(reg, sources, start, end, denominator=denominator)
    frac.name = "bafrac"
    frac.attrs.setdefault("long_name", "daily burned fraction (MCD64A1)")
    frac.attrs.setdefault("units", "1")
    return frac


# --------------------------------------------------------------------------- Zarr
def write_cube(
    ds: xr.Dataset,
    store: Any,
    mode: str = "auto",
    progress: Progress = None,
    compute_kwargs: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    zarr_format: int = 3,
) -> Any:
    """Write a cube to a Zarr store, one time chunk at a time, resumably.

    Runs under the store's writer lock (a second writer gets
    :class:`~firesmoke.store.StoreLockedError`); every written time chunk is recorded in
    the ledger inside the store, so :func:`open_cube` knows whether the store is complete.

    The cube's run reports (``skipped_inputs``, ``firms_report``: complete, any length)
    are written, once the store is, to the sidecar ``<store>.report.json``
    (:func:`firesmoke.store.write_report`); the store's attributes keep the skipped
    inputs, the counts ``firms_summary`` and the sidecar's name (``report``), not the
    per-file FIRMS report.

    Parameters
    ----------
    ds
        A cube from :func:`build_cube` (lazy).
    store
        Local path or fsspec URL (``s3://``, ``gs://``, ``memory://``) of the Zarr store.
    mode
        ``"w"``: overwrite; ``"auto"``: create, or resume/append into an existing store of
        the same region and variables (days already written are skipped; days after the
        store's last day are appended; a day before it is an error). A template torn by
        an interrupted run is rebuilt.
    progress
        A callback ``(done, total, label)`` called as time chunks are written, ``True``
        for a tqdm bar over the time chunks, ``False``/``None`` for nothing
        (:mod:`firesmoke.store.progress`).
    compute_kwargs
        Passed to ``dask.config.set`` for each chunk (e.g. a scheduler).
    storage_options
        fsspec options for a URL (credentials, endpoint, ...).
    zarr_format
        3 (default) or 2 (readable by GDAL's Zarr driver, e.g. GDAL 3.10 in rasterio).

    Returns
    -------
    pathlib.Path or str
        The store path (local) or URL.

    Examples
    --------
    >>> from firesmoke import Region, build_cube, generate_scenario, open_cube, write_cube
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> _ = generate_scenario(region, "2020-07-01", "2020-07-02", "scenario", seed=1)
    >>> cube = build_cube(region, "2020-07-01", "2020-07-02", viirs="scenario/viirs750",
    ...                   firms="scenario/firms")
    >>> store = write_cube(cube, "cube.zarr")
    >>> open_cube("cube.zarr").sizes["time"]
    2
    """
    opts = dict(storage_options or {}) or None
    sidecar = report_location(store, opts)
    ds, reports = _split_reports(ds, sidecar.name)
    out = write_cube_store(ds, store, CUBE_VARIABLES, DEFAULT_CHUNKS, mode=mode,
                           progress=part_progress(progress, "cube chunks"),
                           compute_kwargs=compute_kwargs,
                           storage_options=opts, zarr_format=zarr_format)
    if reports:
        write_report(store, reports, opts)
    return out


def open_cube(store: Any, chunks: Any = None, partial: bool = False,
              storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Open a cube written by :func:`write_cube` (lazy; CRS and CF attrs restored).

    A store whose ledger does not cover every day (a write was interrupted) raises
    :class:`~firesmoke.store.IncompleteStoreError`, or with ``partial=True`` warns and
    lists the missing days in ``attrs["incomplete_days"]`` (they read as NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from firesmoke import Region, build_cube, generate_scenario, open_cube, write_cube
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> _ = generate_scenario(region, "2020-07-01", "2020-07-02", "scenario", seed=1)
    >>> _ = write_cube(build_cube(region, "2020-07-01", "2020-07-02",
    ...                           viirs="scenario/viirs750"), "cube.zarr")
    >>> cube = open_cube("cube.zarr")
    >>> str(cube["red"].dtype), bool(np.isfinite(cube["red"]).any())
    ('float32', True)
    """
    return open_cube_store(store, CUBE_VARIABLES, chunks=chunks, partial=partial,
                           storage_options=dict(storage_options or {}) or None)
