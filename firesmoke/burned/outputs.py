"""The export step of burned-area products: COGs, a quicklook PNG and fire events per period.

One function for every caller (``firesmoke predict burned --geotiff/--events``, campaign
exports, the demo), so a period exported from anywhere gives the same files:

* ``<base>_confidence.tif`` and ``<base>_burn_date.tif``: Cloud-Optimised GeoTIFFs with
  the nodata conventions of :mod:`firesmoke.store.geotiff`;
* ``<base>_quicklook.png``: confidence and burn date side by side (plus any extra panels);
* ``<base>_events.geojson``: fire events (:func:`~firesmoke.burned.events.find_events`).

Every file is written atomically inside ``root`` (:mod:`firesmoke.paths`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.burned.events import find_events, write_events_geojson
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.paths import safe_join
from firesmoke.store.geotiff import export_burned_period
from firesmoke.store.quicklook import quicklook_png

__all__ = ["export_burned", "export_files", "export_period"]

log = logging.getLogger(__name__)

Panel = tuple[str, Any, Mapping[str, Any]]


def export_period(
    period: xr.Dataset,
    folder: str | os.PathLike[str],
    base: str,
    *,
    geotiff: bool = True,
    quicklook: bool = True,
    events: bool = False,
    root: str | os.PathLike[str] | None = None,
    title: str | None = None,
    extra_panels: Sequence[Panel] = (),
    equal_area_crs: Any = "EPSG:6933",
    min_pixels: int | None = None,
) -> list[Path]:
    """Export one period (a product with the ``period`` dimension selected away).

    Parameters
    ----------
    period
        ``confidence`` and ``burn_date`` on the product grid (``period_label`` and
        ``period`` coordinates as :func:`~firesmoke.burned.predict.predict_burned` gives
        them); loaded here.
    folder, base
        Files are ``<folder>/<base>_<what>``.
    geotiff, quicklook, events
        What to write.
    root
        Every file must stay inside it (default: ``folder``).
    title
        Title of the quicklook (default: ``"burned area <label>"``).
    extra_panels
        More ``(label, data, imshow kwargs)`` panels for the quicklook.
    equal_area_crs, min_pixels
        Event areas and the smallest event kept (:func:`~firesmoke.burned.events.find_events`).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order above.
    """
    missing = [v for v in ("confidence", "burn_date") if v not in period]
    if missing:
        raise InputError(f"a burned-area product needs {missing}", field="product")
    period = period.load()
    label = str(period["period_label"].values) if "period_label" in period.coords else base
    top = root if root is not None else folder
    conf, bd = period["confidence"], period["burn_date"]
    out: list[Path] = []
    if geotiff:
        out += export_burned_period(period, folder, base, root=top)
    if quicklook:
        panels: list[Panel] = [
            (f"confidence {label}", conf, {"cmap": "magma", "vmin": 0, "vmax": 1,
                                           "cbar_label": "confidence"}),
            (f"burn date {label}", bd.where(bd > 0), {"cmap": "plasma",
                                                       "cbar_label": "day of year"}),
            *extra_panels,
        ]
        out.append(quicklook_png(panels, safe_join(folder, f"{base}_quicklook.png"),
                                 title=title or f"burned area {label}", root=top))
    if events:
        region = Region.from_dataset(period)
        d = bd.values.astype(np.float64)
        origin = None
        if "period" in period.coords:
            origin = np.datetime64(f"{pd.Timestamp(period['period'].values).year - 1}-12-31")
        rules = {} if min_pixels is None else {"min_pixels": min_pixels}
        labels, table = find_events(d > 0, np.where(d > 0, d, np.nan), region.transform,
                                    equal_area_crs=equal_area_crs, date_origin=origin, **rules)
        out.append(write_events_geojson(labels, table, region.transform,
                                        safe_join(folder, f"{base}_events.geojson")))
        log.info("%s: %d events", label, len(table))
    return out


def export_files(
    labels: Sequence[str],
    folder: str | os.PathLike[str],
    base: str,
    *,
    geotiff: bool = True,
    quicklook: bool = True,
    events: bool = False,
) -> list[Path]:
    """The files :func:`export_burned` writes for periods ``labels``, in its order.

    Known before the product is computed (the labels are coordinates), so a caller can
    refuse to replace existing files before any work.
    """
    names = (("confidence.tif", "burn_date.tif") if geotiff else ()) + (
        ("quicklook.png",) if quicklook else ()) + (("events.geojson",) if events else ())
    return [safe_join(folder, f"{base}_{label}_{name}") for label in labels for name in names]


def export_burned(
    product: xr.Dataset,
    folder: str | os.PathLike[str],
    base: str,
    **kwargs: Any,
) -> list[Path]:
    """Export every period of a product: :func:`export_period` with ``<base>_<label>``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> from firesmoke import Region, export_burned
    >>> from firesmoke.burned.periods import period_coords
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> product = region.coords_dataset().expand_dims(period=1).assign_coords(
    ...     period_coords(["2020-08"], ["2020-08-01"], ["2020-08-31"]))
    >>> product["confidence"] = (("period", "y", "x"), np.full((1, 16, 16), 0.9, np.float32))
    >>> product["burn_date"] = (("period", "y", "x"), np.full((1, 16, 16), 227, np.int16))
    >>> files = export_burned(product, "exports", "tiny")
    >>> [f.name for f in files]
    ['tiny_2020-08_confidence.tif', 'tiny_2020-08_burn_date.tif', 'tiny_2020-08_quicklook.png']
    """
    out: list[Path] = []
    for i in range(product.sizes["period"]):
        p = product.isel(period=i)
        label = str(p["period_label"].values)
        out += export_period(p, folder, f"{base}_{label}", **kwargs)
    return out
