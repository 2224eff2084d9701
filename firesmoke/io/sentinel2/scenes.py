"""Whole Sentinel-2 scenes as a lazy ``(time, band, y, x)`` cube, from STAC items or GeoTIFFs.

STAC items (``pystac`` objects, item dicts, item collections, catalogs or their JSON files)
are normalised first (:func:`normalise_item`: canonical band asset keys whatever the
catalogue calls them, absolute hrefs, ``proj:epsg`` from any projection field) and
stacked with :func:`stackstac.stack` (no network needed for local assets); local
multi-band GeoTIFFs are opened with rioxarray. Values stay reflectance x 1e4.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioError

from firesmoke.errors import CorruptFileError, GridMismatchError, InputError, WrongProductError
from firesmoke.io._core.geotiff import geotiff_error, open_checked_geotiff
from firesmoke.io.sentinel2.bandnames import band_positions, canonical_band, file_band_names
from firesmoke.io.sentinel2.chips import (
    SMOKE_BANDS,
    _check_bands,
    parse_chip_name,
)

__all__ = [
    "ASSET_ALIASES",
    "check_scene_bands",
    "geotiff_band_positions",
    "load_items",
    "normalise_item",
    "open_scene",
]

logger = logging.getLogger(__name__)

# Asset keys other catalogues use for each band (Earth Search v1 uses common-name keys).
ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "B01": ("coastal",),
    "B02": ("blue",),
    "B03": ("green",),
    "B04": ("red",),
    "B05": ("rededge1",),
    "B06": ("rededge2",),
    "B07": ("rededge3",),
    "B08": ("nir",),
    "B8A": ("nir08",),
    "B09": ("nir09",),
    "B10": ("cirrus",),
    "B11": ("swir16",),
    "B12": ("swir22",),
}

_EPSG_CODE_RE = re.compile(r"^\s*EPSG\s*:\s*(\d+)\s*$", re.IGNORECASE)


def _resolve_href(href: str, base: str | None) -> str:
    """Absolute local path (``file://`` stripped) or URL of an asset href."""
    if href.startswith("file://"):
        return href[len("file://") :]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", href) or os.path.isabs(href):
        return href
    if base is None:
        return href
    base = base[len("file://") :] if base.startswith("file://") else base
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", base):
        return base.rsplit("/", 1)[0] + "/" + href.removeprefix("./")
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _epsg_of(meta: dict[str, Any]) -> int | None:
    """EPSG code from ``proj:epsg``, ``proj:code``, ``proj:wkt2`` or ``proj:projjson``."""
    if meta.get("proj:epsg") is not None:
        return int(meta["proj:epsg"])
    code = meta.get("proj:code")
    if isinstance(code, str) and (m := _EPSG_CODE_RE.match(code)):
        return int(m[1])
    for key in ("proj:wkt2", "proj:projjson", "proj:code"):
        if meta.get(key) is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                return CRS.from_user_input(meta[key]).to_epsg()
            except CRSError:
                return None
    return None


def _asset_key(assets: dict[str, Any], band: str) -> str | None:
    if band in assets:
        return band
    for key, asset in assets.items():
        eo = asset.get("eo:bands") or asset.get("bands") or []
        if len(eo) == 1 and isinstance(eo[0], dict) and eo[0].get("name") == band:
            return key
    lower = {k.lower(): k for k in assets}
    for alias in (band.lower(), *ASSET_ALIASES[band]):
        if alias in lower:
            return lower[alias]
    return next((k for k in assets if canonical_band(k) == band), None)  # B8, b04, B04_10m


def normalise_item(
    item: dict[str, Any], base: str | None, bands: Sequence[str], where: str
) -> dict[str, Any]:
    """Copy of a STAC item dict with canonical band asset keys, absolute hrefs and ``proj:epsg``.

    Parameters
    ----------
    item
        STAC item as a dict (not modified).
    base
        Href the item was read from (its JSON file), used to resolve relative asset hrefs
        when the item has no ``self`` link.
    bands
        Band names (:data:`~firesmoke.io.sentinel2.chips.BANDS`) to keep; each is looked up by
        asset key, single-band ``eo:bands`` name or common-name key (:data:`ASSET_ALIASES`).
    where
        Description of the item's origin used in error messages.

    Returns
    -------
    dict
        The item with ``assets`` holding exactly ``bands`` (keyed by band name) and
        ``proj:epsg`` set wherever ``proj:code``/``proj:wkt2``/``proj:projjson`` gives one.

    Raises
    ------
    WrongProductError
        Not a STAC item, or a band has no asset.
    InputError
        A local asset file does not exist.
    """
    props = dict(item.get("properties") or {})
    if not isinstance(item.get("assets"), dict) or "datetime" not in props:
        raise WrongProductError(
            "not a STAC item (no 'assets' or 'properties.datetime')", path=where
        )
    links = item.get("links") or []
    self_href = next(
        (ln.get("href") for ln in links if isinstance(ln, dict) and ln.get("rel") == "self"), None
    )
    base = self_href or base
    epsg = _epsg_of(props)
    if epsg is not None:
        props["proj:epsg"] = epsg
    assets = {}
    keys = {band: _asset_key(item["assets"], band) for band in bands}
    missing = [b for b, k in keys.items() if k is None]
    if missing:
        raise WrongProductError(
            f"item {item.get('id')!r} has no asset for band{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (assets: {sorted(item['assets'])})",
            path=where,
            field=missing[0],
        )
    for band, key in keys.items():
        asset = dict(item["assets"][key])
        asset["href"] = href = _resolve_href(str(asset.get("href", "")), base)
        if "://" not in href and not os.path.exists(href):
            raise InputError(
                f"asset {key!r} of item {item.get('id')!r}: file not found: {href}", path=where
            )
        aepsg = _epsg_of(asset)
        if aepsg is not None:
            asset["proj:epsg"] = aepsg
        assets[band] = asset
    return {**item, "properties": props, "assets": assets}


def load_items(items: Any) -> list[tuple[dict[str, Any], str | None, str]]:
    """``(item dict, base href, description)`` for every STAC item in ``items``.

    ``items`` may be a ``pystac.Item``, ``ItemCollection`` or ``Catalog``, an item dict, a
    GeoJSON ``FeatureCollection`` dict, a path to an item / item collection / catalog JSON
    file, or a sequence of those.
    """
    import pystac

    if isinstance(items, pystac.ItemCollection | pystac.Item | dict | str | os.PathLike):
        items = [items]
    out: list[tuple[dict[str, Any], str | None, str]] = []
    for obj in items:
        if isinstance(obj, pystac.Item):
            d = obj.to_dict(include_self_link=False)
            for k, a in obj.assets.items():
                d["assets"][k]["href"] = a.get_absolute_href() or a.href
            out.append((d, obj.get_self_href(), f"item {obj.id}"))
        elif isinstance(obj, pystac.ItemCollection):
            out.extend(load_items(list(obj)))
        elif isinstance(obj, pystac.Catalog):
            out.extend(load_items(list(obj.get_items(recursive=True))))
        elif isinstance(obj, dict):
            if obj.get("type") == "FeatureCollection":
                out.extend((f, None, f"item {f.get('id')}") for f in obj.get("features", []))
            else:
                out.append((obj, None, f"item {obj.get('id')}"))
        elif isinstance(obj, str | os.PathLike):
            out.extend(_load_item_file(os.fspath(obj)))
        else:
            raise InputError(f"cannot use {type(obj).__name__} as a STAC item")
    return out


def _load_item_file(path: str) -> list[tuple[dict[str, Any], str | None, str]]:
    import json

    import pystac

    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError as exc:
        raise InputError("STAC file not found", path=path) from exc
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"cannot read STAC JSON: {exc}", path=path) from exc
    if not isinstance(obj, dict):
        raise WrongProductError("not a STAC item, item collection or catalog", path=path)
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [(f, os.path.abspath(path), path) for f in obj.get("features", [])]
    if kind in ("Catalog", "Collection"):
        try:
            cat = pystac.read_file(os.path.abspath(path))
        except Exception as exc:
            raise CorruptFileError(f"cannot read STAC catalog: {exc}", path=path) from exc
        return load_items(list(cat.get_items(recursive=True)))
    return [(obj, os.path.abspath(path), path)]


