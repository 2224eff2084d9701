"""The BA-Net daily burned-fraction target from MCD64A1 / VNP64A1 tiles and MCD64monthly windows.

:func:`plan_burned_fraction` chooses the files to read (:class:`BurnedFractionPlan`), which
are opened with the readers of :mod:`firesmoke.io.burned_area.mcd64` (its module docstring describes
the burn date codes).

:func:`daily_burned_fraction` builds the BA-Net training target ``bafrac`` (banet.md,
"Targets"): for each day ``d`` and region pixel ``p``::

    fraction(d, p) = area of cells with burn_date == d in p / area of observed cells in p

Observed cells are those with ``burn_date >= 0`` (land, burned or not) or ``== -2``
(water, observed and never burned); fill cells (-1, unmapped) are left out of both sums,
so a pixel with no observed cell is NaN, as are days with no source file. With
``denominator="all"`` (the reference software's definition, an area average of the
``burn_date == d`` indicator over *all* cells) fill cells count as unburned area, so a
pixel half covered by unmapped cells gets half the fraction; a pixel no source cell
covers is still NaN (no input, not "unburned"). A month of ``[start, end]`` without any
usable file is listed in the skipped inputs (its days are NaN). Areas come from
supersampling (:func:`firesmoke.io.burned_area.sinusoidal.cell_footprints`): each ~463 m cell is split
into ``k x k`` sub-cells (k = 4 for MCD64A1 on 0.01 degree grids, ~116 m), each carrying 1/k^2 of
the cell's area and assigned to the region pixel containing its centre. The geometry is
computed once per tile and month (not once per day as in the reference software), and the
per-(day, pixel) sums are accumulated with ``numpy.bincount`` over the burned sub-cells
only. The result is a dask array with one chunk per month (memory bounded by one month of
the region grid).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from firesmoke.dates import as_date
from firesmoke.errors import CorruptFileError, InputError, SkippedInput, WrongProductError
from firesmoke.grid import Region
from firesmoke.io.burned_area.codes import _month_end
from firesmoke.io.burned_area.mcd64 import (
    BURN_DATE_WATER,
    BurnedAreaSource,
    _hdf_meta,
    _read_sds,
    mcd64_tiles_for_region,
    parse_mcd64_name,
)
from firesmoke.io.burned_area.sinusoidal import _lon_intervals, cell_footprints, x_range_of_band

__all__ = [
    "DENOMINATORS",
    "BurnedFractionPlan",
    "daily_burned_fraction",
    "plan_burned_fraction",
]

log = logging.getLogger(__name__)

#: Denominators of the burned fraction: firesmoke's default, then the reference's.
DENOMINATORS = ("observed", "all")


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class BurnedFractionPlan:
    """What :func:`daily_burned_fraction` will read, month by month, and what it skipped."""

    region: Region
    start: date
    end: date
    months: tuple[tuple[date, date, tuple[BurnedAreaSource, ...]], ...]
    """``(first day, last day, sources)`` per calendar month in ``[start, end]``."""
    skipped: tuple[SkippedInput, ...] = field(default_factory=tuple)


def _as_date(value: Any, name: str) -> date:
    return as_date(value, name)


def _expand_sources(sources: Any) -> list[Path]:
    import glob

    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            # folders hold other products too: only MCD64* .hdf/.tif files are candidates
            out.extend(sorted(
                q for q in p.rglob("*")
                if q.is_file() and q.name.lower().startswith(("mcd64", "vnp64", "vj164"))
                and q.suffix.lower() in (".hdf", ".h5", ".tif", ".tiff")
            ))
        elif any(c in text for c in "*?[") and not p.exists():
            out.extend(sorted(Path(q) for q in glob.glob(text, recursive=True) if Path(q).is_file()))
        else:
            out.append(p)
    return out


def _tif_bounds_lonlat(path: Path) -> tuple[float, float, float, float]:
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise WrongProductError("GeoTIFF has no CRS", path=path)
            return transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    except rasterio.errors.RasterioError as exc:
        raise CorruptFileError(f"cannot open GeoTIFF ({exc})", path=path) from exc


def _intersects(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plan_burned_fraction(
    region: Region | str | os.PathLike[str],
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    start: Any,
    end: Any,
) -> BurnedFractionPlan:
    """Choose the MCD64 files needed for ``region`` and days ``[start, end]`` (inclusive).

    Folders are searched recursively for ``MCD64*.hdf`` / ``MCD64*.tif`` and VIIRS
    ``VNP64A1*.hdf`` / ``VJ164A1*.hdf`` files (other products in the same tree are
    ignored; an ``.h5`` file of these names is listed as skipped: the tiles are HDF4). Files are first
    sorted out by name alone
    (month outside the period, tile not touching the region: left out without being
    opened, logged at debug level). The remaining files have their metadata checked
    (HDF4 descriptors, grid, layers; GeoTIFF header); unreadable or wrong files are
    returned in :attr:`BurnedFractionPlan.skipped` with the reason, as are unrecognised
    file names, older duplicates of a tile-month (the newest collection/production is
    used) and the months of ``[start, end]`` left without any usable file (path
    ``"MCD64A1 YYYY-MM <region>"``).
    """
    reg = Region.resolve(region)
    d0, d1 = _as_date(start, "start"), _as_date(end, "end")
    if d1 < d0:
        raise InputError(f"end ({d1}) is before start ({d0})", field="end")
    tiles = set(mcd64_tiles_for_region(reg))
    skipped: list[SkippedInput] = []
    chosen: dict[tuple[Any, date], BurnedAreaSource] = {}
    for path in _expand_sources(sources):
        src = parse_mcd64_name(path)
        if src is None:
            if not path.exists():
                skipped.append(SkippedInput(str(path), "file not found"))
            elif path.suffix.lower() == ".h5":
                skipped.append(SkippedInput(str(path), "HDF5 file: MCD64A1 and VNP64A1 tiles are "
                                                       "distributed as HDF4 (.hdf, HDF-EOS2)"))
            else:
                skipped.append(SkippedInput(str(path), "not an MCD64A1/VNP64A1 tile or MCD64monthly "
                                                       "burndate GeoTIFF name"))
            continue
        if src.kind == "tif" and src.layer != "burndate":
            continue  # sibling layers are read with their burndate file
        if src.month_end < d0 or src.month_start > d1:
            log.debug("%s: month %s outside %s..%s", path, src.month_start, d0, d1)
            continue
        if src.kind == "hdf" and src.tile not in tiles:
            log.debug("%s: tile h%02dv%02d does not touch region %s", path, *src.tile, reg.name)
            continue
        try:
            if src.kind == "hdf":
                _hdf_meta(path)
            elif not _intersects(_tif_bounds_lonlat(path), reg.bbox):
                log.debug("%s: window does not touch region %s", path, reg.name)
                continue
        except InputError as exc:
            log.warning("skipping %s: %s", path, exc.reason)
            skipped.append(SkippedInput(str(path), exc.reason))
            continue
        key = (src.tile if src.kind == "hdf" else ("win", src.window), src.month_start)
        old = chosen.get(key)
        if old is not None:
            keep, drop = (src, old) if (src.collection, src.production) > (old.collection, old.production) else (old, src)
            skipped.append(SkippedInput(str(drop.path), f"superseded by {keep.path.name}"))
            chosen[key] = keep
        else:
            chosen[key] = src
    months = []
    m0 = date(d0.year, d0.month, 1)
    while m0 <= d1:
        m1 = _month_end(m0)
        srcs = tuple(s for (_, ms), s in sorted(chosen.items(), key=lambda kv: str(kv[1].path)) if ms == m0)
        first, last = max(m0, d0), min(m1, d1)
        months.append((first, last, srcs))
        if not srcs:
            reason = (f"no usable MCD64A1/VNP64A1/MCD64monthly file for {m0:%Y-%m} covering region "
                      f"{reg.name}: burned fraction is NaN on {first}..{last}")
            log.warning("%s", reason)
            skipped.append(SkippedInput(f"MCD64A1 {m0:%Y-%m} {reg.name}", reason,
                                        {"month": f"{m0:%Y-%m}", "first": str(first), "last": str(last)}))
        m0 = m1 + timedelta(days=1)
    return BurnedFractionPlan(reg, d0, d1, tuple(months), tuple(skipped))


# ----------------------------------------------------------------------------- accumulation
def _sinusoidal_window(transform: Affine, shape: tuple[int, int], region: Region) -> tuple[int, int, int, int]:
    left, bottom, right, top = region.bbox
    ny, nx = shape
    y_top, y_bottom = (math.radians(v) * 6371007.181 for v in (min(top, 90.0), max(bottom, -90.0)))
    r0 = max(0, math.floor((y_top - transform.f) / transform.e) - 1)
    r1 = min(ny, math.ceil((y_bottom - transform.f) / transform.e) + 1)
    xs = [x for lo, hi in _lon_intervals(left, right) for x in x_range_of_band(lo, hi, max(bottom, -90.0), min(top, 90.0))]
    c0 = max(0, math.floor((min(xs) - transform.c) / transform.a) - 1)
    c1 = min(nx, math.ceil((max(xs) - transform.c) / transform.a) + 1)
    return r0, max(r0, r1), c0, max(c0, c1)


def _tif_window(src: Any, region: Region) -> tuple[int, int, int, int]:
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    b = region.bbox if src.crs.is_geographic else transform_bounds("EPSG:4326", src.crs, *region.bbox, densify_pts=21)
    w = from_bounds(*b, transform=src.transform)
    r0 = max(0, math.floor(w.row_off) - 1)
    c0 = max(0, math.floor(w.col_off) - 1)
    r1 = min(src.height, math.ceil(w.row_off + w.height) + 1)
    c1 = min(src.width, math.ceil(w.col_off + w.width) + 1)
    return r0, max(r0, r1), c0, max(c0, c1)


def _read_source(src: BurnedAreaSource, region: Region) -> tuple[np.ndarray, Affine, tuple[int, int, int, int], str, Any]:
    """Read the burn dates of one source over the region window -> (data, transform, window, kind, to_lonlat)."""
    if src.kind == "hdf":  # sinusoidal HDF4 tiles: MCD64A1 or VNP64A1
        meta = _hdf_meta(src.path)
        read = _read_sds
        win = _sinusoidal_window(meta.transform, meta.shape, region)
        if win[0] == win[1] or win[2] == win[3]:
            return np.empty((0, 0), np.int16), meta.transform, win, "sinusoidal", None
        data = read(src.path, "Burn Date", (slice(win[0], win[1]), slice(win[2], win[3])))
        return np.asarray(data, np.int16), meta.transform, win, "sinusoidal", None
    import rasterio
    from pyproj import Transformer
    from rasterio.windows import Window

    try:
        with rasterio.open(src.path) as ds:
            win = _tif_window(ds, region)
            if win[0] == win[1] or win[2] == win[3]:
                return np.empty((0, 0), np.int16), ds.transform, win, "geographic", None
            data = ds.read(1, window=Window(win[2], win[0], win[3] - win[2], win[1] - win[0]))
            kind, to_lonlat = "geographic", None
            if not ds.crs.is_geographic:
                kind = "projected"
                tr = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True)
                to_lonlat = tr.transform
            return np.asarray(data, np.int16), ds.transform, win, kind, to_lonlat
    except rasterio.errors.RasterioError as exc:
        raise CorruptFileError(f"cannot read GeoTIFF ({exc})", path=src.path) from exc


def _auto_supersample(transform: Affine, kind: str, region: Region) -> int:
    """Sub-cells per side so that each region pixel receives at least ~2 x 2 sub-cells."""
    _, bottom, _, top = region.bbox
    if kind == "geographic":
        cell_deg = max(abs(transform.a), abs(transform.e))
    else:
        coslat = max(math.cos(math.radians(min(max(abs(bottom), abs(top)), 89.0))), 1e-3)
        cell_deg = math.degrees(max(abs(transform.a) / coslat, abs(transform.e)) / 6371007.181)
    return int(min(64, max(4, math.ceil(2.0 * cell_deg / region.pixel_size))))


def _month_fraction(
    sources: Sequence[BurnedAreaSource], region: Region, first: date, ndays: int, supersample: int | None,
    denominator: str = "observed",
) -> np.ndarray:
    """Burned fraction ``(ndays, height, width)`` float32 for days ``first .. first + ndays - 1``.

    ``denominator``: ``"observed"`` (land or water cells) or ``"all"`` (every cell)."""
    height, width = region.shape
    hw = height * width
    observed = np.zeros(hw, np.float64)
    keys: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    doy0 = first.timetuple().tm_yday
    for src in sources:
        data, transform, win, kind, to_lonlat = _read_source(src, region)
        if data.size == 0:
            continue
        r0 = win[0]
        k = supersample or _auto_supersample(transform, kind, region)
        for fp in cell_footprints(transform, win, region.transform, region.shape, kind=kind,
                                  supersample=k, to_lonlat=to_lonlat, block_rows=max(1, 256 // k)):
            bd = data[fp.row0 - r0 : fp.row1 - r0]
            if denominator == "all":
                sel = fp.pixel >= 0
            else:
                obs = ((bd >= 0) | (bd == BURN_DATE_WATER))[:, None, :, None]
                sel = obs & (fp.pixel >= 0)
            w = np.broadcast_to(fp.weight, fp.pixel.shape)
            observed += np.bincount(fp.pixel[sel], weights=w[sel], minlength=hw)
            ii, jj = np.nonzero((bd >= doy0) & (bd < doy0 + ndays))
            if ii.size:
                pix = fp.pixel[ii, :, jj, :]  # (n, k, k)
                day = (bd[ii, jj].astype(np.int64) - doy0)[:, None, None]
                wb = np.broadcast_to(fp.weight[ii, :, 0, 0][:, :, None], pix.shape)
                ok = pix >= 0
                keys.append((day * hw + pix)[ok])
                weights.append(wb[ok])
    out = np.zeros((ndays, hw), np.float32)
    if keys:
        uniq, inv = np.unique(np.concatenate(keys), return_inverse=True)
        out.reshape(-1)[uniq] = np.bincount(inv.reshape(-1), weights=np.concatenate(weights)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(out, observed[None, :].astype(np.float32), out=out)
    out[:, observed <= 0] = np.nan
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(ndays, height, width)


def daily_burned_fraction(
    region: Region | str | os.PathLike[str],
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    start: Any,
    end: Any,
    *,
    supersample: int | None = None,
    denominator: str = "observed",
) -> xr.DataArray:
    """Daily burned fraction of each region pixel from MCD64A1 / VNP64A1 tiles or MCD64monthly windows.

    Parameters
    ----------
    region
        Target grid (:class:`~firesmoke.grid.Region`, shipped name or JSON path).
    sources
        Files, folders (searched recursively) or glob patterns of MCD64A1 and VNP64A1 HDF4
        tiles and/or MCD64monthly ``*.burndate.tif`` windows; several tiles and months
        are combined (for one tile-month present in both, the first by collection/production
        order is used and the other listed as superseded).
    start, end
        First and last UTC day (inclusive).
    supersample
        Sub-cells per source cell side (k) used for area weighting; None (default) picks
        ``max(4, ceil(2 * cell size / pixel size))`` per source (4 for MCD64A1 on 0.01
        degree grids), so every region pixel receives sub-cells even from coarse sources.
    denominator
        ``"observed"`` (default): burned area / area of observed cells (land or water;
        fill cells left out). ``"all"``: burned area / area of all cells, the reference
        software's definition (fill cells count as unburned).

    Returns
    -------
    xarray.DataArray
        ``burned_fraction`` float32 ``(time, y, x)`` in [0, 1] on the region grid (CRS
        attached), NaN where nothing was observed; lazy (dask), one chunk per month.
        ``attrs["skipped_inputs"]`` lists unreadable/unused files as ``"path: reason"``;
        ``attrs["sources"]`` the files used. See the module docstring for the definition.
    """
    import dask
    import dask.array as da

    if supersample is not None and int(supersample) < 1:
        raise InputError("supersample must be >= 1", field="supersample")
    if denominator not in DENOMINATORS:
        raise InputError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}",
                         field="denominator")
    plan = plan_burned_fraction(region, sources, start, end)
    reg = plan.region
    height, width = reg.shape
    blocks = []
    for first, last, srcs in plan.months:
        ndays = (last - first).days + 1
        if not srcs:
            blocks.append(da.full((ndays, height, width), np.nan, dtype=np.float32, chunks=(ndays, height, width)))
            continue
        k = None if supersample is None else int(supersample)
        task = dask.delayed(_month_fraction, pure=True)(srcs, reg, first, ndays, k, denominator)
        blocks.append(da.from_delayed(task, shape=(ndays, height, width), dtype=np.float32))
    data = da.concatenate(blocks, axis=0)
    days = np.arange(np.datetime64(plan.start, "D"), np.datetime64(plan.end, "D") + 1).astype("datetime64[ns]")
    ds = reg.coords_dataset(time=days)
    used = [str(s.path) for _, _, srcs in plan.months for s in srcs]
    ds["burned_fraction"] = (
        ("time", "y", "x"),
        data,
        {
            "long_name": "fraction of the pixel area burned on the day (MCD64A1/VNP64A1 burn date)",
            "units": "1",
            "valid_range": np.array([0.0, 1.0], dtype=np.float32),
            "comment": (
                ("area of cells with burn date == day / area of observed cells (burn date >= 0 or water); "
                 "fill cells excluded; " if denominator == "observed" else
                 "area of cells with burn date == day / area of all cells (reference definition; "
                 "fill cells count as unburned); ")
                + f"area weighting by supersampling each cell with k x k sub-cells (k = {supersample or 'auto'})"
            ),
            "denominator": denominator,
            "sources": used,
            "skipped_inputs": [f"{s.path}: {s.reason}" for s in plan.skipped],
        },
    )
    ds = ds.rio.write_crs(reg.crs)
    return ds["burned_fraction"]
