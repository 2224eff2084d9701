"""Physics of the synthetic Sentinel-2 smoke scenes: surface, plume, clouds, noise.

Simple, but with the right signs, so that detectors face the real difficulties:

* **surface**: land-cover map of vegetation (red edge, high B08/B8A), soil, urban
  and water (dark, lowest in NIR/SWIR), with texture; bright roofs near the emitters.
* **plume**: Gaussian plume from a point source. The column density at downwind
  distance ``s`` and crosswind offset ``n`` is ``~ exp(-n^2 / 2 sy^2) / sy`` with
  ``sy = a_k * s_km ** 0.894`` (Martin 1976 fit of the Pasquill-Gifford curves, ``a_k``
  = 213, 156, 104, 68, 50.5, 34 m for stability classes A-F), plus meander, puffs and
  decay. Opacity ``a = a_max (1 - exp(-k c))`` is scaled per band by
  ``(lambda / 443 nm) ** -1.3`` (fine particles scatter blue most, SWIR little) and is
  zero for the cirrus band B10. Reflectance ``= (1 - a_b) surface + a_b plume_b``.
* **distractors**: natural clouds (bright in all bands incl. SWIR, raised B10), bright
  roofs; **sensor noise** (Gaussian, per band) then quantisation to reflectance x 1e4.

All arrays are ``(13, h, w)`` in the band order :data:`firesmoke.io.sentinel2.chips.BANDS`
(or ``(h, w)`` for opacities); every function draws from the generator it is given, so
the writers in :mod:`firesmoke.synthetic.sentinel2` stay deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from firesmoke.io.sentinel2.chips import BAND_INFO, BANDS

__all__ = [
    "NOISE_SIGMA",
    "PIXEL",
    "PLUME_REFLECTANCE",
    "PLUME_WEIGHT",
    "SPECTRA",
    "STABILITY_A",
    "VISIBLE_OPACITY",
    "ChipLayers",
    "cloud_opacity",
    "compose",
    "outline_polygon",
    "plume_opacity",
    "random_plume",
    "render_chip",
    "sensor_noise",
    "smooth_field",
    "surface_reflectance",
    "visible_smoke",
]

#: Pixel size of the 10 m bands (metres).
PIXEL = 10.0
_WL = np.array([BAND_INFO[b].center_wavelength for b in BANDS])  # micrometres
_B10 = BANDS.index("B10")
_B02 = BANDS.index("B02")

#: Surface reflectance spectra (B01 .. B12, 13 values), typical L2A values.
# fmt: off
SPECTRA: dict[str, tuple[float, ...]] = {
    #             B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B10    B11    B12
    "vegetation": (0.025, 0.035, 0.070, 0.035, 0.110, 0.280, 0.350, 0.380, 0.400, 0.380, 0.004, 0.190, 0.090),
    "soil":       (0.080, 0.100, 0.140, 0.180, 0.210, 0.230, 0.250, 0.270, 0.280, 0.280, 0.008, 0.340, 0.280),
    "urban":      (0.100, 0.110, 0.120, 0.130, 0.140, 0.150, 0.160, 0.170, 0.170, 0.170, 0.006, 0.200, 0.180),
    "water":      (0.050, 0.045, 0.040, 0.025, 0.018, 0.014, 0.012, 0.010, 0.009, 0.008, 0.002, 0.005, 0.003),
    "roof":       (0.300, 0.320, 0.340, 0.350, 0.360, 0.370, 0.380, 0.380, 0.380, 0.370, 0.010, 0.400, 0.380),
    "cloud":      (0.550, 0.550, 0.550, 0.550, 0.560, 0.570, 0.570, 0.570, 0.570, 0.500, 0.200, 0.450, 0.350),
}
# fmt: on
_SPEC = {k: np.array(v, dtype=np.float32)[:, None, None] for k, v in SPECTRA.items()}
#: Plume opacity weight per band relative to B01 (blue scatters most, cirrus band unaffected).
PLUME_WEIGHT = (_WL / _WL[0]) ** -1.3
PLUME_WEIGHT[_B10] = 0.0
#: Reflectance of an opaque plume per band.
PLUME_REFLECTANCE = (0.32 * (_WL / _WL[0]) ** -0.3).astype(np.float32)
#: Sensor noise standard deviation per band (reflectance).
NOISE_SIGMA = np.where(np.isin(np.arange(len(BANDS)), [0, 9, 10]), 0.004, 0.0025).astype(
    np.float32
)
#: Martin (1976) sigma_y coefficients (metres, x in km) for Pasquill stability classes A-F.
STABILITY_A = {"A": 213.0, "B": 156.0, "C": 104.0, "D": 68.0, "E": 50.5, "F": 34.0}
#: Opacity in B02 above which a plume pixel counts as visible smoke.
VISIBLE_OPACITY = 0.05


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth random field with unit standard deviation (correlation length ``scale`` px)."""
    f = gaussian_filter(rng.standard_normal(shape).astype(np.float32), scale, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def surface_reflectance(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sites_rc: list[tuple[float, float]],
    scale: float = 1.0,
) -> np.ndarray:
    """Surface reflectance ``(13, h, w)`` float32 with an industrial area around each site."""
    h, w = shape
    water_frac = rng.choice([0.0, 0.0, 0.04, 0.12])
    veg_frac = rng.uniform(0.3, 0.75)
    f_water = smooth_field(rng, shape, 14 * scale)
    f_veg = smooth_field(rng, shape, 6 * scale)
    vigour = np.clip(0.75 + 0.2 * smooth_field(rng, shape, 3 * scale), 0.3, 1.0)
    texture = smooth_field(rng, shape, 1.0)
    veg = vigour * _SPEC["vegetation"] + (1 - vigour) * _SPEC["soil"]
    surf = np.where(f_veg > np.quantile(f_veg, 1 - veg_frac), veg, _SPEC["soil"])
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    urban = np.zeros(shape, dtype=bool)
    roofs = np.zeros(shape, dtype=bool)
    jag = smooth_field(rng, shape, 4 * scale)
    for r0, c0 in sites_rc:
        radius = rng.uniform(8, 22) * scale
        urban |= np.hypot(rows - r0, cols - c0) < radius * (1 + 0.3 * jag)
        for _ in range(rng.integers(0, 5)):
            rr, cc = r0 + rng.uniform(-radius, radius), c0 + rng.uniform(-radius, radius)
            hh, ww = rng.uniform(1.5, 5), rng.uniform(1.5, 6)
            roofs |= (np.abs(rows - rr) < hh) & (np.abs(cols - cc) < ww)
    surf = np.where(urban, _SPEC["urban"], surf)
    surf = np.where(roofs, _SPEC["roof"], surf)
    if water_frac > 0:
        water = (f_water < np.quantile(f_water, water_frac)) & ~urban
        surf = np.where(water, _SPEC["water"], surf)
    return (surf * (1 + 0.06 * texture)).astype(np.float32)


def plume_opacity(
    rng: np.random.Generator,
    shape: tuple[int, int],
    source_xy: tuple[float, float],
    wind_deg: float,
    stability: str,
    amax: float,
    k: float,
    decay_px: float,
) -> np.ndarray:
    """Base opacity (band B01) of a Gaussian plume from a point source, ``(h, w)`` float32."""
    h, w = shape
    x0, y0 = source_xy
    th = math.radians(wind_deg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    dx, dy = xx - x0, yy - y0
    s = dx * math.cos(th) + dy * math.sin(th)
    n = -dx * math.sin(th) + dy * math.cos(th)
    amp, wavelength, phase = rng.uniform(0, 3), rng.uniform(30, 90), rng.uniform(0, 2 * math.pi)
    n = n - amp * np.sin(2 * math.pi * s / wavelength + phase) * np.clip(s / 25, 0, 1)
    sp = np.maximum(s, 0.0)
    sig0 = 0.8
    sig = np.sqrt(sig0**2 + (STABILITY_A[stability] * (sp * PIXEL / 1000.0) ** 0.894 / PIXEL) ** 2)
    col = (sig0 / sig) * np.exp(-(n**2) / (2 * sig**2)) * np.exp(-sp / decay_px)
    col *= np.exp(-0.5 * (np.minimum(s, 0.0) / sig0) ** 2)
    puff = np.clip(1 + 0.35 * smooth_field(rng, shape, 2.5), 0.2, None)
    return (amax * (1 - np.exp(-k * col * puff))).astype(np.float32)


def cloud_opacity(
    rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0
) -> np.ndarray:
    """Opacity of natural clouds: thresholded smooth field, soft edges."""
    f = smooth_field(rng, shape, rng.uniform(6, 14) * scale)
    thr = rng.uniform(0.6, 1.6)
    return (np.clip((f - thr) / 0.6, 0, 1) ** 0.8 * rng.uniform(0.6, 1.0)).astype(np.float32)


def compose(
    surface: np.ndarray,
    plume: np.ndarray | None,
    cloud: np.ndarray | None,
    noise: np.ndarray,
) -> np.ndarray:
    """Mix layers and quantise to uint16 reflectance x 1e4 (1..65535; 0 is nodata)."""
    refl = surface
    if plume is not None:
        a = plume[None] * PLUME_WEIGHT[:, None, None].astype(np.float32)
        refl = (1 - a) * refl + a * PLUME_REFLECTANCE[:, None, None]
    if cloud is not None:
        refl = (1 - cloud[None]) * refl + cloud[None] * _SPEC["cloud"]
    refl = refl + noise
    return np.clip(np.rint(refl * 1e4), 1, 65535).astype(np.uint16)


def sensor_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return (
        rng.standard_normal((len(BANDS), *shape), dtype=np.float32) * NOISE_SIGMA[:, None, None]
    ).astype(np.float32)


def random_plume(
    rng: np.random.Generator, shape: tuple[int, int], xy: tuple[float, float], long: bool = False
) -> tuple[np.ndarray, float]:
    """Opacity of a plume with random wind, stability and strength, visible on the grid."""
    for _ in range(5):  # retry (rarely needed) until at least 15 pixels show smoke
        wind = rng.uniform(0, 360)
        stability = str(rng.choice(list("ABCDEF"), p=[0.08, 0.15, 0.25, 0.3, 0.14, 0.08]))
        decay = rng.uniform(150, 500) if long else rng.uniform(40, 150)
        op = plume_opacity(
            rng, shape, xy, wind, stability, rng.uniform(0.45, 0.8), rng.uniform(2.5, 5.0), decay
        )
        if visible_smoke(op).sum() >= 15:
            break
    return op, wind


def visible_smoke(opacity: np.ndarray) -> np.ndarray:
    return opacity * PLUME_WEIGHT[_B02] >= VISIBLE_OPACITY


def outline_polygon(
    visible: np.ndarray, source_xy: tuple[float, float], wind_xy: tuple[float, float]
) -> np.ndarray | None:
    """Annotator-like polygon (pixel x, y) around a visible plume, following its axis."""
    rr, cc = np.nonzero(visible)
    if rr.size < 3:
        return None
    cos, sin = wind_xy
    px, py = cc + 0.5 - source_xy[0], rr + 0.5 - source_xy[1]
    s, n = px * cos + py * sin, -px * sin + py * cos
    lo, hi = s.min() - 0.5, s.max() + 0.5
    k = int(np.clip(math.ceil((hi - lo) / 6), 2, 10))
    edges = np.linspace(lo, hi, k + 1)
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, k - 1)
    upper, lower = [], []
    for b in range(k):
        sel = which == b
        if not sel.any():
            continue
        mid = 0.5 * (edges[b] + edges[b + 1])
        nb_lo, nb_hi = n[sel].min() - 0.6, n[sel].max() + 0.6
        for sv in (edges[b], mid) if not upper else (mid,):
            upper.append((sv, nb_hi))
            lower.append((sv, nb_lo))
    upper.append((edges[-1], upper[-1][1]))
    lower.append((edges[-1], lower[-1][1]))
    sn = np.array(upper + lower[::-1])
    x = source_xy[0] + sn[:, 0] * cos - sn[:, 1] * sin
    y = source_xy[1] + sn[:, 0] * sin + sn[:, 1] * cos
    h, w = visible.shape
    return np.column_stack([np.clip(x, 0, w), np.clip(y, 0, h)])


@dataclass
class ChipLayers:
    """Layers of one rendered chip (reflectance as float32, images as uint16 x 1e4)."""

    surface: np.ndarray
    plume_opacity: np.ndarray
    cloud_opacity: np.ndarray
    image: np.ndarray
    plume_free: np.ndarray
    polygons: list[np.ndarray] = field(default_factory=list)


def render_chip(
    seed: int, shape: tuple[int, int], site_xy: tuple[float, float], label: int
) -> ChipLayers:
    """Render one chip around an emitter at pixel ``site_xy`` (x, y).

    Positives (``label == 1``) get one plume (70 %) or two nearby sources, each with an
    annotator-like outline polygon (pixel x, y); clouds appear in 20 % of positives and
    40 % of negatives. The same ``seed`` gives the same layers.
    """
    ss = np.random.SeedSequence(seed)
    r_surf, r_plume, r_cloud, r_noise = (np.random.default_rng(s) for s in ss.spawn(4))
    sx, sy = site_xy
    surface = surface_reflectance(r_surf, shape, [(sy, sx)])
    plume = np.zeros(shape, dtype=np.float32)
    polygons: list[np.ndarray] = []
    if label == 1:
        n_src = 1 if r_plume.random() < 0.7 else 2
        for j in range(n_src):
            xy = (sx, sy) if j == 0 else (sx + r_plume.uniform(-8, 8), sy + r_plume.uniform(-8, 8))
            op, wind = random_plume(r_plume, shape, xy)
            th = math.radians(wind)
            poly = outline_polygon(visible_smoke(op), xy, (math.cos(th), math.sin(th)))
            if poly is not None:
                polygons.append(poly)
            plume = 1 - (1 - plume) * (1 - op)
    has_cloud = r_cloud.random() < (0.2 if label == 1 else 0.4)
    cloud = cloud_opacity(r_cloud, shape) if has_cloud else np.zeros(shape, np.float32)
    noise = sensor_noise(r_noise, shape)
    image = compose(surface, plume if label == 1 else None, cloud, noise)
    plume_free = compose(surface, None, cloud, noise)
    return ChipLayers(surface, plume, cloud, image, plume_free, polygons)
