"""MCD64A1 / VNP64A1 burned area: readers of the monthly tiles and GeoTIFF windows.

Readers
-------
:func:`open_burned_area_tile` opens one HDF4-EOS sinusoidal tile of MODIS MCD64A1
(``MCD64A1.AYYYYDDD.hHHvVV.CCC.PRODUCTION.hdf``) or of its VIIRS successor VNP64A1
(``VNP64A1.AYYYYDDD.hHHvVV.002.PRODUCTION.hdf``, and NOAA-20's VJ164A1) as a lazy
:class:`xarray.Dataset`: the two products share one layout (grid, SDS names and codes,
global attributes), so one code path reads both, parametrised by the product (from the
file name, else the ``ShortName`` attribute). :func:`open_mcd64a1` and
:func:`firesmoke.io.burned_area.vnp64.open_vnp64a1` are that reader.
:func:`open_mcd64_geotiff` opens the
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
sinusoidal CRS (:data:`~firesmoke.io.burned_area.sinusoidal.SINUSOIDAL_PROJ4`), built from the grid
metadata (``UpperLeftPointMtrs``, ``LowerRightMtrs``, ``XDim``, ``YDim``), never assumed;
the CRS and transform are attached the rioxarray way. The month (from ``AYYYYDDD`` in the
name, else from the ``year``/``ProductStartDay`` attributes) is the scalar ``time``
coordinate; the tile is in ``attrs`` (``tile``, ``tile_h``, ``tile_v``).

Daily burned fraction
---------------------
The BA-Net training target (:func:`daily_burned_fraction`, :func:`plan_burned_fraction`,
:class:`BurnedFractionPlan`) lives in :mod:`firesmoke.io.burned_area.fraction`, which builds on
the readers of this module (never the other way round).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from firesmoke.errors import CorruptFileError, InputError, WrongProductError
from firesmoke.grid import Region
from firesmoke.io._core import hdf4
from firesmoke.io.burned_area.codes import (
    _VAR_ATTRS,
    BURN_DATE_FILL,
    BURN_DATE_UNBURNED,
    BURN_DATE_WATER,
    GEOTIFF_LAYERS,
    SDS_VARIABLES,
    BurnedAreaSource,
    _chunks_arg,
    _plain,
    _sds_dtype,
    _token,
    parse_mcd64_name,
    sinusoidal_tile_dataset,
    tile_month,
)
from firesmoke.io.burned_area.sinusoidal import (
    tile_bounds,
    tile_of_point,
    tiles_for_bbox,
)

__all__ = [
    "BURN_DATE_FILL",
    "BURN_DATE_UNBURNED",
    "BURN_DATE_WATER",
    "BurnedAreaSource",
    "mcd64_tiles_for_region",
    "open_burned_area_tile",
    "open_mcd64",
    "open_mcd64_geotiff",
    "open_mcd64a1",
    "parse_mcd64_name",
]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- HDF4 tile
@dataclass(frozen=True)
class _HdfMeta:
    product: str
    grid: hdf4.GridInfo
    transform: Affine
    shape: tuple[int, int]
    attrs: dict[str, Any]
    sds: dict[str, dict[str, Any]]
    tile: tuple[int, int]
    month_start: date


def _product_of(named: Any, attrs: dict[str, Any]) -> str:
    """The tile's product: from its name, else its ``ShortName`` attribute, else MCD64A1
    (whose files carry the short name only inside ``CoreMetadata.0``)."""
    if named is not None:
        return named.product
    short = attrs.get("ShortName")
    return short.strip().upper() if isinstance(short, str) and short.strip() else "MCD64A1"


def _hdf_meta(path: Path) -> _HdfMeta:
    """Metadata of an MCD64A1 or VNP64A1 tile (no pixel read); raise
    CorruptFileError/WrongProductError.

    Truncated files are refused by :func:`firesmoke.io._core.hdf4.check_hdf4_complete`, which
    :func:`firesmoke.io._core.hdf4.open_sd` runs before pyhdf opens the file.
    """
    named = parse_mcd64_name(path)
    if path.suffix.lower() == ".h5":
        raise WrongProductError(
            "HDF5 file: MCD64A1 and VNP64A1 tiles are distributed as HDF4 (.hdf, HDF-EOS2); "
            "download the tile again from LP DAAC / LAADS", path=path)
    attrs = hdf4.read_attributes(path)
    product = _product_of(named, attrs)
    text = attrs.get("StructMetadata.0")
    if not isinstance(text, str):
        raise WrongProductError(f"no HDF-EOS StructMetadata.0: not an {product} tile", path=path)
    grid = hdf4.grid_info(text, path=path)
    sds = hdf4.sds_info(path)
    if "Burn Date" not in sds or "SNSOID" not in grid.projection.upper():
        raise WrongProductError(
            f"not an {product} tile: grid {grid.name!r} ({grid.projection}) with layers "
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
    _check_tile_corner(path, (ulx, uly), abs(transform.a), tile, named.tile if named is not None else None)
    month = tile_month(named, attrs, path)
    return _HdfMeta(product, grid, transform, (grid.ydim, grid.xdim), attrs, sds, tile, month)


def _check_tile_corner(
    path: Path,
    corner: tuple[float, float],
    cell: float,
    tile: tuple[int, int],
    named_tile: tuple[int, int] | None,
) -> None:
    """Refuse a grid whose upper-left corner is not that of its sinusoidal tile.

    MCD64A1 grids start at a tile corner (to a hundredth of a cell; the real files round
    it to the millimetre); a corner elsewhere, or one that is the corner of another tile
    than the file name's ``hHHvVV``, means damaged metadata or a mislabelled file, and its
    pixels would be placed wrongly.
    """
    left, _, _, top = tile_bounds(*tile)
    tol = 0.01 * cell
    if abs(corner[0] - left) > tol or abs(corner[1] - top) > tol:
        raise WrongProductError(
            f"grid corner ({corner[0]:.3f}, {corner[1]:.3f}) m is not a sinusoidal tile corner "
            f"(tile h{tile[0]:02d}v{tile[1]:02d} starts at ({left:.3f}, {top:.3f})); metadata damaged?",
            path=path,
        )
    if named_tile is not None and named_tile != tile:
        raise WrongProductError(
            f"file name says tile h{named_tile[0]:02d}v{named_tile[1]:02d} but the grid corner "
            f"({corner[0]:.3f}, {corner[1]:.3f}) m is that of tile h{tile[0]:02d}v{tile[1]:02d}",
            path=path,
        )


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


#: Titles of the tile products (the dataset's ``title``).
_TITLES = {"MCD64A1": "MODIS MCD64A1 monthly burned area",
           "VNP64A1": "VIIRS S-NPP VNP64A1 monthly burned area",
           "VJ164A1": "VIIRS NOAA-20 VJ164A1 monthly burned area"}
#: Global attributes of the tiles kept in the dataset's attributes.
_KEPT_ATTRS = ("BurnedCells", "MissingCells", "LandCells", "ValidLandCells", "ProductStartDay",
               "ProductEndDay", "year", "CodeVersion", "identifier_product_doi")


def open_mcd64a1(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open an MCD64A1 HDF4 tile lazily: :func:`open_burned_area_tile` (which reads the
    VNP64A1 tiles of the same layout too; ``attrs["product"]`` says which)."""
    return open_burned_area_tile(path, chunks=chunks)


