"""Synthetic VIIRS L1B swath granules (``VNP02MOD`` + ``VNP03MOD`` netCDF4 files).

No real L1B granule ships with the project, so this module writes files with the layout
of the NASA product (groups, variables, dtypes, scaling and fill conventions, global
attributes; see :mod:`firesmoke.io.viirs.swath` for the format facts) from arrays, so
that the swath reader and the regridding kernels are exercised end to end:

- :func:`swath_geometry`: latitude, longitude and sensor zenith of a VIIRS-like swath;
- :func:`write_l1b_pair`: write one granule (observation + geolocation files);
- :func:`~firesmoke.synthetic.swath_scenario.sample_grid_fields` and
  :func:`~firesmoke.synthetic.swath_scenario.generate_swath_granules` (module
  :mod:`firesmoke.synthetic.swath_scenario`): gridded scenario fields -> swath granule
  files.

The swath geometry model is described in :mod:`firesmoke.synthetic.swath_geometry`.

The writer stores bands as ``uint16`` with ``scale_factor``/``add_offset``, ``_FillValue``
65535, ``valid_min`` 0, ``valid_max`` 65527 and quality-flag variables; angles as
``int16`` hundredths of a degree; latitude/longitude as ``float32``. Every timestamp
in the files derives from ``start_time`` (and ``production_time``), so the same inputs
always give the same bytes. Files carry ``comment = "SYNTHETIC ..."``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.io._core.handles import close_cached_files
from firesmoke.io.viirs.bands import BANDS, normalize_platform
from firesmoke.io.viirs.l1b_metadata import GEOLOCATION_GROUP, OBSERVATION_GROUP
from firesmoke.synthetic.swath_geometry import (
    ROWS_PER_SCAN,
    SCAN_SECONDS,
    bowtie_deleted,
    scan_angles,
    swath_geometry,
)

__all__ = [
    "QUALITY_FLAGS",
    "REFLECTANCE_SOLAR_IRRADIANCE",
    "STORAGE",
    "bowtie_deleted",
    "scan_angles",
    "swath_geometry",
    "write_l1b_pair",
]

log = logging.getLogger(__name__)

GRANULE_DURATION = timedelta(minutes=6)

#: uint16 storage of each band: scale_factor, add_offset (representative values: the
#: ranges reach reflectance 1.64, M12 radiance 6.55 and M15 radiance 26.2 W m-2 sr-1 um-1).
STORAGE: dict[str, tuple[float, float]] = {
    **{b: (2.5e-05, 0.0) for b, info in BANDS.items() if info.kind == "reflectance"},
    "M12": (1.0e-04, 0.0),
    "M13": (2.0e-04, 0.0),
    "M14": (3.0e-04, 0.0),
    "M15": (4.0e-04, 0.0),
    "M16": (4.0e-04, 0.0),
}
#: Approximate band-mean solar irradiance (W m-2 um-1) used only to write the reflective
#: bands' ``radiance_scale_factor`` (radiance = reflectance factor * E0 / pi).
REFLECTANCE_SOLAR_IRRADIANCE: dict[str, float] = {
    "M01": 1700.0,
    "M02": 1860.0,
    "M03": 1960.0,
    "M04": 1830.0,
    "M05": 1520.0,
    "M06": 1280.0,
    "M07": 960.0,
    "M08": 460.0,
    "M09": 365.0,
    "M10": 245.0,
    "M11": 78.0,
}
UINT16_FILL = 65535
VALID_MAX = 65527
FLAG_VALUES = (65532, 65533, 65534)
FLAG_VALUE_MEANINGS = "Missing_EV Bowtie_Deleted Cal_Fail"
#: Pixel quality bits written in ``Mnn_quality_flags`` (meaning -> mask). The names follow
#: the NASA L1B user guide; the bit values are this writer's choice (not verified against a
#: real file) -- the reader only relies on the file's own ``flag_masks``/``flag_meanings``.
QUALITY_FLAGS: dict[str, int] = {
    "Substitute_Cal": 1,
    "Out_of_Range": 2,
    "Saturation": 4,
    "Temp_not_Nominal": 8,
    "Bowtie_Deleted": 256,
    "Missing_EV": 512,
    "Cal_Fail": 1024,
    "Dead_Detector": 2048,
}
ANGLE_FILL = -32767
ANGLE_SCALE = 0.01
LATLON_FILL = np.float32(-999.9)
_TAI93 = datetime(1993, 1, 1)
_PREFIX = {"S-NPP": "VNP", "NOAA-20": "VJ1", "NOAA-21": "VJ2"}
_PLATFORM_ATTR = {"S-NPP": "Suomi-NPP", "NOAA-20": "JPSS-1", "NOAA-21": "JPSS-2"}
_C1 = 1.191042e8  # W m-2 sr-1 um4 (2 h c^2)
_C2 = 1.4387752e4  # um K (h c / k)


# --------------------------------------------------------------------------- writing
def _stamp(t: datetime) -> str:
    return t.strftime("%Y%j%H%M%S")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _quantize(values: np.ndarray, scale: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """float -> uint16 raw and the quality bits it earned (Out_of_Range, Saturation)."""
    v = np.asarray(values, dtype=np.float64)
    q = np.zeros(v.shape, dtype=np.uint16)
    finite = np.isfinite(v)
    raw = np.zeros(v.shape, dtype=np.float64)
    raw[finite] = np.round((v[finite] - offset) / scale)
    low = finite & (raw < 0)
    high = finite & (raw > VALID_MAX)
    q[low] |= QUALITY_FLAGS["Out_of_Range"]
    q[high] |= QUALITY_FLAGS["Saturation"]
    raw = np.clip(raw, 0, VALID_MAX)
    out = np.full(v.shape, UINT16_FILL, dtype=np.uint16)
    out[finite] = raw[finite].astype(np.uint16)
    return out, q


def _angle_raw(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, ANGLE_FILL, dtype=np.int16)
    ok = np.isfinite(v)
    out[ok] = np.clip(np.round(v[ok] / ANGLE_SCALE), -18000, 18000).astype(np.int16)
    return out


def _brightness_temperature_lut(band: str, scale: float, offset: float) -> np.ndarray:
    """Kelvin for each uint16 code (inverse Planck at the band centre; an approximation)."""
    lam = BANDS[band].wavelength_um
    codes = np.arange(65536, dtype=np.float64)
    rad = codes * scale + offset
    with np.errstate(divide="ignore", invalid="ignore"):
        bt = _C2 / (lam * np.log1p(_C1 / (lam**5 * rad)))
    bt[(codes > VALID_MAX) | ~(rad > 0) | ~np.isfinite(bt)] = LATLON_FILL
    return bt.astype(np.float32)


def _common_attrs(
    nc: Any,
    short: str,
    long_name: str,
    start: datetime,
    end: datetime,
    production: datetime,
    platform: str,
    orbit_number: int,
    day_night: str,
    n_scans: int,
    direction: str,
    fname: str,
) -> None:
    attrs = {
        "title": long_name,
        "ShortName": short,
        "LongName": long_name,
        "product_name": fname,
        "LocalGranuleID": fname,
        "platform": _PLATFORM_ATTR.get(platform, platform),
        "instrument": "VIIRS",
        "processing_level": "L1B" if "02" in short else "L1",
        "Conventions": "CF-1.6",
        "cdm_data_type": "swath",
        "time_coverage_start": _iso(start),
        "time_coverage_end": _iso(end),
        "date_created": production.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ProductionTime": production.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "DayNightFlag": day_night,
        "number_of_filled_scans": np.int32(n_scans),
        "startDirection": direction,
        "endDirection": direction,
        "history": "firesmoke.synthetic.swath.write_l1b_pair",
        "source": "synthetic",
        "comment": "SYNTHETIC DATA written by firesmoke.synthetic.swath; not a NASA product",
    }
    attrs["orbit_number" if "02" in short else "OrbitNumber"] = np.int32(orbit_number)
    for k, v in attrs.items():
        nc.setncattr(k, v)


def _dims(nc: Any, n_lines: int, pixels: int, n_scans: int) -> None:
    nc.createDimension("number_of_scans", n_scans)
    nc.createDimension("number_of_lines", n_lines)
    nc.createDimension("number_of_pixels", pixels)


def _scan_times(nc: Any, start: datetime, n_scans: int) -> None:
    g = nc.createGroup("scan_line_attributes")
    t0 = (start - _TAI93).total_seconds()
    for name, off in (("scan_start_time", 0.0), ("scan_end_time", SCAN_SECONDS)):
        v = g.createVariable(name, "f8", ("number_of_scans",))
        v.setncattr("long_name", name.replace("_", " "))
        v.setncattr("units", "seconds since 1993-1-1 00:00:00.0 0")
        v[:] = t0 + np.arange(n_scans) * SCAN_SECONDS + off


def _day_night(sza: np.ndarray) -> str:
    ok = np.isfinite(sza)
    if not ok.any():
        return "Both"
    day = sza[ok] < 85.0
    return "Day" if day.all() else ("Night" if not day.any() else "Both")


def write_l1b_pair(
    out_dir: str | os.PathLike[str],
    start_time: datetime,
    lat: np.ndarray,
    lon: np.ndarray,
    bands: Mapping[str, np.ndarray],
    solar_zenith: np.ndarray,
    sensor_zenith: np.ndarray,
    platform: str = "S-NPP",
    quality: Mapping[str, np.ndarray] | None = None,
    *,
    rows_per_scan: int = ROWS_PER_SCAN,
    orbit_number: int = 0,
    collection: str = "002",
    production_time: datetime | None = None,
    ascending: bool = True,
    bowtie_deletion: bool = False,
    compress: bool = True,
) -> tuple[Path, Path]:
    """Write one synthetic L1B granule as ``V??02MOD`` + ``V??03MOD`` netCDF4 files.

    Parameters
    ----------
    out_dir
        Folder (created if needed).
    start_time
        Granule start (UTC, naive or aware); gives ``AYYYYDDD.HHMM`` in the names.
    lat, lon
        Pixel centres ``(lines, pixels)`` in degrees.
    bands
        Band name -> values ``(lines, pixels)``: reflectance factor for M01-M11 (stored as
        given, i.e. the L1B convention rho * cos(SZA)), radiance W m-2 sr-1 um-1 for
        M12-M16. NaN -> fill.
    solar_zenith, sensor_zenith
        Degrees, ``(lines, pixels)``.
    platform
        ``"S-NPP"`` (VNP), ``"NOAA-20"`` (VJ1) or ``"NOAA-21"`` (VJ2).
    quality
        Optional extra quality bits per band (uint16, OR-ed with the bits the writer sets
        for out-of-range, saturated and bow-tie-deleted pixels).
    rows_per_scan
        Lines per scan; ``lines`` must be a multiple.
    orbit_number, collection, production_time, ascending
        Metadata. ``production_time`` defaults to ``start_time + 6 h`` (deterministic).
    bowtie_deletion
        Replace pixels of :func:`bowtie_deleted` by the ``Bowtie_Deleted`` flag value
        (65533) as the on-board deletion does (approximate pattern).
    compress
        zlib level 4 with shuffle.

    Returns
    -------
    (vnp02_path, vnp03_path)
    """
    import netCDF4

    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.ndim != 2 or lat.shape != lon.shape:
        raise InputError(
            f"lat/lon must be 2-D of one shape, got {lat.shape} and {lon.shape}", field="lat"
        )
    shape = lat.shape
    n_lines, pixels = shape
    if n_lines % rows_per_scan:
        raise InputError(
            f"{n_lines} lines is not a multiple of rows_per_scan={rows_per_scan}", field="lat"
        )
    for name, arr in [
        ("solar_zenith", solar_zenith),
        ("sensor_zenith", sensor_zenith),
        *bands.items(),
    ]:
        if np.shape(arr) != shape:
            raise InputError(f"{name} has shape {np.shape(arr)}, expected {shape}", field=name)
    for b in bands:
        if b not in STORAGE:
            raise InputError(f"unknown band {b!r}; expected M01 ... M16", field="bands")
    plat = normalize_platform(platform)
    if plat not in _PREFIX:
        raise InputError(
            f"platform must be S-NPP, NOAA-20 or NOAA-21, got {platform!r}", field="platform"
        )
    if start_time.tzinfo is not None:
        start_time = start_time.astimezone(UTC).replace(tzinfo=None)
    start = start_time.replace(microsecond=(start_time.microsecond // 1000) * 1000)
    n_scans = n_lines // rows_per_scan
    end = start + timedelta(seconds=n_scans * SCAN_SECONDS)
    production = production_time or (start + timedelta(hours=6))
    prefix = _PREFIX[plat]
    gid = f"A{start:%Y%j}.{start:%H%M}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f02 = out / f"{prefix}02MOD.{gid}.{collection}.{_stamp(production)}.nc"
    f03 = out / f"{prefix}03MOD.{gid}.{collection}.{_stamp(production - timedelta(minutes=20))}.nc"
    for f in (f02, f03):  # the reader may hold them open from an earlier read
        close_cached_files(f)
    sza = np.asarray(solar_zenith, dtype=np.float64)
    day_night = _day_night(sza)
    direction = "Ascending" if ascending else "Descending"
    comp = {"zlib": True, "complevel": 4, "shuffle": True} if compress else {}
    dims2 = ("number_of_lines", "number_of_pixels")
    deleted = bowtie_deleted(n_lines, pixels, rows_per_scan) if bowtie_deletion else None

    # ---- geolocation (VNP03MOD)
    with netCDF4.Dataset(f03, "w", format="NETCDF4") as nc:
        _dims(nc, n_lines, pixels, n_scans)
        _common_attrs(
            nc,
            f"{prefix}03MOD",
            "VIIRS/NPP Moderate Resolution Terrain-Corrected Geolocation 6-Min L1 Swath 750m"
            if plat == "S-NPP"
            else f"VIIRS/{plat} Moderate Resolution Terrain-Corrected Geolocation 6-Min L1 Swath 750m",
            start,
            end,
            production - timedelta(minutes=20),
            plat,
            orbit_number,
            day_night,
            n_scans,
            direction,
            f03.name,
        )
        _scan_times(nc, start, n_scans)
        g = nc.createGroup(GEOLOCATION_GROUP)
        for name, values, units, vmin, vmax in (
            ("latitude", lat, "degrees_north", -90.0, 90.0),
            ("longitude", lon, "degrees_east", -180.0, 180.0),
        ):
            v = g.createVariable(name, "f4", dims2, fill_value=LATLON_FILL, **comp)
            v.set_auto_maskandscale(False)
            v.setncattr("long_name", f"{name.capitalize()} of pixel locations")
            v.setncattr("units", units)
            v.setncattr("valid_min", np.float32(vmin))
            v.setncattr("valid_max", np.float32(vmax))
            data = values.astype(np.float32)
            data[~np.isfinite(values)] = LATLON_FILL
            v[:] = data
        for name, values, vmin in (("solar_zenith", sza, 0), ("sensor_zenith", sensor_zenith, 0)):
            v = g.createVariable(name, "i2", dims2, fill_value=np.int16(ANGLE_FILL), **comp)
            v.set_auto_maskandscale(False)
            v.setncattr("long_name", name.replace("_", " ") + " angle at pixel locations")
            v.setncattr("units", "degrees")
            v.setncattr("scale_factor", np.float32(ANGLE_SCALE))
            v.setncattr("add_offset", np.float32(0.0))
            v.setncattr("valid_min", np.int16(vmin))
            v.setncattr("valid_max", np.int16(18000))
            v[:] = _angle_raw(values)
        v = g.createVariable("quality_flag", "u1", dims2, **comp)
        v.set_auto_maskandscale(False)
        v.setncattr("long_name", "Geolocation pixel quality flags")
        v[:] = np.zeros(shape, dtype=np.uint8)

    # ---- observations (VNP02MOD)
    with netCDF4.Dataset(f02, "w", format="NETCDF4") as nc:
        _dims(nc, n_lines, pixels, n_scans)
        long_name = (
            "VIIRS/NPP" if plat == "S-NPP" else f"VIIRS/{plat}"
        ) + " Moderate Resolution 6-Min L1B Swath 750m"
        _common_attrs(
            nc,
            f"{prefix}02MOD",
            long_name,
            start,
            end,
            production,
            plat,
            orbit_number,
            day_night,
            n_scans,
            direction,
            f02.name,
        )
        _scan_times(nc, start, n_scans)
        if any(BANDS[b].kind == "radiance" for b in bands):
            nc.createDimension("number_of_LUT_values", 65536)
        g = nc.createGroup(OBSERVATION_GROUP)
        for b in sorted(bands):
            info = BANDS[b]
            scale, offset = STORAGE[b]
            raw, qbits = _quantize(bands[b], scale, offset)
            if quality is not None and b in quality:
                qbits |= np.asarray(quality[b], dtype=np.uint16)
            if deleted is not None:
                raw[deleted] = FLAG_VALUES[1]
                qbits[deleted] |= QUALITY_FLAGS["Bowtie_Deleted"]
            v = g.createVariable(b, "u2", dims2, fill_value=np.uint16(UINT16_FILL), **comp)
            v.set_auto_maskandscale(False)
            v.setncattr("valid_min", np.uint16(0))
            v.setncattr("valid_max", np.uint16(VALID_MAX))
            v.setncattr("scale_factor", np.float32(scale))
            v.setncattr("add_offset", np.float32(offset))
            v.setncattr("flag_values", np.array(FLAG_VALUES, dtype=np.uint16))
            v.setncattr("flag_meanings", FLAG_VALUE_MEANINGS)
            if info.kind == "reflectance":
                e0 = REFLECTANCE_SOLAR_IRRADIANCE[b]
                v.setncattr(
                    "long_name",
                    f"Earth View {info.wavelength_um:g} um reflectance factor (not divided by cos(SZA))",
                )
                v.setncattr("radiance_scale_factor", np.float32(scale * e0 / math.pi))
                v.setncattr("radiance_add_offset", np.float32(offset * e0 / math.pi))
                v.setncattr("radiance_units", "Watts/meter^2/steradian/micrometer")
            else:
                v.setncattr("long_name", f"Earth View {info.wavelength_um:g} um radiance")
                v.setncattr("units", "Watts/meter^2/steradian/micrometer")
                lut = g.createVariable(
                    f"{b}_brightness_temperature_lut",
                    "f4",
                    ("number_of_LUT_values",),
                    fill_value=LATLON_FILL,
                    **comp,
                )
                lut.set_auto_maskandscale(False)
                lut.setncattr(
                    "long_name",
                    f"{b} brightness temperature lookup table (approximate, band centre)",
                )
                lut.setncattr("units", "Kelvin")
                lut[:] = _brightness_temperature_lut(b, scale, offset)
            v[:] = raw
            q = g.createVariable(f"{b}_quality_flags", "u2", dims2, **comp)
            q.set_auto_maskandscale(False)
            q.setncattr("long_name", f"{b} pixel quality flags")
            q.setncattr("flag_masks", np.array(list(QUALITY_FLAGS.values()), dtype=np.uint16))
            q.setncattr("flag_meanings", " ".join(QUALITY_FLAGS))
            q[:] = qbits
    log.debug("wrote %s and %s", f02, f03)
    return f02, f03
