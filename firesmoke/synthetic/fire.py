"""Burn truth of a synthetic scenario: land cover and wind-driven fire spread.

Everything here lives on the region grid (``Region.shape``, rows north to south) and is
a deterministic function of ``(region, start, n_days, seed)``:

* a land-cover map made of smooth random fields: water bodies and bare ground (both
  unburnable), shrubland and forest (burnable), with a vegetation ``vigor`` in [0, 1]
  and a ``fuel`` load in [0, 1];
* several fire events, each igniting on a day at a random burnable pixel and spreading
  for a few days as a time-dependent first-passage process on the pixel graph (see
  :func:`simulate_burn_truth`): the rate of spread follows the focal ellipse of a
  wind-driven fire under a daily wind (a random walk shared by all fires), scales with
  fuel and the weather of the day and drops at night; random site resistances make the
  scars irregular. Water and bare ground stop the fire; an event stops when its duration
  is over;
* the arrival time of the fire per pixel, hence a burn day index (``-1`` = never
  burned), the event id per pixel and, per day, the active-fire front (pixels burning at
  any time that day) used for FIRMS.

All randomness comes from :func:`make_rng` so any piece can be regenerated on its own.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sp_fft

from firesmoke.grid import Region

__all__ = [
    "BARE",
    "FOREST",
    "LAND_COVER_NAMES",
    "SHRUB",
    "WATER",
    "BurnTruth",
    "FireEvent",
    "make_rng",
    "simulate_burn_truth",
    "simulate_land_cover",
    "smooth_field",
]

log = logging.getLogger(__name__)

#: Land-cover codes of the synthetic map.
WATER, BARE, SHRUB, FOREST = 0, 1, 2, 3
LAND_COVER_NAMES: dict[int, str] = {
    WATER: "water",
    BARE: "bare",
    SHRUB: "shrubland",
    FOREST: "forest",
}

# Tags that separate the random streams of the different parts of a scenario.
TAG_LAND = 101
TAG_FIRE = 102

_KM_PER_DEG = 111.32
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """A PCG64 generator for one part of a scenario: ``default_rng([seed, *keys])``.

    The same ``(seed, keys)`` always gives the same stream, on every platform, which is
    what makes every part of a scenario reproducible on its own (random access by day).
    """
    return np.random.default_rng([int(seed), *(int(k) & 0xFFFFFFFFFFFFFFFF for k in keys)])


def smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sigma_px: float | Sequence[tuple[float, float]],
) -> np.ndarray:
    """A smooth Gaussian random field with zero mean and unit variance (float64).

    White noise filtered in the Fourier domain by a Gaussian of standard deviation
    ``sigma_px`` pixels, or by a weighted sum of Gaussians ``[(sigma, weight), ...]``
    (several scales in one transform). The field is computed on a padded domain and
    cropped so that it does not wrap around. It is normalised by its theoretical standard
    deviation (not the sample one), so thresholds at normal quantiles give the expected
    area fractions on average and small regions vary naturally.
    """
    h, w = int(shape[0]), int(shape[1])
    scales = (
        [(float(sigma_px), 1.0)]
        if np.isscalar(sigma_px)
        else [(float(s), float(a)) for s, a in sigma_px]
    )
    scales = [(max(s, 0.5), a) for s, a in scales]
    pad = min(math.ceil(2.5 * max(s for s, _ in scales)), 512)
    ph = sp_fft.next_fast_len(h + 2 * pad, real=True)
    pw = sp_fft.next_fast_len(w + 2 * pad, real=True)
    noise = rng.standard_normal((ph, pw))
    fy = np.fft.fftfreq(ph) ** 2
    fx = np.fft.rfftfreq(pw) ** 2
    fxf = np.fft.fftfreq(pw) ** 2
    filt = np.zeros((ph, fx.size))
    var = 0.0
    for s1, a1 in scales:
        k1 = 2.0 * (np.pi * s1) ** 2
        filt += a1 * np.exp(-k1 * fy)[:, None] * np.exp(-k1 * fx)[None, :]
        # variance of filtered unit white noise = mean of |filter|^2 over the full
        # spectrum; each product of two separable Gaussians is separable
        for s2, a2 in scales:
            k2 = 2.0 * (np.pi * s2) ** 2
            var += (
                a1
                * a2
                * float(np.mean(np.exp(-(k1 + k2) * fy)) * np.mean(np.exp(-(k1 + k2) * fxf)))
            )
    spec = sp_fft.rfft2(noise, workers=-1)
    spec *= filt
    out = sp_fft.irfft2(spec, s=(ph, pw), workers=-1)
    out = out[pad : pad + h, pad : pad + w]
    return out / math.sqrt(var)


def pixel_km(region: Region) -> tuple[float, float]:
    """Pixel size in km ``(dy, dx)`` at the region's central latitude."""
    lat_c = 0.5 * (region.bbox[1] + region.bbox[3])
    dy = region.pixel_size * _KM_PER_DEG
    dx = region.pixel_size * _KM_PER_DEG * max(math.cos(math.radians(lat_c)), 0.05)
    return dy, dx