def _is_geotiff_path(obj: Any) -> bool:
    return isinstance(obj, str | os.PathLike) and Path(obj).suffix.lower() in (".tif", ".tiff")


def open_scene(
    items_or_paths: Any,
    bands: Sequence[str] = SMOKE_BANDS,
    bbox: tuple[float, float, float, float] | None = None,
    resolution: float | None = 10,
    dtype: str | np.dtype = "float32",
    chunksize: int | tuple[int, int] = 1024,
    *,
    bbox_latlon: tuple[float, float, float, float] | None = None,
    epsg: int | None = None,
    rescale: bool = False,
) -> xr.DataArray:
    """Open Sentinel-2 scenes as one lazy ``(time, band, y, x)`` cube.

    Parameters
    ----------
    items_or_paths
        STAC items (``pystac.Item``, item dicts, an ``ItemCollection``, a catalog, or
        paths to item / item-collection / catalog JSON files), stacked with
        :func:`stackstac.stack`; or paths to local multi-band GeoTIFFs whose bands are
        named by band descriptions or name tags (aliases such as ``B8``, ``b04`` or
        ``nir`` accepted; 13 unnamed bands are taken in the order :data:`BANDS`),
        opened with rioxarray; a file without some of ``bands`` is one
        :class:`~firesmoke.errors.MissingLayerError` listing the bands found and missing.
        Relative asset hrefs are resolved against the item's JSON file (or ``self`` link).
    bands
        Band names; assets are found by key, ``eo:bands`` name or common-name key.
    bbox, bbox_latlon
        Subset bounds ``(minx, miny, maxx, maxy)`` in the output CRS, or in lon/lat.
    resolution
        Output pixel size (CRS units) for STAC items; for GeoTIFFs it must equal the
        native one (``None`` = native).
    dtype
        ``"float32"`` (nodata -> NaN) or ``"uint16"`` (nodata -> 0). Never float64.
    chunksize
        Dask chunk size along ``y``/``x``.
    epsg
        Output CRS for STAC items (default: the items' common CRS).
    rescale
        Apply ``raster:bands`` scale/offset (float32 only). Off by default so values
        stay reflectance x 1e4 like the smoke chips.

    Returns
    -------
    xarray.DataArray ``reflectance`` with dims ``(time, band, y, x)`` (pixel-centre
    coordinates), dask-backed, CRS attached the rioxarray way.
    """
    import stackstac

    bands = _check_bands(bands)
    dt = np.dtype(dtype)
    if dt not in (np.dtype("float32"), np.dtype("uint16")):
        raise InputError(f"dtype must be float32 or uint16, got {dt}", field="dtype")
    # numpy scalars: stackstac checks np.can_cast(type(fill_value), dtype)
    fill = np.float32(np.nan) if dt.kind == "f" else np.uint16(0)
    if rescale and dt.kind != "f":
        raise InputError("rescale=True needs dtype='float32'", field="rescale")
    seq = [items_or_paths] if isinstance(items_or_paths, str | os.PathLike) else items_or_paths
    if isinstance(seq, list | tuple) and seq and all(_is_geotiff_path(p) for p in seq):
        return _open_geotiff_scene(list(seq), bands, bbox, bbox_latlon, resolution, dt, chunksize)
    loaded = load_items(items_or_paths)
    if not loaded:
        raise InputError("no STAC items given")
    dicts = [normalise_item(d, base, bands, where) for d, base, where in loaded]
    try:
        arr = stackstac.stack(
            dicts,
            reader=_checked_reader_class(),
            errors_as_nodata=(),  # a missing or unreadable asset is an error, never silent nodata
            assets=list(bands),
            epsg=epsg,
            resolution=resolution,
            bounds=bbox,
            bounds_latlon=bbox_latlon,
            chunksize=chunksize,
            dtype=dt,
            fill_value=fill,
            rescale=rescale,
            xy_coords="center",
            sortby_date="asc",
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"cannot stack the STAC items: {exc}") from exc
    arr = arr.assign_coords(band=list(bands))
    arr.name = "reflectance"
    arr.attrs.update(
        long_name="Sentinel-2 L2A reflectance x 1e4" if not rescale else "Sentinel-2 reflectance",
        units="1",
    )
    spec = arr.attrs.get("spec")
    out_epsg = getattr(spec, "epsg", None) or epsg
    if out_epsg is None and "epsg" in arr.coords and arr.coords["epsg"].ndim == 0:
        out_epsg = int(arr.coords["epsg"])
    if out_epsg is not None:
        arr = arr.rio.write_crs(f"EPSG:{int(out_epsg)}")
    return arr


