"""MODIS MCD64A1 burned area: readers and the daily burned-fraction target.

Readers
-------
:func:`open_mcd64a1` opens one HDF4-EOS sinusoidal tile (``MCD64A1.AYYYYDDD.hHHvVV.CCC.
PRODUCTION.hdf``) as a lazy :class:`xarray.Dataset`; :func:`open_mcd64_geotiff` opens the
UMD monthly GeoTIFF windows (``MCD64monthly.AYYYYDDD.WinNN.CCC.burndate.tif``) with
rioxarray into the same variable names. Both read nothing but metadata when opening.

Variables keep the raw codes of the product (no decoding to floats):

=========================  =======  =========================================================
variable                   dtype    values
=========================  =======  =========================================================
``burn_date``              int16    day of year of the burn 1-366; 0 unburned land;
                                    -1 fill (unmapped: insufficient data); -2 water
``burn_date_uncertainty``  uint8    estimated uncertainty of the burn date, days
``qa``                     uint8    bit field: bit 0 land, bit 1 valid data, bit 2 mapping
                                    period shortened, bit 3 relabelled; bits 5-7 special code
``first_day``              int16    first day of reliable change detection (-1 fill, -2 water)
``last_day``               int16    last day of reliable change detection (-1 fill, -2 water)
=========================  =======  =========================================================

``burn_date`` carries CF ``flag_values``/``flag_meanings`` for the special codes and
``valid_range`` [1, 366]. Coordinates ``x``/``y`` are cell centres in metres of the MODIS
sinusoidal CRS (:data:`~firesmoke.io.sinusoidal.SINUSOIDAL_PROJ4`), built from the grid
metadata (``UpperLeftPointMtrs``, ``LowerRightMtrs``, ``XDim``, ``YDim``), never assumed;
the CRS and transform are attached the rioxarray way. The month (from ``AYYYYDDD`` in the
name, else from the ``year``/``ProductStartDay`` attributes) is the scalar ``time``
coordinate; the tile is in ``attrs`` (``tile``, ``tile_h``, ``tile_v``).

Daily burned fraction
---------------------
:func:`daily_burned_fraction` builds the BA-Net training target ``bafrac`` (banet.md,
"Targets"): for each day ``d`` and region pixel ``p``::

    fraction(d, p) = area of cells with burn_date == d in p / area of observed cells in p

Observed cells are those with ``burn_date >= 0`` (land, burned or not) or ``== -2``
(water, observed and never burned); fill cells (-1, unmapped) are left out of both sums,
so a pixel with no observed cell is NaN, as are days with no source file. Areas come from
supersampling (:func:`firesmoke.io.sinusoidal.cell_footprints`): each ~463 m cell is split
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
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from firesmoke.errors import CorruptFileError, InputError, SkippedInput, WrongProductError
from firesmoke.grid import Region
from firesmoke.io import hdf4
from firesmoke.io.sinusoidal import (
    SINUSOIDAL_PROJ4,
    _lon_intervals,
    cell_footprints,
    sinusoidal_crs,
    tile_of_point,
    tiles_for_bbox,
    x_range_of_band,
)

__all__ = [
    "BURN_DATE_FILL",
    "BURN_DATE_UNBURNED",
    "BURN_DATE_WATER",
    "BurnedAreaSource",
    "BurnedFractionPlan",
    "daily_burned_fraction",
    "mcd64_tiles_for_region",
    "open_mcd64",
    "open_mcd64_geotiff",
    "open_mcd64a1",
    "parse_mcd64_name",
    "plan_burned_fraction",
]

log = logging.getLogger(__name__)

BURN_DATE_UNBURNED = 0
BURN_DATE_FILL = -1
BURN_DATE_WATER = -2

#: SDS name -> variable name.
SDS_VARIABLES: dict[str, str] = {
    "Burn Date": "burn_date",
    "Burn Date Uncertainty": "burn_date_uncertainty",
    "QA": "qa",
    "First Day": "first_day",
    "Last Day": "last_day",
}
#: GeoTIFF layer (file name suffix) -> variable name.
GEOTIFF_LAYERS: dict[str, str] = {
    "burndate": "burn_date",
    "ba_uncertainty": "burn_date_uncertainty",
    "ba_qa": "qa",
    "ba_firstday": "first_day",
    "ba_lastday": "last_day",
}

_DAY_FLAGS = {
    "flag_values": np.array([0, -1, -2], dtype=np.int16),
    "flag_meanings": "unburned fill_unmapped water",
}
_VAR_ATTRS: dict[str, dict[str, Any]] = {
    "burn_date": {
        "long_name": "burn date (ordinal day of the calendar year)",
        "units": "1",
        "valid_range": np.array([1, 366], dtype=np.int16),
        **_DAY_FLAGS,
        "comment": "raw MCD64A1 codes: 1-366 day of burn, 0 unburned, -1 fill (unmapped), -2 water",
    },
    "burn_date_uncertainty": {"long_name": "estimated uncertainty in burn date", "units": "days"},
    "qa": {
        "long_name": "quality assurance bit field",
        "units": "1",
        "flag_masks": np.array([1, 2, 4, 8], dtype=np.uint8),
        "flag_meanings": "land valid_data mapping_period_shortened relabeled",
        "comment": "bits 5-7: special condition code",
    },
    "first_day": {"long_name": "first day of reliable change detection", "units": "1", **_DAY_FLAGS},
    "last_day": {"long_name": "last day of reliable change detection", "units": "1", **_DAY_FLAGS},
}

_HDF_NAME = re.compile(
    r"^(?P<product>MCD64A1)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"(?:\.(?P<collection>\d{3}))?(?:\.(?P<production>\d+))?.*\.hdf$",
    re.IGNORECASE,
)
_TIF_NAME = re.compile(
    r"^(?P<product>MCD64monthly)\.A(?P<year>\d{4})(?P<doy>\d{3})\.Win(?P<window>\d{2})"
    r"\.(?P<collection>\d{3})\.(?P<layer>[A-Za-z_]+)\.tiff?$",
    re.IGNORECASE,
)


# ----------------------------------------------------------------------------- names
@dataclass(frozen=True)
class BurnedAreaSource:
    """One MCD64 file as known from its name (no I/O): kind, month and tile or window."""

    path: Path
    kind: str
    """``"hdf"`` (MCD64A1 tile) or ``"tif"`` (MCD64monthly window)."""
    month_start: date
    month_end: date
    tile: tuple[int, int] | None = None
    window: int | None = None
    collection: str = ""
    production: str = ""
    layer: str = "burndate"


def _month_end(start: date) -> date:
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def parse_mcd64_name(path: str | os.PathLike[str]) -> BurnedAreaSource | None:
    """Recognise an MCD64A1 HDF tile or MCD64monthly GeoTIFF window by its file name."""
    p = Path(path)
    m = _HDF_NAME.match(p.name) or _TIF_NAME.match(p.name)
    if not m:
        return None
    try:
        start = date(int(m["year"]), 1, 1) + timedelta(days=int(m["doy"]) - 1)
    except ValueError:
        return None
    if start.day != 1:
        log.debug("%s: AYYYYDDD is not the first day of a month", p)
    fields = m.groupdict()
    if "h" in fields:
        return BurnedAreaSource(
            p, "hdf", start, _month_end(start), tile=(int(m["h"]), int(m["v"])),
            collection=m["collection"] or "", production=m["production"] or "",
        )
    return BurnedAreaSource(
        p, "tif", start, _month_end(start), window=int(m["window"]),
        collection=m["collection"] or "", layer=m["layer"].lower(),
    )


# ----------------------------------------------------------------------------- HDF4 tile
def _check_hdf4_complete(path: Path) -> None:
    """Raise CorruptFileError when an HDF4 file is shorter than its data descriptors say.

    HDF4 files list every data element (tag, ref, offset, length) in chained blocks of
    data descriptors right after the 4-byte signature; a truncated file has elements that
    end beyond its size. Reading the descriptor chain costs a few small reads.
    """
    if not path.is_file():
        raise CorruptFileError("file not found", path=path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x0e\x03\x13\x01":
                raise CorruptFileError("not an HDF4 file (bad signature)" if size else "file is empty", path=path)
            offset, seen, end = 4, set(), 0
            while offset:
                if offset in seen or offset + 6 > size:
                    raise CorruptFileError(f"broken HDF4 descriptor chain at byte {offset} (file truncated or corrupt)", path=path)
                seen.add(offset)
                fh.seek(offset)
                ndds, nxt = struct.unpack(">hi", fh.read(6))
                raw = fh.read(12 * ndds) if ndds >= 0 else b""
                if ndds < 0 or nxt < 0 or len(raw) < 12 * ndds:
                    raise CorruptFileError(f"HDF4 descriptor block at byte {offset} is cut short or corrupt (file truncated?)", path=path)
                for i in range(ndds):
                    tag, _ref, off, length = struct.unpack_from(">HHii", raw, 12 * i)
                    if tag != 1 and off > 0 and length > 0:  # tag 1 = DFTAG_NULL (unused slot)
                        end = max(end, off + length)
                offset = nxt
    except OSError as exc:
        raise CorruptFileError(f"cannot read file ({exc})", path=path) from exc
    if end > size:
        raise CorruptFileError(f"file truncated: data run to byte {end} but the file has {size} bytes", path=path)


@dataclass(frozen=True)
class _HdfMeta:
    grid: hdf4.GridInfo
    transform: Affine
    shape: tuple[int, int]
    attrs: dict[str, Any]
    sds: dict[str, dict[str, Any]]
    tile: tuple[int, int]
    month_start: date


def _hdf_meta(path: Path) -> _HdfMeta:
    """Metadata of an MCD64A1 tile (no pixel read); raise CorruptFileError/WrongProductError."""
    _check_hdf4_complete(path)
    attrs = hdf4.read_attributes(path)
    text = attrs.get("StructMetadata.0")
    if not isinstance(text, str):
        raise WrongProductError("no HDF-EOS StructMetadata.0: not an MCD64A1 tile", path=path)
    grid = hdf4.grid_info(text, path=path)
    sds = hdf4.sds_info(path)
    if "Burn Date" not in sds or "SNSOID" not in grid.projection.upper():
        raise WrongProductError(
            f"not an MCD64A1 tile: grid {grid.name!r} ({grid.projection}) with layers "
            f"{', '.join(sorted(sds)) or 'none'}; expected a GCTP_SNSOID grid with 'Burn Date'",
            path=path,
        )
    (ulx, uly), (lrx, lry) = grid.upper_left, grid.lower_right
    if grid.xdim <= 0 or grid.ydim <= 0 or not (lrx > ulx and uly > lry):
        raise WrongProductError(f"implausible grid geometry {grid}", path=path)
    if sds["Burn Date"]["shape"] != (grid.ydim, grid.xdim):
        raise CorruptFileError(
            f"'Burn Date' is {sds['Burn Date']['shape']} but the grid says {(grid.ydim, grid.xdim)}", path=path
        )
    transform = Affine((lrx - ulx) / grid.xdim, 0.0, ulx, 0.0, (lry - uly) / grid.ydim, uly)
    tile = tile_of_point(ulx + 0.5 * (lrx - ulx) / grid.xdim, uly + 0.5 * (lry - uly) / grid.ydim)
    named = parse_mcd64_name(path)
    if named is not None:
        month = named.month_start
        if named.tile != tile:
            log.warning("%s: file name says tile h%02dv%02d, grid metadata say h%02dv%02d (using the metadata)",
                        path, *(named.tile or (-1, -1)), *tile)
    else:
        try:
            month = date(int(attrs["year"]), 1, 1) + timedelta(days=int(attrs["ProductStartDay"]) - 1)
        except (KeyError, TypeError, ValueError) as exc:
            raise WrongProductError("cannot tell the month: no AYYYYDDD in the name and no year/ProductStartDay", path=path) from exc
    return _HdfMeta(grid, transform, (grid.ydim, grid.xdim), attrs, sds, tile, month)


def _read_sds(path: Path, name: str, window: tuple[slice, slice]) -> np.ndarray:
    """:func:`hdf4.read_sds` that also turns pyhdf's bare ``ValueError`` into CorruptFileError."""
    try:
        data, _ = hdf4.read_sds(path, name, window=window)
    except InputError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:  # pyhdf: "SDreaddata failure"
        raise CorruptFileError(f"cannot read SDS ({exc}); file corrupt?", path=path, field=name) from exc
    return np.asarray(data)


