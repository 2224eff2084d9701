"""The rules of the burned-area products, one object per behaviour, and their reductions.

A :class:`BurnedRules` value carries everything that decides a product's numbers: the
input periods of each mode, the thresholds, the day-of-year mapping, the tile plan rule,
the input quantisation, the blending precision and the per-pixel reductions. Two are
published:

* :data:`DEFAULT`: firesmoke's rules (the true day of year of the day with the highest
  probability, float64 blending, the tile plan anchored to the global grid);
* :data:`BANET_0_6_7`: the reference software's numbers on the same cube
  (``compat="banet-0.6.7"``), following ``reference/banet.md`` ("Details confirmed from
  the reference code"):

  - **input quantisation**: each band x 100, NaN -> 65535, above 65535 -> 65534, cast to
    uint16 (truncation toward zero; negative values, which the reference does not allow,
    become 0 here); at prediction 65535 -> 0, / 100, float16, then float32 for the model;
  - **days without any VIIRS granule** (no finite red, NIR or MIR anywhere in the cube on
    that day, or the day absent from the cube) are all zeros, FRP included;
  - **tile plan** ``range(0, L - 1, 100)`` per axis with zero padding, 128 px tiles, mean
    blending accumulated in **float16** in plan order, the ensemble the **float16** mean
    of the members' sigmoids, the model in float32 (no autocast, no TF32);
  - **product rules**: monthly (threshold 0.5), time range = the months strictly inside
    the span, their kept days concatenated, ``confidence = min(sum, 1)`` in float16,
    threshold 0.05, date = the first maximum over the concatenated days; NRT = the 64
    days ending on the run date, threshold 0.1;
  - its date (the day of year of the argmax *index* counted from the first day of the
    64-day window, about 16 days early in monthly mode) is given as
    ``burn_date_reference`` beside the true ``burn_date``.

  The reference's short March window is not reproduced (its rule is not documented
  precisely enough); both rules use the full month. ``docs/compatibility.md`` lists each
  difference with its measured effect.

:func:`~firesmoke.burned.predict.predict_burned` and the campaign workers take a rules
object (:func:`rules_for` turns ``compat=None`` / ``"banet-0.6.7"`` into one) and ask it;
neither branches on the behaviour itself.

Reductions turn the blended per-day probabilities of a block ``(1, T, h, w)`` (a torch
tensor, on the device) into the product, pixel by pixel; the engine
(:mod:`firesmoke.inference.engine`) runs them on the device so only the reduced block
comes back:

* :class:`BurnedWindow`: ``confidence = min(sum_t p, 1)`` and ``burn_date`` = day of
  year of the kept day with the highest ``p`` (0 where ``confidence < threshold``);
* :class:`BurnedRangeStats`: the per-window statistics of the time-range product
  (``sum_t p``, ``max_t p``, the day of year of the maximum), combined over the windows
  by :func:`combine_range` (numpy, cheap).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.burned.modes import COMPAT_MODES, MODES
from firesmoke.burned.periods import Window, monthly_windows, nrt_window, range_windows
from firesmoke.errors import InputError
from firesmoke.inference.engine import Identity
from firesmoke.inference.model import TileModel

__all__ = [
    "BANET_0_6_7",
    "BANET_BANDS",
    "COMPAT_MODES",
    "DEFAULT",
    "MODES",
    "NODATA",
    "OBSERVED_RULE",
    "WINDOW_RULES",
    "BurnedRangeStats",
    "BurnedRules",
    "BurnedWindow",
    "check_mode",
    "combine_range",
    "concat_range_product",
    "day_of_year_lut",
    "mask_unobserved",
    "months_inside",
    "observed_days",
    "quantise",
    "reference_day_of_year",
    "rules_for",
    "viirs_days",
]

BANET_BANDS = ("red", "nir", "mir", "frp")
"""The cube variables BA-Net reads, in channel order."""

NODATA: dict[str, float | int] = {"confidence": float("nan"), "burn_date": -1,
                                  "burn_date_reference": -1}
"""The nodata value (``_FillValue``, and the COGs' nodata) of each product variable that
has one: unobserved pixels (:data:`OBSERVED_RULE`). ``valid_days`` has none (0 is a count)."""

OBSERVED_RULE = ("a pixel is observed in a period when at least one kept day of the period "
                 "has a finite red, NIR or MIR reflectance there (valid_days > 0)")
"""When a pixel counts as observed; written in the products' ``observed_rule`` attribute."""


def observed_days(red: Any, nir: Any, mir: Any) -> Any:
    """``valid_days``: per pixel, the days ``(T, h, w) -> (h, w)`` int16 with a finite red,
    NIR or MIR reflectance (:data:`OBSERVED_RULE`). numpy or dask arrays alike; the one
    count that :func:`~firesmoke.burned.predict.predict_burned` and the campaign workers
    both use (give it the kept days of a window, before any quantisation)."""
    ok = np.isfinite(red) | np.isfinite(nir) | np.isfinite(mir)
    return ok.sum(axis=0, dtype=np.int16)


def mask_unobserved(out: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A product block ``(R, h, w)`` (``confidence`` then dates) with the unobserved pixels
    (``valid == 0``) set to the :data:`NODATA` values: NaN confidence, -1 dates."""
    out = np.array(out, dtype=np.float32, copy=True)
    off = np.asarray(valid) <= 0
    out[0][off] = np.nan
    out[1:, off] = -1
    return out


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
        raise InputError("no window to combine")
    conf = np.minimum(total, 1.0).astype(np.float32)
    date = np.where(conf >= threshold, best_doy, 0).astype(np.float32)
    return np.stack([conf, date])


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


def months_inside(start: Any, end: Any) -> list[Window]:
    """The monthly windows of the months strictly inside ``[start, end]`` (the reference's
    time range: its first and last month are skipped)."""
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    first = dt.date(s.year, s.month, 1)
    last = dt.date(e.year, e.month, 1)
    inside = [w for w in monthly_windows(first, last)
              if first < w.keep_start and w.keep_start < last]
    if not inside:
        raise InputError(f"the time range {s.date()}..{e.date()} has no month strictly inside "
                         "it (the reference skips the first and the last month)", field="end")
    return inside




def reference_day_of_year(window: Window) -> tuple[int, ...]:
    """The reference's date of each kept day: the day of year of the day at the same index
    counted from the start of the whole 64-day window (its dating bug)."""
    n = window.keep_slice.stop - window.keep_slice.start
    return tuple(int(d.dayofyear) for d in window.days[:n])


def _identity(block: np.ndarray, zero_days: np.ndarray | None = None) -> np.ndarray:
    return block


@dataclass(frozen=True)
class BurnedRules:
    """How a burned-area product is computed: one value per behaviour.

    Attributes
    ----------
    name
        ``"firesmoke"`` or the compatible software's name (``"banet-0.6.7"``); written in
        the products' ``compat`` attribute (empty for firesmoke's own rules).
    thresholds
        ``(mode, threshold)`` pairs: the default minimum confidence for a burn date.
    range_rule
        ``"windows"``: a time range is consecutive 64-day windows keeping their central
        32 days (combined statistics); ``"months-inside"``: the months strictly inside
        the span, their kept days concatenated (the reference).
    plan_rule
        Tile plan anchoring (:class:`~firesmoke.inference.tiling.TilePlan` ``rule``).
    acc_dtype
        Blending accumulator of the engine (``"float64"``, or ``"float16"`` in plan
        order as the reference).
    reduce_dtype
        Precision of the confidence sum (``"float32"`` or ``"float16"``).
    quantised
        Inputs as the reference stores them (:func:`quantise`), with the days without any
        VIIRS granule all zeros (:func:`viirs_days`).
    reference_dates
        Adds ``burn_date_reference``, the reference's dating, beside ``burn_date``.
    tiling
        ``(tile, step, blend)`` the rules require, or None for any.
    model_precision
        ``"as-given"``, or ``"reference"``: float32 without autocast and a float16
        ensemble mean (:meth:`model`).
    """

    name: str
    thresholds: tuple[tuple[str, float], ...]
    range_rule: str = "windows"
    plan_rule: str = "firesmoke"
    acc_dtype: str = "float64"
    reduce_dtype: str = "float32"
    quantised: bool = False
    reference_dates: bool = False
    tiling: tuple[int, int, str] | None = None
    model_precision: str = "as-given"

    @property
    def compat(self) -> str:
        """The ``compat`` attribute of products ("" for firesmoke's own rules)."""
        return "" if self is DEFAULT or self.name == "firesmoke" else self.name

    @property
    def outputs(self) -> tuple[str, ...]:
        """The product variables, in the order of the reduced block's leading axis."""
        return ("confidence", "burn_date", "burn_date_reference")[: 3 if self.reference_dates else 2]

    # -- periods and thresholds -------------------------------------------------------
    def threshold(self, mode: str, threshold: float | None = None) -> float:
        """``threshold``, or the rules' default for ``mode``; a bad value is an InputError."""
        check_mode(mode)
        if threshold is None:
            return dict(self.thresholds)[mode]
        thr = float(threshold)
        if not 0.0 <= thr <= 1.0:  # also refuses NaN
            raise InputError(f"threshold must be in [0, 1], got {threshold!r}", field="threshold")
        return thr

    def windows(self, mode: str, start: Any, end: Any | None = None) -> list[Window]:
        """The model windows of a product: ``monthly`` (months overlapping ``[start, end]``),
        ``range`` (the days of ``[start, end]``, one map; see ``range_rule``) or ``nrt``
        (``start`` is the run date)."""
        check_mode(mode)
        if mode == "nrt":
            return [nrt_window(start)]
        end = start if end is None else end
        if mode == "monthly":
            return monthly_windows(start, end)
        if self.range_rule == "months-inside":
            return months_inside(start, end)
        return range_windows(start, end)

    def window_rule(self, mode: str) -> str:
        """Provenance text of the window rule of ``mode``."""
        if mode == "range" and self.range_rule == "months-inside":
            return "the monthly windows of the months strictly inside the span, kept days concatenated"
        return WINDOW_RULES[check_mode(mode)]

    # -- tiling, model, inputs ---------------------------------------------------------
    def check_tiling(self, tile: int, step: int, blend: str) -> None:
        """InputError when the rules require another tiling."""
        if self.tiling is not None and (tile, step, blend) != self.tiling:
            t, s, b = self.tiling
            raise InputError(f"compat={self.name!r} uses the reference tiling ({t}, {s}, {b}), "
                             f"got tile={tile}, step={step}, blend={blend!r}", field="compat")

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of the engine: plan rule, accumulator, plan-order blending."""
        return {"plan_rule": self.plan_rule, "acc_dtype": self.acc_dtype,
                "plan_order": self.acc_dtype == "float16"}

    def model(self, model: Any) -> Any:
        """The model as the rules run it (a :class:`~firesmoke.inference.model.TileModel`
        in float32 without autocast and a float16 ensemble mean for the reference; other
        callables unchanged)."""
        if self.model_precision != "reference":
            return model
        if isinstance(model, TileModel):
            return dataclasses.replace(model, autocast=None, ensemble="float16")
        return model

    def prepare(self, block: np.ndarray, zero_days: np.ndarray | None = None) -> np.ndarray:
        """A window's model input (``(4, T, h, w)`` or one band) as the rules feed it."""
        return quantise(block, zero_days) if self.quantised else block

    def zero_days(self, cube: Any, windows: Sequence[Window]) -> dict[str, np.ndarray | None]:
        """Per window label, the days made all zeros (no VIIRS data; read from ``cube``
        once), or None for each window when the rules feed the inputs as they are."""
        if not self.quantised or not windows:
            return {w.label: None for w in windows}
        every = pd.DatetimeIndex(sorted({d for w in windows for d in w.days}))
        has = dict(zip(every, viirs_days(cube, every), strict=True))
        return {w.label: ~np.array([has[d] for d in w.days]) for w in windows}

    # -- reductions --------------------------------------------------------------------
    def skips_empty_windows(self, mode: str) -> bool:
        """A window with no data may be left out of the product (not in the reference's
        time range, where every month counts: an empty one is zeros)."""
        return not (mode == "range" and self.range_rule == "months-inside")

    def reducer(self, mode: str, window: Window, threshold: float) -> Any:
        """The device reduction of one window's blended kept-day probabilities."""
        lut = day_of_year_lut(window)
        if mode != "range":
            return BurnedWindow(lut, threshold, self.reduce_dtype,
                                reference_day_of_year(window) if self.reference_dates else None)
        if self.range_rule == "months-inside":
            return Identity((1, len(lut)))
        return BurnedRangeStats(lut)

    def combine(self, mode: str, windows: Sequence[Window], threshold: float,
                *stats: np.ndarray) -> np.ndarray:
        """``(len(outputs), h, w)`` product of a block from its windows' reduced outputs
        (in window order; the one output of a monthly or NRT window is returned as is)."""
        if mode != "range":
            (out,) = stats
            return np.asarray(out)
        if self.range_rule == "months-inside":
            doy = tuple(d for w in windows for d in day_of_year_lut(w))
            out = concat_range_product(*stats, doy=doy, threshold=threshold)
            return out if self.reference_dates else out[:2]
        out = combine_range(stats, threshold)
        if self.reference_dates:  # a time range's reference date is its true date
            out = np.concatenate([out, out[1:2]])
        return out

    # -- output attributes -------------------------------------------------------------
    @property
    def variables(self) -> tuple[str, ...]:
        """Every product variable: :attr:`outputs` and ``valid_days``."""
        return (*self.outputs, "valid_days")

    def variable_encoding(self) -> dict[str, dict[str, Any]]:
        """Storage dtype and nodata (``_FillValue``, :data:`NODATA`) of each product
        variable (:attr:`variables`); none on ``valid_days``."""
        out: dict[str, dict[str, Any]] = {}
        for v in self.variables:
            dtype = "float32" if v == "confidence" else "int16"
            out[v] = {"dtype": dtype, "_FillValue": NODATA.get(v)}
        return out

    def variable_attrs(self, threshold: float) -> dict[str, dict[str, Any]]:
        """CF attributes of each product variable (:attr:`variables`)."""
        date = {"long_name": "day of year of burning",
                "comment": "day of year 1-366 (no UDUNITS unit fits); 0: not burned; "
                           "-1: not observed in the period (nodata)",
                "flag_values": np.array([-1, 0], np.int16),
                "flag_meanings": "not_observed not_burned", "threshold": threshold}
        attrs = {
            "confidence": {"long_name": "burned-area confidence", "units": "1",
                           "description": "min(sum of daily burn probabilities over the "
                                          "period, 1); NaN: not observed in the period"},
            "valid_days": {"long_name": "days with a valid reflectance in the period",
                           "units": "1",
                           "description": "kept days of the period with a finite red, NIR "
                                          "or MIR reflectance at the pixel; 0: not observed "
                                          "(confidence NaN, burn_date -1)"},
            "burn_date": date,
            "burn_date_reference": {
                **date, "long_name": f"day of year of burning as {self.name} reports it",
                "description": "monthly: the day of year of the argmax index counted from "
                               "the window's first day (the reference's dating); range and "
                               "NRT: as burn_date"},
        }
        return {v: attrs[v] for v in self.variables}

    def provenance(self, mode: str, tile: int, step: int, blend: str) -> dict[str, str]:
        """The rules' part of a product's provenance attributes."""
        import json

        return {"product_mode": mode, "window_rule": self.window_rule(mode),
                "observed_rule": OBSERVED_RULE,
                "tiling": json.dumps({"tile": tile, "step": step, "blend": blend,
                                      "plan": self.plan_rule}),
                "compat": self.compat}


DEFAULT = BurnedRules(
    "firesmoke", thresholds=(("monthly", 0.5), ("range", 0.05), ("nrt", 0.5)))
"""firesmoke's rules."""

BANET_0_6_7 = BurnedRules(
    "banet-0.6.7", thresholds=(("monthly", 0.5), ("range", 0.05), ("nrt", 0.1)),
    range_rule="months-inside", plan_rule="reference", acc_dtype="float16",
    reduce_dtype="float16", quantised=True, reference_dates=True,
    tiling=(128, 100, "mean"), model_precision="reference")
"""The numbers of the reference software, BA-Net 0.6.7."""

_BY_NAME = {None: DEFAULT, "": DEFAULT, "firesmoke": DEFAULT, BANET_0_6_7.name: BANET_0_6_7}
# the names the CLI offers (firesmoke.burned.modes, no numpy) are the names of these rules
if set(COMPAT_MODES) != {BANET_0_6_7.name}:  # pragma: no cover - a programming error
    raise RuntimeError(f"firesmoke.burned.modes.COMPAT_MODES {COMPAT_MODES} != the rules' names")


def rules_for(compat: str | BurnedRules | None) -> BurnedRules:
    """The rules of a ``compat`` choice: None (firesmoke's), ``"banet-0.6.7"``, or rules."""
    if isinstance(compat, BurnedRules):
        return compat
    try:
        return _BY_NAME[compat]
    except (KeyError, TypeError):
        raise InputError(f"unknown compat mode {compat!r}; choose from {COMPAT_MODES}",
                         field="compat") from None
