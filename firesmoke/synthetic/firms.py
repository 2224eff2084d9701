"""Synthetic FIRMS active-fire detections in the VIIRS S-NPP 375 m NRT CSV layout.

Columns, order and formats are those of the real ``SUOMI_VIIRS_C2_*_24h_*.csv`` files
(VNP14IMGTDL, version ``2.0NRT``)::

    latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,
    version,bright_ti5,frp,daynight

Numbers are printed as FIRMS does: rounded (5 decimals for positions, 2 for the rest)
with trailing zeros dropped (``310``, ``0.8``, ``1.58``); ``acq_time`` is a zero-padded
``HHMM`` string; ``satellite`` is ``N``; ``confidence`` is ``low``/``nominal``/``high``.

Detections come from every S-NPP pass of the day (afternoon ascending and ~01:30 local
descending passes, see :mod:`firesmoke.synthetic.orbit`) over pixels that are burning
at the time of the pass (fire arrival <= t < arrival + residence in the burn truth),
inside the swath. Each burning 0.01 deg pixel holds several 375 m I-band pixels:
the number of detections is Poisson, thinned by a detection probability below one
(lower under clouds, from the same cloud field as the VIIRS layers, and at the swath
edge). Positions are jittered inside the pixel at the 375 m scale; FRP (MW) is
log-normal with a Pareto tail, larger by day and on intense fires; I4/I5 brightness
temperatures, scan/track pixel sizes (from the sensor zenith) and confidence follow.

One CSV per UTC day, ``SUOMI_VIIRS_C2_<region>_24h_<YYYYMMDD>.csv`` holding the
detections whose ``acq_date`` is that day (a header-only file when there are none).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from firesmoke.synthetic.fire import BurnTruth, make_rng
from firesmoke.synthetic.orbit import overpass_schedule, pass_geometry, region_latlon
from firesmoke.synthetic.surface import cloud_cover

__all__ = [
    "FIRMS_COLUMNS",
    "firms_file_name",
    "format_firms_csv",
    "simulate_detections",
    "write_firms_day",
]

log = logging.getLogger(__name__)

#: Columns of the VIIRS 375 m NRT CSV, in order.
FIRMS_COLUMNS: tuple[str, ...] = (
    "latitude",
    "longitude",
    "bright_ti4",
    "scan",
    "track",
    "acq_date",
    "acq_time",
    "satellite",
    "confidence",
    "version",
    "bright_ti5",
    "frp",
    "daynight",
)
TAG_FIRMS = 301
#: I4 brightness temperature saturates at this value (K).
TI4_SATURATION = 367.0
#: Mean number of 375 m detections per burning grid pixel (before thinning).
_DETECTIONS_PER_PIXEL = 1.6


def firms_file_name(region_name: str, date: np.datetime64) -> str:
    """``SUOMI_VIIRS_C2_<region>_24h_<YYYYMMDD>.csv`` (region name sanitised)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", region_name) or "region"
    return f"SUOMI_VIIRS_C2_{safe}_24h_{str(np.datetime64(date, 'D')).replace('-', '')}.csv"


