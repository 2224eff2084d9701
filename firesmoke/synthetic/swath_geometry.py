"""Geometry of a VIIRS-like M-band swath on a spherical Earth (for synthetic granules).

Model (spherical Earth, radius 6371 km, no Earth rotation during a granule, satellite
altitude 833 km):

- across track, the 3200 M-band pixels follow VIIRS's three aggregation zones on each side
  of nadir: 640 pixels of 3 native samples, 368 of 2 and 592 of 1, so the scan-angle step
  is constant within a zone and drops to 2/3 and 1/3 of the nadir step in the outer
  zones. The nadir step gives 750 m pixels at nadir; the scan angle reaches ~55.8 deg,
  the sensor zenith ~69.3 deg at the edge, where pixels are ~1.5 km across track;
- along track, a scan is 16 detector rows at a fixed angular spacing (750 m at nadir)
  and consecutive scans are 16 x 750 m apart on the ground track, so scans abut at nadir
  and overlap towards the swath edges, where the footprint of a detector grows with the
  range (the "bow-tie" effect);
- longitudes are wrapped to [-180, 180].
"""

from __future__ import annotations

import math

import numpy as np

from firesmoke.errors import InputError

__all__ = [
    "AGGREGATION_ZONES",
    "ALTITUDE_KM",
    "EARTH_RADIUS_KM",
    "NADIR_PIXEL_KM",
    "ROWS_PER_SCAN",
    "SCANS_PER_GRANULE",
    "SCAN_SECONDS",
    "bowtie_deleted",
    "move_along",
    "scan_angles",
    "swath_geometry",
]

EARTH_RADIUS_KM = 6371.0
ALTITUDE_KM = 833.0
NADIR_PIXEL_KM = 0.75
ROWS_PER_SCAN = 16
#: Aggregation zones of one half scan: (pixels, native samples per pixel).
AGGREGATION_ZONES: tuple[tuple[int, int], ...] = ((640, 3), (368, 2), (592, 1))
#: Scans per 6-minute granule and seconds per scan.
SCANS_PER_GRANULE = 202
SCAN_SECONDS = 1.7864


def scan_angles(pixels: int = 3200) -> np.ndarray:
    """Scan angle (degrees, negative left of the track) of each pixel centre.

    For ``pixels=3200`` the angles follow the aggregation zones exactly; other counts
    sample the same angular profile evenly (a thinned swath of the same width).
    """
    step1 = math.degrees(NADIR_PIXEL_KM / ALTITUDE_KM)  # nadir zone: 3 native samples
    edges = [0.0]
    steps = []
    for n, samples in AGGREGATION_ZONES:
        step = step1 * samples / AGGREGATION_ZONES[0][1]
        steps.append((n, step))
    half = []
    pos = 0.0
    for n, step in steps:
        half.append(pos + (np.arange(n) + 0.5) * step)
        pos += n * step
        edges.append(pos)
    right = np.concatenate(half)
    full = np.concatenate([-right[::-1], right])
    if pixels == full.size:
        return full
    if pixels < 2:
        raise InputError(f"pixels must be >= 2, got {pixels}", field="pixels")
    # sample the cumulative angle profile at evenly spaced pixel positions
    pos_full = np.arange(full.size) + 0.5
    pos_new = (np.arange(pixels) + 0.5) * full.size / pixels
    return np.interp(pos_new, pos_full, full)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _lonlat_to_xyz(lat: float, lon: float) -> np.ndarray:
    la, lo = math.radians(lat), math.radians(lon)
    return np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])


