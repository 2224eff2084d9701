"""Sun and S-NPP viewing geometry for synthetic overpasses.

* :func:`solar_position`: solar zenith and azimuth from UTC time, latitude and longitude
  (solar declination and right ascension from the Astronomical Almanac's low-precision
  formulas, hour angle from the sidereal time).
* A simple sun-synchronous orbit model of Suomi-NPP: ascending nodes every
  :data:`ORBIT_PERIOD_S` seconds, nadir local solar time 13:25 on the ascending (day)
  branch and 01:25 on the descending (night) branch, ground-track heading from the
  inclination and the Earth's rotation. :func:`overpass_schedule` lists the passes of a
  UTC day whose swath touches a region.
* Swath geometry of one pass on the region grid (:func:`pass_geometry`): cross- and
  along-track distances on the sphere, sensor zenith angle from the scan geometry (0 at
  nadir, ~70 deg at the swath edge, scan angle 56.28 deg), time of each pixel and its
  6-minute granule.

All angles in degrees, distances in km, times ``numpy.datetime64`` (UTC).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from firesmoke.grid import Region

__all__ = [
    "GRANULE_SECONDS",
    "ORBIT_PERIOD_S",
    "SWATH_HALF_WIDTH_KM",
    "Overpass",
    "destination_point",
    "ground_track_heading",
    "overpass_schedule",
    "pass_geometry",
    "sensor_zenith_from_ground_distance",
    "solar_position",
    "track_coordinates",
]

EARTH_RADIUS_KM = 6371.0
SNPP_ALTITUDE_KM = 829.0
SNPP_INCLINATION_DEG = 98.74
#: Nodal period of S-NPP (101.44 min).
ORBIT_PERIOD_S = 6086.4
#: An ascending-node time and its orbit number, the anchor of the orbit count (orbit 31088
#: is the one of the real LAADS sample granule of 2017-10-27).
ORBIT_REF_NODE = np.datetime64("2017-10-27T13:58:00", "ms")
ORBIT_REF_NUMBER = 31088
#: Local solar time of the nadir point on the ascending (day) branch, hours.
ASCENDING_LOCAL_TIME_H = 13.42
#: VIIRS maximum scan angle (degrees) and the corresponding half swath width on the ground.
MAX_SCAN_DEG = 56.28
#: Ground speed of the sub-satellite point, km/s.
GROUND_SPEED_KM_S = 2.0 * math.pi * EARTH_RADIUS_KM / ORBIT_PERIOD_S
#: VIIRS SDR granules are 6-minute chunks of the orbit, aligned on 00:00 UTC.
GRANULE_SECONDS = 360
#: Points further than this along the track from the nadir point are not seen by a pass
#: (the great circle of the track comes back on the far side of the globe).
ALONG_TRACK_LIMIT_KM = 4000.0
#: Passes are daytime ("D") when the solar zenith at the region centre is below this.
DAY_MAX_SZA = 85.0
_EARTH_ROT_KM_S = 2.0 * math.pi * EARTH_RADIUS_KM / 86164.1


def sensor_zenith_from_ground_distance(distance_km: np.ndarray | float) -> np.ndarray:
    """Sensor (view) zenith angle at a ground distance from nadir, degrees.

    With the Earth central angle ``g = d / R``, the scan angle ``a`` obeys
    ``tan(a) = R sin(g) / (R + h - R cos(g))`` and the zenith angle is ``a + g``.
    """
    g = np.abs(np.asarray(distance_km, dtype=np.float64)) / EARTH_RADIUS_KM
    r, h = EARTH_RADIUS_KM, SNPP_ALTITUDE_KM
    scan = np.arctan2(r * np.sin(g), r + h - r * np.cos(g))
    return np.degrees(scan + g)


def _half_swath_km() -> float:
    a = math.radians(MAX_SCAN_DEG)
    r, h = EARTH_RADIUS_KM, SNPP_ALTITUDE_KM
    zen = math.asin(min((r + h) / r * math.sin(a), 1.0))
    return (zen - a) * r


#: Ground distance from nadir to the swath edge (about 1530 km).
SWATH_HALF_WIDTH_KM = _half_swath_km()
#: Sensor zenith at the swath edge (about 70 deg).
MAX_SENSOR_ZENITH = float(sensor_zenith_from_ground_distance(SWATH_HALF_WIDTH_KM))


# --------------------------------------------------------------------------- sun
def _as_ms(time: np.datetime64 | np.ndarray) -> np.ndarray:
    return np.asarray(time, dtype="datetime64[ms]").astype(np.int64)


def solar_position(
    time: np.datetime64 | np.ndarray, lat: np.ndarray | float, lon: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Solar zenith and azimuth angles (degrees; azimuth clockwise from north).

    The low-precision solar coordinates of the Astronomical Almanac (Michalsky 1988;
    accuracy ~0.01 deg between 1950 and 2050): mean longitude and anomaly, ecliptic
    longitude, obliquity, right ascension and declination, then the hour angle from the
    local mean sidereal time.

    Parameters
    ----------
    time
        UTC time(s), ``datetime64`` (any unit), broadcastable with ``lat``/``lon``.
    lat, lon
        Degrees.
    """
    ms = _as_ms(time)
    n = (ms - _J2000_MS) / 86_400_000.0  # days since J2000.0 (UT)
    if ms.size > 1 and int(np.max(ms)) - int(np.min(ms)) < 3_600_000:
        # the sun's coordinates change by < 0.05 deg per hour: compute them once
        n_sun: np.ndarray | float = float(np.mean(n))
    else:
        n_sun = n
    mean_lon = np.radians((280.460 + 0.9856474 * n_sun) % 360.0)
    anomaly = np.radians((357.528 + 0.9856003 * n_sun) % 360.0)
    ecl_lon = mean_lon + np.radians(1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    obliq = np.radians(23.439 - 4.0e-7 * n_sun)
    ra = np.arctan2(np.cos(obliq) * np.sin(ecl_lon), np.cos(ecl_lon))
    decl = np.arcsin(np.sin(obliq) * np.sin(ecl_lon))
    hours = (ms % 86_400_000) / 3_600_000.0
    gmst = (6.697375 + 0.0657098242 * n + hours) % 24.0
    lmst = gmst + np.asarray(lon, dtype=np.float64) / 15.0
    ha = np.radians(lmst * 15.0) - ra
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    cosz = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    zen = np.degrees(np.arccos(np.clip(cosz, -1.0, 1.0)))
    az = np.degrees(
        np.arctan2(
            -np.cos(decl) * np.sin(ha),
            np.sin(decl) * np.cos(phi) - np.cos(decl) * np.cos(ha) * np.sin(phi),
        )
    )
    return zen, az % 360.0


_J2000_MS = int(np.datetime64("2000-01-01T12:00:00", "ms").astype(np.int64))


# --------------------------------------------------------------------------- sphere
def destination_point(
    lat: np.ndarray | float,
    lon: np.ndarray | float,
    bearing_deg: np.ndarray | float,
    distance_km: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """Point reached from ``(lat, lon)`` along a great circle with an initial bearing."""
    p1 = np.radians(lat)
    l1 = np.radians(lon)
    b = np.radians(bearing_deg)
    dd = np.asarray(distance_km, dtype=np.float64) / EARTH_RADIUS_KM
    p2 = np.arcsin(np.sin(p1) * np.cos(dd) + np.cos(p1) * np.sin(dd) * np.cos(b))
    l2 = l1 + np.arctan2(np.sin(b) * np.sin(dd) * np.cos(p1), np.cos(dd) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 540.0) % 360.0 - 180.0


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earth-centred unit vectors ``(x, y, z)`` of points on the sphere."""
    p = np.radians(lat)
    lam = np.radians(lon)
    cp = np.cos(p)
    return cp * np.cos(lam), cp * np.sin(lam), np.sin(p)


def track_coordinates(
    lat: np.ndarray,
    lon: np.ndarray,
    nadir_lat: float,
    nadir_lon: float,
    heading_deg: float,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-track and along-track distances (km) of points from a great-circle track.

    The track passes through the nadir point ``a`` with direction of flight ``d`` (unit
    tangent vector from the heading); with ``r = d x a`` pointing to the right of the
    track, a point ``p`` is at cross-track angle ``asin(p.r)`` (positive to the right of
    the direction of flight) and along-track angle ``atan2(p.d, p.a)`` (positive ahead).
    ``vectors`` may give the points' unit vectors (:func:`unit_vectors`) precomputed.
    """
    p1, l1, h = math.radians(nadir_lat), math.radians(nadir_lon), math.radians(heading_deg)
    a = np.array([math.cos(p1) * math.cos(l1), math.cos(p1) * math.sin(l1), math.sin(p1)])
    east = np.array([-math.sin(l1), math.cos(l1), 0.0])
    north = np.array([-math.sin(p1) * math.cos(l1), -math.sin(p1) * math.sin(l1), math.cos(p1)])
    d = math.cos(h) * north + math.sin(h) * east
    r = np.cross(d, a)
    x, y, z = vectors if vectors is not None else unit_vectors(np.asarray(lat), np.asarray(lon))
    pr = x * r[0] + y * r[1] + z * r[2]
    pd = x * d[0] + y * d[1] + z * d[2]
    pa = x * a[0] + y * a[1] + z * a[2]
    xt = np.arcsin(np.clip(pr, -1.0, 1.0))
    at = np.arctan2(pd, pa)
    return xt * EARTH_RADIUS_KM, at * EARTH_RADIUS_KM


def ground_track_heading(lat: float, ascending: bool) -> float:
    """Heading of the S-NPP ground track (degrees clockwise from north) at a latitude."""
    phi = math.radians(lat)
    s = math.cos(math.radians(SNPP_INCLINATION_DEG)) / max(math.cos(phi), 1e-6)
    az = math.asin(max(-1.0, min(1.0, s)))
    if not ascending:
        az = math.pi - az
    ve = GROUND_SPEED_KM_S * math.sin(az) - _EARTH_ROT_KM_S * math.cos(phi)
    vn = GROUND_SPEED_KM_S * math.cos(az)
    return math.degrees(math.atan2(ve, vn))


# --------------------------------------------------------------------------- passes
@dataclass(frozen=True)
class Overpass:
    """One S-NPP pass over a region.

    Attributes
    ----------
    time
        UTC time (``datetime64[ms]``) when the sub-satellite point crosses the latitude
        of the region centre.
    orbit
        Orbit number (counted from :data:`ORBIT_REF_NUMBER`).
    nadir_lat, nadir_lon
        Sub-satellite point at ``time``.
    heading_deg
        Ground-track heading there (clockwise from north).
    ascending
        True on the daytime (ascending) branch.
    daynight
        ``"D"`` or ``"N"`` from the solar zenith at the region centre (85 deg).
    """

    time: np.datetime64
    orbit: int
    nadir_lat: float
    nadir_lon: float
    heading_deg: float
    ascending: bool
    daynight: str


def _centre(region: Region) -> tuple[float, float]:
    left, bottom, right, top = region.bbox
    return 0.5 * (bottom + top), 0.5 * (left + right)


def _utc_hours(ms: int) -> float:
    return (ms % 86_400_000) / 3_600_000.0


def _corners(region: Region) -> tuple[np.ndarray, np.ndarray]:
    left, bottom, right, top = region.bbox
    lat_c = 0.5 * (bottom + top)
    lon_c = 0.5 * (left + right)
    lats = np.array([top, top, bottom, bottom, lat_c, top, bottom, lat_c])
    lons = np.array([left, right, left, right, lon_c, lon_c, lon_c, left])
    return lats, lons


def _min_abs_cross_track(region: Region, ov_lat: float, ov_lon: float, heading: float) -> float:
    lats, lons = _corners(region)
    xt, at = track_coordinates(lats, lons, ov_lat, ov_lon, heading)
    if np.abs(at).min() > ALONG_TRACK_LIMIT_KM:  # the other side of the globe
        return math.inf
    if xt.min() <= 0.0 <= xt.max():
        return 0.0
    return float(np.abs(xt).min())


def overpass_schedule(
    region: Region, date: np.datetime64 | str, night: bool = False
) -> list[Overpass]:
    """S-NPP passes of one UTC day whose swath covers at least part of the region.

    Parameters
    ----------
    region
        The grid.
    date
        The UTC day.
    night
        False: ascending (afternoon, ~13:25 local) passes that are daytime at the region
        centre (solar zenith < 85 deg); True: descending (~01:25 local) passes, whatever
        the sun (their ``daynight`` says which they are).

    Returns
    -------
    list of Overpass
        In time order (usually 1-2 at mid-latitudes, up to 3-4 near the poles, none
        in polar night for the day list).
    """
    return list(_schedule(region, str(np.datetime64(date, "D")), bool(night)))


@functools.lru_cache(maxsize=64)
def _schedule(region: Region, date: str, night: bool) -> tuple[Overpass, ...]:
    day = np.datetime64(date, "D").astype("datetime64[ms]").astype(np.int64)
    lat_c, lon_c = _centre(region)
    inc = math.radians(SNPP_INCLINATION_DEG)
    u = math.asin(max(-1.0, min(1.0, math.sin(math.radians(lat_c)) / math.sin(inc))))
    if night:
        u = math.pi - u
    dt_ms = u / (2 * math.pi) * ORBIT_PERIOD_S * 1000.0
    ref = int(ORBIT_REF_NODE.astype(np.int64))
    period_ms = ORBIT_PERIOD_S * 1000.0
    n_lo = math.ceil((day - dt_ms - ref) / period_ms)
    n_hi = math.floor((day + 86_400_000 - 1 - dt_ms - ref) / period_ms)
    heading = ground_track_heading(lat_c, ascending=not night)
    local_h = ASCENDING_LOCAL_TIME_H - (12.0 if night else 0.0)
    out: list[Overpass] = []
    for n in range(n_lo, n_hi + 1):
        t_ms = round(ref + n * period_ms + dt_ms)
        nadir_lon = (15.0 * (local_h - _utc_hours(t_ms)) + 540.0) % 360.0 - 180.0
        if _min_abs_cross_track(region, lat_c, nadir_lon, heading) > SWATH_HALF_WIDTH_KM:
            continue
        t = np.datetime64(t_ms, "ms")
        sza, _ = solar_position(t, lat_c, lon_c)
        daynight = "D" if float(sza) < DAY_MAX_SZA else "N"
        if not night and daynight != "D":
            continue
        out.append(
            Overpass(t, ORBIT_REF_NUMBER + n, lat_c, float(nadir_lon), heading, not night, daynight)
        )
    return out


@functools.lru_cache(maxsize=4)
def region_latlon(region: Region) -> tuple[np.ndarray, np.ndarray]:
    """2-D latitude and longitude of the pixel centres (read-only arrays)."""
    lon, lat = np.meshgrid(region.x, region.y)
    lat.setflags(write=False)
    lon.setflags(write=False)
    return lat, lon


@functools.lru_cache(maxsize=4)
def region_vectors(region: Region) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors of the pixel centres (read-only, cached)."""
    out = unit_vectors(*region_latlon(region))
    for v in out:
        v.setflags(write=False)
    return out


def pass_geometry(
    region: Region,
    overpass: Overpass,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Viewing geometry of one pass on the region grid (or at some of its pixels).

    Parameters
    ----------
    region, overpass
        The grid and the pass.
    rows, cols
        Optional pixel indices: the geometry of these pixels only (1-D arrays out).

    Returns
    -------
    dict
        ``cross_track_km``, ``along_track_km`` (float64), ``valid`` (bool: inside the
        swath), ``sensor_zenith`` (float64 degrees, NaN outside the swath), ``time_ms``
        (int64 UTC milliseconds when the pixel is seen), ``granule`` (int64 index of the
        6-minute granule, ``time_ms // 360000``, so its start is ``granule * 360000`` ms
        since 1970; -1 outside the swath).
    """
    lat, lon = region_latlon(region)
    vec = region_vectors(region)
    if rows is not None and cols is not None:
        lat, lon = lat[rows, cols], lon[rows, cols]
        vec = (vec[0][rows, cols], vec[1][rows, cols], vec[2][rows, cols])
    xt, at = track_coordinates(
        lat, lon, overpass.nadir_lat, overpass.nadir_lon, overpass.heading_deg, vectors=vec
    )
    valid = (np.abs(xt) <= SWATH_HALF_WIDTH_KM) & (np.abs(at) <= ALONG_TRACK_LIMIT_KM)
    vza = np.where(valid, sensor_zenith_from_ground_distance(xt), np.nan)
    t0 = int(np.datetime64(overpass.time, "ms").astype(np.int64))
    time_ms = t0 + np.round(at * (1000.0 / GROUND_SPEED_KM_S)).astype(np.int64)
    granule = np.where(valid, time_ms // (GRANULE_SECONDS * 1000), -1)
    return {
        "cross_track_km": xt,
        "along_track_km": at,
        "valid": valid,
        "sensor_zenith": vza,
        "time_ms": time_ms,
        "granule": granule,
    }
