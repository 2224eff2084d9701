"""BA-Net 0.6.7 compatible prediction: the reference's numbers on the same cube.

``predict_burned(..., compat="banet-0.6.7")`` follows the reference prediction path as
``reference/banet.md`` ("Details confirmed from the reference code") describes it:

* **input quantisation**: each band x 100, NaN -> 65535, above 65535 -> 65534, cast to
  uint16 (truncation toward zero; negative values, which the reference does not allow,
  become 0 here); at prediction 65535 -> 0, / 100, float16, then float32 for the model;
* **days without any VIIRS granule** (no finite red, NIR or MIR anywhere in the cube on
  that day, or the day absent from the cube) are all zeros, FRP included;
* **tile plan** ``range(0, L - 1, 100)`` per axis with zero padding (one more row/column
  of tiles than firesmoke's plan when ``L mod 100`` is 2..28), 128 px tiles, mean blending
  accumulated in **float16** in plan order, the ensemble the **float16** mean of the
  members' sigmoids, the model in float32 (no autocast, no TF32);
* **product rules**: monthly (threshold 0.5), time range = the months strictly inside the
  span (first and last month skipped), their monthly windows' kept days concatenated,
  ``confidence = min(sum, 1)`` in float16, threshold 0.05, date = the first maximum over
  the concatenated days; NRT = the 64 days ending on the run date, threshold 0.1.

firesmoke's fixes stay on by default (``burn_date`` is the true day of year of the day
with the highest probability); the reference's date (the day of year of the argmax
*index* counted from the first day of the 64-day window, about 16 days early in monthly
mode) is given beside it as ``burn_date_reference``. The reference's short March window
is not reproduced (its rule is not documented precisely enough); both modes use the full
month. See ``docs/compatibility.md`` for the measured effect of each difference.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.errors import InputError
from firesmoke.windows import Window, monthly_windows, nrt_window

__all__ = [
    "COMPAT_MODES",
    "check_compat",
    "compat_model",
    "compat_threshold",
    "compat_windows",
    "concat_range_product",
    "quantise",
    "reference_day_of_year_lut",
    "viirs_days",
    "zero_days_by_window",
]

COMPAT_MODES = ("banet-0.6.7",)
_THRESHOLDS = {"monthly": 0.5, "range": 0.05, "nrt": 0.1}


def check_compat(compat: str | None) -> str | None:
    """``compat`` if it is ``None`` or one of :data:`COMPAT_MODES`, else InputError."""
    if compat is not None and compat not in COMPAT_MODES:
        raise InputError(f"unknown compat mode {compat!r}; choose from {COMPAT_MODES}",
                         field="compat")
    return compat


def compat_threshold(mode: str) -> float:
    """The reference's threshold of a product mode (monthly 0.5, range 0.05, NRT 0.1)."""
    return _THRESHOLDS[mode]


def compat_windows(mode: str, start: Any, end: Any | None) -> list[Window]:
    """The reference's windows: monthly and NRT as firesmoke's; a time range is the
    monthly windows of the months strictly inside ``[start, end]``."""
    if mode == "nrt":
        return [nrt_window(start)]
    end = start if end is None else end
    if mode == "monthly":
        return monthly_windows(start, end)
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    first = dt.date(s.year, s.month, 1)
    last = dt.date(e.year, e.month, 1)
    inside = [w for w in monthly_windows(first, last)
              if first < w.keep_start and w.keep_start < last]
    if not inside:
        raise InputError(f"the time range {s.date()}..{e.date()} has no month strictly inside "
                         "it (the reference skips the first and the last month)", field="end")
    return inside


def reference_day_of_year_lut(window: Window) -> tuple[int, ...]:
    """The reference's date of each kept day: the day of year of the day at the same index
    counted from the start of the whole 64-day window (its dating bug)."""
    n = window.keep_slice.stop - window.keep_slice.start
    return tuple(int(d.dayofyear) for d in window.days[:n])


def compat_model(model: Any) -> Any:
    """A :class:`~firesmoke.inference.TileModel` as the reference runs it (float32, no
    autocast, float16 ensemble mean); other callables unchanged."""
    from firesmoke.inference import TileModel

    if isinstance(model, TileModel):
        return dataclasses.replace(model, autocast=None, ensemble="float16")
    return model


def quantise(block: np.ndarray, zero_days: np.ndarray | None = None) -> np.ndarray:
    """``(4, T, h, w)`` (or one band, ``(T, h, w)``) float32 model input as the reference
    stores and reads it.

    ``zero_days``: boolean ``(T,)``, days made all zeros (no VIIRS granule).
    """
    x = np.asarray(block, np.float32) * np.float32(100)
    q = np.where(np.isnan(x), np.float32(65535), np.minimum(x, np.float32(65534)))
    q = np.maximum(q, 0).astype(np.uint16)  # truncation toward zero
    q[q == 65535] = 0
    out = (q / 100.0).astype(np.float16).astype(np.float32)
    if zero_days is not None:
        out[..., np.asarray(zero_days, bool), :, :] = 0
    return out


def viirs_days(cube: Any, days: pd.DatetimeIndex) -> np.ndarray:
    """Boolean ``(len(days),)``: the day has a finite red, NIR or MIR value somewhere in the
    cube (the reference had a daily file, i.e. at least one VIIRS granule, that day).
    Computed now (one read of the three bands over those days)."""
    have = pd.DatetimeIndex(cube["time"].values)
    inside = days[days.isin(have)]
    out = np.zeros(len(days), bool)
    if len(inside):
        sub = cube[["red", "nir", "mir"]].sel(time=inside)
        any_day = (sub["red"].notnull() | sub["nir"].notnull() | sub["mir"].notnull()).any(
            ("y", "x"))
        vals = np.asarray(any_day.values, bool)
        out[np.flatnonzero(days.isin(have))] = vals
    return out


def zero_days_by_window(cube_path: Any, windows: list[Window]) -> dict[str, tuple[bool, ...]]:
    """Per window label, whether each of its days lacks VIIRS data (:func:`viirs_days`),
    reading the cube at ``cube_path`` once (empty without windows)."""
    if not windows:
        return {}
    from firesmoke.cube import open_cube

    cube = open_cube(cube_path)
    every = pd.DatetimeIndex(sorted({d for w in windows for d in w.days}))
    has = dict(zip(every, viirs_days(cube, every), strict=True))
    return {w.label: tuple(not has[d] for d in w.days) for w in windows}


def concat_range_product(*stacks: np.ndarray, doy: tuple[int, ...], threshold: float
                         ) -> np.ndarray:
    """``(3, h, w)`` time-range product of the reference from the blended kept-day stacks
    ``(1, T_k, h, w)`` of consecutive months: days concatenated, float16
    ``min(sum, 1)``, the first maximum's day (``doy`` of the concatenated days; the same
    value twice, reference and true date, in a time range)."""
    p = np.concatenate([np.asarray(s)[0] for s in stacks], axis=0).astype(np.float16)
    conf = np.minimum(p.sum(axis=0), np.float16(1))  # float16, day after day
    idx = np.argmax(p, axis=0)
    burned = conf >= np.float16(threshold)
    date = np.where(burned, np.asarray(doy, np.float32)[idx], 0).astype(np.float32)
    return np.stack([conf.astype(np.float32), date, date])