# --------------------------------------------------------------------------- land cover
def simulate_land_cover(region: Region, seed: int) -> dict[str, np.ndarray]:
    """Land cover, vegetation vigor and fuel load on the region grid.

    Returns
    -------
    dict
        ``land_cover`` (uint8 codes :data:`WATER`, :data:`BARE`, :data:`SHRUB`,
        :data:`FOREST`), ``vigor`` (float32 0..1, greenness of the vegetation),
        ``fuel`` (float32 0..1, 0 where unburnable).
    """
    rng = make_rng(seed, TAG_LAND)
    shape = region.shape
    dy, dx = pixel_km(region)
    km = math.sqrt(dy * dx)

    def sig(length_km: float) -> float:
        return max(length_km / km, 0.75)

    relief = smooth_field(rng, shape, sig(14.0))
    lakes = smooth_field(rng, shape, sig(4.0))
    rock = smooth_field(rng, shape, sig(3.0))
    canopy = smooth_field(rng, shape, sig(7.0))
    detail = smooth_field(rng, shape, sig(1.2))

    water_index = (lakes - 0.6 * relief) / math.sqrt(1.36)
    bare_index = (rock + 0.7 * relief) / math.sqrt(1.49)
    forest_index = (canopy + 0.35 * detail) / math.sqrt(1.1225)

    lc = np.full(shape, SHRUB, dtype=np.uint8)
    lc[forest_index > 0.3] = FOREST
    lc[bare_index > 1.65] = BARE
    lc[water_index > 1.8] = WATER

    vigor = 1.0 / (1.0 + np.exp(-(0.9 * canopy + 0.45 * detail)))
    vigor = np.where(lc == FOREST, 0.35 + 0.65 * vigor, 0.15 + 0.7 * vigor)
    fuel = np.clip(0.3 + 0.5 * vigor + 0.12 * detail, 0.05, 1.0)
    burnable = (lc == SHRUB) | (lc == FOREST)
    fuel = np.where(burnable, fuel, 0.0)
    vigor = np.where(burnable, vigor, 0.0)
    return {
        "land_cover": lc,
        "vigor": vigor.astype(np.float32),
        "fuel": fuel.astype(np.float32),
    }


# --------------------------------------------------------------------------- fire spread
@dataclass(frozen=True)
class FireEvent:
    """One fire: ignition day/pixel, planned duration and a spread intensity factor."""

    id: int
    ignition_day: int
    row: int
    col: int
    duration_days: int
    intensity: float


