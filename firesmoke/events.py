"""Fire events from a burned-area product: connected components split on burn-date jumps.

Rules (the BA-Net reference post-processing as defaults):

* burned pixels are linked to their neighbours within ``link_distance`` pixels (2: the
  reference's 2 x 2 dilation bridges one-pixel gaps);
* a link is cut where the burn dates differ by more than ``max_date_jump`` days (2), so
  one patch of fires that burned weeks apart becomes several events;
* events smaller than ``min_pixels`` (25) are dropped.

Each event gets its first and last burn date, pixel count and area in hectares computed
in an equal-area CRS (default EPSG:6933, EASE-Grid 2.0 global; choose another with
``equal_area_crs``). Events are written as a GeoJSON FeatureCollection of polygons.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine

from firesmoke.paths import atomic_write_text

__all__ = ["EVENT_COLUMNS", "find_events", "label_events", "pixel_areas_ha", "write_events_geojson"]

log = logging.getLogger(__name__)

EVENT_COLUMNS = ["event_id", "first_date", "last_date", "n_pixels", "area_ha",
                 "centroid_lon", "centroid_lat"]


def label_events(
    burned: np.ndarray,
    burn_date: np.ndarray,
    link_distance: int = 2,
    max_date_jump: float = 2.0,
    min_pixels: int = 25,
) -> np.ndarray:
    """Label fire events on a 2-D burned map.

    Parameters
    ----------
    burned
        Boolean ``(H, W)`` map.
    burn_date
        ``(H, W)`` burn dates in days (day of year or days since an epoch).
    link_distance
        Pixels at Chebyshev distance <= this are neighbours.
    max_date_jump
        Neighbours whose dates differ by more than this are not linked.
    min_pixels
        Events with fewer pixels are dropped (label 0).

    Returns
    -------
    numpy.ndarray
        int32 labels ``1..n`` (0 = no event), numbered by first appearance in row-major
        order.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    b = np.asarray(burned, bool) & np.isfinite(np.asarray(burn_date, np.float64))
    d = np.asarray(burn_date, np.float64)
    H, W = b.shape
    idx = -np.ones((H, W), np.int64)
    n = int(b.sum())
    if n == 0:
        return np.zeros((H, W), np.int32)
    idx[b] = np.arange(n)
    rows, cols = [], []
    k = link_distance
    offsets = [(dy, dx) for dy in range(0, k + 1) for dx in range(-k, k + 1) if (dy, dx) > (0, 0)]
    for dy, dx in offsets:
        a = (slice(0, H - dy), slice(max(-dx, 0), W - max(dx, 0)))
        c = (slice(dy, H), slice(max(dx, 0), W + min(dx, 0)))
        ok = b[a] & b[c] & (np.abs(d[a] - d[c]) <= max_date_jump)
        rows.append(idx[a][ok])
        cols.append(idx[c][ok])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, np.int8), (r, c)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    keep = sizes[comp] >= min_pixels
    # renumber kept components by first appearance (row-major)
    order = {}
    labels_flat = np.zeros(n, np.int32)
    kept_comp = comp[keep]
    _, first = np.unique(kept_comp, return_index=True)
    ranked = kept_comp[np.sort(first)]
    for i, cid in enumerate(ranked, start=1):
        order[int(cid)] = i
    lut = np.zeros(comp.max() + 1, np.int32)
    for cid, lab in order.items():
        lut[cid] = lab
    labels_flat[keep] = lut[kept_comp]
    out = np.zeros((H, W), np.int32)
    out[b] = labels_flat
    return out


def pixel_areas_ha(
    transform: Affine, shape: tuple[int, int], crs: Any = "EPSG:4326", equal_area_crs: Any = "EPSG:6933"
) -> np.ndarray:
    """Area of every pixel in hectares, from its corners projected to an equal-area CRS."""
    from pyproj import Transformer

    H, W = shape
    cols, rows = np.meshgrid(np.arange(W + 1), np.arange(H + 1))
    xs = transform.c + cols * transform.a + rows * transform.b
    ys = transform.f + cols * transform.d + rows * transform.e
    tr = Transformer.from_crs(crs, equal_area_crs, always_xy=True)
    X, Y = tr.transform(xs, ys)
    # shoelace on the quad (r, c) (r, c+1) (r+1, c+1) (r+1, c)
    x0, y0 = X[:-1, :-1], Y[:-1, :-1]
    x1, y1 = X[:-1, 1:], Y[:-1, 1:]
    x2, y2 = X[1:, 1:], Y[1:, 1:]
    x3, y3 = X[1:, :-1], Y[1:, :-1]
    area = 0.5 * np.abs((x0 * y1 - x1 * y0) + (x1 * y2 - x2 * y1) + (x2 * y3 - x3 * y2) + (x3 * y0 - x0 * y3))
    return area / 1e4


