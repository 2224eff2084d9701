"""The smoke export step: chip tables as CSV, scene masks as COGs, plume tables as CSV."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from firesmoke.smoke.chips import classify_chips
from firesmoke.smoke.scenes import segment_scene
from firesmoke.smoke.sites import plume_timeseries, read_sites, sites_frame
from firesmoke.smoke.weights import DEFAULT_CLASSIFIER, DEFAULT_SEGMENTER
from firesmoke.store.geotiff import export_smoke_mask, safe_join, write_csv

__all__ = [
    "predict_smoke_chips",
    "predict_smoke_scene",
]

logger = logging.getLogger(__name__)

def predict_smoke_chips(
    inputs: Any,
    out_csv: str | os.PathLike[str],
    classifier: Any = DEFAULT_CLASSIFIER,
    segmenter: Any = DEFAULT_SEGMENTER,
    batch_size: int = 32,
    device: str | None = None,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """:func:`classify_chips` and write the table (without masks) to ``out_csv``."""
    df = classify_chips(inputs, classifier, segmenter, batch_size, device, threshold)
    p = Path(out_csv)
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, index=False)
    logger.info("wrote %d chip results to %s", len(df), p)
    return df


def predict_smoke_scene(
    items_or_paths: Any,
    out_dir: str | os.PathLike[str],
    segmenter: Any = DEFAULT_SEGMENTER,
    sites: Any = None,
    radius_m: float = 500.0,
    bbox: tuple[float, float, float, float] | None = None,
    threshold: float = 0.5,
    tile: int = 256,
    step: int = 224,
    batch_size: int = 4,
    device: str | None = None,
    chunksize: int = 1024,
) -> dict[str, Any]:
    """Segment scenes and write one mask GeoTIFF (COG) per time and, with sites, plumes.csv.

    ``sites`` may be a CSV path (``site_id, lon, lat``) or anything
    :func:`plume_timeseries` accepts. Returns ``{"masks": [paths], "plumes": path|None}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mask = segment_scene(items_or_paths, segmenter, bbox=bbox, tile=tile, step=step,
                         threshold=threshold, batch_size=batch_size, device=device,
                         chunksize=chunksize)
    mask = mask.compute()
    paths = []
    for t in range(mask.sizes["time"]):
        stamp = pd.Timestamp(mask["time"].values[t]).strftime("%Y%m%dT%H%M%S")
        layer = mask.isel(time=t, drop=True)
        paths.append(export_smoke_mask(layer, safe_join(out, f"smoke_mask_{stamp}.tif")))
    plumes = None
    if sites is not None:
        table = read_sites(sites) if isinstance(sites, str | os.PathLike) else sites
        ts = plume_timeseries(mask, table, radius_m=radius_m).merge(  # with lon/lat
            sites_frame(table)[["site_id", "lon", "lat"]], on="site_id", how="left")
        plumes = write_csv(ts, safe_join(out, "plumes.csv"))
    logger.info("wrote %d smoke masks to %s", len(paths), out)
    return {"masks": paths, "plumes": plumes}

