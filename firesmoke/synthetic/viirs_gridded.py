"""Writer of VIIRS 750 m granules in the gridded LAADS ``NPP_VMAES_L1`` layout.

The real files (``shared/data/real/viirs750``) come from the retired LAADS ordering
service that reprojected each 6-minute VIIRS granule onto the order's 0.01 deg grid and
wrote one HDF4 file per layer::

    NPP_VMAES_L1.A2017300.1406.001.2017300192651.psrpgscs_000501412525.Reflectance_M5.hdf
                 AYYYYDDD.HHMM     production stamp       order id     layer

Each file holds one SDS named like the layer, ``(YDim, XDim)`` with HDF-EOS dimension
names ``YDim:VIIRS_EV_750M_SDR`` / ``XDim:VIIRS_EV_750M_SDR``, deflate level 4. Bands are
uint16 with float32 ``Scale``/``Offset`` (value = raw * Scale + Offset) and fill values
65527..65535 (65535 outside the swath, 65533 "on-board pixel trim" along granule
edges); angles are float32 with fill -999.9. Global attributes mirror the real ones
(names, order and HDF types): ``HDFEOSVersion``, ``StructMetadata.0`` (an HDF-EOS2
``GCTP_GEO`` grid whose corners are in packed DMS, ``DDDMMMSSS.SS``), the granule's
swath metadata (orbit, G-ring, solar/sensor angle ranges, per-aggregate ``Unagg_*``
strings), bounding coordinates of the grid, ``DayNightFlag`` etc. Quirks of the real
files are kept on purpose: ``LocalGranuleID`` names the M15 file with ``psrpgs_``, and
``EndTime`` is ``1400-01-01``.

The reflective bands hold TOA reflectance factors already divided by cos(SZA) (the
VIIRS SDR convention), the thermal bands radiances in W m-2 sr-1 um-1. Files are
written by :func:`firesmoke.synthetic.hdf4write.write_hdf4` (staged under their final
name, then moved into place), so a file either exists complete or not and its bytes do
not depend on the output folder.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.grid import Region
from firesmoke.synthetic.hdf4write import write_hdf4
from firesmoke.synthetic.orbit import (
    GRANULE_SECONDS,
    GROUND_SPEED_KM_S,
    SWATH_HALF_WIDTH_KM,
    Overpass,
    destination_point,
    sensor_zenith_from_ground_distance,
    solar_position,
)

__all__ = [
    "ANGLE_FILL",
    "LAYERS",
    "UINT16_FILL",
    "LayerSpec",
    "encode_layer",
    "granule_file_name",
    "packed_dms",
    "struct_metadata",
    "trim_mask",
    "write_viirs_granule",
]

log = logging.getLogger(__name__)

SHORT_NAME = "NPP_VMAES_L1"
GRID_NAME = "VIIRS_EV_750M_SDR"
UINT16_FILL = 65535
#: "On-board pixel trim" fill, used in the band layers next to granule edges.
UINT16_TRIM_FILL = 65533
UINT16_MAX_VALID = 65526
ANGLE_FILL = np.float32(-999.9)
_UINT16_FILL_VALUES = (
    "NA_UINT16_FILL = 65535, MISS_UINT16_FILL = 65534, ONBOARD_PT_UINT16_FILL = 65533, "
    "ONGROUND_PT_UINT16_FILL = 65532, ERR_UINT16_FILL = 65531, ELLIPSOID_UINT16_FILL = 65530, "
    "VDNE_UINT16_FILL = 65529, SOUB_UINT16_FILL = 65528"
)
_FLOAT32_FILL_VALUES = (
    "NA_FLOAT32_FILL = -999.9, MISS_FLOAT32_FILL = -999.8, ONBOARD_PT_FLOAT32_FILL = -999.7, "
    "ONGROUND_PT_FLOAT32_FILL = -999.6, ERR_FLOAT32_FILL = -999.5, ELLIPSOID_FLOAT32_FILL = -999.4, "
    "VDNE_FLOAT32_FILL = -999.3, SOUB_FLOAT32_FILL = -999.2"
)
#: Width (km) of the strip of trimmed band pixels on each side of a granule edge.
TRIM_STRIP_KM = 3.0


@dataclass(frozen=True)
class LayerSpec:
    """How one layer is stored: the field it comes from, dtype and scaling."""

    field: str
    dtype: str  # "uint16" or "float32"
    scale: float = 1.0
    offset: float = 0.0


#: The seven layers of an order, in the order of the real files, with the scale and
#: offset of the real sample (float32 values).
LAYERS: dict[str, LayerSpec] = {
    "Reflectance_M5": LayerSpec("M05", "uint16", 2.4417415261268616e-05, 0.0),
    "Reflectance_M7": LayerSpec("M07", "uint16", 2.4417415261268616e-05, 0.0),
    "Reflectance_M10": LayerSpec("M10", "uint16", 2.4417415261268616e-05, 0.0),
    "Radiance_M12": LayerSpec("M12", "uint16", 6.732538167852908e-05, 0.0),
    "Radiance_M15": LayerSpec("M15", "uint16", 0.00039008501335047185, -0.019999999552965164),
    "SolarZenithAngle": LayerSpec("solar_zenith", "float32"),
    "SatelliteZenithAngle": LayerSpec("sensor_zenith", "float32"),
}


# --------------------------------------------------------------------------- encoding
def encode_layer(values: np.ndarray, spec: LayerSpec, trim: np.ndarray | None = None) -> np.ndarray:
    """Physical values (NaN = no data) to the stored array.

    uint16 layers: ``round((v - offset) / scale)`` clipped to ``[0, 65526]``, NaN ->
    65535, ``trim`` pixels -> 65533. float32 layers: NaN -> -999.9.
    """
    v = np.asarray(values, dtype=np.float64)
    if spec.dtype == "float32":
        return np.where(np.isfinite(v), v, ANGLE_FILL).astype(np.float32)
    scale = float(np.float32(spec.scale))
    offset = float(np.float32(spec.offset))
    finite = np.isfinite(v)
    raw = np.rint((np.where(finite, v, 0.0) - offset) / scale)
    raw = np.clip(raw, 0, UINT16_MAX_VALID).astype(np.uint16)
    raw[~finite] = UINT16_FILL
    if trim is not None:
        raw[trim & finite] = UINT16_TRIM_FILL
    return raw


def packed_dms(degrees: float) -> float:
    """Degrees to the GCTP packed ``DDDMMMSSS.SS`` form (``-10.5`` -> ``-10030000.0``)."""
    sign = -1.0 if degrees < 0 else 1.0
    total_sec = round(abs(float(degrees)) * 3600.0, 6)
    d = int(total_sec // 3600)
    m = int((total_sec - d * 3600) // 60)
    s = total_sec - d * 3600 - m * 60
    return sign * (d * 1_000_000 + m * 1_000 + s)


def struct_metadata(region: Region, field_name: str, data_type: str) -> str:
    """HDF-EOS2 ``StructMetadata.0`` of a one-field ``GCTP_GEO`` grid, padded to 32000."""
    left, bottom, right, top = region.bbox
    h, w = region.shape
    text = (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n"
        "\tGROUP=GRID_1\n"
        f'\t\tGridName="{GRID_NAME}"\n'
        f"\t\tXDim={w}\n"
        f"\t\tYDim={h}\n"
        f"\t\tUpperLeftPointMtrs=({packed_dms(left):.6f},{packed_dms(top):.6f})\n"
        f"\t\tLowerRightMtrs=({packed_dms(right):.6f},{packed_dms(bottom):.6f})\n"
        "\t\tProjection=GCTP_GEO\n"
        "\t\tGridOrigin=HDFE_GD_UL\n"
        "\t\tPixelRegistration=HDFE_CORNER\n"
        "\t\tGROUP=Dimension\n"
        "\t\t\tOBJECT=Dimension_1\n"
        '\t\t\t\tDimensionName="XDim"\n'
        f"\t\t\t\tSize={w}\n"
        "\t\t\tEND_OBJECT=Dimension_1\n"
        "\t\t\tOBJECT=Dimension_2\n"
        '\t\t\t\tDimensionName="YDim"\n'
        f"\t\t\t\tSize={h}\n"
        "\t\t\tEND_OBJECT=Dimension_2\n"
        "\t\tEND_GROUP=Dimension\n"
        "\t\tGROUP=DataField\n"
        "\t\t\tOBJECT=DataField_1\n"
        f'\t\t\t\tDataFieldName="{field_name}"\n'
        f"\t\t\t\tDataType={data_type}\n"
        '\t\t\t\tDimList=("YDim","XDim")\n'
        "\t\t\tEND_OBJECT=DataField_1\n"
        "\t\tEND_GROUP=DataField\n"
        "\t\tGROUP=MergedFields\n"
        "\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )
    return text + "\x00" * (32000 - len(text))


# --------------------------------------------------------------------------- names
def _stamp(ms: int) -> str:
    """``YYYYDDDHHMMSS`` of a UTC time in milliseconds."""
    t = _EPOCH + dt.timedelta(milliseconds=int(ms))
    return t.strftime("%Y%j%H%M%S")


_EPOCH = dt.datetime(1970, 1, 1)


def order_id(region: Region, seed: int) -> str:
    """A 12-digit LAADS order id, deterministic for a region and seed."""
    return f"{500_000_000 + zlib.crc32(f'{region.name}:{int(seed)}'.encode()) % 99_999_999:012d}"


def production_ms(granule_ms: int, seed: int) -> int:
    """A deterministic production time, 5-6 h after the granule (as the real stamp)."""
    jitter = zlib.crc32(f"{granule_ms}:{int(seed)}".encode()) % 3600
    return int(granule_ms) + (5 * 3600 + jitter) * 1000


def granule_file_name(
    granule_ms: int, layer: str, production: int, order: str, prefix: str = "psrpgscs"
) -> str:
    """``NPP_VMAES_L1.AYYYYDDD.HHMM.001.<production stamp>.<prefix>_<order>.<layer>.hdf``."""
    s = _stamp(granule_ms)
    return f"{SHORT_NAME}.A{s[:7]}.{s[7:11]}.001.{_stamp(production)}.{prefix}_{order}.{layer}.hdf"


# --------------------------------------------------------------------------- metadata
def _fmt(v: float) -> str:
    return f"{float(v):g}"


def _ts(values: list[Any]) -> str:
    return "; ".join(f"TS {i}: {v}" for i, v in enumerate(values))


def _signed_azimuth(az: np.ndarray) -> np.ndarray:
    return (np.asarray(az) + 180.0) % 360.0 - 180.0


def _bearing(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2) - np.radians(lon1)
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.degrees(np.arctan2(y, x))


def granule_metadata(overpass: Overpass, granule_ms: int) -> dict[str, Any]:
    """Swath metadata of a 6-minute granule, from its geometry (5 aggregates of 72 s)."""
    t_pass = int(np.datetime64(overpass.time, "ms").astype(np.int64))
    n_ts = 5
    seg = GRANULE_SECONDS * 1000 // n_ts
    cross = np.linspace(-SWATH_HALF_WIDTH_KM, SWATH_HALF_WIDTH_KM, 9)
    per_ts: list[dict[str, Any]] = []
    all_pts = []
    for k in range(n_ts):
        times = granule_ms + k * seg + np.array([0, seg // 2, seg])
        at = (times - t_pass) / 1000.0 * GROUND_SPEED_KM_S
        nlat, nlon = destination_point(
            overpass.nadir_lat, overpass.nadir_lon, overpass.heading_deg, at
        )
        alat, alon = destination_point(
            overpass.nadir_lat, overpass.nadir_lon, overpass.heading_deg, at + 1.0
        )
        head = _bearing(nlat, nlon, alat, alon)
        plat, plon = destination_point(
            nlat[:, None], nlon[:, None], head[:, None] + 90.0, cross[None, :]
        )
        ptime = np.repeat(times[:, None], cross.size, axis=1).astype("datetime64[ms]")
        sza, saa = solar_position(ptime, plat, plon)
        vza = np.broadcast_to(sensor_zenith_from_ground_distance(cross)[None, :], plat.shape)
        vaa = _bearing(
            plat,
            plon,
            np.broadcast_to(nlat[:, None], plat.shape),
            np.broadcast_to(nlon[:, None], plat.shape),
        )
        vaa = np.where(np.abs(cross)[None, :] < 1e-9, 180.0 * np.sign(head[:, None] + 1e-12), vaa)
        ring_lat = [
            plat[2, -1],
            plat[1, -1],
            plat[0, -1],
            nlat[0],
            plat[0, 0],
            plat[1, 0],
            plat[2, 0],
            nlat[2],
        ]
        ring_lon = [
            plon[2, -1],
            plon[1, -1],
            plon[0, -1],
            nlon[0],
            plon[0, 0],
            plon[1, 0],
            plon[2, 0],
            nlon[2],
        ]
        per_ts.append(
            {
                "north": plat.max(),
                "south": plat.min(),
                "east": plon.max(),
                "west": plon.min(),
                "sza": (sza.min(), sza.max()),
                "saa": (_signed_azimuth(saa).min(), _signed_azimuth(saa).max()),
                "vza": (vza.min(), vza.max()),
                "vaa": (vaa.min(), vaa.max()),
                "nadir_lat": (nlat.min(), nlat.max()),
                "nadir_lon": (nlon.min(), nlon.max()),
                "ring": (ring_lat, ring_lon),
            }
        )
        all_pts.append((plat, plon))
    first, last = per_ts[0], per_ts[-1]
    gr_lat = [first["ring"][0][2], first["ring"][0][4], last["ring"][0][6], last["ring"][0][0]]
    gr_lon = [first["ring"][1][2], first["ring"][1][4], last["ring"][1][6], last["ring"][1][0]]

    def span(key: str, i: int, fn: Any) -> float:
        return float(fn([ts[key][i] for ts in per_ts]))

    return {
        "per_ts": per_ts,
        "gring": (gr_lat, gr_lon),
        "sza": (span("sza", 0, min), span("sza", 1, max)),
        "saa": (span("saa", 0, min), span("saa", 1, max)),
        "vza": (span("vza", 0, min), span("vza", 1, max)),
        "vaa": (span("vaa", 0, min), span("vaa", 1, max)),
        "nadir_lat": (span("nadir_lat", 0, min), span("nadir_lat", 1, max)),
        "nadir_lon": (span("nadir_lon", 0, min), span("nadir_lon", 1, max)),
    }


def _global_attributes(
    region: Region,
    overpass: Overpass,
    granule_ms: int,
    production: int,
    order: str,
    meta: dict[str, Any],
    layer: str,
) -> list[tuple[str, str, Any]]:
    """``(name, hdf type, value)`` of the global attributes, in the order of the real files."""
    spec = LAYERS[layer]
    dtype = "DFNT_UINT16" if spec.dtype == "uint16" else "DFNT_FLOAT32"
    ts = meta["per_ts"]
    day = np.datetime64(int(granule_ms), "ms").astype("datetime64[D]")
    ymd = str(day)
    vnp01 = []
    for step in (-1, 0, 1):
        g = granule_ms + step * GRANULE_SECONDS * 1000
        s = _stamp(g)
        vnp01.append(
            f"/firesmoke/synthetic/VNP01.A{s[:7]}.{s[7:11]}.001.{_stamp(production - 2_000_000)}.nc"
        )
    s = _stamp(granule_ms)
    for prod in ("NPP_MOFTS_L1", "NPP_IMFTS_L1", "NPP_DNFTS_L1"):
        vnp01.append(
            f"/firesmoke/synthetic/{prod}.A{s[:7]}.{s[7:11]}.001.{_stamp(production - 1_000_000)}.hdf"
        )
    orbit = float(overpass.orbit)
    left, bottom, right, top = region.bbox
    indicator = 0 if overpass.ascending else 1
    local_id = granule_file_name(granule_ms, "Radiance_M15", production, order, prefix="psrpgs")
    production_time = np.datetime64(production, "ms").astype("datetime64[s]") + np.timedelta64(
        3, "D"
    )
    ring = [", ".join(_fmt(v) for v in t["ring"][0]) for t in ts]
    ring_lon = [", ".join(_fmt(v) for v in t["ring"][1]) for t in ts]
    f32 = np.float32
    return [
        ("HDFEOSVersion", "CHAR8", "HDFEOS_V2.19"),
        ("StructMetadata.0", "CHAR8", struct_metadata(region, layer, dtype)),
        ("Solar_Azimuth_Angle_Max", "FLOAT32", f32(meta["saa"][1])),
        ("StopOrbitNumber", "FLOAT64", orbit),
        ("InstrumentShortName", "CHAR8", "VIIRS"),
        ("Satellite_Zenith_Angle_Min", "FLOAT32", f32(meta["vza"][0])),
        ("ephAttDataGood", "UINT8", 1),
        ("Solar_Zenith_Angle_Max", "FLOAT32", f32(meta["sza"][1])),
        ("Solar_Zenith_Angle_Min", "FLOAT32", f32(meta["sza"][0])),
        ("NumberOfScans", "INT32", 203),
        ("Satellite_Zenith_Angle_Max", "FLOAT32", f32(meta["vza"][1])),
        ("Instrument_Flight_SW_Version", "CHAR8", _ts([23] * len(ts))),
        ("Unagg_North_Bounding_Coordinate", "CHAR8", _ts([_fmt(t["north"]) for t in ts])),
        ("GRingLatitude", "FLOAT32", [f32(v) for v in meta["gring"][0]]),
        ("Unagg_Solar_Zenith_Angle_Min", "CHAR8", _ts([_fmt(t["sza"][0]) for t in ts])),
        ("LongName", "CHAR8", "VIIRS/NPP Moderate Resolution 6-Min L1 Swath SDR and GEO 750m"),
        ("Operation_Mode", "CHAR8", "Operational"),
        ("Nadir_Latitude_Max", "FLOAT32", f32(meta["nadir_lat"][1])),
        ("Unagg_Operation_Mode", "CHAR8", _ts(["Operational"] * len(ts))),
        ("Unagg_East_Bounding_Coordinate", "CHAR8", _ts([_fmt(t["east"]) for t in ts])),
        ("ShortName", "CHAR8", SHORT_NAME),
        ("Unagg_Solar_Azimuth_Angle_Min", "CHAR8", _ts([_fmt(t["saa"][0]) for t in ts])),
        ("Unagg_Nadir_Longitude_Max", "CHAR8", _ts([_fmt(t["nadir_lon"][1]) for t in ts])),
        ("InputPointer", "CHAR8", ";".join(vnp01)),
        ("Satellite_Azimuth_Angle_Min", "FLOAT32", f32(meta["vaa"][0])),
        ("StartTime", "CHAR8", ymd),
        ("EndingDate", "CHAR8", ymd.replace("-", "")),
        ("Mission_Name", "CHAR8", "NPP"),
        ("Unagg_Solar_Azimuth_Angle_Max", "CHAR8", _ts([_fmt(t["saa"][1]) for t in ts])),
        ("Unagg_Spacecraft_Maneuver", "CHAR8", _ts(["Normal Operations"] * len(ts))),
        ("OrbitNumber", "FLOAT64", orbit),
        ("BeginningDate", "CHAR8", ymd.replace("-", "")),
        ("Unagg_South_Bounding_Coordinate", "CHAR8", _ts([_fmt(t["south"]) for t in ts])),
        ("Unagg_Nadir_Longitude_Min", "CHAR8", _ts([_fmt(t["nadir_lon"][0]) for t in ts])),
        ("SciAbnormal", "INT8", 49),
        ("Satellite_Azimuth_Angle_Max", "FLOAT32", f32(meta["vaa"][1])),
        ("Unagg_Satellite/Local_Azimuth_Angle_Min", "CHAR8", _ts([_fmt(t["vaa"][0]) for t in ts])),
        ("Unagg_Satellite/Local_Zenith_Angle_Max", "CHAR8", _ts([_fmt(t["vza"][1]) for t in ts])),
        ("Unagg_Satellite/Local_Azimuth_Angle_Max", "CHAR8", _ts([_fmt(t["vaa"][1]) for t in ts])),
        ("Nadir_Latitude_Min", "FLOAT32", f32(meta["nadir_lat"][0])),
        ("Unagg_West_Bounding_Coordinate", "CHAR8", _ts([_fmt(t["west"]) for t in ts])),
        ("Solar_Azimuth_Angle_Min", "FLOAT32", f32(meta["saa"][0])),
        ("Unagg_GRingLatitude", "CHAR8", _ts(ring)),
        ("Unagg_Satellite/Local_Zenith_Angle_Min", "CHAR8", _ts([_fmt(t["vza"][0]) for t in ts])),
        ("Spacecraft", "CHAR8", "NPP"),
        ("Unagg_Nadir_Latitude_Max", "CHAR8", _ts([_fmt(t["nadir_lat"][1]) for t in ts])),
        ("Nadir_Longitude_Max", "FLOAT32", f32(meta["nadir_lon"][1])),
        ("Ascending/Descending_Indicator", "CHAR8", _ts([indicator] * len(ts))),
        ("GRingLongitude", "FLOAT32", [f32(v) for v in meta["gring"][1]]),
        ("Nadir_Longitude_Min", "FLOAT32", f32(meta["nadir_lon"][0])),
        ("StartOrbitNumber", "FLOAT64", orbit),
        ("Unagg_GRingLongitude", "CHAR8", _ts(ring_lon)),
        ("SciState", "INT8", 49),
        ("Spacecraft_Maneuver", "CHAR8", "Normal Operations"),
        ("Unagg_Solar_Zenith_Angle_Max", "CHAR8", _ts([_fmt(t["sza"][1]) for t in ts])),
        ("Unagg_Nadir_Latitude_Min", "CHAR8", _ts([_fmt(t["nadir_lat"][0]) for t in ts])),
        ("act_scans", "CHAR8", "203"),
        ("Proj4String", "CHAR8", " +a=6378137.0 +b=6356752.3142451793 +no_defs +proj=latlong"),
        ("NorthBoundingCoord", "CHAR8", f"{top:.6f}"),
        ("SouthBoundingCoord", "CHAR8", f"{bottom:.6f}"),
        ("EastBoundingCoord", "CHAR8", f"{right:.6f}"),
        ("WestBoundingCoord", "CHAR8", f"{left:.6f}"),
        ("LocalGranuleID", "CHAR8", local_id),
        ("ProductionTime", "CHAR8", str(production_time)),
        ("DayNightFlag", "CHAR8", overpass.daynight),
        ("EndTime", "CHAR8", "1400-01-01"),
        ("InstrumentShortname", "CHAR8", "UNKNOWN"),
    ]


# --------------------------------------------------------------------------- writing
def write_viirs_granule(
    out_dir: str | os.PathLike[str],
    region: Region,
    fields: Mapping[str, np.ndarray],
    overpass: Overpass,
    granule_ms: int,
    *,
    order: str,
    seed: int = 0,
    trim: np.ndarray | None = None,
    staging: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the seven layer files of one gridded granule.

    Parameters
    ----------
    out_dir
        Destination folder (created if needed).
    region
        The order's grid; arrays are ``region.shape``.
    fields
        Physical values by field name (``M05`` ... ``M15``, ``solar_zenith``,
        ``sensor_zenith``), NaN where the granule has no data.
    overpass
        The pass (for the swath metadata).
    granule_ms
        Start of the 6-minute granule, UTC milliseconds since 1970 (gives ``AYYYYDDD.HHMM``).
    order
        The 12-digit order id of the file names.
    seed
        Used for the deterministic production time.
    trim
        Optional boolean map of band pixels to flag 65533 (on-board pixel trim).
    staging
        Temporary folder on the same file system (default ``out_dir/.staging``).

    Returns
    -------
    list of Path
        The seven files, in :data:`LAYERS` order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(staging) if staging is not None else out / ".staging"
    production = production_ms(granule_ms, seed)
    meta = granule_metadata(overpass, granule_ms)
    dims = (f"YDim:{GRID_NAME}", f"XDim:{GRID_NAME}")
    paths = []
    for layer, spec in LAYERS.items():
        arr = encode_layer(fields[spec.field], spec, trim if spec.dtype == "uint16" else None)
        if spec.dtype == "uint16":
            attrs = [
                ("FILL_VALUES", "CHAR8", _UINT16_FILL_VALUES),
                ("_FillValue", "FILL", UINT16_FILL),
                ("FILL_TEST_VALUE", "CHAR8", "UINT16_FILL_TEST = 65527"),
                ("Scale", "FLOAT32", float(np.float32(spec.scale))),
                ("Offset", "FLOAT32", float(np.float32(spec.offset))),
            ]
        else:
            attrs = [
                ("FILL_VALUES", "CHAR8", _FLOAT32_FILL_VALUES),
                ("_FillValue", "FILL", float(ANGLE_FILL)),
                ("FILL_TEST_VALUE", "CHAR8", "FLOAT32_FILL_TEST = -999"),
            ]
        gattrs = _global_attributes(region, overpass, granule_ms, production, order, meta, layer)
        path = out / granule_file_name(granule_ms, layer, production, order)
        write_hdf4(path, gattrs, [(layer, arr, dims, attrs)], stage)
        paths.append(path)
    if staging is None:
        _cleanup_staging(stage)
    return paths


def _cleanup_staging(stage: Path) -> None:
    try:
        stage.rmdir()
    except OSError:
        if stage.exists() and not any(stage.iterdir()):
            shutil.rmtree(stage, ignore_errors=True)


def trim_mask(time_ms: np.ndarray, granule_ms: int, valid: np.ndarray) -> np.ndarray:
    """Pixels of a granule within :data:`TRIM_STRIP_KM` of its along-track edges.

    Only edges that fall inside the region matter (elsewhere no pixel is that close).
    """
    dt_start = (time_ms - granule_ms) / 1000.0
    dt_end = (granule_ms + GRANULE_SECONDS * 1000 - time_ms) / 1000.0
    strip_s = TRIM_STRIP_KM / GROUND_SPEED_KM_S
    return valid & ((dt_start < strip_s) | (dt_end < strip_s)) & (dt_start >= 0) & (dt_end > 0)