def find_events(
    burned: np.ndarray,
    burn_date: np.ndarray,
    transform: Affine,
    crs: Any = "EPSG:4326",
    equal_area_crs: Any = "EPSG:6933",
    date_origin: np.datetime64 | None = None,
    **rules: Any,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Label events and summarise them.

    Parameters
    ----------
    burned, burn_date
        ``(H, W)`` maps; dates as numbers of days.
    transform, crs
        Georeferencing of the maps.
    equal_area_crs
        CRS used for areas.
    date_origin
        If given, dates are converted to ``datetime64[D]`` as ``date_origin + days``
        (e.g. Jan 1st minus one day for day-of-year dates).
    **rules
        Passed to :func:`label_events`.

    Returns
    -------
    labels, table
        The label image and one row per event (:data:`EVENT_COLUMNS`).
    """
    labels = label_events(burned, burn_date, **rules)
    n = int(labels.max())
    if n == 0:
        return labels, pd.DataFrame(columns=EVENT_COLUMNS)
    areas = pixel_areas_ha(transform, labels.shape, crs, equal_area_crs)
    lab = labels.ravel()
    m = lab > 0
    lab_m = lab[m]
    dates = np.asarray(burn_date, np.float64).ravel()[m]
    first = np.full(n + 1, np.inf)
    last = np.full(n + 1, -np.inf)
    np.minimum.at(first, lab_m, dates)
    np.maximum.at(last, lab_m, dates)
    count = np.bincount(lab_m, minlength=n + 1)
    area = np.bincount(lab_m, weights=areas.ravel()[m], minlength=n + 1)
    rr, cc = np.divmod(np.flatnonzero(m), labels.shape[1])
    xs = transform.c + (cc + 0.5) * transform.a
    ys = transform.f + (rr + 0.5) * transform.e
    cx = np.bincount(lab_m, weights=xs, minlength=n + 1) / np.maximum(count, 1)
    cy = np.bincount(lab_m, weights=ys, minlength=n + 1) / np.maximum(count, 1)
    table = pd.DataFrame({
        "event_id": np.arange(1, n + 1),
        "first_date": first[1:],
        "last_date": last[1:],
        "n_pixels": count[1:],
        "area_ha": area[1:],
        "centroid_lon": cx[1:],
        "centroid_lat": cy[1:],
    })
    if date_origin is not None:
        origin = np.datetime64(date_origin, "D")
        table["first_date"] = origin + table["first_date"].round().astype("int64").values.astype("timedelta64[D]")
        table["last_date"] = origin + table["last_date"].round().astype("int64").values.astype("timedelta64[D]")
    return labels, table


def write_events_geojson(
    labels: np.ndarray,
    table: pd.DataFrame,
    transform: Affine,
    path: str | os.PathLike[str],
    crs: Any = "EPSG:4326",
) -> Path:
    """Polygonise event labels and write a GeoJSON FeatureCollection (coordinates in ``crs``)."""
    from rasterio.features import shapes

    props = table.set_index("event_id")
    features = []
    for geom, value in shapes(labels.astype(np.int32), mask=labels > 0, transform=transform):
        eid = int(value)
        row = props.loc[eid]
        features.append({
            "type": "Feature",
            "geometry": geom,
            "properties": {"event_id": eid, **{k: (str(v) if not isinstance(v, (int, float, np.integer, np.floating)) else float(v))
                                               for k, v in row.items()}},
        })
    fc = {"type": "FeatureCollection", "crs_name": str(crs), "features": features}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # exclusive temporary file renamed into place: never written through a link
    return atomic_write_text(p, json.dumps(fc))
