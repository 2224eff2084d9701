"""Burned-area products (MCD64A1, MCD64monthly, VNP64A1): names, codes and attributes.

What the burned-area readers share, with no file I/O: the burn date codes, the variable
names and CF attributes of the layers, and the file-name patterns
(:func:`parse_mcd64_name` -> :class:`BurnedAreaSource`). The readers
:mod:`firesmoke.io.burned_area.mcd64` (HDF4 tiles of MCD64A1 and VNP64A1, GeoTIFF windows)
and :mod:`firesmoke.io.burned_area.vnp64` import this module; it imports neither.

MCD64A1 and VNP64A1 (and NOAA-20's VJ164A1) tiles share one layout: HDF-EOS2 / HDF4,
``<PRODUCT>.AYYYYDDD.hHHvVV.CCC.<production>.hdf`` (the LAADS VNP64A1 file
specification: "distributed as HDF4 files nearly identical in format to the MODIS
Collection 6 MCD64A1"). Both are kind ``"hdf"``; :attr:`BurnedAreaSource.product` says
which.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import WrongProductError
from firesmoke.io.burned_area.sinusoidal import SINUSOIDAL_PROJ4, sinusoidal_crs

__all__ = [
    "BURN_DATE_FILL",
    "BURN_DATE_UNBURNED",
    "BURN_DATE_WATER",
    "GEOTIFF_LAYERS",
    "SDS_VARIABLES",
    "TILE_PRODUCTS",
    "BurnedAreaSource",
    "parse_mcd64_name",
    "parse_vnp64_name",
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

#: the sinusoidal monthly burned-area tiles read by one HDF4 code path
TILE_PRODUCTS = ("MCD64A1", "VNP64A1", "VJ164A1")

_HDF_NAME = re.compile(
    r"^(?P<product>MCD64A1|VNP64A1|VJ164A1)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"(?:\.(?P<collection>\d{3}))?(?:\.(?P<production>\d+))?.*\.hdf$",
    re.IGNORECASE,
)
_TIF_NAME = re.compile(
    r"^(?P<product>MCD64monthly)\.A(?P<year>\d{4})(?P<doy>\d{3})\.Win(?P<window>\d{2})"
    r"\.(?P<collection>\d{3})\.(?P<layer>[A-Za-z_]+)\.tiff?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BurnedAreaSource:
    """One MCD64 file as known from its name (no I/O): kind, month and tile or window."""

    path: Path
    kind: str
    """``"hdf"`` (MCD64A1 or VNP64A1 HDF4 tile) or ``"tif"`` (MCD64monthly window)."""
    month_start: date
    month_end: date
    tile: tuple[int, int] | None = None
    window: int | None = None
    collection: str = ""
    production: str = ""
    layer: str = "burndate"
    product: str = "MCD64A1"
    """``MCD64A1``, ``VNP64A1``, ``VJ164A1`` or ``MCD64monthly`` (upper case, from the name)."""


def _month_end(start: date) -> date:
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def parse_mcd64_name(path: str | os.PathLike[str]) -> BurnedAreaSource | None:
    """Recognise an MCD64A1 or VNP64A1 HDF4 tile or an MCD64monthly GeoTIFF window by its name."""
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
            product=m["product"].upper(),
        )
    return BurnedAreaSource(
        p, "tif", start, _month_end(start), window=int(m["window"]),
        collection=m["collection"] or "", layer=m["layer"].lower(), product="MCD64monthly",
    )


def parse_vnp64_name(path: str | os.PathLike[str]) -> Any:
    """A :class:`BurnedAreaSource` for a VNP64A1 (or VJ164A1) tile name, else None."""
    src = parse_mcd64_name(path)
    return src if src is not None and src.product in ("VNP64A1", "VJ164A1") else None


def tile_month(named: BurnedAreaSource | None, attrs: dict[str, Any], path: Path) -> date:
    """First day of a tile's month: from its file name (``AYYYYDDD``), else from the
    ``year``/``ProductStartDay`` global attributes."""
    if named is not None:
        return named.month_start
    try:
        return date(int(attrs["year"]), 1, 1) + timedelta(days=int(attrs["ProductStartDay"]) - 1)
    except (KeyError, TypeError, ValueError) as exc:
        raise WrongProductError("cannot tell the month: no AYYYYDDD in the name and no "
                                "year/ProductStartDay attributes", path=path) from exc


def _chunks_arg(chunks: Any, shape: tuple[int, int]) -> Any:
    if chunks is None:
        return shape
    if isinstance(chunks, dict):
        return (chunks.get("y", shape[0]), chunks.get("x", shape[1]))
    return chunks


def _sds_dtype(name: str) -> np.dtype:
    return np.dtype(np.uint8) if name in ("QA", "Burn Date Uncertainty") else np.dtype(np.int16)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _token(path: Path, chunks: Any) -> str:
    from dask.base import tokenize

    st = path.stat()
    return tokenize(str(path.resolve()), st.st_size, st.st_mtime_ns, repr(chunks))


def sinusoidal_tile_dataset(data_vars: dict[str, Any], transform: Any, shape: tuple[int, int],
                            month_start: date, tile: tuple[int, int], *, product: str, title: str,
                            source: Path, grid_name: str,
                            extra_attrs: dict[str, Any] | None = None) -> Any:
    """The ``xarray.Dataset`` of one sinusoidal burned-area tile (MCD64A1, VNP64A1).

    ``data_vars`` (``(y, x)`` layers) on the cell centres of ``transform`` (``x``/``y`` in
    metres, CF attributes), scalar ``time`` = ``month_start``, the product's global
    attributes (then ``extra_attrs``), and the sinusoidal CRS and transform attached the
    rioxarray way.
    """
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    ny, nx = shape
    t = transform
    h, v = tile
    ds = xr.Dataset(
        data_vars,
        coords={
            "y": ("y", t.f + (np.arange(ny) + 0.5) * t.e, {"units": "m", "standard_name": "projection_y_coordinate",
                                                          "long_name": "y of cell centre", "axis": "Y"}),
            "x": ("x", t.c + (np.arange(nx) + 0.5) * t.a, {"units": "m", "standard_name": "projection_x_coordinate",
                                                          "long_name": "x of cell centre", "axis": "X"}),
            "time": ((), np.datetime64(month_start, "ns"), {"long_name": "first day of the month", "axis": "T"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": title,
            "product": product,
            "source_file": str(source),
            "tile": f"h{h:02d}v{v:02d}",
            "tile_h": h,
            "tile_v": v,
            "grid_name": grid_name,
            "crs_proj4": SINUSOIDAL_PROJ4,
            "time_coverage_start": month_start.isoformat(),
            "time_coverage_end": _month_end(month_start).isoformat(),
            **(extra_attrs or {}),
        },
    )
    return ds.rio.write_crs(sinusoidal_crs()).rio.write_transform(t)
