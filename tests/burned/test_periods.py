"""Product time windows (and the reference bugs we do not reproduce)."""

from __future__ import annotations

import datetime as dt

import pytest

from firesmoke.burned.periods import monthly_windows, nrt_window, range_windows


def test_monthly_windows_cover_whole_months():
    ws = monthly_windows("2019-01-10", "2019-12-31")
    assert [w.label for w in ws] == [f"2019-{m:02d}" for m in range(1, 13)]
    for w in ws:
        assert w.start.day == 15 and w.length == 64
        assert w.keep_start.day == 1
        assert w.end >= w.keep_end  # the whole month is inside the window
        days = w.days
        assert len(days) == 64
        kept = days[w.keep_slice]
        assert kept[0].date() == w.keep_start and kept[-1].date() == w.keep_end


def test_march_is_complete():
    (w,) = monthly_windows("2020-03-01", "2020-03-31")
    assert w.start == dt.date(2020, 2, 15)
    assert w.keep_end == dt.date(2020, 3, 31)
    assert len(w.days[w.keep_slice]) == 31  # the reference kept only 19 days of March


def test_range_windows_partition_the_period():
    ws = range_windows("2020-06-01", "2020-09-10", keep=32)
    kept = [d for w in ws for d in w.days[w.keep_slice]]
    assert kept[0].date() == dt.date(2020, 6, 1) and kept[-1].date() == dt.date(2020, 9, 10)
    assert len(kept) == len(set(kept)) == (dt.date(2020, 9, 10) - dt.date(2020, 6, 1)).days + 1
    for w in ws:
        assert (w.keep_start - w.start).days == 16


def test_nrt_window():
    w = nrt_window("2021-08-20")
    assert w.end == dt.date(2021, 8, 20) and w.start == dt.date(2021, 6, 18)
    assert len(w.days[w.keep_slice]) == 64


def test_bad_ranges():
    with pytest.raises(ValueError):
        monthly_windows("2020-02-01", "2020-01-01")
    with pytest.raises(ValueError):
        range_windows("2020-01-01", "2020-02-01", keep=0)