@dataclass
class BurnTruth:
    """Burn truth of a scenario on the region grid (numpy arrays, rows north to south).

    Attributes
    ----------
    region, start, n_days, seed
        What the truth was simulated for; ``start`` is a ``datetime64[D]`` (day index 0).
    land_cover, vigor, fuel
        See :func:`simulate_land_cover`.
    burn_day
        int16 day index (0 = ``start``) when each pixel burned, ``-1`` = never.
    fire_event
        int16 event id of each burned pixel (1..), 0 = never burned.
    severity
        float32 burn severity 0..1 (0 where unburned).
    intensity
        float32 fire intensity factor of burned pixels (drives FRP), 0 elsewhere.
    events
        The :class:`FireEvent` list.
    fronts
        ``fronts[d]``: sorted flat indices (int32) of pixels burning at any time of day d.
    night_fronts
        ``night_fronts[d]``: pixels burning at 01:30 of day d (mostly fires carried
        over from the evening before; what a night-time overpass would see). FIRMS
        detections use the exact pass times instead (:mod:`firesmoke.synthetic.firms`).
    arrival
        float64 arrival time of the fire in days since ``start`` 00:00 UTC (NaN = never).
    residence
        float32 time in days a pixel keeps burning after the fire arrives (flaming and
        smouldering; 0 where unburned). A pixel is "active" in ``[arrival, arrival +
        residence)``.
    wind_dir_deg, wind_strength
        Daily wind: direction the wind blows *towards* (degrees clockwise from north)
        and a strength factor (0 calm .. ~2 strong).
    """

    region: Region
    start: np.datetime64
    n_days: int
    seed: int
    land_cover: np.ndarray
    vigor: np.ndarray
    fuel: np.ndarray
    burn_day: np.ndarray
    fire_event: np.ndarray
    severity: np.ndarray
    intensity: np.ndarray
    events: list[FireEvent]
    fronts: list[np.ndarray]
    night_fronts: list[np.ndarray]
    wind_dir_deg: np.ndarray
    wind_strength: np.ndarray
    arrival: np.ndarray
    residence: np.ndarray
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.burn_day.shape  # type: ignore[return-value]

    @property
    def dates(self) -> np.ndarray:
        """The scenario days as ``datetime64[D]``."""
        return self.start + np.arange(self.n_days).astype("timedelta64[D]")

    def date(self, day_index: int) -> np.datetime64:
        return self.start + np.timedelta64(int(day_index), "D")

    def front_mask(self, day_index: int, night: bool = False) -> np.ndarray:
        """Boolean map of the active-fire front of one day (or of its night start)."""
        idx = (self.night_fronts if night else self.fronts)[day_index]
        m = np.zeros(self.burn_day.size, dtype=bool)
        m[idx] = True
        return m.reshape(self.shape)


def _n_events(region: Region, n_days: int, rng: np.random.Generator) -> int:
    dy, dx = pixel_km(region)
    area_km2 = region.shape[0] * region.shape[1] * dy * dx
    lam = 2.0 + 9.0 * (area_km2 / 60_000.0) * (n_days / 120.0)
    return int(max(3, rng.poisson(lam)))


def _advance(t: float, work: float) -> float:
    """Time at which ``work`` (in days of spread at full daytime rate) is done from ``t``.

    The rate is piecewise constant: :data:`_DAY_RATE` between :data:`_DAY_START` and
    :data:`_DAY_END` hours, :data:`_NIGHT_RATE` otherwise.
    """
    for _ in range(64):
        day = math.floor(t)
        hour = (t - day) * 24.0
        if hour < _DAY_START:
            nxt, rate = day + _DAY_START / 24.0, _NIGHT_RATE
        elif hour < _DAY_END:
            nxt, rate = day + _DAY_END / 24.0, _DAY_RATE
        else:
            nxt, rate = day + 1.0 + _DAY_START / 24.0, _NIGHT_RATE
        can = (nxt - t) * rate
        if can >= work:
            return t + work / rate
        work -= can
        t = nxt
    return math.inf


# Diurnal cycle of fire spread (hours of the day; rates relative to the afternoon run).
_DAY_START, _DAY_END = 10.0, 21.0
_DAY_RATE, _NIGHT_RATE = 1.0, 0.12
#: Head-fire rate of spread at full fuel on an average bad day, in km per 24 h at the
#: afternoon rate (1.25 km/h).
_HEAD_ROS_KM = 30.0


