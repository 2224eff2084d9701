"""Synthetic Sentinel-2 smoke data in the real formats: chips, labels, COG scenes, STAC.

The physics (surface, Gaussian plumes, clouds, sensor noise) is in
:mod:`firesmoke.synthetic.s2_physics`, emitter sites and UTM helpers in
:mod:`firesmoke.synthetic.s2_sites`; this module places emitters, renders chips with it
and writes them in the real formats. Whole scenes (COGs + STAC items) are written by
:func:`firesmoke.synthetic.s2_scenes.generate_scenes`.

Chips follow the published dataset layout (reference/smoke.md): ``positive/`` and
``negative/`` 13-band uint16 GeoTIFFs named ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` in
a UTM CRS at 10 m, and ``labels/<image-stem>_features.json`` legacy Label Studio files.
The truth mask of a positive chip is *exactly* its label polygons rasterised all-touched
(:func:`firesmoke.io.sentinel2.labels.polygons_to_mask`), so it equals what the reader returns;
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
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from firesmoke.errors import InputError
from firesmoke.io.sentinel2.chips import BANDS, format_chip_name
from firesmoke.io.sentinel2.labels import label_file_name, polygons_to_mask
from firesmoke.synthetic.s2_physics import (
    PIXEL,
    VISIBLE_OPACITY,
    ChipLayers,
    render_chip,
)
from firesmoke.synthetic.s2_sites import Site, to_utm, utm_epsg

__all__ = [
    "PIXEL",
    "VISIBLE_OPACITY",
    "ChipLayers",
    "ChipSet",
    "Site",
    "generate_chips",
    "utm_epsg",
]

logger = logging.getLogger(__name__)


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
        east, north = to_utm(epsg).transform(site.lon, site.lat)
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
