"""Sentinel-2 readers: bands, chip names and the 13-band chips of the smoke dataset.

* :data:`BANDS`, :data:`SMOKE_BANDS`, :data:`BAND_INFO`: band order and properties.
* :func:`parse_chip_name` / :func:`format_chip_name`: ``<siteid>_<timestamp>_<n>.tif``.
* :func:`open_chip` / :func:`read_chips`: the 120 x 120 chips of the industrial smoke
  plume dataset (reference/smoke.md), padded like the reference (last row/column repeated).

Two sibling modules hold the rest (they import this one, never the other way round):

* :mod:`firesmoke.io.sentinel2.dataset`: :func:`open_smoke_dataset` indexes ``positive/``,
  ``negative/`` and ``labels/`` folders (:class:`SmokeDataset`, :func:`split_by_site`);
* :mod:`firesmoke.io.sentinel2.scenes`: :func:`open_scene`, whole scenes as a lazy
  ``(time, band, y, x)`` cube from STAC items (through :func:`stackstac.stack`) or GeoTIFFs.

Values stay Level-2A digital numbers (reflectance x 1e4), the unit the models' normalisation
constants are given in. Nothing here does any other processing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioError

from firesmoke.errors import (
    GridMismatchError,
    InputError,
    WrongProductError,
)
from firesmoke.io._core.geotiff import check_georeferenced, geotiff_error, verify_blocks
from firesmoke.io.sentinel2.bandnames import band_positions, file_band_names
from firesmoke.io.sentinel2.labels import read_labels

__all__ = [
    "BANDS",
    "BAND_INFO",
    "CHIP_SIZE",
    "SMOKE_BANDS",
    "BandInfo",
    "ChipName",
    "check_chip_bands",
    "chip_band_positions",
    "format_chip_name",
    "open_chip",
    "pad_to_size",
    "parse_chip_name",
    "read_chips",
    "read_labels",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class BandInfo:
    """Sentinel-2 MSI band: common name, centre wavelength and FWHM (micrometres), native pixel size (m)."""

    name: str
    common_name: str
    center_wavelength: float
    full_width_half_max: float
    resolution: int


BAND_INFO: dict[str, BandInfo] = {
    b.name: b
    for b in (
        BandInfo("B01", "coastal", 0.443, 0.021, 60),
        BandInfo("B02", "blue", 0.490, 0.066, 10),
        BandInfo("B03", "green", 0.560, 0.036, 10),
        BandInfo("B04", "red", 0.665, 0.031, 10),
        BandInfo("B05", "rededge", 0.704, 0.015, 20),
        BandInfo("B06", "rededge", 0.740, 0.015, 20),
        BandInfo("B07", "rededge", 0.783, 0.020, 20),
        BandInfo("B08", "nir", 0.842, 0.106, 10),
        BandInfo("B8A", "nir08", 0.865, 0.021, 20),
        BandInfo("B09", "nir09", 0.945, 0.020, 60),
        BandInfo("B10", "cirrus", 1.375, 0.031, 60),
        BandInfo("B11", "swir16", 1.610, 0.091, 20),
        BandInfo("B12", "swir22", 2.190, 0.175, 20),
    )
}
#: Band order of the smoke dataset files (13 bands).
BANDS: tuple[str, ...] = tuple(BAND_INFO)
#: The 12 bands the smoke models use: all but the cirrus band B10.
SMOKE_BANDS: tuple[str, ...] = tuple(b for b in BANDS if b != "B10")
#: Nominal chip size (pixels) of the smoke dataset.
CHIP_SIZE = 120


def _check_bands(bands: Sequence[str]) -> tuple[str, ...]:
    if isinstance(bands, str):
        bands = (bands,)
    unknown = [b for b in bands if b not in BAND_INFO]
    if unknown or not bands:
        raise InputError(
            f"unknown Sentinel-2 band(s) {unknown}; expected names from {BANDS}", field="bands"
        )
    return tuple(bands)


# --------------------------------------------------------------------------- chip names

_NAME_RE = re.compile(
    r"^(?P<site>[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*)_"
    r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})T(?P<H>\d{2})[-:](?P<M>\d{2})[-:](?P<S>\d{2})"
    r"(?:_(?P<n>\d+))?$"
)


@dataclass(frozen=True)
class ChipName:
    """Parts of a smoke-dataset file name ``<siteid>_<ISO timestamp>_<n>.tif``."""

    site_id: str
    time: pd.Timestamp
    index: int | None


def format_chip_name(site_id: str, time: datetime | pd.Timestamp, index: int = 0) -> str:
    """File name of a chip: ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` (no ':' in names)."""
    return f"{site_id}_{pd.Timestamp(time):%Y-%m-%dT%H-%M-%S}_{int(index)}.tif"


def parse_chip_name(name: str | os.PathLike[str]) -> ChipName:
    """Parse a chip file name; ``:`` or ``-`` are accepted as time separators.

    Raises
    ------
    InputError
        The name does not follow ``<siteid>_<timestamp>[_<n>].tif`` or holds an impossible date.
    """
    p = Path(name)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise InputError("not a .tif file name", path=p)
    m = _NAME_RE.match(p.stem)
    if m is None:
        raise InputError(
            "file name does not look like <siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif", path=p
        )
    try:
        t = datetime(*(int(m[k]) for k in "YmdHMS"))
    except ValueError as exc:
        raise InputError(f"impossible timestamp in file name: {exc}", path=p) from exc
    return ChipName(m["site"], pd.Timestamp(t), int(m["n"]) if m["n"] is not None else None)


# --------------------------------------------------------------------------- chips


def pad_to_size(array: np.ndarray, size: int | tuple[int, int] = CHIP_SIZE) -> np.ndarray:
    """Pad the last two axes up to ``size`` by repeating the last row/column.

    Arrays already at least ``size`` are returned unchanged (never cropped).
    """
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = array.shape[-2:]
    ph, pw = max(th - h, 0), max(tw - w, 0)
    if ph == 0 and pw == 0:
        return array
    if h == 0 or w == 0:
        raise InputError(f"cannot pad an empty array of shape {array.shape}")
    out = np.empty((*array.shape[:-2], h + ph, w + pw), dtype=array.dtype)
    out[..., :h, :w] = array
    out[..., h:, :w] = array[..., h - 1 : h, :]
    out[..., :, w:] = out[..., :, w - 1 : w]
    return out


def chip_band_positions(src: rasterio.DatasetReader, path: Any, bands: Sequence[str]) -> list[int]:
    """1-based band indexes of ``bands`` in an open chip GeoTIFF.

    Bands are found by their names in the file (band descriptions or name tags, aliases
    such as ``B8`` or ``b04`` accepted: :mod:`firesmoke.io.sentinel2.bandnames`), so
    stacks of any band count and order work (e.g. the 12 L2A bands without B10). A
    13-band file whose names do not say where the bands are is read in the smoke data
    set's order (:data:`BANDS`), with a warning when it has descriptions.

    Raises
    ------
    WrongProductError
        Not a GeoTIFF.
    MissingLayerError
        Wanted bands are not in the file (one error listing found and missing bands).
    """
    if src.driver != "GTiff":
        raise WrongProductError(f"not a GeoTIFF (GDAL driver {src.driver})", path=path)
    names = file_band_names(src)
    try:
        return [i + 1 for i in band_positions(names, bands, path)]
    except InputError:
        if src.count != len(BANDS):
            raise
    logger.warning("%s: band names %s do not name the bands %s; reading the 13 bands in the "
                   "order %s", path, names, list(bands), BANDS)
    return [BANDS.index(b) + 1 for b in bands]


def check_chip_bands(paths: Sequence[str | os.PathLike[str]], bands: Sequence[str]) -> None:
    """Check (headers only) that every chip holds ``bands``: the first chip without them
    raises the error of :func:`chip_band_positions`."""
    wanted = _check_bands(bands)
    for p in paths:
        try:
            with rasterio.open(p) as src:
                chip_band_positions(src, p, wanted)
        except InputError:
            raise
        except (RasterioError, OSError) as exc:
            raise _open_error(p, exc) from exc


def _chip_header(src: rasterio.DatasetReader, path: Any) -> None:
    if src.driver != "GTiff":
        raise WrongProductError(f"not a GeoTIFF (GDAL driver {src.driver})", path=path)
    if src.count != len(BANDS):
        raise WrongProductError(
            f"expected {len(BANDS)} Sentinel-2 bands ({', '.join(BANDS)}), found {src.count}",
            path=path,
            field="band count",
        )
    desc = [d for d in src.descriptions if d]
    if desc and tuple(src.descriptions) != BANDS:
        logger.warning(
            "%s: band descriptions %s differ from the expected order %s",
            path,
            src.descriptions,
            BANDS,
        )


def _open_error(path: Any, exc: Exception) -> InputError:
    return geotiff_error(path, exc)


def _read_chip_array(path: Any) -> tuple[np.ndarray, Any, Any, Any]:
    try:
        with rasterio.open(path) as src:
            _chip_header(src, path)
            check_georeferenced(src, path)
            verify_blocks(src, path)
            data = src.read()
            return data, src.transform, src.crs, src.nodata
    except InputError:
        raise
    except (RasterioError, OSError) as exc:
        raise _open_error(path, exc) from exc


def open_chip(path: str | os.PathLike[str], pad_to: int | None = CHIP_SIZE) -> xr.DataArray:
    """Read one 13-band smoke-dataset chip eagerly as ``(band, y, x)`` uint16.

    Parameters
    ----------
    path
        GeoTIFF with the 13 bands B01..B12 (see :data:`BANDS`), reflectance x 1e4.
    pad_to
        Pad undersized chips to ``pad_to`` x ``pad_to`` by repeating the last row/column
        (the reference rule); ``None`` keeps the native size. Coordinates are extended
        with the same spacing; the transform (top-left origin) is unchanged.

    Returns
    -------
    xarray.DataArray named ``reflectance``, dims ``(band, y, x)``, ``band`` holding the
    band names, ``y``/``x`` pixel centres, CRS/transform attached the rioxarray way and
    attrs ``source`` and ``original_shape``.

    Raises
    ------
    InputError
        Missing file; :class:`CorruptFileError` for unreadable/truncated files;
        :class:`WrongProductError` for non-GeoTIFFs or a band count other than 13.
    """
    data, transform, crs, nodata = _read_chip_array(path)
    if transform.b != 0 or transform.d != 0:
        raise WrongProductError("rotated/sheared geotransforms are not supported", path=path)
    h, w = data.shape[1:]
    if pad_to is not None:
        data = pad_to_size(data, pad_to)
    ny, nx = data.shape[1:]
    x = transform.c + (np.arange(nx) + 0.5) * transform.a
    y = transform.f + (np.arange(ny) + 0.5) * transform.e
    coords: dict[str, Any] = {"band": list(BANDS), "y": y, "x": x}
    if crs is not None:
        coords["spatial_ref"] = xr.Variable(
            (), 0, attrs=_spatial_ref_attrs(crs.to_wkt(), tuple(transform)[:6])
        )
    else:
        logger.warning("%s: chip has no CRS", path)
    attrs = {
        "long_name": "Sentinel-2 L2A reflectance x 1e4",
        "units": "1",
        "source": os.fspath(path),
        "original_shape": (h, w),
    }
    if nodata is not None:
        attrs["_FillValue"] = nodata
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name="reflectance", attrs=attrs)
    if crs is not None:
        da.encoding["grid_mapping"] = "spatial_ref"
    else:
        da = da.rio.write_transform(transform)
    return da


@lru_cache(maxsize=64)
def _crs_attrs(wkt: str) -> dict[str, Any]:
    """CF grid-mapping attributes of a CRS, as rioxarray writes them (cached: it is slow)."""
    probe = xr.DataArray(np.zeros((1, 1)), dims=("y", "x")).rio.write_crs(wkt)
    return dict(probe.coords["spatial_ref"].attrs)


def _spatial_ref_attrs(wkt: str, gt: tuple[float, ...]) -> dict[str, Any]:
    a, b, c, d, e, f = gt
    return {**_crs_attrs(wkt), "GeoTransform": f"{c!r} {a!r} {b!r} {f!r} {d!r} {e!r}"}


def read_chips(
    paths: Sequence[str | os.PathLike[str]],
    bands: Sequence[str] = SMOKE_BANDS,
    pad_to: int = CHIP_SIZE,
    max_workers: int | None = None,
) -> np.ndarray:
    """Read many chips into one ``(n, len(bands), pad_to, pad_to)`` uint16 array.

    Bands are found in each file by their names (:func:`chip_band_positions`: any band
    count and order, aliases accepted; 13 unnamed bands are the smoke data set's order).
    Files are opened once each and closed; reads run in a thread pool (GDAL releases the
    GIL). Chips larger than ``pad_to`` raise :class:`GridMismatchError`; a chip without
    some of ``bands`` raises :class:`~firesmoke.errors.MissingLayerError`.
    """
    wanted = _check_bands(bands)
    out = np.empty((len(paths), len(wanted), pad_to, pad_to), dtype=np.uint16)

    def one(i: int) -> None:
        p = paths[i]
        try:
            with rasterio.open(p) as src:
                idx = chip_band_positions(src, p, wanted)
                if src.height > pad_to or src.width > pad_to:
                    raise GridMismatchError(
                        f"chip is {src.height} x {src.width}, larger than {pad_to}", path=p
                    )
                arr = src.read(idx, out_dtype=np.uint16)
        except InputError:
            raise
        except (RasterioError, OSError) as exc:
            raise _open_error(p, exc) from exc
        out[i] = pad_to_size(arr, pad_to)

    if max_workers == 1 or len(paths) < 4:
        for i in range(len(paths)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=max_workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(one, range(len(paths))))
    return out
