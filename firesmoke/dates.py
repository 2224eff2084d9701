"""One date coercion for the whole package: anything date-like -> a UTC day.

Accepted: ``datetime.date``/``datetime.datetime``, ``numpy.datetime64``,
``pandas.Timestamp`` and strings pandas parses (ISO 8601 ``YYYY-MM-DD``...). Naive values
are UTC; tz-aware values are converted to UTC first. Anything else, or NaT, is an
:class:`~firesmoke.errors.InputError` naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from firesmoke.errors import InputError

__all__ = ["NS_PER_DAY", "as_date", "utc_day", "utc_day_number"]

#: Nanoseconds per day.
NS_PER_DAY = 86_400 * 1_000_000_000


def utc_day(value: Any, what: str = "date") -> pd.Timestamp:
    """The UTC midnight (naive :class:`pandas.Timestamp`) of the day ``value`` falls on.

    Raises
    ------
    InputError
        ``value`` is not date-like or is NaT (``field`` is ``what``).
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot read {what} {value!r} as a date ({exc})", field=what) from exc
    if ts is pd.NaT:
        raise InputError(f"{what} is not a date ({value!r})", field=what)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def as_date(value: Any, what: str = "date") -> dt.date:
    """``value`` as a :class:`datetime.date` (its UTC day); see :func:`utc_day`."""
    return utc_day(value, what).date()


def utc_day_number(value: Any, what: str = "date") -> int:
    """Days since 1970-01-01 of the UTC day of ``value``; see :func:`utc_day`."""
    return int(utc_day(value, what).value // NS_PER_DAY)
