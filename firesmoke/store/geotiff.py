"""GeoTIFF / Cloud-Optimised GeoTIFF exports with explicit, collision-free nodata.

Conventions (every COG firesmoke writes carries an explicit nodata value):

- ``confidence`` (float32, 0..1): nodata NaN (no observation in the period);
- ``burn_date`` (int16, day of year): ``-1`` unobserved (nodata), ``0`` observed and not
  burned, ``1..366`` day of burning (as MCD64A1's ``-1``/``0`` convention, without its
  fill codes);
- smoke masks (uint8): ``0`` no smoke, ``1`` smoke, ``255`` no data (nodata).

Files are written to an exclusively created temporary name beside the destination and
renamed into place, never through a symbolic link and never outside ``root``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from firesmoke.errors import InvalidRegionError
from firesmoke.grid import grid_transform
from firesmoke.paths import (
    atomic_write_text,
    check_inside,
    makedirs_inside,
    open_exclusive,
    safe_join,
)

__all__ = [
    "BURN_DATE_NODATA",
    "BURN_DATE_NOT_BURNED",
    "SMOKE_NODATA",
    "burn_date_for_export",
    "export_burned_period",
    "export_geotiff",
    "export_smoke_mask",
    "safe_join",
    "smoke_mask_for_export",
    "write_csv",
]

BURN_DATE_NODATA = -1
BURN_DATE_NOT_BURNED = 0
SMOKE_NODATA = 255


def export_geotiff(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    cog: bool = True,
    nodata: float | int | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a 2-D (or band, y, x) DataArray with its CRS to a GeoTIFF / COG.

    Parameters
    ----------
    da
        Georeferenced array (``rio`` CRS and transform, e.g. from a firesmoke product).
    path
        Destination file; it must stay inside ``root`` (default: its own folder) with no
        symbolic link on the way.
    cog
        Cloud-Optimised GeoTIFF (default) or a tiled GeoTIFF.
    nodata
        Nodata value written in the file; ``None`` for a float array means NaN.
    """
    import rioxarray  # noqa: F401

    p = Path(os.path.abspath(path))
    top = Path(os.path.abspath(root)) if root is not None else p.parent
    makedirs_inside(top, p.parent)
    check_inside(top, p)
    arr = da.copy()
    arr.encoding = {}  # e.g. a _FillValue from Zarr would clash with rioxarray's own
    arr.attrs = {k: v for k, v in arr.attrs.items() if k not in ("_FillValue", "missing_value")}
    if nodata is None and np.issubdtype(arr.dtype, np.floating):
        nodata = float("nan")
    if nodata is not None:
        arr = arr.rio.write_nodata(nodata, encoded=False)
    try:  # the exact pixel size and origin (rioxarray derives them from float coordinates)
        exact = grid_transform(arr)
    except InvalidRegionError:  # fewer than 2 pixels, ...: rioxarray's own estimate
        exact = None
    tiff = {"driver": "GTiff", "compress": "DEFLATE", "tiled": True}
    tmp = p.with_name(f"{p.name}.{uuid.uuid4().hex[:12]}.part")
    stage = p.with_name(f"{p.name}.{uuid.uuid4().hex[:12]}.stage.part")
    open_exclusive(tmp).close()  # our own new regular files: GDAL writes into them, no link
    try:
        if exact is None and not cog:
            arr.rio.to_raster(tmp, **tiff)
        else:  # a GeoTIFF whose transform is set exactly, then copied as a COG
            import rasterio
            import rasterio.shutil

            open_exclusive(stage).close()
            arr.rio.to_raster(stage, **tiff)
            if exact is not None:
                with rasterio.open(stage, "r+") as dst:
                    dst.transform = exact
            if cog:
                rasterio.shutil.copy(stage, tmp, driver="COG", compress="DEFLATE")
            else:
                os.replace(stage, tmp)
        check_inside(top, p)
        os.replace(tmp, p)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if os.path.lexists(stage):
            os.unlink(stage)
    return p


def burn_date_for_export(burn_date: xr.DataArray, confidence: xr.DataArray) -> xr.DataArray:
    """int16 burn date with ``-1`` where the period had no observation (NaN confidence)."""
    bd = burn_date.fillna(BURN_DATE_NOT_BURNED).astype(np.int16)
    out = bd.where(np.isfinite(confidence), BURN_DATE_NODATA).astype(np.int16)
    out.attrs = {"long_name": "day of year of burning",
                 "comment": "-1 unobserved (nodata), 0 not burned, 1-366 day of year"}
    return out


def smoke_mask_for_export(mask: xr.DataArray, valid: xr.DataArray | None = None) -> xr.DataArray:
    """uint8 smoke mask: 0 no smoke, 1 smoke, 255 no data (NaN or 255 in ``mask``, or not
    ``valid``)."""
    m = mask.astype(np.float32)
    ok = np.isfinite(m) & (m != SMOKE_NODATA)
    if valid is not None:
        ok = ok & valid.astype(bool)
    out = xr.where(ok, (m > 0).astype(np.uint8), np.uint8(SMOKE_NODATA)).astype(np.uint8)
    out.attrs = {"long_name": "smoke mask", "comment": "0 no smoke, 1 smoke, 255 no data"}
    if mask.rio.crs is not None:
        out = out.rio.write_crs(mask.rio.crs)
    return out


def export_smoke_mask(mask: xr.DataArray, path: str | os.PathLike[str],
                      root: str | os.PathLike[str] | None = None) -> Path:
    """COG of a smoke mask: uint8, 0 no smoke, 1 smoke, 255 no data (the nodata value)."""
    return export_geotiff(smoke_mask_for_export(mask), path, nodata=SMOKE_NODATA, root=root)


def export_burned_period(
    period: xr.Dataset,
    folder: str | os.PathLike[str],
    base: str,
    root: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """COGs of one period of a burned-area product: ``<base>_confidence.tif`` and
    ``<base>_burn_date.tif`` (nodata conventions of this module)."""
    top = root if root is not None else folder
    conf = period["confidence"]
    bd = burn_date_for_export(period["burn_date"], conf)
    if conf.rio.crs is not None:
        bd = bd.rio.write_crs(conf.rio.crs)
    return [
        export_geotiff(conf.astype(np.float32), safe_join(folder, f"{base}_confidence.tif"),
                       nodata=float("nan"), root=top),
        export_geotiff(bd, safe_join(folder, f"{base}_burn_date.tif"),
                       nodata=BURN_DATE_NODATA, root=top),
    ]


def write_csv(table: Any, path: str | os.PathLike[str],
              root: str | os.PathLike[str] | None = None) -> Path:
    """Write a table (``pandas.DataFrame``) as CSV atomically, never through a link."""
    return atomic_write_text(path, table.to_csv(index=False), root=root)