class _SdsArray:
    """Array-like view of one SDS for :func:`dask.array.from_array`; reads through the HDF4 lock."""

    def __init__(self, path: Path, name: str, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.path, self.name, self.shape, self.dtype = path, name, shape, np.dtype(dtype)
        self.ndim = 2

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        rows, cols = (k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        r = range(*rows.indices(self.shape[0]))
        c = range(*cols.indices(self.shape[1]))
        if len(r) == 0 or len(c) == 0:
            return np.empty((len(r), len(c)), self.dtype)
        data = _read_sds(self.path, self.name, (slice(r.start, r.stop), slice(c.start, c.stop)))
        data = np.asarray(data, dtype=self.dtype)[:: r.step, :: c.step]
        squeeze = tuple(i for i, k in enumerate(key) if not isinstance(k, slice))
        return data.squeeze(axis=squeeze) if squeeze else data

    def __dask_tokenize__(self) -> tuple:
        st = self.path.stat()
        return ("firesmoke-sds", str(self.path), st.st_size, st.st_mtime_ns, self.name)


def _chunks_arg(chunks: Any, shape: tuple[int, int]) -> Any:
    if chunks is None:
        return shape
    if isinstance(chunks, dict):
        return (chunks.get("y", shape[0]), chunks.get("x", shape[1]))
    return chunks


def _sds_dtype(name: str) -> np.dtype:
    return np.dtype(np.uint8) if name in ("QA", "Burn Date Uncertainty") else np.dtype(np.int16)


def open_mcd64a1(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open an MCD64A1 HDF4 tile lazily (dask), with sinusoidal x/y and the CRS attached.

    Parameters
    ----------
    path
        ``MCD64A1.AYYYYDDD.hHHvVV.CCC.PRODUCTION.hdf``.
    chunks
        Dask chunks: None (one chunk per layer, the default), an int, a ``(y, x)`` tuple,
        a ``{"y": .., "x": ..}`` dict or ``"auto"``.

    Returns
    -------
    xarray.Dataset
        Variables ``burn_date``, ``burn_date_uncertainty``, ``qa``, ``first_day``,
        ``last_day`` (those present) with raw codes (see the module docstring); dims
        ``(y, x)``; scalar ``time`` = first day of the month.

    Raises
    ------
    CorruptFileError
        Missing, empty, truncated or undecodable file.
    WrongProductError
        Readable HDF4 that is not an MCD64A1 sinusoidal tile.
    """
    import dask.array as da
    import rioxarray  # noqa: F401  (registers .rio)

    p = Path(path)
    meta = _hdf_meta(p)
    ny, nx = meta.shape
    t = meta.transform
    x = t.c + (np.arange(nx) + 0.5) * t.a
    y = t.f + (np.arange(ny) + 0.5) * t.e
    data_vars = {}
    for sds_name, var in SDS_VARIABLES.items():
        info = meta.sds.get(sds_name)
        if info is None:
            log.debug("%s: no %r layer", p, sds_name)
            continue
        if tuple(info["shape"]) != meta.shape:
            log.warning("%s: layer %r has shape %s, not the grid's %s; left out", p, sds_name, info["shape"], meta.shape)
            continue
        dtype = _sds_dtype(sds_name)
        arr = da.from_array(
            _SdsArray(p, sds_name, meta.shape, dtype),
            chunks=_chunks_arg(chunks, meta.shape),
            lock=False,  # hdf4.read_sds holds the process-wide HDF4 lock
            meta=np.empty((0, 0), dtype),
            name=f"mcd64a1-{var}-" + _token(p, chunks),
        )
        attrs = dict(_VAR_ATTRS[var])
        attrs["hdf4_sds"] = sds_name
        data_vars[var] = (("y", "x"), arr, attrs)
    h, v = meta.tile
    ds = xr.Dataset(
        data_vars,
        coords={
            "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate", "long_name": "y of cell centre", "axis": "Y"}),
            "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate", "long_name": "x of cell centre", "axis": "X"}),
            "time": ((), np.datetime64(meta.month_start, "ns"), {"long_name": "first day of the month", "axis": "T"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "MODIS MCD64A1 monthly burned area",
            "product": "MCD64A1",
            "source_file": str(p),
            "tile": f"h{h:02d}v{v:02d}",
            "tile_h": h,
            "tile_v": v,
            "grid_name": meta.grid.name,
            "crs_proj4": SINUSOIDAL_PROJ4,
            "time_coverage_start": meta.month_start.isoformat(),
            "time_coverage_end": _month_end(meta.month_start).isoformat(),
            **{k: _plain(meta.attrs[k]) for k in ("BurnedCells", "MissingCells", "LandCells", "ValidLandCells",
                                                    "ProductStartDay", "ProductEndDay", "year", "CodeVersion",
                                                    "identifier_product_doi") if k in meta.attrs},
        },
    )
    ds = ds.rio.write_crs(sinusoidal_crs()).rio.write_transform(t)
    return ds


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _token(path: Path, chunks: Any) -> str:
    from dask.base import tokenize

    st = path.stat()
    return tokenize(str(path.resolve()), st.st_size, st.st_mtime_ns, repr(chunks))


# ----------------------------------------------------------------------------- GeoTIFF window
def _tif_chunks(chunks: Any) -> dict[str, Any]:
    if chunks is None:
        return {"band": 1, "y": -1, "x": -1}
    if isinstance(chunks, dict):
        return {"band": 1, **chunks}
    if isinstance(chunks, (tuple, list)):
        return {"band": 1, "y": chunks[0], "x": chunks[1]}
    return {"band": 1, "y": chunks, "x": chunks}


def open_mcd64_geotiff(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open a UMD ``MCD64monthly`` GeoTIFF window (``*.burndate.tif``) with rioxarray.

    Sibling layers with the same stem (``ba_qa``, ``ba_uncertainty``, ``ba_firstday``,
    ``ba_lastday``) are added when present and on the same grid. Values are raw codes as
    in :func:`open_mcd64a1`; CRS and transform come from the file.

    Raises
    ------
    CorruptFileError
        The file cannot be opened as a raster.
    WrongProductError
        The raster has more than one band or an unknown layer name.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    named = parse_mcd64_name(p)
    if named is None or named.kind != "tif":
        raise WrongProductError("not an MCD64monthly GeoTIFF name (MCD64monthly.AYYYYDDD.WinNN.CCC.LAYER.tif)", path=p)
    stem = p.name[: p.name.lower().rindex("." + named.layer + ".")]
    layers = {named.layer: p}
    for layer in GEOTIFF_LAYERS:
        for q in p.parent.glob(f"{stem}.{layer}.tif"):
            layers.setdefault(layer, q)
    data_vars: dict[str, xr.DataArray] = {}
    ref: xr.DataArray | None = None
    for layer, q in layers.items():
        var = GEOTIFF_LAYERS.get(layer, layer)
        try:
            arr = rioxarray.open_rasterio(q, chunks=_tif_chunks(chunks), masked=False, cache=False)
        except (rasterio.errors.RasterioError, OSError, ValueError) as exc:
            if q == p:
                raise CorruptFileError(f"cannot open GeoTIFF ({exc})", path=q) from exc
            log.warning("%s: cannot open sibling layer, left out (%s)", q, exc)
            continue
        if arr.sizes.get("band", 1) != 1:
            raise WrongProductError(f"expected one band, found {arr.sizes['band']}", path=q)
        arr = arr.squeeze("band", drop=True)
        if ref is not None and (arr.shape != ref.shape or arr.rio.transform() != ref.rio.transform()):
            log.warning("%s: not on the grid of %s; left out", q, p)
            continue
        ref = ref if ref is not None else arr
        fill = arr.attrs.pop("_FillValue", None)
        attrs = {k: v for k, v in arr.attrs.items() if k not in ("scale_factor", "add_offset", "AREA_OR_POINT")}
        attrs.update(_VAR_ATTRS.get(var, {}))
        if fill is not None:
            arr.encoding["_FillValue"] = fill
        data_vars[var] = arr.assign_attrs(attrs)
    if ref is None:  # pragma: no cover - the main layer either opens or raises above
        raise CorruptFileError("no readable layer", path=p)
    ds = xr.Dataset(data_vars).assign_coords(time=np.datetime64(named.month_start, "ns"))
    ds.attrs.update(
        {
            "Conventions": "CF-1.8",
            "title": "MODIS MCD64monthly burned area (GeoTIFF window)",
            "product": "MCD64monthly",
            "source_file": str(p),
            "window": named.window,
            "time_coverage_start": named.month_start.isoformat(),
            "time_coverage_end": named.month_end.isoformat(),
        }
    )
    return ds.rio.write_crs(ref.rio.crs).rio.write_transform(ref.rio.transform())


def open_mcd64(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open an MCD64A1 HDF4 tile or an MCD64monthly GeoTIFF window (by file type)."""
    p = Path(path)
    if p.suffix.lower() in (".tif", ".tiff"):
        return open_mcd64_geotiff(p, chunks=chunks)
    return open_mcd64a1(p, chunks=chunks)


def mcd64_tiles_for_region(region: Region | str | os.PathLike[str]) -> list[tuple[int, int]]:
    """MODIS sinusoidal tiles ``(h, v)`` that intersect a region (sorted by v, then h)."""
    return tiles_for_bbox(Region.resolve(region).bbox)


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
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot interpret {value!r} as a date", field=name) from exc
    if ts is pd.NaT:
        raise InputError(f"cannot interpret {value!r} as a date", field=name)
    return ts.date()


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
                if q.is_file() and q.name.lower().startswith("mcd64")
                and q.suffix.lower() in (".hdf", ".tif", ".tiff")
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

    Folders are searched recursively for ``MCD64*.hdf`` / ``MCD64*.tif`` files (other
    products in the same tree are ignored). Files are first sorted out by name alone
    (month outside the period, tile not touching the region: left out without being
    opened, logged at debug level). The remaining files have their metadata checked
    (HDF4 descriptors, grid, layers; GeoTIFF header); unreadable or wrong files are
    returned in :attr:`BurnedFractionPlan.skipped` with the reason, as are unrecognised
    file names and older duplicates of a tile-month (the newest collection/production is
    used).
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
            else:
                skipped.append(SkippedInput(str(path), "not an MCD64A1 tile or MCD64monthly burndate GeoTIFF name"))
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
        months.append((max(m0, d0), min(m1, d1), srcs))
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
    if src.kind == "hdf":
        meta = _hdf_meta(src.path)
        win = _sinusoidal_window(meta.transform, meta.shape, region)
        if win[0] == win[1] or win[2] == win[3]:
            return np.empty((0, 0), np.int16), meta.transform, win, "sinusoidal", None
        data = _read_sds(src.path, "Burn Date", (slice(win[0], win[1]), slice(win[2], win[3])))
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
    sources: Sequence[BurnedAreaSource], region: Region, first: date, ndays: int, supersample: int | None
) -> np.ndarray:
    """Burned fraction ``(ndays, height, width)`` float32 for days ``first .. first + ndays - 1``."""
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
) -> xr.DataArray:
    """Daily burned fraction of each region pixel from MCD64A1 tiles / MCD64monthly windows.

    Parameters
    ----------
    region
        Target grid (:class:`~firesmoke.grid.Region`, shipped name or JSON path).
    sources
        Files, folders (searched recursively) or glob patterns of MCD64A1 HDF tiles and/or
        MCD64monthly ``*.burndate.tif`` windows; several tiles and months are combined.
    start, end
        First and last UTC day (inclusive).
    supersample
        Sub-cells per source cell side (k) used for area weighting; None (default) picks
        ``max(4, ceil(2 * cell size / pixel size))`` per source (4 for MCD64A1 on 0.01
        degree grids), so every region pixel receives sub-cells even from coarse sources.

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
        task = dask.delayed(_month_fraction, pure=True)(srcs, reg, first, ndays, k)
        blocks.append(da.from_delayed(task, shape=(ndays, height, width), dtype=np.float32))
    data = da.concatenate(blocks, axis=0)
    days = np.arange(np.datetime64(plan.start, "D"), np.datetime64(plan.end, "D") + 1).astype("datetime64[ns]")
    ds = reg.coords_dataset(time=days)
    used = [str(s.path) for _, _, srcs in plan.months for s in srcs]
    ds["burned_fraction"] = (
        ("time", "y", "x"),
        data,
        {
            "long_name": "fraction of the pixel area burned on the day (MCD64A1 burn date)",
            "units": "1",
            "valid_range": np.array([0.0, 1.0], dtype=np.float32),
            "comment": (
                "area of cells with burn date == day / area of observed cells (burn date >= 0 or water); "
                "fill cells excluded; area weighting by supersampling each cell with k x k sub-cells "
                f"(k = {supersample or 'auto'})"
            ),
            "sources": used,
            "skipped_inputs": [f"{s.path}: {s.reason}" for s in plan.skipped],
        },
    )
    ds = ds.rio.write_crs(reg.crs)
    return ds["burned_fraction"]