def swath_geometry(
    center_lat: float,
    center_lon: float,
    heading_deg: float,
    n_scans: int = 10,
    pixels: int = 3200,
    rows_per_scan: int = ROWS_PER_SCAN,
    *,
    altitude_km: float = ALTITUDE_KM,
    cross_track_offset_km: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude and sensor zenith of a VIIRS-like M-band swath.

    Parameters
    ----------
    center_lat, center_lon
        Nadir point at the middle of the granule (degrees).
    heading_deg
        Direction of flight at the centre, clockwise from north.
    n_scans
        Number of scans (a real 6-minute granule has 202-203).
    pixels
        Pixels per line (3200 for a real M-band swath; fewer gives a thinned swath of the
        same width).
    rows_per_scan
        Detector rows per scan (16 for M bands).
    altitude_km
        Satellite altitude.
    cross_track_offset_km
        Shift of the ground track to the right of ``center`` (negative: left).

    Returns
    -------
    lat, lon, sensor_zenith
        float64 arrays ``(n_scans * rows_per_scan, pixels)``, degrees; longitudes wrapped
        to [-180, 180]. Lines are in the L1B detector order: line ``k * rows + d`` is
        detector ``d`` of scan ``k``, and both increase along track.
    """
    if n_scans < 1 or rows_per_scan < 1:
        raise InputError("n_scans and rows_per_scan must be >= 1", field="n_scans")
    r = EARTH_RADIUS_KM
    rs = r + altitude_km
    theta = np.radians(scan_angles(pixels))  # (P,)
    det_step = NADIR_PIXEL_KM / altitude_km  # radians between detector rows
    phi = (np.arange(rows_per_scan) - (rows_per_scan - 1) / 2.0) * det_step  # (D,)
    # look vectors in the local frame (x along track, y right, z up), satellite at z = rs
    cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
    ux = np.broadcast_to(sp, (rows_per_scan, theta.size))
    uy = cp * np.sin(theta)[None, :]
    uz = -cp * np.cos(theta)[None, :]
    b = rs * uz  # S . u
    disc = b * b - (rs * rs - r * r)
    if np.any(disc < 0):
        raise InputError("scan angles beyond the Earth's limb", field="pixels")
    t = -b - np.sqrt(disc)
    px, py, pz = t * ux, t * uy, rs + t * uz  # ground points, |p| = r
    cos_vz = -(ux * px + uy * py + uz * pz) / r
    vza = np.degrees(np.arccos(np.clip(cos_vz, -1.0, 1.0)))

    # global frame: great-circle track through the (shifted) centre with the heading
    c0 = _lonlat_to_xyz(center_lat, center_lon)
    north = np.array([0.0, 0.0, 1.0]) - c0[2] * c0
    if np.linalg.norm(north) < 1e-12:  # at a pole: any meridian
        north = np.array([1.0, 0.0, 0.0])
    north = _unit(north)
    east = np.cross(north, c0)
    h = math.radians(heading_deg)
    tang = math.cos(h) * north + math.sin(h) * east
    right = np.cross(tang, c0)
    if cross_track_offset_km:
        a = cross_track_offset_km / r
        c0, right = c0 * math.cos(a) + right * math.sin(a), right * math.cos(a) - c0 * math.sin(a)
        tang = np.cross(c0, right)
    scan_km = rows_per_scan * NADIR_PIXEL_KM
    along = (np.arange(n_scans) - (n_scans - 1) / 2.0) * scan_km / r  # (S,)
    ca, sa = np.cos(along)[:, None], np.sin(along)[:, None]
    nad = ca * c0[None, :] + sa * tang[None, :]  # (S, 3)
    tan_s = -sa * c0[None, :] + ca * tang[None, :]
    rgt = np.broadcast_to(right, nad.shape)
    # P = px * T + py * Y + pz * N, scaled to unit sphere
    g = (
        px[None, :, :, None] * tan_s[:, None, None, :]
        + py[None, :, :, None] * rgt[:, None, None, :]
        + pz[None, :, :, None] * nad[:, None, None, :]
    ) / r
    g = g.reshape(n_scans * rows_per_scan, theta.size, 3)
    lat = np.degrees(np.arcsin(np.clip(g[..., 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(g[..., 1], g[..., 0]))
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    vz = np.broadcast_to(vza[None], (n_scans, rows_per_scan, theta.size)).reshape(lat.shape)
    return lat, lon, np.array(vz)


def bowtie_deleted(
    n_lines: int, pixels: int = 3200, rows_per_scan: int = ROWS_PER_SCAN
) -> np.ndarray:
    """Approximate on-board bow-tie deletion mask of M bands (True = deleted).

    Outside the nadir aggregation zone, the first and last 2 detector rows of each scan
    are deleted, and 4 in the outermost zone (an approximation of the VIIRS pattern).
    """
    ang = np.abs(scan_angles(pixels))
    step1 = math.degrees(NADIR_PIXEL_KM / ALTITUDE_KM)
    z1 = AGGREGATION_ZONES[0][0] * step1
    z2 = z1 + AGGREGATION_ZONES[1][0] * step1 * 2 / 3
    rows = np.zeros(pixels, dtype=int)
    rows[ang > z1] = 2
    rows[ang > z2] = 4
    det = np.arange(n_lines) % rows_per_scan
    from_edge = np.minimum(det, rows_per_scan - 1 - det)[:, None]
    return from_edge < rows[None, :]


def move_along(
    lat: float, lon: float, heading: float, dist_km: float
) -> tuple[float, float, float]:
    """Point ``dist_km`` along the great circle from (lat, lon) with ``heading``, and the heading there."""
    if dist_km == 0:
        return lat, lon, heading
    p = _lonlat_to_xyz(lat, lon)
    north = np.array([0.0, 0.0, 1.0]) - p[2] * p
    north = _unit(north) if np.linalg.norm(north) > 1e-12 else np.array([1.0, 0.0, 0.0])
    east = np.cross(north, p)
    h = math.radians(heading)
    tang = math.cos(h) * north + math.sin(h) * east
    a = dist_km / EARTH_RADIUS_KM
    q = p * math.cos(a) + tang * math.sin(a)
    t2 = -p * math.sin(a) + tang * math.cos(a)
    qlat = math.degrees(math.asin(max(-1.0, min(1.0, q[2]))))
    qlon = math.degrees(math.atan2(q[1], q[0]))
    n2 = np.array([0.0, 0.0, 1.0]) - q[2] * q
    n2 = _unit(n2) if np.linalg.norm(n2) > 1e-12 else np.array([1.0, 0.0, 0.0])
    e2 = np.cross(n2, q)
    qhead = math.degrees(math.atan2(float(t2 @ e2), float(t2 @ n2)))
    return qlat, qlon, qhead
