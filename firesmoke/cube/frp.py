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
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.cube import ops
from firesmoke.dates import utc_day
from firesmoke.errors import InputError, MissingColumnError
from firesmoke.grid import Region
from firesmoke.kernels import hotspots as _kernel

__all__ = ["STAT_ATTRS", "day_index", "rasterize_hotspots"]

log = logging.getLogger(__name__)

#: CF attributes and variable name of each statistic. ``log1p_frp`` has no UDUNITS unit
#: (log(1 + x MW) is dimensionless only in name): no ``units``, the transform and the
#: unit of its argument in ``firesmoke_transform`` / ``frp_units`` instead.
STAT_ATTRS: dict[str, dict[str, str]] = {
    "log1p_frp": {"name": "frp",
                  "long_name": "log(1 + daily sum of fire radiative power per cell in MW)",
                  "comment": "natural logarithm of 1 + the daily FRP sum in MW (BA-Net's FRP "
                             "channel); 0 where no detection",
                  "firesmoke_transform": "log1p", "frp_units": "MW"},
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


def _block_grid(lat: np.ndarray, lon: np.ndarray, days: np.ndarray, value: np.ndarray,
                transform: tuple[float, ...], shape: tuple[int, int], n_days: int, stat: str,
                window: tuple[int, int, int, int]) -> np.ndarray:
    """One chunk: the window of the grid over ``n_days`` days from the points given."""
    return ops.rasterize_stat(lat, lon, days, value, transform, shape, n_days, stat, window=window)


def _lazy_grid(lat: np.ndarray, lon: np.ndarray, days: np.ndarray, value: np.ndarray,
               reg: Region, n_days: int, stat: str,
               chunks: Mapping[str, int]) -> tuple[da.Array, int]:
    """Dask array ``(n_days, H, W)``: one task per chunk, given only its own detections.

    Cells are found once here (GDAL's rule, :func:`firesmoke.kernels.hotspots.point_cells`)
    to split the detections by chunk; each task assigns cells again on the whole grid and
    keeps its window, so every chunk equals the same window of the eager result (the
    detections of a day keep their table order, the order the FRP is summed in).
    """
    height, width = reg.shape
    ct, cy, cx = int(chunks["time"]), int(chunks["y"]), int(chunks["x"])
    transform = tuple(float(v) for v in tuple(reg.transform)[:6])
    rows, cols = _kernel.point_cells(lat, lon, transform, reg.shape)
    ok = (rows >= 0) & (days >= 0) & (days < n_days) & np.isfinite(value)
    n_dropped = int(len(lat) - ok.sum())
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(days[idx], kind="stable")]  # by day, table order within a day
    d_sorted = days[idx]
    t_blocks = [(t, min(ct, n_days - t)) for t in range(0, n_days, ct)]
    y_blocks = [(r, min(cy, height - r)) for r in range(0, height, cy)]
    x_blocks = [(c, min(cx, width - c)) for c in range(0, width, cx)]
    # block of each kept detection: y block and x block numbers
    yb = rows[idx] // cy
    xb = cols[idx] // cx
    out = []
    for t0, nt in t_blocks:
        s0, s1 = np.searchsorted(d_sorted, [t0, t0 + nt])
        sel_t = idx[s0:s1]
        key = yb[s0:s1] * len(x_blocks) + xb[s0:s1]
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(len(y_blocks) * len(x_blocks) + 1))
        plane = []
        for i, (r0, h) in enumerate(y_blocks):
            row = []
            for j, (c0, w) in enumerate(x_blocks):
                k = i * len(x_blocks) + j
                pick = sel_t[order[bounds[k]:bounds[k + 1]]]
                if len(pick) == 0:
                    row.append(da.zeros((nt, h, w), dtype=np.float32, chunks=(nt, h, w)))
                    continue
                blk = dask.delayed(_block_grid, pure=True)(
                    lat[pick], lon[pick], days[pick] - t0, value[pick], transform, reg.shape,
                    nt, stat, (r0, c0, h, w))
                row.append(da.from_delayed(blk, shape=(nt, h, w), dtype=np.float32))
            plane.append(row)
        out.append(da.block([plane]) if plane else da.zeros((nt, height, width), np.float32))
    if not out:
        return da.zeros((0, height, width), dtype=np.float32, chunks=(ct, cy, cx)), n_dropped
    return da.concatenate(out, axis=0), n_dropped


def rasterize_hotspots(
    table: pd.DataFrame,
    region: Region | str,
    start: Any,
    end: Any,
    stat: str = "log1p_frp",
    daynight: str | None = None,
    min_confidence: str | float | None = None,
    day: str = "utc",
    chunks: Mapping[str, int] | None = None,
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
        ``"log1p_frp"`` (BA-Net channel, log(1 + MW), no ``units``), ``"frp_sum"`` (MW), ``"frp_max"``
        (MW) or ``"count"`` (detections).
    daynight
        ``"D"`` or ``"N"`` to keep only day or night detections; None keeps all (reference).
    min_confidence
        Keep detections at or above a class (``"low"``, ``"nominal"``, ``"high"``) or a
        percent (number, needs ``confidence_pct``); None keeps all (reference).
    day
        ``"utc"`` (default, FIRMS ``acq_date``) or ``"local_solar"`` (UTC time plus
        longitude / 15 hours).
    chunks
        ``{"time": ..., "y": ..., "x": ...}``: return a lazy dask-backed array with these
        chunks, one task per chunk over the detections that fall in it (memory follows
        the chunk size, not the region size); values equal the eager result's.

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

    if chunks is not None:
        data, n_dropped = _lazy_grid(lat, lon, days, value, reg, n_days, stat, chunks)
    else:
        grids = _kernel.rasterize_points(
            lat, lon, days, value, reg.transform, reg.shape, n_days, stats=(stat,)
        )
        data, n_dropped = grids[stat], grids.n_dropped
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
        **{k: v for k, v in meta.items() if k != "name"},
        "day_definition": "UTC day (FIRMS acq_date)" if day == "utc"
        else "local mean solar day (UTC time + longitude / 15 h)",
        "daynight_filter": "all" if daynight is None else str(daynight),
        "min_confidence": "none" if min_confidence is None else str(min_confidence),
        "n_detections_used": int(n_used),
        "n_detections_dropped": int(n_dropped),
    }
    return xr.DataArray(
        data, dims=("time", "y", "x"), coords=coords.coords, name=meta["name"],
        attrs=attrs,
    )
