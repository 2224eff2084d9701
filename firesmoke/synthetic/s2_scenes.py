"""Synthetic Sentinel-2 L2A scenes with smoke plumes: COGs, STAC items and catalog.

The rendering physics is in :mod:`firesmoke.synthetic.s2_physics`; chips (the smoke
dataset layout) are written by :mod:`firesmoke.synthetic.sentinel2`. Everything is
deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine

from firesmoke.errors import InputError
from firesmoke.io.sentinel2.chips import BAND_INFO, BANDS
from firesmoke.synthetic.s2_physics import (
    PIXEL,
    cloud_opacity,
    compose,
    random_plume,
    sensor_noise,
    surface_reflectance,
    visible_smoke,
)
from firesmoke.synthetic.s2_sites import to_lonlat, to_utm, utm_epsg

__all__ = ["SceneSet", "generate_scenes"]

logger = logging.getLogger(__name__)


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
    lon, lat = to_lonlat(epsg).transform(xs, ys)
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
    e0, n0 = to_utm(epsg).transform(lon0, lat0)
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
    lons, lats = to_lonlat(epsg).transform(xs, ys)
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