def simulate_detections(truth: BurnTruth, day_index: int) -> pd.DataFrame:
    """Active-fire detections of all S-NPP passes of one UTC day.

    Returns
    -------
    pandas.DataFrame
        One row per detection with the :data:`FIRMS_COLUMNS` as typed values (floats for
        numbers, ``acq_date`` ``YYYY-MM-DD`` and ``acq_time`` ``HHMM`` strings) plus
        ``row``/``col`` (the grid pixel of the fire) and ``time_ms`` (UTC ms of the
        observation), sorted by time. Detections whose time falls on another UTC day are
        kept (their ``acq_date`` says so); :func:`write_firms_day` files them by date.
    """
    region = truth.region
    date = truth.date(day_index)
    lat_grid, lon_grid = region_latlon(region)
    start_ms = int(truth.start.astype("datetime64[ms]").astype(np.int64))
    px = region.pixel_size
    frames = []
    passes = [(p, False) for p in overpass_schedule(region, date)]
    passes += [(p, True) for p in overpass_schedule(region, date, night=True)]
    passes.sort(key=lambda item: int(np.datetime64(item[0].time, "ms").astype(np.int64)))
    arrival = truth.arrival
    ever = np.isfinite(arrival)
    for k, (ov, is_night) in enumerate(passes):
        rng = make_rng(truth.seed, TAG_FIRMS, day_index, k)
        t_pass = (int(np.datetime64(ov.time, "ms").astype(np.int64)) - start_ms) / 86_400_000.0
        # pixels that may be burning while the pass sees the region (pixel times differ
        # from the pass time by the along-track travel, at most ~10 minutes)
        margin = 0.01
        with np.errstate(invalid="ignore"):
            cand = (
                ever & (arrival <= t_pass + margin) & (arrival + truth.residence >= t_pass - margin)
            )
        rows, cols = np.nonzero(cand)
        if rows.size == 0:
            continue
        geo = pass_geometry(region, ov, rows, cols)
        t_days = (geo["time_ms"] - start_ms) / 86_400_000.0
        since = t_days - arrival[rows, cols]
        active = geo["valid"] & (since >= 0) & (since < truth.residence[rows, cols])
        rows, cols = rows[active], cols[active]
        if rows.size == 0:
            continue
        geo = {key: val[active] for key, val in geo.items()}
        cloud = cloud_cover(truth, day_index, ov.time, night=is_night)[rows, cols]
        vza = geo["sensor_zenith"]
        inten = truth.intensity[rows, cols].astype(np.float64)
        p_detect = np.clip(0.92 * (1.0 - 0.85 * cloud) * (1.0 - 0.25 * (vza / 70.0) ** 2), 0.0, 1.0)
        lam = _DETECTIONS_PER_PIXEL * (0.5 + inten) * p_detect
        n = rng.poisson(lam)
        if n.sum() == 0:
            continue
        idx = np.repeat(np.arange(rows.size), n)
        r, c = rows[idx], cols[idx]
        m = idx.size
        # position: uniform in the grid pixel, plus a 375 m-scale jitter
        jitter_deg = 0.375 / 111.32 / 3.0
        lat = lat_grid[r, c] + (rng.random(m) - 0.5) * px + rng.normal(0.0, jitter_deg, m)
        lon = lon_grid[r, c] + (rng.random(m) - 0.5) * px + rng.normal(0.0, jitter_deg, m)
        day = ov.daynight == "D"
        base = (4.5 if day else 1.4) * (0.4 + inten[idx])
        frp = base * np.exp(rng.normal(0.0, 0.9, m))
        tail = rng.random(m) < 0.04
        frp = np.where(tail, frp * (1.0 + 3.0 * rng.pareto(1.3, m)), frp)
        frp = np.clip(frp, 0.1, 5000.0)
        lf = np.log(frp)
        if day:
            ti4 = 330.0 + 6.0 * lf + rng.normal(0.0, 6.0, m)
            ti5 = 294.0 + 2.5 * lf + rng.normal(0.0, 4.0, m)
            ti4, ti5 = np.clip(ti4, 318.0, TI4_SATURATION), np.clip(ti5, 275.0, 330.0)
        else:
            ti4 = 298.0 + 7.0 * lf + rng.normal(0.0, 6.0, m)
            ti5 = 283.0 + 2.0 * lf + rng.normal(0.0, 3.5, m)
            ti4, ti5 = np.clip(ti4, 290.0, TI4_SATURATION), np.clip(ti5, 250.0, 305.0)
        conf = np.full(m, "nominal", dtype=object)
        conf[(rng.random(m) < 0.02) | (day & (ti4 < 328.0))] = "low"
        conf[ti4 >= TI4_SATURATION] = "high"
        x = vza[idx] / 70.0
        scan = 0.32 + 0.48 * x**2.5
        track = 0.36 + 0.42 * x**2.2
        t_ms = geo["time_ms"][idx]
        t = t_ms.astype("datetime64[ms]")
        dates = t.astype("datetime64[D]")
        minutes = ((t - dates.astype("datetime64[ms]")).astype(np.int64) // 60000).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "latitude": lat,
                    "longitude": lon,
                    "bright_ti4": ti4,
                    "scan": scan,
                    "track": track,
                    "acq_date": dates.astype(str),
                    "acq_time": [f"{v // 60:02d}{v % 60:02d}" for v in minutes],
                    "satellite": "N",
                    "confidence": conf,
                    "version": "2.0NRT",
                    "bright_ti5": ti5,
                    "frp": frp,
                    "daynight": ov.daynight,
                    "row": r,
                    "col": c,
                    "time_ms": t_ms,
                }
            )
        )
    if not frames:
        return _empty()
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("time_ms", kind="stable").reset_index(drop=True)


def _empty() -> pd.DataFrame:
    cols = {
        c: pd.Series(
            dtype=object
            if c in ("acq_date", "acq_time", "satellite", "confidence", "version", "daynight")
            else float
        )
        for c in FIRMS_COLUMNS
    }
    cols.update(
        {
            "row": pd.Series(dtype=np.int64),
            "col": pd.Series(dtype=np.int64),
            "time_ms": pd.Series(dtype=np.int64),
        }
    )
    return pd.DataFrame(cols)


def _num(values: np.ndarray, decimals: int) -> list[str]:
    out = []
    for v in np.round(np.asarray(values, dtype=np.float64), decimals):
        s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
        out.append("0" if s in ("-0", "") else s)
    return out


def format_firms_csv(df: pd.DataFrame) -> str:
    """The CSV text (header + rows, ``\\n`` line ends) of detections in FIRMS format."""
    lines = [",".join(FIRMS_COLUMNS)]
    if len(df):
        cols = {
            "latitude": _num(df["latitude"].to_numpy(), 5),
            "longitude": _num(df["longitude"].to_numpy(), 5),
            "bright_ti4": _num(df["bright_ti4"].to_numpy(), 2),
            "scan": _num(df["scan"].to_numpy(), 2),
            "track": _num(df["track"].to_numpy(), 2),
            "bright_ti5": _num(df["bright_ti5"].to_numpy(), 2),
            "frp": _num(df["frp"].to_numpy(), 2),
        }
        for c in ("acq_date", "acq_time", "satellite", "confidence", "version", "daynight"):
            cols[c] = [str(v) for v in df[c].to_numpy()]
        lines.extend(",".join(row) for row in zip(*(cols[c] for c in FIRMS_COLUMNS), strict=True))
    return "\n".join(lines) + "\n"


def write_firms_day(
    out_dir: str | os.PathLike[str], region_name: str, date: np.datetime64, df: pd.DataFrame
) -> Path:
    """Write the detections of one UTC date (rows with that ``acq_date``) atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    day = str(np.datetime64(date, "D"))
    rows = df[df["acq_date"] == day] if len(df) else df
    path = out / firms_file_name(region_name, date)
    tmp = out / f".{path.name}.part"
    tmp.write_text(format_firms_csv(rows), encoding="utf-8", newline="\n")
    os.replace(tmp, path)
    return path
