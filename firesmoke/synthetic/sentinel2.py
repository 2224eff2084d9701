"""Synthetic Sentinel-2 smoke data in the real formats: chips, labels, COG scenes, STAC.

Physics (simple but with the right signs, so detectors face the real difficulties):

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

Chips follow the published dataset layout (reference/smoke.md): ``positive/`` and
``negative/`` 13-band uint16 GeoTIFFs named ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` in
a UTM CRS at 10 m, and ``labels/<image-stem>_features.json`` legacy Label Studio files.
The truth mask of a positive chip is *exactly* its label polygons rasterised all-touched
(:func:`firesmoke.io.labels.polygons_to_mask`), so it equals what the reader returns;
the physical plume opacity (:meth:`ChipSet.render`) is what the polygons approximate.

Everything is deterministic for a seed: the same call writes identical bytes.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from pyproj import Transformer
from scipy.ndimage import gaussian_filter

from firesmoke.errors import InputError
from firesmoke.io.labels import label_file_name, polygons_to_mask
from firesmoke.io.sentinel2 import BAND_INFO, BANDS, format_chip_name

__all__ = [
    "ChipLayers",
    "ChipSet",
    "SceneSet",
    "Site",
    "generate_chips",
    "generate_scenes",
    "utm_epsg",
]

logger = logging.getLogger(__name__)

PIXEL = 10.0  # metres
_WL = np.array([BAND_INFO[b].center_wavelength for b in BANDS])  # micrometres
_B10 = BANDS.index("B10")
_B02 = BANDS.index("B02")

# Surface reflectance spectra (B01 .. B12, 13 values), typical L2A values.
_SPECTRA = {
    "vegetation": [
        0.025,
        0.035,
        0.070,
        0.035,
        0.110,
        0.280,
        0.350,
        0.380,
        0.400,
        0.380,
        0.004,
        0.190,
        0.090,
    ],
    "soil": [
        0.080,
        0.100,
        0.140,
        0.180,
        0.210,
        0.230,
        0.250,
        0.270,
        0.280,
        0.280,
        0.008,
        0.340,
        0.280,
    ],
    "urban": [
        0.100,
        0.110,
        0.120,
        0.130,
        0.140,
        0.150,
        0.160,
        0.170,
        0.170,
        0.170,
        0.006,
        0.200,
        0.180,
    ],
    "water": [
        0.050,
        0.045,
        0.040,
        0.025,
        0.018,
        0.014,
        0.012,
        0.010,
        0.009,
        0.008,
        0.002,
        0.005,
        0.003,
    ],
    "roof": [
        0.300,
        0.320,
        0.340,
        0.350,
        0.360,
        0.370,
        0.380,
        0.380,
        0.380,
        0.370,
        0.010,
        0.400,
        0.380,
    ],
    "cloud": [
        0.550,
        0.550,
        0.550,
        0.550,
        0.560,
        0.570,
        0.570,
        0.570,
        0.570,
        0.500,
        0.200,
        0.450,
        0.350,
    ],
}
_SPEC = {k: np.array(v, dtype=np.float32)[:, None, None] for k, v in _SPECTRA.items()}
# Plume: per-band opacity weight (blue scatters most, cirrus band unaffected) and reflectance.
_PLUME_WEIGHT = (_WL / _WL[0]) ** -1.3
_PLUME_WEIGHT[_B10] = 0.0
_PLUME_REFL = (0.32 * (_WL / _WL[0]) ** -0.3).astype(np.float32)
_NOISE_SIGMA = np.where(np.isin(np.arange(len(BANDS)), [0, 9, 10]), 0.004, 0.0025).astype(
    np.float32
)
# Martin (1976) sigma_y coefficients (metres, x in km) for Pasquill stability classes A-F.
_STABILITY_A = {"A": 213.0, "B": 156.0, "C": 104.0, "D": 68.0, "E": 50.5, "F": 34.0}
#: Opacity in B02 above which a plume pixel counts as visible smoke.
VISIBLE_OPACITY = 0.05


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
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


@cache
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)


# --------------------------------------------------------------------------- physics


def _smooth(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth random field with unit standard deviation (correlation length ``scale`` px)."""
    f = gaussian_filter(rng.standard_normal(shape).astype(np.float32), scale, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _surface(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sites_rc: list[tuple[float, float]],
    scale: float = 1.0,
) -> np.ndarray:
    """Surface reflectance ``(13, h, w)`` float32 with an industrial area around each site."""
    h, w = shape
    water_frac = rng.choice([0.0, 0.0, 0.04, 0.12])
    veg_frac = rng.uniform(0.3, 0.75)
    f_water = _smooth(rng, shape, 14 * scale)
    f_veg = _smooth(rng, shape, 6 * scale)
    vigour = np.clip(0.75 + 0.2 * _smooth(rng, shape, 3 * scale), 0.3, 1.0)
    texture = _smooth(rng, shape, 1.0)
    veg = vigour * _SPEC["vegetation"] + (1 - vigour) * _SPEC["soil"]
    surf = np.where(f_veg > np.quantile(f_veg, 1 - veg_frac), veg, _SPEC["soil"])
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    urban = np.zeros(shape, dtype=bool)
    roofs = np.zeros(shape, dtype=bool)
    jag = _smooth(rng, shape, 4 * scale)
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


def _plume_opacity(
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
    sig = np.sqrt(sig0**2 + (_STABILITY_A[stability] * (sp * PIXEL / 1000.0) ** 0.894 / PIXEL) ** 2)
    col = (sig0 / sig) * np.exp(-(n**2) / (2 * sig**2)) * np.exp(-sp / decay_px)
    col *= np.exp(-0.5 * (np.minimum(s, 0.0) / sig0) ** 2)
    puff = np.clip(1 + 0.35 * _smooth(rng, shape, 2.5), 0.2, None)
    return (amax * (1 - np.exp(-k * col * puff))).astype(np.float32)


def _cloud_opacity(
    rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0
) -> np.ndarray:
    """Opacity of natural clouds: thresholded smooth field, soft edges."""
    f = _smooth(rng, shape, rng.uniform(6, 14) * scale)
    thr = rng.uniform(0.6, 1.6)
    return (np.clip((f - thr) / 0.6, 0, 1) ** 0.8 * rng.uniform(0.6, 1.0)).astype(np.float32)


def _compose(
    surface: np.ndarray,
    plume: np.ndarray | None,
    cloud: np.ndarray | None,
    noise: np.ndarray,
) -> np.ndarray:
    """Mix layers and quantise to uint16 reflectance x 1e4 (1..65535; 0 is nodata)."""
    refl = surface
    if plume is not None:
        a = plume[None] * _PLUME_WEIGHT[:, None, None].astype(np.float32)
        refl = (1 - a) * refl + a * _PLUME_REFL[:, None, None]
    if cloud is not None:
        refl = (1 - cloud[None]) * refl + cloud[None] * _SPEC["cloud"]
    refl = refl + noise
    return np.clip(np.rint(refl * 1e4), 1, 65535).astype(np.uint16)


def _noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return (
        rng.standard_normal((len(BANDS), *shape), dtype=np.float32) * _NOISE_SIGMA[:, None, None]
    ).astype(np.float32)


def _random_plume(
    rng: np.random.Generator, shape: tuple[int, int], xy: tuple[float, float], long: bool = False
) -> tuple[np.ndarray, float]:
    """Opacity of a plume with random wind, stability and strength, visible on the grid."""
    for _ in range(5):  # retry (rarely needed) until at least 15 pixels show smoke
        wind = rng.uniform(0, 360)
        stability = str(rng.choice(list("ABCDEF"), p=[0.08, 0.15, 0.25, 0.3, 0.14, 0.08]))
        decay = rng.uniform(150, 500) if long else rng.uniform(40, 150)
        op = _plume_opacity(
            rng, shape, xy, wind, stability, rng.uniform(0.45, 0.8), rng.uniform(2.5, 5.0), decay
        )
        if _visible(op).sum() >= 15:
            break
    return op, wind


def _visible(opacity: np.ndarray) -> np.ndarray:
    return opacity * _PLUME_WEIGHT[_B02] >= VISIBLE_OPACITY


def _outline(
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


# --------------------------------------------------------------------------- chips


@dataclass(frozen=True)
class ChipSpec:
    """Everything needed to re-render one chip."""

    path: Path
    label: int
    site: Site
    time: datetime
    shape: tuple[int, int]
    epsg: int
    transform: Affine
    site_xy: tuple[float, float]
    seed: int
    label_path: Path | None = None


@dataclass
class ChipLayers:
    """Layers of one rendered chip (reflectance as float32, images as uint16 x 1e4)."""

    surface: np.ndarray
    plume_opacity: np.ndarray
    cloud_opacity: np.ndarray
    image: np.ndarray
    plume_free: np.ndarray
    polygons: list[np.ndarray] = field(default_factory=list)


@dataclass
class ChipSet:
    """Chips written by :func:`generate_chips`.

    ``paths`` lists positives then negatives; ``masks[i]`` is the truth mask of
    ``paths[i]`` at the chip's own (unpadded) shape: the label polygons rasterised
    all-touched for positives, all False for negatives.
    """

    root: Path
    positives: list[Path]
    negatives: list[Path]
    labels: list[Path]
    masks: list[np.ndarray]
    specs: list[ChipSpec]
    sites: list[Site]

    @property
    def paths(self) -> list[Path]:
        return self.positives + self.negatives

    def mask_of(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Truth mask of a chip given its path."""
        return self.masks[self.paths.index(Path(path))]

    def render(self, i: int) -> ChipLayers:
        """Re-render chip ``i`` with its layers (identical to the file written)."""
        return _render_chip(self.specs[i])


def _render_chip(spec: ChipSpec) -> ChipLayers:
    ss = np.random.SeedSequence(spec.seed)
    r_surf, r_plume, r_cloud, r_noise = (np.random.default_rng(s) for s in ss.spawn(4))
    shape = spec.shape
    sx, sy = spec.site_xy
    surface = _surface(r_surf, shape, [(sy, sx)])
    plume = np.zeros(shape, dtype=np.float32)
    polygons: list[np.ndarray] = []
    if spec.label == 1:
        n_src = 1 if r_plume.random() < 0.7 else 2
        for j in range(n_src):
            xy = (sx, sy) if j == 0 else (sx + r_plume.uniform(-8, 8), sy + r_plume.uniform(-8, 8))
            op, wind = _random_plume(r_plume, shape, xy)
            th = math.radians(wind)
            poly = _outline(_visible(op), xy, (math.cos(th), math.sin(th)))
            if poly is not None:
                polygons.append(poly)
            plume = 1 - (1 - plume) * (1 - op)
    has_cloud = r_cloud.random() < (0.2 if spec.label == 1 else 0.4)
    cloud = _cloud_opacity(r_cloud, shape) if has_cloud else np.zeros(shape, np.float32)
    noise = _noise(r_noise, shape)
    image = _compose(surface, plume if spec.label == 1 else None, cloud, noise)
    plume_free = _compose(surface, None, cloud, noise)
    return ChipLayers(surface, plume, cloud, image, plume_free, polygons)


def _default_sites(rng: np.random.Generator, n: int) -> list[Site]:
    ids = rng.choice(np.arange(1000, 1_000_000), size=n, replace=False)
    return [
        Site(
            str(int(i)), round(float(rng.uniform(-9, 28)), 5), round(float(rng.uniform(37, 60)), 5)
        )
        for i in ids
    ]


def _as_sites(sites: Any) -> list[Site]:
    out = []
    for s in sites:
        out.append(s if isinstance(s, Site) else Site(str(s[0]), float(s[1]), float(s[2])))
    if not out:
        raise InputError("sites must not be empty", field="sites")
    return out


def _percent_polygons(polygons: list[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    h, w = shape
    return [np.round(np.column_stack([p[:, 0] / w * 100, p[:, 1] / h * 100]), 4) for p in polygons]


def _label_json(
    stem: str, polygons_pct: list[np.ndarray], shape: tuple[int, int], task_id: int
) -> dict[str, Any]:
    results = [
        {
            "id": f"r{task_id}_{j}",
            "from_name": "label",
            "to_name": "image",
            "type": "polygonlabels",
            "original_width": shape[1],
            "original_height": shape[0],
            "value": {"points": p.tolist(), "polygonlabels": ["smoke"]},
        }
        for j, p in enumerate(polygons_pct)
    ]
    return {
        "id": task_id,
        "data": {"image": f"/data/upload/{stem}.png"},
        "completions": [{"id": task_id * 1000 + 1, "result": results}],
    }


def _write_chip(spec: ChipSpec, image: np.ndarray) -> None:
    h, w = spec.shape
    profile = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=len(BANDS),
        dtype="uint16",
        crs=f"EPSG:{spec.epsg}",
        transform=spec.transform,
        nodata=0,
        compress="deflate",
        interleave="pixel",
    )
    with rasterio.open(spec.path, "w", **profile) as dst:
        dst.write(image)
        for i, b in enumerate(BANDS, start=1):
            dst.set_band_description(i, b)
        dst.update_tags(
            SITE_ID=spec.site.site_id,
            TIFFTAG_DATETIME=f"{spec.time:%Y:%m:%d %H:%M:%S}",
            SYNTHETIC="firesmoke",
        )


def generate_chips(
    out_dir: str | os.PathLike[str],
    n_positive: int,
    n_negative: int,
    seed: int = 0,
    size: int = 120,
    sites: Any = None,
    undersized_fraction: float = 0.15,
) -> ChipSet:
    """Write a synthetic smoke-plume chip dataset laid out like the published one.

    Parameters
    ----------
    out_dir
        Folder that receives ``positive/``, ``negative/`` and ``labels/``.
    n_positive, n_negative
        Number of chips with / without smoke.
    seed
        Everything (sites, times, content) follows from it; same seed -> same bytes.
    size
        Nominal chip size; about ``undersized_fraction`` of the chips (at least one when
        there are two or more) lose 1-3 rows and/or columns, like chips cut at tile edges.
    sites
        :class:`Site` objects or ``(site_id, lon, lat)`` tuples; default: random
        European sites with 4-6 digit ids. Chips cycle through the sites.

    Returns
    -------
    ChipSet
        File lists, truth masks and the specs to re-render each chip's layers.
    """
    out = Path(out_dir)
    for sub in ("positive", "negative", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_total = n_positive + n_negative
    site_list = _as_sites(sites) if sites is not None else _default_sites(rng, max(3, n_total // 4))
    child_seeds = rng.integers(0, 2**63, size=n_total)
    small = rng.random(n_total) < undersized_fraction
    if n_total >= 2 and not small.any():
        small[0] = True
    used: dict[str, int] = {}
    specs: list[ChipSpec] = []
    for i in range(n_total):
        label = 1 if i < n_positive else 0
        site = site_list[i % len(site_list)]
        t = datetime(2016, 1, 1, 9, 50) + timedelta(
            days=int(rng.integers(0, 5 * 365)), seconds=int(rng.integers(0, 4800))
        )
        h, w = size, size
        if small[i]:
            h, w = size - int(rng.integers(0, 4)), size - int(rng.integers(0, 4))
            if (h, w) == (size, size):
                h -= 2
        epsg = utm_epsg(site.lon, site.lat)
        east, north = _to_utm(epsg).transform(site.lon, site.lat)
        sx, sy = w / 2 + rng.uniform(-10, 10), h / 2 + rng.uniform(-10, 10)
        left = math.floor((east - sx * PIXEL) / PIXEL) * PIXEL
        top = math.ceil((north + sy * PIXEL) / PIXEL) * PIXEL
        site_xy = ((east - left) / PIXEL, (top - north) / PIXEL)
        stem_key = f"{site.site_id}_{t:%Y%m%d%H%M%S}"
        n = used.get(stem_key, 0)
        used[stem_key] = n + 1
        name = format_chip_name(site.site_id, t, n)
        folder = "positive" if label else "negative"
        specs.append(
            ChipSpec(
                out / folder / name,
                label,
                site,
                t,
                (h, w),
                epsg,
                Affine(PIXEL, 0, left, 0, -PIXEL, top),
                site_xy,
                int(child_seeds[i]),
                out / "labels" / label_file_name(name) if label else None,
            )
        )
    masks = []
    for k, spec in enumerate(specs):
        layers = _render_chip(spec)
        _write_chip(spec, layers.image)
        if spec.label:
            pct = _percent_polygons(layers.polygons, spec.shape)
            doc = _label_json(spec.path.stem, pct, spec.shape, k + 1)
            spec.label_path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            masks.append(polygons_to_mask(pct, spec.shape))
        else:
            masks.append(np.zeros(spec.shape, dtype=bool))
    logger.info("wrote %d positive and %d negative chips to %s", n_positive, n_negative, out)
    return ChipSet(
        out,
        [s.path for s in specs if s.label],
        [s.path for s in specs if not s.label],
        [s.label_path for s in specs if s.label],
        masks,
        specs,
        site_list,
    )


# --------------------------------------------------------------------------- scenes


@dataclass
class SceneSet:
    """Scenes written by :func:`generate_scenes` (one time series over one footprint).

    Attributes
    ----------
    item_paths
        STAC item JSON per scene (``<root>/<item_id>/<item_id>.json``, relative hrefs).
    collection_path, catalog_path
        ``items.json`` (GeoJSON FeatureCollection of all items) and ``catalog.json``.
    band_paths
        Per scene, band name -> COG path.
    multiband_paths
        Per scene, a 13-band COG (only with ``multiband=True``).
    sites
        One row per emitter: ``site_id``, ``lon``, ``lat``, ``row``, ``col`` (source pixel
        position, fractional), ``x``, ``y`` (scene CRS).
    active
        ``(n_scenes, n_sites)`` bool: which sites emit a plume in which scene.
    masks
        Per scene, ``(size, size)`` bool truth mask: pixels where plume opacity in B02
        is at least :data:`VISIBLE_OPACITY` (pixel-exact, no polygons).
    """

    root: Path
    item_paths: list[Path]
    collection_path: Path
    catalog_path: Path
    band_paths: list[dict[str, Path]]
    multiband_paths: list[Path]
    times: list[datetime]
    epsg: int
    transform: Affine
    shape: tuple[int, int]
    sites: pd.DataFrame
    active: np.ndarray
    masks: list[np.ndarray]


def _write_cog(
    path: Path,
    data: np.ndarray,
    epsg: int,
    transform: Affine,
    blocksize: int,
    names: list[str],
    when: datetime,
) -> None:
    profile = dict(
        driver="COG",
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        dtype="uint16",
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=0,
        compress="deflate",
        blocksize=blocksize,
        overview_resampling="average",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, b in enumerate(names, start=1):
            dst.set_band_description(i, b)
        dst.update_tags(TIFFTAG_DATETIME=f"{when:%Y:%m:%d %H:%M:%S}", SYNTHETIC="firesmoke")


def _stac_item(
    item_id: str,
    when: datetime,
    epsg: int,
    transform: Affine,
    shape: tuple[int, int],
    band_files: dict[str, Path],
    cloud_cover: float,
    proj_epsg: bool,
) -> Any:
    import pystac
    from pystac.extensions.eo import Band, EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    h, w = shape
    left, top = transform.c, transform.f
    right, bottom = left + w * transform.a, top + h * transform.e
    xs = np.array([left, right, right, left, left])
    ys = np.array([top, top, bottom, bottom, top])
    lon, lat = _to_lonlat(epsg).transform(xs, ys)
    ring = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    item = pystac.Item(
        id=item_id,
        geometry={"type": "Polygon", "coordinates": [ring]},
        bbox=[round(float(v), 7) for v in bbox],
        datetime=when.replace(tzinfo=None),
        properties={
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": PIXEL,
        },
    )
    item.datetime = pd.Timestamp(when).tz_localize("UTC").to_pydatetime()
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.epsg = epsg
    proj.shape = [h, w]
    proj.transform = [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f]
    proj.bbox = [left, bottom, right, top]
    if proj_epsg:
        item.properties["proj:epsg"] = epsg  # legacy field read by stackstac <= 0.5
    eo = EOExtension.ext(item, add_if_missing=True)
    eo.cloud_cover = round(float(cloud_cover), 3)
    RasterExtension.add_to(item)
    for band, path in band_files.items():
        info = BAND_INFO[band]
        asset = pystac.Asset(
            str(Path(path).resolve()),
            media_type=pystac.MediaType.COG,
            roles=["data"],
            title=f"{band} reflectance x 1e4",
        )
        item.add_asset(band, asset)
        EOExtension.ext(asset).bands = [
            Band.create(
                name=band,
                common_name=info.common_name,
                center_wavelength=info.center_wavelength,
                full_width_half_max=info.full_width_half_max,
            )
        ]
        RasterExtension.ext(asset).bands = [
            RasterBand.create(nodata=0, data_type=DataType.UINT16, spatial_resolution=PIXEL)
        ]
    return item


def generate_scenes(
    out_dir: str | os.PathLike[str],
    n_scenes: int = 2,
    size: int = 1024,
    n_sites: int = 3,
    seed: int = 0,
    *,
    center: tuple[float, float] | None = None,
    start: datetime = datetime(2019, 6, 1, 10, 40, 21),
    revisit_days: int = 5,
    proj_epsg: bool = True,
    multiband: bool = False,
    blocksize: int = 256,
) -> SceneSet:
    """Write a time series of synthetic Sentinel-2 scenes as per-band COGs plus STAC.

    Parameters
    ----------
    out_dir
        Receives ``catalog.json``, ``items.json`` and one folder per item holding
        ``<item_id>.json`` and ``B01.tif`` .. ``B12.tif`` (13 single-band COGs).
    n_scenes, size, n_sites
        Number of dates, scene size in pixels (10 m), emitters in the scene.
    seed
        Same seed -> identical files.
    center
        ``(lon, lat)`` of the scene centre; default a random European location.
    start, revisit_days
        Date of the first scene and spacing of the others.
    proj_epsg
        Also write the legacy ``proj:epsg`` next to ``proj:code`` (pystac writes
        projection extension v2, which has only ``proj:code``).
    multiband
        Also write a 13-band COG ``<item_id>_stack.tif`` per scene (not in the STAC item).
    blocksize
        COG tile size.

    Returns
    -------
    SceneSet
        Paths, site table (lon/lat and scene pixel positions), activity and truth masks.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lon0, lat0 = (
        center if center is not None else (float(rng.uniform(-9, 28)), float(rng.uniform(37, 60)))
    )
    epsg = utm_epsg(lon0, lat0)
    e0, n0 = _to_utm(epsg).transform(lon0, lat0)
    left = math.floor((e0 - size * PIXEL / 2) / 60.0) * 60.0
    top = math.floor((n0 + size * PIXEL / 2) / 60.0) * 60.0
    transform = Affine(PIXEL, 0, left, 0, -PIXEL, top)
    shape = (size, size)
    margin = max(8, min(64, size // 8))
    rc: list[tuple[float, float]] = []
    for _ in range(200 * n_sites):
        if len(rc) == n_sites:
            break
        cand = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
        if all(
            math.hypot(cand[0] - r, cand[1] - c) > size / (2 * math.sqrt(n_sites) + 1)
            for r, c in rc
        ):
            rc.append(cand)
    if len(rc) < n_sites:
        raise InputError(f"cannot place {n_sites} sites on a {size} px scene", field="n_sites")
    ids = rng.choice(np.arange(1000, 1_000_000), size=n_sites, replace=False)
    xs = [left + c * PIXEL for _, c in rc]
    ys = [top - r * PIXEL for r, _ in rc]
    lons, lats = _to_lonlat(epsg).transform(xs, ys)
    sites = pd.DataFrame(
        {
            "site_id": [str(int(i)) for i in ids],
            "lon": lons,
            "lat": lats,
            "row": [r for r, _ in rc],
            "col": [c for _, c in rc],
            "x": xs,
            "y": ys,
        }
    )
    surf_seed, *scene_seeds = (int(v) for v in rng.integers(0, 2**63, size=n_scenes + 1))
    surface = _surface(np.random.default_rng(surf_seed), shape, rc, scale=1.5)
    active = rng.random((n_scenes, n_sites)) < 0.75
    for t in range(n_scenes):
        if n_sites and not active[t].any():
            active[t, rng.integers(0, n_sites)] = True
    import pystac

    items, band_paths, multi, masks, times = [], [], [], [], []
    for t in range(n_scenes):
        r_plume, r_cloud, r_noise, r_var = (
            np.random.default_rng(s) for s in np.random.SeedSequence(scene_seeds[t]).spawn(4)
        )
        when = start + timedelta(days=t * revisit_days, seconds=int(r_var.integers(-300, 300)))
        plume = np.zeros(shape, np.float32)
        for j, (r, c) in enumerate(rc):
            if active[t, j]:
                op, _ = _random_plume(r_plume, shape, (c, r), long=True)
                plume = 1 - (1 - plume) * (1 - op)
        cloud = (
            _cloud_opacity(r_cloud, shape, scale=3.0)
            if r_cloud.random() < 0.5
            else np.zeros(shape, np.float32)
        )
        gain = (1 + 0.02 * r_var.standard_normal(len(BANDS))).astype(np.float32)[:, None, None]
        image = _compose(surface * gain, plume, cloud, _noise(r_noise, shape))
        item_id = f"S2A_SYN_{epsg}_{when:%Y%m%dT%H%M%S}_L2A"
        folder = root / item_id
        folder.mkdir(exist_ok=True)
        files = {b: folder / f"{b}.tif" for b in BANDS}
        for k, b in enumerate(BANDS):
            _write_cog(files[b], image[k : k + 1], epsg, transform, blocksize, [b], when)
        if multiband:
            multi.append(folder / f"{item_id}_stack.tif")
            _write_cog(multi[-1], image, epsg, transform, blocksize, list(BANDS), when)
        items.append(
            _stac_item(
                item_id,
                when,
                epsg,
                transform,
                shape,
                files,
                100 * float((cloud > 0.3).mean()),
                proj_epsg,
            )
        )
        band_paths.append(files)
        masks.append(_visible(plume))
        times.append(when)
    catalog = pystac.Catalog(
        id="firesmoke-synthetic-sentinel2",
        description="Synthetic Sentinel-2 L2A scenes with industrial smoke plumes",
    )
    catalog.add_items(items)
    catalog.normalize_hrefs(str(root.resolve()))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    features = []
    for item in items:
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        d["links"] = []
        for k in d["assets"]:
            d["assets"][k]["href"] = f"./{item.id}/{k}.tif"
        features.append(d)
    collection_path = root / "items.json"
    collection_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, indent=1), encoding="utf-8"
    )
    logger.info(
        "wrote %d scenes of %d x %d px with %d sites to %s", n_scenes, size, size, n_sites, root
    )
    return SceneSet(
        root,
        [root / i.id / f"{i.id}.json" for i in items],
        collection_path,
        root / "catalog.json",
        band_paths,
        multi,
        times,
        epsg,
        transform,
        shape,
        sites,
        active,
        masks,
    )
