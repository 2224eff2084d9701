"""Emitter sites of the synthetic Sentinel-2 data and their UTM geometry helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from pyproj import Transformer

__all__ = ["Site", "to_lonlat", "to_utm", "utm_epsg"]


@dataclass(frozen=True)
class Site:
    """An emitter: E-PRTR-like numeric facility id and location."""

    site_id: str
    lon: float
    lat: float


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding ``(lon, lat)`` (326xx north, 327xx south)."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@cache
def to_utm(epsg: int) -> Transformer:
    """lon/lat (WGS 84) -> UTM zone ``epsg`` (x, y order)."""
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


@cache
def to_lonlat(epsg: int) -> Transformer:
    """UTM zone ``epsg`` -> lon/lat (WGS 84, x, y order)."""
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
