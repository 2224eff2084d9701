"""Plumes at emitter sites: presence and area per site and time from a smoke mask."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.errors import InputError, MissingColumnError
from firesmoke.store.geotiff import SMOKE_NODATA

__all__ = [
    "plume_timeseries",
    "read_sites",
    "sites_frame",
]

logger = logging.getLogger(__name__)

def read_sites(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Emitter sites from a CSV with columns ``site_id``, ``lon``, ``lat``."""
    try:
        df = pd.read_csv(path, dtype={"site_id": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the site table: {exc}", path=path) from exc
    out = sites_frame(df, where=path)
    if out.empty:  # a header only: searching everywhere would not be what was asked
        raise InputError("the site table has no sites (a header only)", path=path)
    bad = ~(np.isfinite(pd.to_numeric(out["lon"], errors="coerce"))
            & np.isfinite(pd.to_numeric(out["lat"], errors="coerce")))
    if bad.any():
        raise InputError(f"site(s) {list(out['site_id'][bad][:5])} have no numeric lon/lat",
                         path=path)
    return out


def sites_frame(sites: Any, where: Any = None) -> pd.DataFrame:
    if isinstance(sites, pd.DataFrame):
        df = sites
    else:
        rows = []
        for s in sites if isinstance(sites, Iterable) else [sites]:
            if all(hasattr(s, k) for k in ("site_id", "lon", "lat")):
                rows.append((str(s.site_id), float(s.lon), float(s.lat)))
            else:
                sid, lon, lat = s
                rows.append((str(sid), float(lon), float(lat)))
        df = pd.DataFrame(rows, columns=["site_id", "lon", "lat"])
    missing = [c for c in ("site_id", "lon", "lat") if c not in df.columns]
    if missing:
        raise MissingColumnError(f"site table lacks column(s) {missing}", path=where,
                                 field=missing[0])
    out = df[["site_id", "lon", "lat"]].copy()
    out["site_id"] = out["site_id"].astype(str)
    return out.reset_index(drop=True)


def plume_timeseries(
    mask: xr.DataArray,
    sites: Any,
    radius_m: float = 500.0,
    connectivity: int = 8,
) -> pd.DataFrame:
    """Plume presence and area per emitter site and time.

    For every time step the mask is split into connected components; the plume of a site
    is the union of the components with at least one pixel centre within ``radius_m`` of
    the site, and its area is their whole area (pixels x pixel area), also beyond the
    radius.

    Parameters
    ----------
    mask
        ``(time, y, x)`` or ``(y, x)`` smoke mask (non-zero = smoke; 255 in a uint8 mask = no
        data) with a CRS and
        transform (e.g. from :func:`segment_scene`).
    sites
        DataFrame with ``site_id``, ``lon``, ``lat`` (WGS 84), a sequence of
        ``(site_id, lon, lat)`` tuples, or objects with those attributes.
    radius_m
        Search radius around each site (scene CRS units, metres for UTM).
    connectivity
        8 (diagonal neighbours connect, default) or 4.

    Returns
    -------
    pandas.DataFrame
        One row per site and time: ``site_id``, ``time``, ``plume_present``,
        ``plume_area_m2``, ``n_components``, ``in_scene`` (False when the search disc
        misses the grid; area then 0).
    """
    from pyproj import Transformer
    from scipy import ndimage

    if connectivity not in (4, 8):
        raise InputError(f"connectivity must be 4 or 8, got {connectivity}", field="connectivity")
    if mask.ndim == 2:
        mask = mask.expand_dims(time=[pd.NaT] if "time" not in mask.coords else [mask["time"].values])
    if mask.dims != ("time", "y", "x"):
        raise InputError(f"mask dims must be (time, y, x), got {mask.dims}", field="mask")
    crs = mask.rio.crs
    if crs is None:
        raise InputError("the mask has no CRS (write one with .rio.write_crs)", field="mask")
    tr = mask.rio.transform()
    if tr.b != 0 or tr.d != 0:
        raise InputError("rotated grids are not supported", field="mask")
    table = sites_frame(sites)
    xs, ys = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(
        table["lon"].to_numpy(float), table["lat"].to_numpy(float)
    )
    px_area = abs(tr.a * tr.e)
    ny, nx = mask.sizes["y"], mask.sizes["x"]
    ry, rx = radius_m / abs(tr.e), radius_m / abs(tr.a)
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    rows = []
    for t in range(mask.sizes["time"]):
        v = np.asarray(mask.isel(time=t).values)
        m = (v > 0) & (v != SMOKE_NODATA) if v.dtype == np.uint8 else v > 0  # 255: no data
        labels, _ = ndimage.label(m, structure=structure)
        sizes = np.bincount(labels.ravel())
        when = mask["time"].values[t]
        for sid, x, y in zip(table["site_id"], xs, ys, strict=True):
            col, row = (x - tr.c) / tr.a, (y - tr.f) / tr.e  # fractional pixel position
            r0, r1 = max(int(np.floor(row - ry)), 0), min(int(np.ceil(row + ry)) + 1, ny)
            c0, c1 = max(int(np.floor(col - rx)), 0), min(int(np.ceil(col + rx)) + 1, nx)
            ids: np.ndarray = np.zeros(0, np.int64)
            inside = r0 < r1 and c0 < c1
            if inside:
                rr, cc = np.mgrid[r0:r1, c0:c1]
                dist = np.hypot((cc + 0.5 - col) * tr.a, (rr + 0.5 - row) * tr.e)
                disc = dist <= radius_m
                inside = bool(disc.any())
                ids = np.unique(labels[r0:r1, c0:c1][disc])
                ids = ids[ids > 0]
            area = float(sizes[ids].sum() * px_area) if ids.size else 0.0
            rows.append((sid, when, bool(ids.size), area, int(ids.size), inside))
    out = pd.DataFrame(
        rows,
        columns=["site_id", "time", "plume_present", "plume_area_m2", "n_components", "in_scene"],
    )
    return out