def open_burned_area_tile(path: str | os.PathLike[str], chunks: Any = None,
                          product: str | None = None) -> xr.Dataset:
    """Open an MCD64A1 or VNP64A1 HDF4 tile lazily (dask), with sinusoidal x/y and the CRS attached.

    Parameters
    ----------
    path
        ``MCD64A1.AYYYYDDD.hHHvVV.CCC.PRODUCTION.hdf`` or
        ``VNP64A1.AYYYYDDD.hHHvVV.002.PRODUCTION.hdf``.
    chunks
        Dask chunks: None (one chunk per layer, the default), an int, a ``(y, x)`` tuple,
        a ``{"y": .., "x": ..}`` dict or ``"auto"``.
    product
        Expected product (``"MCD64A1"``, ``"VNP64A1"``); None accepts any tile product.

    Returns
    -------
    xarray.Dataset
        Variables ``burn_date``, ``burn_date_uncertainty``, ``qa``, ``first_day``,
        ``last_day`` (those present) with raw codes (see the module docstring); dims
        ``(y, x)``; scalar ``time`` = first day of the month; ``attrs["product"]``.

    Raises
    ------
    CorruptFileError
        Missing, empty, truncated or undecodable file.
    WrongProductError
        Readable HDF4 that is not an MCD64A1/VNP64A1 sinusoidal tile (or not ``product``).
    """
    import dask.array as da

    p = Path(path)
    meta = _hdf_meta(p)
    if product is not None and meta.product != product.upper():
        raise WrongProductError(f"a {meta.product} tile, not {product.upper()}", path=p)
    t = meta.transform
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
            name=f"{meta.product.lower()}-{var}-" + _token(p, chunks),
        )
        attrs = dict(_VAR_ATTRS[var])
        attrs["hdf4_sds"] = sds_name
        data_vars[var] = (("y", "x"), arr, attrs)
    extra = {k: _plain(meta.attrs[k]) for k in _KEPT_ATTRS if k in meta.attrs}
    return sinusoidal_tile_dataset(data_vars, t, meta.shape, meta.month_start, meta.tile,
                                   product=meta.product,
                                   title=_TITLES.get(meta.product, f"{meta.product} monthly burned area"),
                                   source=p, grid_name=meta.grid.name, extra_attrs=extra)


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
        The file cannot be opened as a raster, or it lacks a CRS or geotransform.
    WrongProductError
        The raster has more than one band or an unknown layer name.
    """
    from firesmoke.io._core.geotiff import open_checked_geotiff  # deferred: rasterio (~0.2 s)

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
        try:  # header checked (CRS, geotransform); read errors name the file
            arr = open_checked_geotiff(q, _tif_chunks(chunks))
        except InputError as exc:
            if q == p:
                raise
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
    """Open an MCD64A1 or VNP64A1 HDF4 tile or an MCD64monthly GeoTIFF window (by file type)."""
    p = Path(path)
    if p.suffix.lower() in (".tif", ".tiff"):
        return open_mcd64_geotiff(p, chunks=chunks)
    return open_burned_area_tile(p, chunks=chunks)


def mcd64_tiles_for_region(region: Region | str | os.PathLike[str]) -> list[tuple[int, int]]:
    """MODIS sinusoidal tiles ``(h, v)`` that intersect a region (sorted by v, then h)."""
    return tiles_for_bbox(Region.resolve(region).bbox)
