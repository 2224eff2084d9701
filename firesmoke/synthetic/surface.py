"""Radiometric model: what VIIRS M-bands see over a synthetic scenario.

For one day and one overpass, :func:`simulate_overpass` returns, on the region grid,
the top-of-atmosphere reflectance factors (``pi L / (E0 cos(SZA))``, the VIIRS SDR
convention) of M5 (red, 0.672 um), M7 (NIR, 0.865 um) and M10 (1.61 um), the
radiances of M12 (3.7 um) and M15 (10.76 um), the solar and sensor zenith angles, and
the hidden state behind them (MIR reflectance, surface temperature, cloud fraction,
...). Pixels outside the swath are NaN in every layer.

The model, in order:

* **Surface**: reflectances by land cover (vegetation red 0.04-0.08 and NIR 0.25-0.40
  with a seasonal cycle and spatial variation; bare ground bright in every band; water
  dark). A pixel burned at time ``t_b`` (the fire's arrival, see
  :mod:`firesmoke.synthetic.fire`) moves, in proportion to its severity, towards char:
  red up slightly, NIR down strongly, 3.7 um reflectance up; the change decays with a
  time constant of 4-8 weeks (recovery). Surface temperature follows season, latitude
  and the sun, is higher on bare ground and on fresh burns and much higher on the active
  front (capped at 340 K so that M12 does not saturate).
* **Atmosphere**: a daily aerosol optical depth adds path reflectance and attenuates
  (more at large solar/view zenith angles).
* **Clouds**: a daily smooth random field (correlated with the previous day's) moved by
  the wind between overpasses; clouds are bright in red/NIR, moderately bright at
  3.7 um and cold in M15. Cloud shadows are the cloud field displaced towards the sun by
  ``cloud height * tan(SZA)``; they darken the surface.
* **Sensor**: Gaussian noise on reflectances, MIR reflectance and temperature.
* **Thermal bands**, consistent with the BA-Net MIR formula (``reference/banet.md``):
  ``L15 = B(10.7343 um, T)`` and ``L12 = rho_MIR (E0 cos(SZA) / pi - B(3.6966 um, T)) +
  B(3.6966 um, T)`` with the constants ``c1, c2, E0`` of that formula, so that inverting
  M12/M15 with :func:`mir_reflectance` gives back ``rho_MIR`` (up to quantisation).

Geometry (solar position, swath, sensor zenith, granules) is in
:mod:`firesmoke.synthetic.orbit`. Everything is a deterministic function of the truth's
seed, the day and the pass; the sensor noise can be given another generator.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy.special import ndtri

from firesmoke.synthetic.fire import (
    BARE,
    FOREST,
    WATER,
    BurnTruth,
    make_rng,
    pixel_km,
    smooth_field,
)
from firesmoke.synthetic.orbit import (
    Overpass,
    overpass_schedule,
    pass_geometry,
    region_latlon,
    solar_position,
)

__all__ = [
    "C1",
    "C2",
    "E0_M12",
    "LAMBDA_M12",
    "LAMBDA_M15",
    "brightness_temperature",
    "cloud_cover",
    "m12_radiance",
    "mir_reflectance",
    "planck_radiance",
    "render_overpass",
    "simulate_overpass",
    "surface_reflectance",
]

log = logging.getLogger(__name__)

#: Constants of the BA-Net MIR formula (radiance in W m-2 sr-1 um-1, wavelength in um).
C1 = 1.1911e8
C2 = 1.439e4
LAMBDA_M12 = 3.6966
LAMBDA_M15 = 10.7343
E0_M12 = 11.7881
#: Surface temperatures are kept in this range (K); 340 K keeps M12 below saturation.
T_MIN, T_MAX = 200.0, 340.0

#: Margin (km) of the cloud fields around the region, room for wind drift and shadows.
_CLOUD_PAD_KM = 110.0
#: Smallest cloud detail (km); cloud fields are simulated at about this spacing.
_CLOUD_DETAIL_KM = 2.0

TAG_SURFACE = 201
TAG_CLOUD = 202
TAG_NOISE = 203
TAG_ATMOS = 204


# --------------------------------------------------------------------------- radiometry
def planck_radiance(wavelength_um: float, temperature_k: np.ndarray | float) -> np.ndarray:
    """Planck spectral radiance ``c1 l^-5 / (exp(c2 / (l T)) - 1)`` (W m-2 sr-1 um-1)."""
    t = np.asarray(temperature_k, dtype=np.float64)
    return C1 * wavelength_um**-5 / np.expm1(C2 / (wavelength_um * t))


def brightness_temperature(wavelength_um: float, radiance: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`planck_radiance`: ``c2 / (l ln(c1 / (l^5 L) + 1))`` (K)."""
    r = np.asarray(radiance, dtype=np.float64)
    return C2 / (wavelength_um * np.log(C1 / (wavelength_um**5 * r) + 1.0))


