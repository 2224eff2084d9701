"""Active-fire detections (FIRMS tables) -> daily grids on a region: the FRP channel.

:func:`rasterize_hotspots` turns a table of detections into a ``(time, y, x)`` float32
DataArray on a :class:`~firesmoke.grid.Region`. The default (``stat="log1p_frp"``, all
detections, UTC days) is the BA-Net FRP channel: per UTC day (FIRMS ``acq_date``) and grid
cell, ``log1p`` of the sum of the FRP of the detections in the cell, 0 where there is none.
Cells are assigned exactly as ``rasterio.features.rasterize`` assigns points (see
:mod:`firesmoke.kernels.hotspots`), in one pass over the table.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.dates import utc_day
from firesmoke.errors import InputError, MissingColumnError
from firesmoke.grid import Region
from firesmoke.kernels import hotspots as _kernel

__all__ = ["STAT_ATTRS", "day_index", "rasterize_hotspots"]

log = logging.getLogger(__name__)

#: CF attributes and variable name of each statistic.
STAT_ATTRS: dict[str, dict[str, str]] = {
    "log1p_frp": {"name": "frp", "units": "log1p(MW)",
                  "long_name": "log1p of the daily sum of fire radiative power per cell"},
    "frp_sum": {"name": "frp_sum", "units": "MW",
                "long_name": "daily sum of fire radiative power per cell"},
    "frp_max": {"name": "frp_max", "units": "MW",
                "long_name": "daily maximum fire radiative power per cell"},
    "count": {"name": "fire_count", "units": "1",
              "long_name": "daily number of active-fire detections per cell"},
}

_REQUIRED = ("latitude", "longitude", "time", "frp")
_CONF_RANK = {"low": 0, "l": 0, "nominal": 1, "n": 1, "high": 2, "h": 2}
_DAY_RULES = ("utc", "local_solar")
_NS_PER_DAY = 86_400 * 1_000_000_000


def _time_ns(col: pd.Series) -> np.ndarray:
    """Column of datetimes (naive = UTC, or tz-aware) as int64 ns since the epoch, UTC."""
    try:
        t = pd.to_datetime(col)
    except (ValueError, TypeError) as exc:
        raise InputError(f"column 'time' does not hold dates ({exc})", field="time") from exc
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = t.astype("datetime64[ns]").to_numpy().view(np.int64).copy()
    ns[pd.isna(t).to_numpy()] = np.iinfo(np.int64).min  # NaT -> dropped (day < 0)
    return ns


def day_index(
    time_ns: np.ndarray, lon: np.ndarray, start: pd.Timestamp, day: str = "utc"
) -> np.ndarray:
    """Day index (int64) of each detection relative to ``start`` (a UTC midnight).

    ``day="utc"``: the UTC calendar day of ``time`` (FIRMS ``acq_date``).
    ``day="local_solar"``: the day of ``time + longitude / 15`` hours (local mean solar
    time), which keeps an afternoon overpass and the following night's detections of the
    western hemisphere in one day.
    """
    if day not in _DAY_RULES:
        raise InputError(f"unknown day rule {day!r}; choose from {_DAY_RULES}", field="day")
    t = np.asarray(time_ns, dtype=np.int64)
    nat = t == np.iinfo(np.int64).min
    rel = t - np.int64(start.value)
    if day == "local_solar":
        offset = np.rint(np.asarray(lon, dtype=np.float64) * 240e9)  # lon / 15 h in ns
        offset = np.where(np.isfinite(offset), offset, 0).astype(np.int64)
        rel = rel + offset
    out = np.floor_divide(rel, _NS_PER_DAY)
    out[nat] = -1
    return out


def _confidence_mask(table: pd.DataFrame, min_confidence: Any) -> np.ndarray:
    cols = table.columns
    numeric_conf = "confidence" in cols and pd.api.types.is_numeric_dtype(table["confidence"])
    if isinstance(min_confidence, str):
        key = min_confidence.strip().lower()
        if key not in _CONF_RANK:
            raise InputError(
                f"unknown confidence class {min_confidence!r}; use low, nominal or high "
                "(or a number 0-100 for percent confidence)", field="min_confidence")
        thr = _CONF_RANK[key]
        if "confidence" in cols and not numeric_conf:
            labels = table["confidence"].astype("string").str.strip().str.lower()
            ranks = labels.map(_CONF_RANK)
            bad = ranks.isna() & labels.notna()
            if bad.any():
                raise InputError(
                    f"unknown confidence value(s) {sorted(set(labels[bad]))[:5]}",
                    field="confidence")
            return (ranks.fillna(-1).to_numpy() >= thr)
        pct_col = "confidence_pct" if "confidence_pct" in cols else ("confidence" if numeric_conf else None)
        if pct_col is None:
            raise MissingColumnError(
                "min_confidence needs a 'confidence' (low/nominal/high) or 'confidence_pct' column",
                field="confidence")
        pct = pd.to_numeric(table[pct_col], errors="coerce").to_numpy(dtype=np.float64)
        # FIRMS MODIS classes: low < 30 %, nominal 30-79 %, high >= 80 %
        ranks = np.where(pct >= 80, 2, np.where(pct >= 30, 1, 0))
        return np.isfinite(pct) & (ranks >= thr)
    try:
        thr = float(min_confidence)
    except (TypeError, ValueError) as exc:
        raise InputError(f"min_confidence must be a class name or a number, got {min_confidence!r}",
                         field="min_confidence") from exc
    pct_col = "confidence_pct" if "confidence_pct" in cols else ("confidence" if numeric_conf else None)
    if pct_col is None:
        raise MissingColumnError(
            f"a numeric min_confidence ({thr}) needs a 'confidence_pct' column (percent); "
            "use a class name (low/nominal/high) for categorical confidence",
            field="confidence_pct")
    pct = pd.to_numeric(table[pct_col], errors="coerce").to_numpy(dtype=np.float64)
    return np.isfinite(pct) & (pct >= thr)


def _daynight_mask(table: pd.DataFrame, daynight: str) -> np.ndarray:
    key = str(daynight).strip().upper()
    key = {"DAY": "D", "NIGHT": "N"}.get(key, key)
    if key not in ("D", "N"):
        raise InputError(f"daynight must be 'D' or 'N' (or None for both), got {daynight!r}",
                         field="daynight")
    if "daynight" not in table.columns:
        raise MissingColumnError("the day/night filter needs a 'daynight' column (D/N)",
                                 field="daynight")
    return (table["daynight"].astype("string").str.strip().str.upper() == key).fillna(False).to_numpy()


def rasterize_hotspots(
    table: pd.DataFrame,
    region: Region | str,
    start: Any,
    end: Any,
    stat: str = "log1p_frp",
    daynight: str | None = None,
    min_confidence: str | float | None = None,
    day: str = "utc",
) -> xr.DataArray:
    """Daily grids of active-fire detections on a region.

    Parameters
    ----------
    table
        Detections with at least columns ``latitude``, ``longitude``, ``time`` (UTC
        datetime64, or tz-aware) and ``frp`` (MW); optional ``daynight`` (D/N),
        ``confidence`` (low/nominal/high, or l/n/h) and/or ``confidence_pct`` (0-100).
    region
        The grid (a :class:`~firesmoke.grid.Region`, a shipped name or a JSON path).
    start, end
        First and last day (inclusive); times are floored to UTC midnight.
    stat
        ``"log1p_frp"`` (BA-Net channel, ``log1p(MW)``), ``"frp_sum"`` (MW), ``"frp_max"``
        (MW) or ``"count"`` (detections).
    daynight
        ``"D"`` or ``"N"`` to keep only day or night detections; None keeps all (reference).
    min_confidence
        Keep detections at or above a class (``"low"``, ``"nominal"``, ``"high"``) or a
        percent (number, needs ``confidence_pct``); None keeps all (reference).
    day
        ``"utc"`` (default, FIRMS ``acq_date``) or ``"local_solar"`` (UTC time plus
        longitude / 15 hours).

    Returns
    -------
    xarray.DataArray
        float32 ``(time, y, x)``; ``time`` daily datetime64[ns] from ``start`` to ``end``;
        coordinates and CRS of the region; 0 where there is no detection.

    Raises
    ------
    InputError
        Unknown ``stat``/``day``/filter value, ``end`` before ``start``.
    MissingColumnError
        A required column (or one a filter needs) is absent.
    """
    if stat not in STAT_ATTRS:
        raise InputError(f"unknown stat {stat!r}; choose from {tuple(STAT_ATTRS)}", field="stat")
    if day not in _DAY_RULES:
        raise InputError(f"unknown day rule {day!r}; choose from {_DAY_RULES}", field="day")
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of detections, got {type(table).__name__}")
    for col in _REQUIRED:
        if col not in table.columns:
            raise MissingColumnError(
                f"detection table lacks column {col!r} (has {list(table.columns)})", field=col)
    reg = Region.resolve(region)
    t0 = utc_day(start, "start")
    t1 = utc_day(end, "end")
    if t1 < t0:
        raise InputError(f"end ({t1.date()}) is before start ({t0.date()})", field="end")
    n_days = int((t1 - t0) / pd.Timedelta(days=1)) + 1

    keep = np.ones(len(table), dtype=bool)
    if daynight is not None:
        keep &= _daynight_mask(table, daynight)
    if min_confidence is not None:
        keep &= _confidence_mask(table, min_confidence)
    sub = table.loc[keep] if not keep.all() else table

    lat = pd.to_numeric(sub["latitude"], errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(sub["longitude"], errors="coerce").to_numpy(dtype=np.float64)
    if stat == "count":
        value = np.ones(len(sub), dtype=np.float64)
    else:
        value = pd.to_numeric(sub["frp"], errors="coerce").to_numpy(dtype=np.float64)
    days = day_index(_time_ns(sub["time"]), lon, t0, day)

    grids = _kernel.rasterize_points(
        lat, lon, days, value, reg.transform, reg.shape, n_days, stats=(stat,)
    )
    n_dropped = grids.n_dropped
    n_used = len(sub) - n_dropped
    log.info(
        "rasterize_hotspots(%s, %s..%s, %s): %d of %d detections used (%d filtered out, "
        "%d outside the grid/period or with missing values)",
        reg.name, t0.date(), t1.date(), stat, n_used, len(table), len(table) - len(sub), n_dropped,
    )
    times = pd.date_range(t0, periods=n_days, freq="D").to_numpy().astype("datetime64[ns]")
    coords = reg.coords_dataset(time=times)
    meta = STAT_ATTRS[stat]
    attrs = {
        "units": meta["units"],
        "long_name": meta["long_name"],
        "day_definition": "UTC day (FIRMS acq_date)" if day == "utc"
        else "local mean solar day (UTC time + longitude / 15 h)",
        "daynight_filter": "all" if daynight is None else str(daynight),
        "min_confidence": "none" if min_confidence is None else str(min_confidence),
        "n_detections_used": int(n_used),
        "n_detections_dropped": int(n_dropped),
    }
    return xr.DataArray(
        grids[stat], dims=("time", "y", "x"), coords=coords.coords, name=meta["name"],
        attrs=attrs,
    )
