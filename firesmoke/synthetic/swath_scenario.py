"""Synthetic swath granules from gridded scenario fields (``VNP02MOD`` + ``VNP03MOD``).

- :func:`sample_grid_fields`: sample fields on a region grid at swath pixel centres;
- :func:`generate_swath_granules`: gridded scenario fields -> swath granule files,
  written with :func:`firesmoke.synthetic.swath.write_l1b_pair` along the geometry of
  :mod:`firesmoke.synthetic.swath_geometry`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.synthetic.swath import STORAGE, write_l1b_pair
from firesmoke.synthetic.swath_geometry import (
    EARTH_RADIUS_KM,
    NADIR_PIXEL_KM,
    ROWS_PER_SCAN,
    SCAN_SECONDS,
    SCANS_PER_GRANULE,
    move_along,
    swath_geometry,
)

__all__ = ["generate_swath_granules", "sample_grid_fields"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sampling
def sample_grid_fields(
    region: Any,
    fields: Mapping[str, np.ndarray],
    lat: np.ndarray,
    lon: np.ndarray,
    method: str = "bilinear",
) -> dict[str, np.ndarray]:
    """Sample fields on a region grid at swath pixel centres.

    Parameters
    ----------
    region
        :class:`~firesmoke.grid.Region` (or name/path) of the fields.
    fields
        Name -> array ``(H, W)`` on the region grid (rows north to south).
    lat, lon
        Swath pixel centres (any shape), degrees.
    method
        ``"bilinear"`` (between the 4 surrounding pixel centres; NaN neighbours are left
        out and the weights renormalised) or ``"nearest"``.

    Returns
    -------
    dict
        Name -> float32 array of ``lat``'s shape; NaN outside the region.
    """
    reg = Region.resolve(region)
    h, w = reg.shape
    t = reg.transform
    left, bottom, right, top = reg.bbox
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    lo = left + np.mod(lo - left, 360.0)  # into [left, left + 360): handles the antimeridian
    inside = (
        np.isfinite(la)
        & np.isfinite(lo)
        & (lo >= left)
        & (lo < right)
        & (la > bottom)
        & (la <= top)
    )
    colf = (lo - t.c) / t.a - 0.5
    rowf = (la - t.f) / t.e - 0.5
    out: dict[str, np.ndarray] = {}
    for name, field_ in fields.items():
        arr = np.asarray(field_, dtype=np.float64)
        if arr.shape != (h, w):
            raise InputError(
                f"field {name} has shape {arr.shape}, region {reg.name} is {(h, w)}", field=name
            )
        res = np.full(la.shape, np.nan)
        if method == "nearest":
            r = np.clip(np.round(rowf), 0, h - 1).astype(np.int64)
            c = np.clip(np.round(colf), 0, w - 1).astype(np.int64)
            res[inside] = arr[r[inside], c[inside]]
        elif method == "bilinear":
            rf, cf = np.clip(rowf[inside], 0, h - 1), np.clip(colf[inside], 0, w - 1)
            r0 = np.minimum(np.floor(rf).astype(np.int64), h - 2 if h > 1 else 0)
            c0 = np.minimum(np.floor(cf).astype(np.int64), w - 2 if w > 1 else 0)
            r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
            fr, fc = rf - r0, cf - c0
            acc = np.zeros(rf.shape)
            wsum = np.zeros(rf.shape)
            for rr, cc, wt in (
                (r0, c0, (1 - fr) * (1 - fc)),
                (r0, c1, (1 - fr) * fc),
                (r1, c0, fr * (1 - fc)),
                (r1, c1, fr * fc),
            ):
                v = arr[rr, cc]
                ok = np.isfinite(v) & (wt > 0)
                acc[ok] += v[ok] * wt[ok]
                wsum[ok] += wt[ok]
            with np.errstate(invalid="ignore", divide="ignore"):
                res[inside] = np.where(wsum > 0, acc / wsum, np.nan)
        else:
            raise InputError(
                f"method must be 'bilinear' or 'nearest', got {method!r}", field="method"
            )
        out[name] = res.astype(np.float32)
    return out


# --------------------------------------------------------------------------- scenarios
def _region_extent_km(region: Any) -> tuple[float, float, float, float]:
    left, bottom, right, top = region.bbox
    lat_c = (bottom + top) / 2.0
    lon_c = (left + right) / 2.0
    km_deg = math.pi * EARTH_RADIUS_KM / 180.0
    return (
        lat_c,
        ((lon_c + 180.0) % 360.0) - 180.0,
        (right - left) * km_deg * math.cos(math.radians(lat_c)),
        (top - bottom) * km_deg,
    )


def generate_swath_granules(
    region: Any,
    fields_by_time: Sequence[tuple[datetime, Mapping[str, np.ndarray]]],
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    *,
    pixels: int = 3200,
    platform: str = "S-NPP",
    tracks: Sequence[tuple[float, float, float]] | None = None,
    max_offset_km: float = 600.0,
    method: str = "bilinear",
    bowtie_deletion: bool = False,
) -> list[tuple[Path, Path]]:
    """Turn gridded per-overpass fields into swath granule files.

    Parameters
    ----------
    region
        Grid of the fields.
    fields_by_time
        ``(overpass time, {"M05", "M07", "M10", "M12", "M15", "solar_zenith", ...})``;
        bands as in :func:`write_l1b_pair`. ``sensor_zenith`` (if given) is ignored: the
        swath geometry's own sensor zenith is written.
    out_dir
        Output folder.
    seed
        Seeds the random cross-track offset and heading jitter of each overpass.
    pixels
        Pixels per line (3200 real; fewer writes a thinned swath).
    platform
        Satellite.
    tracks
        Optional ``(nadir_lat, nadir_lon, heading_deg)`` per overpass (e.g. from an orbit
        model); default: a track through the region centre shifted by a random
        cross-track offset, heading ~-10 deg (ascending daytime pass).
    max_offset_km
        Largest random cross-track offset.
    method
        Sampling method of :func:`sample_grid_fields`.
    bowtie_deletion
        Passed to :func:`write_l1b_pair`.

    Returns
    -------
    list of (vnp02_path, vnp03_path)
        One pair per 6-minute granule; an overpass whose along-track extent needs more
        than 202 scans is split into consecutive granules. The overpass time is the
        middle of its granule(s) (start times floored to the minute, as in the names);
        the orbit number written is the index of the overpass in ``fields_by_time``.
    """
    reg = Region.resolve(region)
    lat_c, lon_c, width_km, height_km = _region_extent_km(reg)
    diag = math.hypot(width_km, height_km)
    n_total = math.ceil(diag / (ROWS_PER_SCAN * NADIR_PIXEL_KM)) + 4
    if tracks is not None and len(tracks) != len(fields_by_time):
        raise InputError(
            f"{len(tracks)} tracks for {len(fields_by_time)} overpasses", field="tracks"
        )
    out: list[tuple[Path, Path]] = []
    for i, (when, fields) in enumerate(fields_by_time):
        rng = np.random.default_rng([seed, i])
        if tracks is not None:
            c_lat, c_lon, heading = tracks[i]
            offset = 0.0
        else:
            c_lat, c_lon = lat_c, lon_c
            heading = -10.0 + float(rng.uniform(-3.0, 3.0))
            offset = float(rng.uniform(-max_offset_km, max_offset_km))
        n_granules = max(1, math.ceil(n_total / SCANS_PER_GRANULE))
        scans_each = math.ceil(n_total / n_granules)
        start0 = when.replace(second=0, microsecond=0) - timedelta(
            seconds=scans_each * n_granules * SCAN_SECONDS / 2.0
        )
        for k in range(n_granules):
            # centre of granule k along the track
            shift_km = (
                ((k + 0.5) * scans_each - n_granules * scans_each / 2.0)
                * ROWS_PER_SCAN
                * NADIR_PIXEL_KM
            )
            g_lat, g_lon, g_head = move_along(c_lat, c_lon, heading, shift_km)
            lat, lon, vza = swath_geometry(
                g_lat,
                g_lon,
                g_head,
                n_scans=scans_each,
                pixels=pixels,
                cross_track_offset_km=offset,
            )
            sampled = sample_grid_fields(
                reg,
                {k2: v for k2, v in fields.items() if k2 != "sensor_zenith"},
                lat,
                lon,
                method=method,
            )
            bands = {b: sampled[b] for b in sampled if b in STORAGE}
            sza = sampled.get("solar_zenith")
            if sza is None:
                raise InputError("fields need 'solar_zenith'", field="solar_zenith")
            start = start0 + timedelta(seconds=k * scans_each * SCAN_SECONDS)
            start = start.replace(second=0, microsecond=0)
            out.append(
                write_l1b_pair(
                    out_dir,
                    start,
                    lat,
                    lon,
                    bands,
                    sza,
                    vza,
                    platform,
                    ascending=abs(((g_head + 180) % 360) - 180) < 90,
                    orbit_number=i,
                    bowtie_deletion=bowtie_deletion,
                )
            )
    return out