def simulate_burn_truth(region: Region, start: np.datetime64, n_days: int, seed: int) -> BurnTruth:
    """Simulate land cover and fire spread for ``n_days`` days from ``start``.

    Fire spread is a time-dependent first-passage (Dijkstra) process on the 8-connected
    pixel graph: the travel time to a neighbour is its distance divided by the rate of
    spread in that direction, times a random site resistance (log-normal). The rate of
    spread follows the classical focal ellipse of wind-driven fires: ``R(phi) = R_head (1 -
    e) / (1 - e cos(phi))`` with ``phi`` the angle between spread direction and the wind and
    an eccentricity ``e`` that grows with the wind strength; ``R_head`` scales with fuel,
    event intensity and the weather of the day, and drops at night (fires run in the
    afternoon). Unburnable pixels (water, bare) are never entered; an event stops
    spreading when its duration is over, a scenario at its last day.

    Parameters
    ----------
    region
        The grid.
    start
        First day (anything ``numpy.datetime64`` accepts; truncated to the day).
    n_days
        Number of days (>= 1).
    seed
        Non-negative integer seed.

    Returns
    -------
    BurnTruth
    """
    start = np.datetime64(start, "D")
    n_days = int(n_days)
    lc = simulate_land_cover(region, seed)
    land_cover, vigor, fuel = lc["land_cover"], lc["vigor"], lc["fuel"]
    h, w = region.shape
    npx = h * w
    rng = make_rng(seed, TAG_FIRE)

    # daily weather: wind direction (random walk), wind strength, spread factor
    wind_dir = np.empty(n_days)
    wind_str = np.empty(n_days)
    direction = rng.uniform(0.0, 360.0)
    strength = rng.uniform(0.4, 1.6)
    for d in range(n_days):
        direction = (direction + rng.normal(0.0, 25.0)) % 360.0
        strength = float(np.clip(strength + rng.normal(0.0, 0.4), 0.1, 2.5))
        wind_dir[d], wind_str[d] = direction, strength
    day_factor = np.clip(rng.gamma(2.0, 0.3, size=n_days), 0.08, 1.6)

    # fire events; the ignition pixel is drawn when the ignition time comes
    n_ev = _n_events(region, n_days, rng)
    last_ign = max(n_days - 2, 0)
    ign_times = np.sort(
        rng.integers(0, last_ign + 1, size=n_ev) + rng.uniform(0.45, 0.75, size=n_ev)
    )
    durations = np.minimum(1 + rng.negative_binomial(2, 0.4, size=n_ev), 10)
    intensities = np.exp(rng.normal(0.0, 0.35, size=n_ev))
    ign_draws = rng.random((n_ev, 64))
    resistance = np.exp(0.7 * rng.standard_normal(npx) - 0.245)  # mean 1

    dy, dx = pixel_km(region)
    fuel_flat = fuel.ravel().astype(np.float64)
    ros_fuel = np.where(fuel_flat > 0, 0.25 + 0.75 * fuel_flat, 0.0)
    burnable_idx = np.flatnonzero(fuel_flat > 0)
    ign_cdf = np.cumsum(fuel_flat[burnable_idx] ** 2)

    # per day and neighbour direction: relative rate of the focal ellipse
    offsets = [(dr, dc) for dr, dc in _NEIGHBOURS]
    step_km = np.array([math.hypot(dr * dy, dc * dx) for dr, dc in offsets])
    bearing = np.array([math.atan2(dc * dx, -dr * dy) for dr, dc in offsets])
    ecc = np.sqrt(1.0 - 1.0 / (1.0 + 1.6 * wind_str) ** 2)
    ell = (1.0 - ecc[:, None]) / (
        1.0 - ecc[:, None] * np.cos(bearing[None, :] - np.radians(wind_dir)[:, None])
    )
    # work (days at full daytime rate) per km, per day and direction, before fuel/resistance
    head_px_per_day = _HEAD_ROS_KM * day_factor
    inv_rate = 1.0 / (head_px_per_day[:, None] * ell)  # days per km

    arrival = np.full(npx, np.inf)
    event_flat = np.zeros(npx, dtype=np.int16)
    done = np.zeros(npx, dtype=bool)
    end_time = np.zeros(n_ev + 1)
    intensity_of_event = np.ones(n_ev + 1)
    events: list[FireEvent] = []
    heap: list[tuple[float, int, int]] = []
    t_stop = float(n_days)
    ev_next = 0

    def ignite(k: int) -> None:
        t_ign = float(ign_times[k])
        for u in ign_draws[k]:
            j = int(np.searchsorted(ign_cdf, u * ign_cdf[-1], side="right"))
            flat = int(burnable_idx[min(j, burnable_idx.size - 1)])
            if not done[flat]:
                break
        else:
            return
        eid = len(events) + 1
        r, c = divmod(flat, w)
        dur = int(durations[k])
        events.append(FireEvent(eid, math.floor(t_ign), r, c, dur, float(intensities[k])))
        end_time[eid] = min(math.floor(t_ign) + dur, t_stop)
        intensity_of_event[eid] = intensities[k]
        heapq.heappush(heap, (t_ign, flat, eid))

    if burnable_idx.size:
        while heap or ev_next < n_ev:
            if ev_next < n_ev and (not heap or ign_times[ev_next] <= heap[0][0]):
                ignite(ev_next)
                ev_next += 1
                continue
            t, p, eid = heapq.heappop(heap)
            if done[p]:
                continue
            done[p] = True
            arrival[p] = t
            event_flat[p] = eid
            r, c = divmod(p, w)
            d = min(int(t), n_days - 1)
            scale = 1.0 / intensity_of_event[eid]
            t_end = end_time[eid]
            for j, (dr, dc) in enumerate(offsets):
                rr, cc = r + dr, c + dc
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    continue
                q = rr * w + cc
                if done[q] or ros_fuel[q] == 0.0:
                    continue
                work = step_km[j] * inv_rate[d, j] * resistance[q] * scale / ros_fuel[q]
                tq = _advance(t, work)
                if tq < t_end and tq < arrival[q]:
                    arrival[q] = tq
                    heapq.heappush(heap, (tq, q, eid))
        # pixels reached (tentative arrival) but never finalised do not burn
        arrival[~done] = np.inf

    burned_flat = done
    burn_day = np.where(burned_flat, np.floor(np.where(burned_flat, arrival, 0.0)), -1).astype(
        np.int16
    )
    burn_day = burn_day.reshape(h, w)
    event_id = np.where(burned_flat, event_flat, 0).astype(np.int16).reshape(h, w)

    # active fronts: a pixel burns from its arrival for a residence time (longer in forest)
    residence = (
        (np.where(land_cover.ravel() == FOREST, 0.55, 0.3) * (0.6 + 0.8 * fuel_flat))
        .astype(np.float32)
        .astype(np.float64)
    )
    t0 = np.where(burned_flat, arrival, np.inf)
    t1 = t0 + residence
    fronts: list[np.ndarray] = []
    night_fronts: list[np.ndarray] = []
    order = np.argsort(t0, kind="stable")
    t0s = t0[order]
    for d in range(n_days):
        # candidates: arrival before the end of the day
        n_before = int(np.searchsorted(t0s, d + 1.0, side="left"))
        cand = order[:n_before]
        fronts.append(np.sort(cand[t1[cand] > d]).astype(np.int32))
        t_night = d + _NIGHT_HOUR / 24.0
        night = cand[(t0[cand] <= t_night) & (t1[cand] > t_night)]
        night_fronts.append(np.sort(night).astype(np.int32))

    burned = burn_day >= 0
    sev_rng = make_rng(seed, TAG_FIRE, 1)
    severity = np.where(
        burned, np.clip(0.5 + 0.45 * fuel + 0.1 * sev_rng.standard_normal((h, w)), 0.3, 1.0), 0.0
    ).astype(np.float32)
    day_of = np.clip(burn_day, 0, n_days - 1)
    intensity = np.where(
        burned, fuel * intensity_of_event[event_id] * np.sqrt(day_factor[day_of]), 0.0
    ).astype(np.float32)
    log.debug(
        "burn truth %s: %d events, %d burned pixels of %d",
        region.name,
        len(events),
        int(burned.sum()),
        npx,
    )
    return BurnTruth(
        region=region,
        start=start,
        n_days=n_days,
        seed=int(seed),
        land_cover=land_cover,
        vigor=vigor,
        fuel=fuel,
        burn_day=burn_day,
        fire_event=event_id,
        severity=severity,
        intensity=intensity,
        events=events,
        fronts=fronts,
        night_fronts=night_fronts,
        wind_dir_deg=wind_dir,
        wind_strength=wind_str,
        arrival=np.where(burned_flat, arrival, np.nan).reshape(h, w).astype(np.float64),
        residence=np.where(burned_flat, residence, 0.0).reshape(h, w).astype(np.float32),
    )


#: Local hour of the night-time (descending) overpass used for the carried-over fronts.
_NIGHT_HOUR = 1.5