def m12_radiance(rho_mir: np.ndarray, temperature_k: np.ndarray, sza_deg: np.ndarray) -> np.ndarray:
    """M12 (3.7 um) radiance of a surface with MIR reflectance ``rho`` at temperature ``T``.

    ``L12 = rho (E0 cos(SZA) / pi - B) + B`` with ``B = B(3.6966 um, T)``: reflected sun
    plus emitted radiance with emissivity ``1 - rho``.
    """
    b = planck_radiance(LAMBDA_M12, temperature_k)
    sun = E0_M12 * np.cos(np.radians(sza_deg)) / np.pi
    return rho_mir * (sun - b) + b


def mir_reflectance(l12: np.ndarray, l15: np.ndarray, sza_deg: np.ndarray) -> np.ndarray:
    """3.7 um reflectance from M12 and M15 radiances (the BA-Net formula).

    ``T`` from M15 by inverting Planck at 10.7343 um, ``B = B(3.6966 um, T)``,
    ``rho = (L12 - B) / (E0 cos(SZA) / pi - B)``; negative values become 0 and
    non-positive radiances give NaN.
    """
    l12 = np.asarray(l12, dtype=np.float64)
    l15 = np.asarray(l15, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = brightness_temperature(LAMBDA_M15, np.where(l15 > 0, l15, np.nan))
        b = planck_radiance(LAMBDA_M12, t)
        rho = (np.where(l12 > 0, l12, np.nan) - b) / (
            E0_M12 * np.cos(np.radians(sza_deg)) / np.pi - b
        )
    return np.where(rho < 0, 0.0, rho)


# --------------------------------------------------------------------------- surface
def _static_surface(truth: BurnTruth) -> dict[str, np.ndarray]:
    """Per-pixel surface parameters that do not change with time (cached on the truth)."""
    key = ("surface",)
    if key in truth.cache:
        return truth.cache[key]
    rng = make_rng(truth.seed, TAG_SURFACE)
    shape = truth.shape
    dy, dx = pixel_km(truth.region)
    km = math.sqrt(dy * dx)
    n = [smooth_field(rng, shape, max(2.0 / km, 0.75)) for _ in range(6)]
    fine = rng.standard_normal((4, *shape))
    vig = truth.vigor.astype(np.float64)
    lc = truth.land_cover

    red = 0.08 - 0.04 * vig + 0.003 * n[0] + 0.002 * fine[0]
    nir = 0.25 + 0.15 * vig + 0.012 * n[1] + 0.006 * fine[1]
    swir = 0.22 - 0.07 * vig + 0.01 * n[2] + 0.004 * fine[2]
    mir = 0.065 - 0.035 * vig + 0.004 * n[3] + 0.002 * fine[3]
    bare = lc == BARE
    red = np.where(bare, 0.22 + 0.03 * n[0], red)
    nir = np.where(bare, 0.30 + 0.03 * n[1], nir)
    swir = np.where(bare, 0.40 + 0.03 * n[2], swir)
    mir = np.where(bare, 0.22 + 0.03 * n[3], mir)
    water = lc == WATER
    red = np.where(water, 0.03 + 0.004 * n[0], red)
    nir = np.where(water, 0.015 + 0.003 * n[1], nir)
    swir = np.where(water, 0.006 + 0.002 * n[2], swir)
    mir = np.where(water, 0.012 + 0.002 * n[3], mir)

    # fresh char (before severity scaling): red up slightly, NIR down, MIR up
    char_red = red + 0.015 + 0.004 * n[4]
    char_nir = 0.11 + 0.012 * n[5]
    char_swir = 0.17 + 0.01 * n[2]
    char_mir = 0.17 + 0.02 * n[4]
    tau = 28.0 + 28.0 * rng.random(shape)  # recovery time constant, days
    t_offset = np.select([water, bare, lc == FOREST], [-4.0, 5.0, -2.5], -0.5) + 1.2 * n[5]
    out = {
        "red": red,
        "nir": nir,
        "swir": swir,
        "mir": mir,
        "char_red": char_red,
        "char_nir": char_nir,
        "char_swir": char_swir,
        "char_mir": char_mir,
        "tau": tau,
        "t_offset": t_offset,
        "vegetated": (lc != WATER) & (lc != BARE),
    }
    truth.cache[key] = out
    return out


def _day_of_year(date: np.datetime64) -> int:
    d = np.datetime64(date, "D")
    return int((d - d.astype("datetime64[Y]")).astype(np.int64)) + 1


def surface_reflectance(
    truth: BurnTruth, t_days: np.ndarray, date: np.datetime64
) -> dict[str, np.ndarray]:
    """Surface reflectances and temperature offset at time(s) ``t_days``.

    Parameters
    ----------
    truth
        The burn truth.
    t_days
        Time of observation of each pixel in days since ``truth.start`` 00:00 UTC
        (array on the region grid).
    date
        The UTC day (for the seasonal cycle).

    Returns
    -------
    dict
        ``red``, ``nir``, ``swir``, ``mir`` (reflectance), ``burn_weight`` (0..1, how
        far towards char), ``active`` (bool, burning at ``t_days``), ``t_offset`` (K, land
        cover + fresh burn + active fire heating, to add to the air temperature).
    """
    s = _static_surface(truth)
    doy = _day_of_year(date)
    lat_c = 0.5 * (truth.region.bbox[1] + truth.region.bbox[3])
    peak = 150.0 if lat_c >= 0 else 330.0
    season = math.cos(2.0 * math.pi * (doy - peak) / 365.25)
    veg = s["vegetated"]
    red = np.where(veg, s["red"] * (1.0 - 0.08 * season), s["red"])
    nir = np.where(veg, s["nir"] * (1.0 + 0.07 * season), s["nir"])
    swir = s["swir"]
    mir = s["mir"]

    arrival = truth.arrival
    since = t_days - arrival  # NaN where never burned
    burned_now = np.isfinite(since) & (since >= 0)
    with np.errstate(invalid="ignore"):
        w = np.where(
            burned_now, truth.severity * np.exp(-np.where(burned_now, since, 0.0) / s["tau"]), 0.0
        )
    red = red + w * (s["char_red"] - red)
    nir = nir + w * (s["char_nir"] - nir)
    swir = swir + w * (s["char_swir"] - swir)
    mir = mir + w * (s["char_mir"] - mir)
    active = burned_now & (since < truth.residence)
    heat = np.where(active, 18.0 + 30.0 * np.clip(truth.intensity, 0.0, 1.5), 0.0)
    t_offset = s["t_offset"] + 7.0 * w + heat
    return {
        "red": red,
        "nir": nir,
        "swir": swir,
        "mir": mir,
        "burn_weight": w,
        "active": active,
        "t_offset": t_offset,
    }


def _air_temperature(date: np.datetime64, lat: np.ndarray) -> np.ndarray:
    doy = _day_of_year(date)
    hemi = np.where(lat >= 0, 1.0, -1.0)
    amp = 11.0 * np.clip(np.abs(lat) / 40.0, 0.2, 1.3)
    return (
        287.0
        + amp * hemi * math.cos(2 * math.pi * (doy - 200) / 365.25)
        - 0.45 * (np.abs(lat) - 38.0)
    )


# --------------------------------------------------------------------------- clouds
def _cloud_base(truth: BurnTruth, day_index: int, night: bool) -> dict[str, Any]:
    """Padded cloud field of a day (cached): the field, its padding and properties."""
    key = ("cloud", day_index, night)
    if key in truth.cache:
        return truth.cache[key]
    # keep the cache small: drop cloud fields of days other than this one and the previous
    for k in [
        k for k in truth.cache if isinstance(k, tuple) and k and k[0] in ("cloud", "cloud_raw")
    ]:
        if not day_index - 1 <= k[1] <= day_index:
            del truth.cache[k]
    dy, dx = pixel_km(truth.region)
    km = math.sqrt(dy * dx)
    pad = int(min(math.ceil(_CLOUD_PAD_KM / km), 600))
    h, w = truth.shape
    shape = (h + 2 * pad, w + 2 * pad)

    # clouds have no detail below ~2 km: simulate them on a coarser grid when pixels are
    # smaller than that, and interpolate (bilinear)
    step = max(1, int(_CLOUD_DETAIL_KM // km))
    coarse = (shape[0] // step + 2, shape[1] // step + 2)

    def field(day: int) -> np.ndarray:
        raw_key = ("cloud_raw", day, night)
        if raw_key not in truth.cache:
            rng = make_rng(truth.seed, TAG_CLOUD, int(night), day)
            # weights: the small scale carries ~1/3 of the variance (variance ~ weight^2 / sigma^2)
            ck = km * step
            scales = [(max(14.0 / ck, 1.0), 1.0), (max(3.5 / ck, 0.75), 0.15)]
            f = smooth_field(rng, coarse, scales)
            if step > 1:
                f = _upsample(f, step, shape)
            truth.cache[raw_key] = f[: shape[0], : shape[1]]
        return truth.cache[raw_key]

    f = (field(day_index) + 0.8 * field(day_index - 1)) / math.sqrt(1.64)
    prng = make_rng(truth.seed, TAG_CLOUD, int(night), day_index, 1)
    cover = float(np.clip(prng.beta(0.9, 2.2), 0.0, 0.95))
    speed_kmh = prng.uniform(10.0, 45.0)
    wind = math.radians(
        truth.wind_dir_deg[min(max(day_index, 0), truth.n_days - 1)] + prng.normal(0, 20)
    )
    out = {
        "field": f,
        "pad": pad,
        "threshold": float(ndtri(1.0 - cover)) if cover > 0.001 else 9.0,
        "cover": cover,
        # pixels per hour, (rows, cols): north is -row
        "velocity": (-speed_kmh * math.cos(wind) / dy, speed_kmh * math.sin(wind) / dx),
        "top_temperature": prng.uniform(238.0, 275.0),
        "height_km": prng.uniform(1.5, 6.0),
        "reflectance": prng.uniform(0.45, 0.75),
    }
    truth.cache[key] = out
    return out


def _upsample(f: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling by an integer factor (samples of ``f`` every ``step`` pixels)."""
    out = f
    for axis, n in ((0, shape[0]), (1, shape[1])):
        pos = np.arange(n) / step
        i0 = np.minimum(pos.astype(np.int64), out.shape[axis] - 2)
        w = (pos - i0).reshape((-1, 1) if axis == 0 else (1, -1))
        a = np.take(out, i0, axis=axis)
        b = np.take(out, i0 + 1, axis=axis)
        out = a + (b - a) * w
    return out


def _crop(base: dict[str, Any], shape: tuple[int, int], dr: float, dc: float) -> np.ndarray:
    pad = base["pad"]
    ir = int(np.clip(round(dr), -pad, pad))
    ic = int(np.clip(round(dc), -pad, pad))
    f = base["field"]
    return f[pad + ir : pad + ir + shape[0], pad + ic : pad + ic + shape[1]]


def _fraction(f: np.ndarray, threshold: float) -> np.ndarray:
    return np.clip((f - threshold) / 0.6, 0.0, 1.0) ** 0.7


def cloud_cover(
    truth: BurnTruth, day_index: int, time: np.datetime64, night: bool = False
) -> np.ndarray:
    """Cloud fraction (0..1, float64) on the region grid at a time of a day.

    Day (ascending-pass) and night (descending-pass) clouds are independent fields;
    within one, the field moves with the wind between passes.
    """
    base = _cloud_base(truth, day_index, night)
    hours = _hours_from_local_ref(truth, day_index, time, night)
    vr, vc = base["velocity"]
    return _fraction(_crop(base, truth.shape, vr * hours, vc * hours), base["threshold"])


def _hours_from_local_ref(
    truth: BurnTruth, day_index: int, time: np.datetime64, night: bool
) -> float:
    """Hours between ``time`` and the day's reference pass time (13:25 or 01:25 local)."""
    lon_c = 0.5 * (truth.region.bbox[0] + truth.region.bbox[2])
    ref_h = (13.42 if not night else 1.42) - lon_c / 15.0
    day0 = truth.date(day_index).astype("datetime64[ms]").astype(np.int64)
    t = np.datetime64(time, "ms").astype(np.int64)
    return float((t - day0) / 3_600_000.0 - ref_h)


# --------------------------------------------------------------------------- overpass
def simulate_overpass(
    truth: BurnTruth,
    day_index: int,
    overpass_index: int,
    rng: np.random.Generator | int | None = None,
) -> dict[str, Any]:
    """VIIRS M-band fields of one daytime overpass on the region grid.

    Parameters
    ----------
    truth
        Burn truth of the scenario (:func:`firesmoke.synthetic.fire.simulate_burn_truth`).
    day_index
        Day since ``truth.start`` (0-based).
    overpass_index
        Index in the day's pass list, :func:`firesmoke.synthetic.orbit.overpass_schedule`
        ``(truth.region, truth.date(day_index))``.
    rng
        Source of the sensor noise: a generator, an integer seed, or None for the
        default stream derived from ``(truth.seed, day_index, overpass_index)`` (what
        :func:`~firesmoke.synthetic.generate_scenario` writes). Clouds, atmosphere and
        surface never depend on it.

    Returns
    -------
    dict
        float32 arrays on the region grid, NaN outside the swath:
        ``M05``, ``M07``, ``M10`` (TOA reflectance), ``M12``, ``M15`` (radiance,
        W m-2 sr-1 um-1), ``solar_zenith``, ``sensor_zenith``, ``solar_azimuth``
        (degrees), ``mir`` (the 3.7 um reflectance behind M12), ``temperature`` (K,
        behind M15), ``cloud`` (fraction), ``shadow`` (fraction); and ``valid`` (bool,
        inside the swath), ``granule`` (int64 6-minute granule index, see
        :func:`~firesmoke.synthetic.orbit.pass_geometry`, -1 outside), ``time_ms``
        (int64 UTC milliseconds when each pixel is seen), ``time``
        (``datetime64[ms]`` of the pass at the region centre latitude) and ``overpass``
        (the :class:`~firesmoke.synthetic.orbit.Overpass`).

    Raises
    ------
    IndexError
        If the day has no such overpass.
    """
    passes = overpass_schedule(truth.region, truth.date(day_index))
    if not 0 <= overpass_index < len(passes):
        raise IndexError(
            f"day {day_index} ({truth.date(day_index)}) has {len(passes)} daytime overpass(es) "
            f"over {truth.region.name}; no index {overpass_index}"
        )
    if rng is None:
        rng = make_rng(truth.seed, TAG_NOISE, day_index, overpass_index)
    elif not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return render_overpass(truth, day_index, passes[overpass_index], rng)


def render_overpass(
    truth: BurnTruth, day_index: int, overpass: Overpass, rng: np.random.Generator
) -> dict[str, Any]:
    """Fields of any pass (e.g. one built by hand for a test); see :func:`simulate_overpass`."""
    region = truth.region
    shape = truth.shape
    lat, lon = region_latlon(region)
    geo = pass_geometry(region, overpass)
    valid = geo["valid"]
    t_ms = geo["time_ms"]
    sza, saa = solar_position(t_ms.astype("datetime64[ms]"), lat, lon)
    vza = np.where(valid, geo["sensor_zenith"], 0.0)
    date = truth.date(day_index)
    start_ms = truth.start.astype("datetime64[ms]").astype(np.int64)
    t_days = (t_ms - start_ms) / 86_400_000.0

    srf = surface_reflectance(truth, t_days, date)
    mu_s = np.cos(np.radians(np.minimum(sza, 89.0)))
    mu_v = np.cos(np.radians(vza))
    t_surf = _air_temperature(date, lat) + 11.0 * mu_s + srf["t_offset"]

    # atmosphere: daily aerosol optical depth (path reflectance + attenuation)
    arng = make_rng(truth.seed, TAG_ATMOS, day_index)
    aod = 0.05 + arng.gamma(2.0, 0.05)
    airmass = 1.0 / mu_s + 1.0 / mu_v
    red = srf["red"] * np.exp(-0.12 * aod * airmass) + 0.03 * aod * airmass
    nir = srf["nir"] * np.exp(-0.06 * aod * airmass) + 0.012 * aod * airmass
    swir = srf["swir"] * np.exp(-0.02 * aod * airmass) + 0.003 * aod * airmass
    mir = srf["mir"].copy()

    # clouds and their shadows
    base = _cloud_base(truth, day_index, night=False)
    hours = _hours_from_local_ref(truth, day_index, overpass.time, night=False)
    vr, vc = base["velocity"]
    cr, cc = vr * hours, vc * hours
    cloud = _fraction(_crop(base, shape, cr, cc), base["threshold"])
    dy, dx = pixel_km(region)
    ic, jc = shape[0] // 2, shape[1] // 2
    sza_c, saa_c = float(sza[ic, jc]), math.radians(float(saa[ic, jc]))
    reach = base["height_km"] * math.tan(math.radians(min(sza_c, 80.0)))
    sr, sc = -reach * math.cos(saa_c) / dy, reach * math.sin(saa_c) / dx
    shadow = _fraction(_crop(base, shape, cr + sr, cc + sc), base["threshold"]) * (1.0 - cloud)
    dark = 1.0 - 0.55 * shadow
    red, nir, swir, mir = red * dark, nir * dark, swir * dark, mir * dark
    t_surf = t_surf - 2.5 * shadow
    thick = np.clip(cloud * 1.3, 0.0, 1.0)
    c_refl = base["reflectance"] * (0.75 + 0.25 * thick)
    c_mir = 0.05 + 0.2 * (base["top_temperature"] - 235.0) / 40.0
    red = red + cloud * (c_refl - red)
    nir = nir + cloud * (c_refl * 0.98 - nir)
    swir = swir + cloud * (c_refl * 0.7 - swir)
    mir = mir + cloud * (c_mir - mir)
    t_eff = t_surf + cloud * (base["top_temperature"] - t_surf)

    # sensor noise
    def noisy(x: np.ndarray, rel: float, absolute: float) -> np.ndarray:
        return x + rng.standard_normal(shape, dtype=np.float32) * (absolute + rel * np.abs(x))

    red = np.clip(noisy(red, 0.01, 0.0015), 0.0, 1.5)
    nir = np.clip(noisy(nir, 0.01, 0.0015), 0.0, 1.5)
    swir = np.clip(noisy(swir, 0.01, 0.0015), 0.0, 1.5)
    mir = np.clip(noisy(mir, 0.0, 0.004), 0.0, 0.9)
    t_eff = np.clip(t_eff + 0.12 * rng.standard_normal(shape, dtype=np.float32), T_MIN, T_MAX)

    l15 = planck_radiance(LAMBDA_M15, t_eff)
    l12 = m12_radiance(mir, t_eff, sza)

    def out(x: np.ndarray) -> np.ndarray:
        return np.where(valid, x, np.nan).astype(np.float32)

    return {
        "M05": out(red),
        "M07": out(nir),
        "M10": out(swir),
        "M12": out(l12),
        "M15": out(l15),
        "solar_zenith": out(sza),
        "sensor_zenith": out(geo["sensor_zenith"]),
        "solar_azimuth": out(saa),
        "mir": out(mir),
        "temperature": out(t_eff),
        "cloud": out(cloud),
        "shadow": out(shadow),
        "valid": valid,
        "granule": geo["granule"],
        "time_ms": t_ms,
        "time": np.datetime64(overpass.time, "ms"),
        "overpass": overpass,
    }