def _open_geotiff_scene(
    paths: list[Any],
    bands: tuple[str, ...],
    bbox: Any,
    bbox_latlon: Any,
    resolution: float | None,
    dt: np.dtype,
    chunksize: int | tuple[int, int],
) -> xr.DataArray:
    cs = (chunksize, chunksize) if isinstance(chunksize, int) else tuple(chunksize)
    layers, times = [], []
    for i, p in enumerate(paths):
        pos = geotiff_band_positions(p, bands)
        da = open_checked_geotiff(p, {"band": -1, "y": cs[0], "x": cs[1]})
        if resolution is not None and not np.allclose(np.abs(da.rio.resolution()), resolution):
            raise GridMismatchError(
                f"native resolution {da.rio.resolution()} differs from {resolution}", path=p
            )
        nodata = da.rio.nodata
        da = da.isel(band=pos).assign_coords(band=list(bands))
        if dt.kind == "f":
            da = da.astype(dt)
            if nodata is not None:
                da = da.where(da != nodata)
        else:
            da = da.astype(dt)
        if bbox_latlon is not None:
            from rasterio.warp import transform_bounds

            bbox = transform_bounds("EPSG:4326", da.rio.crs, *bbox_latlon)
        if bbox is not None:
            da = da.rio.clip_box(*bbox)
        if layers and (
            da.sizes != layers[0].sizes
            or not np.allclose(da.x, layers[0].x)
            or not np.allclose(da.y, layers[0].y)
        ):
            raise GridMismatchError("GeoTIFF grid differs from the first file's", path=p)
        try:
            t = parse_chip_name(Path(p).name).time
        except InputError:
            t = _tiff_time(p, i)
        layers.append(
            da.drop_vars([c for c in da.coords if c not in ("band", "y", "x", "spatial_ref")])
        )
        times.append(t)
    out = xr.concat(
        layers,
        dim=pd.DatetimeIndex(times, name="time"),
        join="exact",
        combine_attrs="drop_conflicts",
    )
    out = out.sortby("time")
    out.name = "reflectance"
    out.attrs.update(long_name="Sentinel-2 L2A reflectance x 1e4", units="1")
    return out.rio.write_crs(layers[0].rio.crs)


