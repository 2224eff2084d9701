"""Synthetic Sentinel-2 smoke data in the real formats: chips, labels, COG scenes, STAC.

The physics (surface, Gaussian plumes, clouds, sensor noise) is in
:mod:`firesmoke.synthetic.s2_physics`; this module places emitters, renders chips and
scenes with it and writes them in the real formats.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from pyproj import Transformer

from firesmoke.errors import InputError
from firesmoke.io.labels import label_file_name, polygons_to_mask
from firesmoke.io.sentinel2 import BAND_INFO, BANDS, format_chip_name
from firesmoke.synthetic.s2_physics import (
    PIXEL,
    VISIBLE_OPACITY,
    ChipLayers,
    cloud_opacity,
    compose,
    random_plume,
    render_chip,
    sensor_noise,
    surface_reflectance,
    visible_smoke,
)

__all__ = [
    "PIXEL",
    "VISIBLE_OPACITY",
    "ChipLayers",
    "ChipSet",
    "SceneSet",
    "Site",
    "generate_chips",
    "generate_scenes",
    "utm_epsg",
]

logger = logging.getLogger(__name__)


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
    return render_chip(spec.seed, spec.shape, spec.site_xy, spec.label)


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
    surface = surface_reflectance(np.random.default_rng(surf_seed), shape, rc, scale=1.5)
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
                op, _ = random_plume(r_plume, shape, (c, r), long=True)
                plume = 1 - (1 - plume) * (1 - op)
        cloud = (
            cloud_opacity(r_cloud, shape, scale=3.0)
            if r_cloud.random() < 0.5
            else np.zeros(shape, np.float32)
        )
        gain = (1 + 0.02 * r_var.standard_normal(len(BANDS))).astype(np.float32)[:, None, None]
        image = compose(surface * gain, plume, cloud, sensor_noise(r_noise, shape))
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
        masks.append(visible_smoke(plume))
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
