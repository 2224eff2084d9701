"""Fire events from a burned-area product: connected components split on burn-date jumps.

Two rules (``reference/banet.md``, "Details confirmed from the reference code"):

* ``"reference"`` (default; the BA-Net reference post-processing, ``split_fires`` of
  fire_split 0.1.9 with interval_days 2, interval_pixels 2, min_size_pixels 25): the
  burned mask is dilated with a ``link_distance x link_distance`` box (2 x 2), connected
  components of the dilated mask are labelled with 4-connectivity and restricted to the
  burned pixels; components under ``min_pixels`` are dropped; a component is cut wherever
  two consecutive distinct burn dates in it differ by more than ``max_date_jump`` days,
  each part is labelled again the same way (spatially, dates no longer matter), and parts
  under ``min_pixels`` are dropped. Burned pixels are those with confidence >= 0.5 when a
  confidence map is passed to :func:`find_events`.
* ``"linked"`` (firesmoke's earlier rule, kept as an option): burned pixels within
  Chebyshev distance ``link_distance`` are linked unless their dates differ by more than
  ``max_date_jump`` days; connected groups under ``min_pixels`` are dropped. It splits
  on local date jumps (two fires that touch are separated even if a third fire's dates
  bridge the gap in the component's date list) and links diagonal neighbours at (2, 2).

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

from firesmoke.errors import InputError
from firesmoke.paths import atomic_write_text

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_RULES",
    "find_events",
    "label_events",
    "pixel_areas_ha",
    "split_fires",
    "write_events_geojson",
]

log = logging.getLogger(__name__)

#: Event rules of :func:`label_events`; the first is the default.
EVENT_RULES = ("reference", "linked")

#: Burned pixels of a confidence map for the reference event rule (banet.md).
MIN_CONFIDENCE = 0.5

EVENT_COLUMNS = ["event_id", "first_date", "last_date", "n_pixels", "area_ha",
                 "centroid_lon", "centroid_lat"]


def label_events(
    burned: np.ndarray,
    burn_date: np.ndarray,
    link_distance: int = 2,
    max_date_jump: float = 2.0,
    min_pixels: int = 25,
    rule: str = "reference",
) -> np.ndarray:
    """Label fire events on a 2-D burned map.

    Parameters
    ----------
    burned
        Boolean ``(H, W)`` map (pixels with a NaN date are not burned).
    burn_date
        ``(H, W)`` burn dates in days (day of year or days since an epoch).
    link_distance
        ``"reference"``: side of the dilation box (fire_split's interval_pixels, 2);
        ``"linked"``: pixels at Chebyshev distance <= this are neighbours.
    max_date_jump
        Largest date difference (days) that does not split an event (interval_days, 2).
    min_pixels
        Events with fewer pixels are dropped (label 0).
    rule
        ``"reference"`` (default) or ``"linked"``; see the module docstring.

    Returns
    -------
    numpy.ndarray
        int32 labels ``1..n`` (0 = no event), numbered by first appearance in row-major
        order.
    """
    if rule not in EVENT_RULES:
        raise InputError(f"unknown event rule {rule!r}; choose from {EVENT_RULES}")
    if rule == "reference":
        return split_fires(burned, burn_date, interval_days=max_date_jump,
                           interval_pixels=link_distance, min_size_pixels=min_pixels)
    return _linked_labels(burned, burn_date, link_distance, max_date_jump, min_pixels)


def _spatial_labels(mask: np.ndarray, box: int) -> tuple[np.ndarray, int]:
    """fire_split's spatial labelling: dilate with a ``box x box`` box, label the dilated
    mask with 4-connectivity (scipy's default), keep the labels on ``mask`` only."""
    from scipy import ndimage

    dilated = ndimage.convolve(mask.astype(np.uint8), np.ones((box, box), np.uint8),
                               mode="constant", cval=0) > 0 if box > 1 else mask
    lab, n = ndimage.label(dilated)
    return np.where(mask, lab, 0), n


def _drop_small(lab: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(lab.ravel())
    small = sizes < min_size
    small[0] = True
    return np.where(small[lab], 0, lab)


def _first_appearance(lab: np.ndarray) -> np.ndarray:
    """Renumber labels 1..n by first appearance in row-major order (0 stays 0)."""
    flat = lab.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids > 0
    ids, first = ids[keep], first[keep]
    lut = np.zeros(int(flat.max()) + 1 if flat.size else 1, np.int32)
    lut[ids[np.argsort(first)]] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[lab].astype(np.int32)


def split_fires(
    burned: np.ndarray,
    burn_date: np.ndarray,
    interval_days: float = 2.0,
    interval_pixels: int = 2,
    min_size_pixels: int = 25,
) -> np.ndarray:
    """Fire events by the reference rule (fire_split 0.1.9 ``split_fires``, banet.md).

    Components of the burned mask dilated with an ``interval_pixels`` box
    (4-connectivity, restricted to burned pixels) under ``min_size_pixels`` are dropped;
    each component's distinct burn dates are cut where consecutive ones differ by more
    than ``interval_days``; each part is labelled again spatially and parts under
    ``min_size_pixels`` are dropped. Returns int32 labels numbered by first appearance
    (row-major), 0 = no event.
    """
    d = np.asarray(burn_date, np.float64)
    b = np.asarray(burned, bool) & np.isfinite(d)
    if b.ndim != 2 or d.shape != b.shape:
        raise InputError(f"burned and burn_date must be the same 2-D shape, got {b.shape}, {d.shape}")
    if int(interval_pixels) < 1:
        raise InputError("interval_pixels must be >= 1")
    comp, _ = _spatial_labels(b, int(interval_pixels))
    comp = _drop_small(comp, min_size_pixels)
    m = comp > 0
    if not m.any():
        return np.zeros(b.shape, np.int32)
    # group index of every burned pixel inside its component: the number of date gaps
    # (> interval_days between consecutive distinct dates) below its date
    cid = comp[m].astype(np.float64)
    pairs, inv = np.unique(np.stack([cid, d[m]], axis=1), axis=0, return_inverse=True)
    same = pairs[1:, 0] == pairs[:-1, 0]  # pairs are sorted by (component, date)
    csum = np.cumsum(np.r_[False, same & (np.diff(pairs[:, 1]) > interval_days)])
    start = np.flatnonzero(np.r_[True, ~same])
    base = np.repeat(csum[start], np.diff(np.r_[start, len(pairs)]))
    group = (csum - base)[np.asarray(inv).ravel()]
    groups = np.zeros(b.shape, np.int64)
    groups[m] = group
    out = np.zeros(b.shape, np.int64)
    nxt = 0
    for g in range(int(group.max()) + 1):
        # parts of different components never touch after dilation: label them together
        lab, n = _spatial_labels(m & (groups == g), int(interval_pixels))
        out = np.where(lab > 0, lab + nxt, out)
        nxt += n
    return _first_appearance(_drop_small(out, min_size_pixels))


def _linked_labels(
    burned: np.ndarray,
    burn_date: np.ndarray,
    link_distance: int = 2,
    max_date_jump: float = 2.0,
    min_pixels: int = 25,
) -> np.ndarray:
    """firesmoke's earlier rule: links between near pixels with close dates.

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
    out = np.zeros((H, W), np.int64)
    out[b] = comp + 1
    return _first_appearance(_drop_small(out, min_pixels))


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
    min_confidence: float = MIN_CONFIDENCE,
    **rules: Any,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Label events and summarise them.

    Parameters
    ----------
    burned, burn_date
        ``(H, W)`` maps; dates as numbers of days. ``burned`` is a boolean mask, or a
        confidence map (floating point): then the burned pixels are those with
        confidence >= ``min_confidence`` (0.5, the reference's rule).
    transform, crs
        Georeferencing of the maps.
    equal_area_crs
        CRS used for areas.
    date_origin
        If given, dates are converted to ``datetime64[D]`` as ``date_origin + days``
        (e.g. Jan 1st minus one day for day-of-year dates).
    min_confidence
        Threshold applied when ``burned`` is a confidence map (NaN is not burned).
    **rules
        Passed to :func:`label_events` (``rule="reference"`` by default, or
        ``"linked"``; ``link_distance``, ``max_date_jump``, ``min_pixels``).

    Returns
    -------
    labels, table
        The label image and one row per event (:data:`EVENT_COLUMNS`).

    Examples
    --------
    >>> import numpy as np
    >>> from firesmoke import Region, find_events
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> burned = np.zeros((16, 16), bool)
    >>> burned[1:7, 1:7] = burned[9:15, 9:15] = True     # two fires of 36 pixels
    >>> dates = np.where(burned, 200.0, np.nan)           # day of year
    >>> dates[9:15, 9:15] = 210.0
    >>> labels, table = find_events(burned, dates, region.transform, min_pixels=10)
    >>> table[["event_id", "n_pixels"]].values.tolist()
    [[1, 36], [2, 36]]
    """
    mask = np.asarray(burned)
    if np.issubdtype(mask.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            mask = mask >= min_confidence
    labels = label_events(mask, burn_date, **rules)
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