def geotiff_band_positions(path: Any, bands: Sequence[str]) -> list[int]:
    """0-based positions of ``bands`` in a multi-band GeoTIFF, from the band names the file
    carries (descriptions or name tags; aliases such as ``B8``, ``b04``, ``nir``
    accepted: :mod:`firesmoke.io.sentinel2.bandnames`); 13 unnamed bands are the smoke
    data set's order. Only the header is read.

    Raises
    ------
    MissingLayerError
        Some of ``bands`` are not in the file: one error listing the bands found and the
        bands missing.
    CorruptFileError, InputError
        The file cannot be opened.
    """
    try:
        with rasterio.open(path) as src:
            names = file_band_names(src)
    except (RasterioError, OSError) as exc:
        raise geotiff_error(path, exc) from exc
    return band_positions(names, bands, path)


def check_scene_bands(items_or_paths: Any, bands: Sequence[str]) -> None:
    """Check that local GeoTIFF scenes hold ``bands`` (header reads only), so a scene
    without them is refused before any model is built. STAC items are checked when
    they are normalised (:func:`normalise_item`)."""
    bands = _check_bands(bands)
    seq = [items_or_paths] if isinstance(items_or_paths, str | os.PathLike) else items_or_paths
    if isinstance(seq, list | tuple) and seq and all(_is_geotiff_path(p) for p in seq):
        for p in seq:
            geotiff_band_positions(p, bands)
    else:
        for d, base, where in load_items(items_or_paths):
            normalise_item(d, base, bands, where)


_CHECKED_READER: type | None = None


def _checked_reader_class() -> type:
    """stackstac's reader, with read errors raised as CorruptFileError naming the asset."""
    global _CHECKED_READER
    if _CHECKED_READER is None:
        from stackstac.rio_reader import AutoParallelRioReader

        class CheckedRioReader(AutoParallelRioReader):
            def read(self, window: Any, **kwargs: Any) -> Any:
                try:
                    return super().read(window, **kwargs)
                except RuntimeError as exc:  # stackstac wraps GDAL errors, naming the URL
                    if not isinstance(exc.__cause__, RasterioError | OSError):
                        raise
                    first = str(exc.__cause__).splitlines()[0] or type(exc.__cause__).__name__
                    raise CorruptFileError(
                        f"cannot read {window} of this asset ({first}); missing, truncated or corrupt?",
                        path=self.url,
                    ) from exc

        CheckedRioReader.__module__ = __name__
        CheckedRioReader.__qualname__ = "CheckedRioReader"
        globals()["CheckedRioReader"] = CheckedRioReader  # picklable by reference (dask workers)
        _CHECKED_READER = CheckedRioReader
    return _CHECKED_READER


def _tiff_time(path: Any, i: int) -> pd.Timestamp:
    with rasterio.open(path) as src:
        stamp = src.tags().get("TIFFTAG_DATETIME")
    if stamp:
        try:
            return pd.Timestamp(datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S"))
        except ValueError:
            pass
    logger.warning("%s: no time in the file name or TIFFTAG_DATETIME; using position %d", path, i)
    return pd.Timestamp(0) + pd.Timedelta(days=i)


def __getattr__(name: str) -> Any:
    """``CheckedRioReader`` on demand, so that a fresh process (a dask worker) can unpickle it."""
    if name == "CheckedRioReader":
        return _checked_reader_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
