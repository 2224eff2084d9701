"""Time windows of the burned-area products (monthly, time range, near-real-time).

The monthly rule of BA-Net: a 64-day window starting on the 15th of the previous month,
of which the days of the target month are kept. The reference software has two bugs
that firesmoke does NOT reproduce (reference/banet.md):

* it maps the argmax day to the day of year of the *full window* instead of the kept
  month, so its dates come out about 16 days early: firesmoke reports the true day of
  year of the day with the highest probability;
* its March window covers only 19 days of the month: firesmoke's windows always cover
  the whole target month (15th of the previous month + 64 days reaches at least the
  16th of the following month).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.dates import as_date
from firesmoke.errors import InputError

__all__ = ["PERIOD_COORDS", "Window", "monthly_windows", "nrt_window", "period_coords",
           "range_windows"]

WINDOW_DAYS = 64


@dataclass(frozen=True)
class Window:
    """A model input window and the days of it that go into the product.

    Attributes
    ----------
    label
        e.g. ``"2020-08"`` for a month.
    start
        First day of the model input window (UTC date).
    keep_start, keep_end
        First and last day (inclusive) whose predictions are kept.
    length
        Number of days in the model input (64).
    """

    label: str
    start: dt.date
    keep_start: dt.date
    keep_end: dt.date
    length: int = WINDOW_DAYS

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.length - 1)

    @property
    def days(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq="D")

    @property
    def keep_slice(self) -> slice:
        """Indices of the kept days within the window."""
        a = (self.keep_start - self.start).days
        b = (self.keep_end - self.start).days + 1
        return slice(a, b)


def _as_date(value: object) -> dt.date:
    return as_date(value, "date")


def monthly_windows(start: object, end: object) -> list[Window]:
    """One window per calendar month overlapping ``[start, end]``."""
    s, e = _as_date(start), _as_date(end)
    if e < s:
        raise InputError(f"end {e} is before start {s}")
    out = []
    month = dt.date(s.year, s.month, 1)
    while month <= e:
        prev = (month - dt.timedelta(days=1)).replace(day=15)
        nxt = (month + dt.timedelta(days=32)).replace(day=1)
        last = nxt - dt.timedelta(days=1)
        w = Window(f"{month:%Y-%m}", prev, month, last)
        assert w.end >= last, "monthly window must cover the whole month"
        out.append(w)
        month = nxt
    return out


def range_windows(start: object, end: object, keep: int = 32) -> list[Window]:
    """Consecutive windows covering ``[start, end]``: each keeps ``keep`` central days.

    Every kept day has at least ``(64 - keep) / 2`` days of context on both sides.
    """
    s, e = _as_date(start), _as_date(end)
    if e < s:
        raise InputError(f"end {e} is before start {s}")
    if not 0 < keep <= WINDOW_DAYS:
        raise InputError(f"keep must be in 1..{WINDOW_DAYS}")
    margin = (WINDOW_DAYS - keep) // 2
    out = []
    k0 = s
    while k0 <= e:
        k1 = min(k0 + dt.timedelta(days=keep - 1), e)
        out.append(Window(f"{k0:%Y-%m-%d}", k0 - dt.timedelta(days=margin), k0, k1))
        k0 = k1 + dt.timedelta(days=1)
    return out


def nrt_window(run_date: object) -> Window:
    """Near-real-time: the 64 days ending on ``run_date``; all of them are kept."""
    r = _as_date(run_date)
    start = r - dt.timedelta(days=WINDOW_DAYS - 1)
    return Window(f"nrt-{r:%Y-%m-%d}", start, start, r)


PERIOD_COORDS = ("period", "period_label", "period_end")
"""The coordinates along the ``period`` dimension of every burned-area product."""


def period_coords(labels: Sequence[str], starts: Sequence[Any], ends: Sequence[Any]
                  ) -> dict[str, tuple[Any, ...]]:
    """The ``period`` coordinates of a product (the same on every path that writes one).

    ``period`` is the first day of each period (``datetime64[ns]``, so
    ``ds.sel(period="2020-08")`` selects by partial date), ``period_end`` its last day
    (inclusive) and ``period_label`` its label (variable-length strings: ``"2020-08"``,
    ``"2020-08-05..2020-08-25"``, ``"nrt-2020-08-31"``). Returns ``{name: (dims, values,
    attrs)}`` for :meth:`xarray.Dataset.assign_coords`.
    """
    if not len(labels) == len(starts) == len(ends):
        raise InputError("labels, starts and ends differ in length")
    days = [pd.Timestamp(d).normalize() for d in starts]
    last = [pd.Timestamp(d).normalize() for d in ends]
    return {
        "period": ("period", np.array(days, dtype="datetime64[ns]"),
                   {"long_name": "first day of the period"}),
        "period_label": ("period", np.array([str(x) for x in labels], dtype=object),
                         {"long_name": "period label"}),
        "period_end": ("period", np.array(last, dtype="datetime64[ns]"),
                       {"long_name": "last day of the period (inclusive)"}),
    }
