"""Product definitions: modes, thresholds, window rules and per-pixel reductions (one place).

Burned area (BA-Net) comes in three modes (:data:`MODES`); each has its windows
(:func:`product_windows`), its default threshold (:func:`default_threshold`) and a rule
text for provenance (:data:`WINDOW_RULES`). :func:`predict_burned
<firesmoke.burned.predict_burned>`, the campaign planner and workers and the CLI all read
them from here.

Reductions turn the blended per-day probabilities of a block ``(1, T, h, w)`` (a torch
tensor, on the device) into the product, pixel by pixel; the engine
(:mod:`firesmoke.engine`) runs them on the device so only the reduced block comes back:

* :class:`BurnedWindow`: ``confidence = min(sum_t p, 1)`` and ``burn_date`` = day of
  year of the kept day with the highest ``p`` (0 where ``confidence < threshold``);
* :class:`BurnedRangeStats`: the per-window statistics of the time-range product
  (``sum_t p``, ``max_t p``, the day of year of the maximum), combined over the windows
  by :func:`combine_range` (numpy, cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.windows import Window, monthly_windows, nrt_window, range_windows

__all__ = [
    "BANET_BANDS",
    "MODES",
    "WINDOW_RULES",
    "BurnedRangeStats",
    "BurnedWindow",
    "check_mode",
    "combine_range",
    "day_of_year_lut",
    "default_threshold",
    "product_windows",
]

BANET_BANDS = ("red", "nir", "mir", "frp")
"""The cube variables BA-Net reads, in channel order."""

MODES = ("monthly", "range", "nrt")
"""Burned-area product modes."""

_DEFAULT_THRESHOLDS = {"monthly": 0.5, "range": 0.05, "nrt": 0.5}

WINDOW_RULES = {
    "monthly": "64 days from the 15th of the previous month; days of the target month kept",
    "range": "consecutive 64-day windows keeping their central 32 days",
    "nrt": "the 64 days ending on the run date",
}
"""Provenance text of each mode's window rule."""


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else :class:`~firesmoke.errors.InputError`."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose from {MODES}", field="mode")
    return mode


def default_threshold(mode: str) -> float:
    """Minimum confidence for a burn date: 0.05 for a time range (as the reference), else 0.5."""
    return _DEFAULT_THRESHOLDS[check_mode(mode)]


def product_windows(mode: str, start: Any, end: Any | None = None) -> list[Window]:
    """The model windows of a product: ``monthly`` (months overlapping ``[start, end]``),
    ``range`` (consecutive windows over the days of ``[start, end]``, one map) or ``nrt``
    (``end``, or ``start`` when ``end`` is None, is the run date)."""
    check_mode(mode)
    end = start if end is None else end
    if mode == "monthly":
        return monthly_windows(start, end)
    if mode == "nrt":
        return [nrt_window(end)]
    return range_windows(start, end)


def day_of_year_lut(window: Window) -> tuple[int, ...]:
    """Day of year of each kept day of ``window``."""
    return tuple(int(d.dayofyear) for d in window.days[window.keep_slice])


def _sum_days(p: Any) -> Any:
    """Sum over axis 0, day after day (a fixed order: the same bits for any block shape)."""
    s = p[0].clone()
    for d in range(1, p.shape[0]):
        s += p[d]
    return s


@dataclass(frozen=True)
class BurnedWindow:
    """``(1, T, h, w)`` kept-day probabilities -> ``(2, h, w)``: confidence, burn day of year.

    Attributes
    ----------
    doy
        Day of year of each of the ``T`` kept days.
    threshold
        Minimum confidence for a burn date (below it the date is 0).
    dtype
        ``"float32"``, or ``"float16"`` to sum and compare as BA-Net 0.6.7 does (its
        blended probabilities are float16; the sum is accumulated day after day in float16
        and compared with the threshold rounded to float16).
    doy_reference
        If given, a third output: the date the reference reports for each kept day.
    """

    doy: tuple[int, ...]
    threshold: float
    dtype: str = "float32"
    doy_reference: tuple[int, ...] | None = None

    @property
    def out_lead(self) -> tuple[int, ...]:
        return (2,) if self.doy_reference is None else (3,)

    def __call__(self, p: Any) -> Any:
        import torch

        p = p[0]
        thr = self.threshold
        if self.dtype == "float16":
            p, thr = p.half(), float(np.float16(thr))
        conf = torch.clamp(_sum_days(p), max=1.0)
        idx = torch.max(p, dim=0).indices  # the first maximum
        burned = conf >= thr
        outs = [conf.float()]
        for doy in (self.doy, self.doy_reference):
            if doy is None:
                continue
            lut = torch.tensor(doy, dtype=torch.float32, device=p.device)
            date = lut[idx]
            outs.append(torch.where(burned, date, torch.zeros_like(date)))
        return torch.stack(outs)


@dataclass(frozen=True)
class BurnedRangeStats:
    """``(1, T, h, w)`` -> ``(3, h, w)``: sum of p, max of p, day of year of the max."""

    doy: tuple[int, ...]

    @property
    def out_lead(self) -> tuple[int, ...]:
        return (3,)

    def __call__(self, p: Any) -> Any:
        import torch

        p = p[0]
        lut = torch.tensor(self.doy, dtype=torch.float32, device=p.device)
        mx, first = torch.max(p, dim=0)  # the first maximum
        return torch.stack([_sum_days(p), mx, lut[first]])


def combine_range(stats: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """``(2, h, w)`` confidence and burn date of a time range from per-window
    :class:`BurnedRangeStats` outputs (in window order; the earliest maximum wins ties)."""
    total = best_p = best_doy = None
    for s in stats:
        if total is None:
            total, best_p, best_doy = s[0].copy(), s[1].copy(), s[2].copy()
            continue
        total = total + s[0]
        best_doy = np.where(s[1] > best_p, s[2], best_doy)
        best_p = np.maximum(s[1], best_p)
    if total is None:
        raise ValueError("no window to combine")
    conf = np.minimum(total, 1.0).astype(np.float32)
    date = np.where(conf >= threshold, best_doy, 0).astype(np.float32)
    return np.stack([conf, date])
