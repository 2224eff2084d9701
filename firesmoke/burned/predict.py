"""Burned-area products from a datacube: BA-Net over Dask, monthly / range / NRT windows.

For each window (:mod:`firesmoke.burned.periods`) the 64 days of ``red, nir, mir, frp`` are taken
from the cube (missing days are NaN, i.e. zeros after NaN -> 0 as the reference), the
model runs over the region with the tiling engine (:func:`firesmoke.inference.model.predict_array`)
and the per-day probabilities of the kept days are reduced to:

* ``confidence`` = min(sum over kept days of p, 1) (float32, 0..1);
* ``burn_date`` = day of year of the kept day with the highest p (int16; 0 where
  ``confidence < threshold``). Unlike the reference software, the day of year is that of
  the kept day itself (the reference used the index within the whole window, ~16 days
  early);
* ``valid_days`` = per pixel, the kept days of the period with a finite red, NIR or MIR
  reflectance (:func:`~firesmoke.burned.rules.observed_days`). Where it is 0 the pixel
  was not observed: ``confidence`` is NaN and ``burn_date`` -1, the ``_FillValue`` of
  each (:data:`~firesmoke.burned.rules.NODATA`), in every rules object (the
  reference-compatible numbers are kept for observed pixels).

The cube must be georeferenced (a CRS, rioxarray's ``spatial_ref``) on a regular north-up
grid; otherwise one :class:`~firesmoke.errors.InputError` says so before any work.

Provenance (weights ids and sha256, package version, window rule, inputs) is written in
the attributes of both variables and of the Dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke import bounds
from firesmoke._version import __version__
from firesmoke.burned.periods import Window, period_coords
from firesmoke.burned.rules import (
    BANET_BANDS,
    MODES,
    BurnedRules,
    check_mode,
    mask_unobserved,
    observed_days,
    rules_for,
)
from firesmoke.dates import as_date
from firesmoke.errors import InputError, UnobservedPeriodWarning
from firesmoke.grid import check_georeferenced, grid_mapping_name
from firesmoke.inference.model import TileModel, keep_days, predict_array, resolve_device

__all__ = ["BANET_BANDS", "MODES", "UnobservedPeriodWarning", "period_labels", "predict_burned",
           "predict_window", "unobserved_periods", "window_bands", "window_block", "window_input",
           "window_valid_days"]

log = logging.getLogger(__name__)


def window_bands(cube: xr.Dataset, window: Window, bands: Sequence[str] = BANET_BANDS) -> list[Any]:
    """The bands of a window: float32 dask arrays ``(64, H, W)`` (days missing from the
    cube are NaN), chunked like the cube in space. The engine stacks them on the device
    (see :func:`firesmoke.inference.model.predict_array`)."""
    import dask.array as da

    missing = [b for b in bands if b not in cube]
    if missing:
        raise InputError(f"cube lacks variables {missing}", field="cube")
    sub = cube[list(bands)].reindex(time=window.days, fill_value=np.nan)
    ych = cube.chunks.get("y", (cube.sizes["y"],)) if cube.chunks else (cube.sizes["y"],)
    xch = cube.chunks.get("x", (cube.sizes["x"],)) if cube.chunks else (cube.sizes["x"],)
    return [da.asarray(sub[b].data).astype(np.float32).rechunk((window.length, ych, xch))
            for b in bands]


def window_block(cube: xr.Dataset, window: Window, rows: slice, cols: slice) -> np.ndarray:
    """``(4, 64, h, w)`` float32 model input of a window's block ``rows`` x ``cols``, read
    now (NaN on days the cube lacks): what the campaign worker computes a unit from.

    The same values as :func:`window_input` (``[..., rows, cols]``), read band by band from
    a non-dask cube straight into one array: peak memory is the block plus one band.
    """
    missing = [b for b in BANET_BANDS if b not in cube]
    if missing:
        raise InputError(f"cube lacks variables {missing}", field="cube")
    pos = pd.DatetimeIndex(cube["time"].values).get_indexer(window.days)
    have = np.flatnonzero(pos >= 0)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    x = np.full((len(BANET_BANDS), len(window.days), h, w), np.nan, np.float32)
    if have.size == 0:
        return x
    src = pos[have]
    lo, hi = int(src.min()), int(src.max()) + 1
    contiguous = np.array_equal(src, np.arange(lo, hi)) and np.array_equal(
        have, np.arange(have[0], have[0] + have.size))
    for i, band in enumerate(BANET_BANDS):
        vals = cube[band].isel(time=slice(lo, hi), y=rows, x=cols).values
        if contiguous:
            x[i, have[0] : have[0] + have.size] = vals
        else:
            x[i, have] = vals[src - lo]
        del vals
    return x


def window_valid_days(cube: xr.Dataset, window: Window) -> Any:
    """Lazy ``(H, W)`` int16 count of the window's kept days with a finite red, NIR or MIR
    reflectance (:func:`~firesmoke.burned.rules.observed_days`)."""
    red, nir, mir = (b[window.keep_slice] for b in window_bands(cube, window, BANET_BANDS[:3]))
    return observed_days(red, nir, mir)


def unobserved_periods(product: xr.Dataset, warn: bool = True) -> list[str]:
    """Labels of the periods of a product in which no pixel was observed (``valid_days``
    0 everywhere); with ``warn`` an :class:`UnobservedPeriodWarning` names them. Computes
    one maximum per period (cheap once the product is computed or persisted)."""
    if "valid_days" not in product:
        return []
    best = np.asarray(product["valid_days"].max(("y", "x")).values).reshape(-1)
    labels = (product["period_label"].values if "period_label" in product.coords
              else product["period"].values)
    empty = [str(lab) for lab, m in zip(np.atleast_1d(labels), best, strict=True) if m <= 0]
    if empty and warn:
        warnings.warn(f"no observation in period(s) {', '.join(empty)}: every pixel is nodata "
                      "(confidence NaN, burn_date -1); does the cube cover them?",
                      UnobservedPeriodWarning, stacklevel=2)
    return empty


def window_input(cube: xr.Dataset, window: Window, bands: Sequence[str] = BANET_BANDS) -> Any:
    """``(4, 64, H, W)`` float32 dask array of a window; days missing from the cube are NaN."""
    import dask.array as da

    return da.stack(window_bands(cube, window, bands), axis=0)


def _window_product(
    cube: xr.Dataset,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    window: Window,
    reduce: Any,
    tile: int,
    step: int,
    blend: str,
    batch_size: int | None,
    device: str,
    rules: BurnedRules,
    zero_days: np.ndarray | None = None,
    tasks: int | str | None = "auto",
) -> Any:
    """The reduced product of one window (lazy ``(R, H, W)``), computed by the engine with
    the inputs, tile plan and blending precision of ``rules``."""
    keep = window.keep_slice
    x = window_bands(cube, window)
    if rules.quantised:
        x = [b.map_blocks(rules.prepare, zero_days=zero_days, dtype=np.float32) for b in x]
    # the model computes (and the engine blends) only the kept days
    return predict_array(x, keep_days(model, keep), tile=tile, step=step,
                         batch_size=batch_size, blend=blend, device=device, reduce=reduce,
                         tasks=tasks, **rules.engine_options())


def _coverage(cube: xr.Dataset, windows: Sequence[Window], allow_partial: bool) -> list[int]:
    """Days of each window present in the cube; InputError when one lacks days, unless
    ``allow_partial``."""
    have = pd.DatetimeIndex(cube["time"].values) if "time" in cube.coords else pd.DatetimeIndex([])
    counts = [int(w.days.isin(have).sum()) for w in windows]
    short = [(w, n) for w, n in zip(windows, counts, strict=True) if n < w.length]
    if short and not allow_partial:
        w, n = short[0]
        span = f"{have.min().date()}..{have.max().date()}" if len(have) else "no days"
        raise InputError(
            f"the cube ({span}) holds {n} of the {w.length} days of window {w.label} "
            f"({w.start}..{w.end}); extend the cube, or pass allow_partial=True for a product "
            "flagged with the number of observed days per period", field="cube")
    return counts


def _masked(product: Any, valid: Any) -> Any:
    """``(R, H, W)`` lazy product with the unobserved pixels (``valid`` 0) set to nodata."""
    import dask.array as da

    valid = valid.rechunk(product.chunks[-2:])
    return da.map_blocks(lambda o, v: mask_unobserved(o, v[0]), product, valid[None],
                         dtype=np.float32, meta=np.array((), np.float32))


def _labels(mode: str, windows: Sequence[Window], start: Any, end: Any) -> list[str]:
    if mode == "range":  # one period: the whole range
        end = start if end is None else end
        return [f"{pd.Timestamp(start).date()}..{pd.Timestamp(end).date()}"]
    return [w.label for w in windows]


def period_labels(mode: str, start: Any, end: Any = None, compat: str | None = None) -> list[str]:
    """The ``period_label`` values :func:`predict_burned` gives for these arguments.

    Known before any work (no cube is read), e.g. to name output files early.

    Examples
    --------
    >>> period_labels("monthly", "2020-07-01", "2020-08-31")
    ['2020-07', '2020-08']
    """
    check_mode(mode)
    return _labels(mode, rules_for(compat).windows(mode, start, end), start, end)


def predict_window(
    cube: xr.Dataset,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    window: Window,
    threshold: float = 0.5,
    tile: int = 128,
    step: int = 100,
    blend: str = "mean",
    batch_size: int | None = None,
    device: str | None = None,
) -> tuple[Any, Any]:
    """Lazy ``confidence`` and ``burn_date`` (day of year) maps of one window."""
    rules = rules_for(None)
    red = rules.reducer("monthly", window, rules.threshold("monthly", threshold))
    out = _window_product(cube, model, window, red, tile, step, blend, batch_size,
                          resolve_device(device), rules)
    return out[0], out[1].astype(np.int16)


def predict_burned(
    cube: xr.Dataset,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    start: Any,
    end: Any | None = None,
    mode: str = "monthly",
    threshold: float | None = None,
    tile: int = 128,
    step: int = 100,
    blend: str = "mean",
    batch_size: int | None = None,
    device: str | None = None,
    compat: str | BurnedRules | None = None,
    allow_partial: bool = False,
    tasks: int | str | None = "auto",
) -> xr.Dataset:
    """Burned-area product of a cube.

    Parameters
    ----------
    cube
        Datacube with ``red, nir, mir, frp`` (:func:`firesmoke.cube.build.build_cube` /
        :func:`~firesmoke.cube.build.open_cube`).
    model
        A :class:`~firesmoke.inference.model.TileModel` (e.g. ``TileModel.from_weights([...])``
        for an ensemble) or a callable on ``(n, 4, 64, t, t)`` batches returning
        probabilities ``(n, 1, 64, t, t)``.
    start, end
        ``monthly``: months overlapping ``[start, end]``; ``range``: the days of
        ``[start, end]`` (one map); ``nrt``: ``start`` is the run date (``end`` unused).
    mode
        ``"monthly"``, ``"range"`` or ``"nrt"``.
    threshold
        Minimum confidence for a burn date; default 0.5 (monthly, NRT) or 0.05 (range,
        as the reference); in compat mode the reference's (0.5, 0.05, NRT 0.1).
    tile, step, blend
        Tiling (reference-compatible: 128, 100, ``"mean"``).
    batch_size, device
        Tiles per forward pass (default: 1 on CPU, 4 on a GPU); ``"cuda"``/``"cpu"``/
        ``None`` (auto). A bad device is an :class:`~firesmoke.errors.InputError`.
    compat
        The rules (:class:`~firesmoke.burned.rules.BurnedRules`): None for firesmoke's,
        ``"banet-0.6.7"`` to reproduce the reference software's numbers on this cube
        (:data:`~firesmoke.burned.rules.BANET_0_6_7`: quantised inputs, reference tile
        plan, float16 blending and ensemble, the reference's time-range and NRT rules); adds
        ``burn_date_reference`` (the reference's dates) beside ``burn_date`` (true day
        of year). Reads the cube once more to find the days without VIIRS data.
    allow_partial
        A window with days missing from the cube raises an
        :class:`~firesmoke.errors.InputError` unless this is true; then the product is
        computed with those days as missing data and ``observed_days`` (per period) says
        how many of the window days the cube held.
    tasks
        Inference tasks per window (:func:`~firesmoke.inference.model.predict_array`):
        ``"auto"`` shares the tiles of each chunk among a few tasks per worker thread of
        the current ``distributed.Client`` (so build the product inside the client's
        block to use every worker on a region of few chunks), an int, or ``None`` (one
        task per chunk). The numbers do not depend on it.

    Returns
    -------
    xarray.Dataset
        ``confidence`` (float32, NaN = not observed), ``burn_date`` (int16 day of year,
        0 = not burned, -1 = not observed) and ``valid_days`` (int16, the kept days with a
        valid reflectance; 0 = not observed) with dims ``(period, y, x)`` and their nodata
        as ``_FillValue`` in ``encoding``, coordinates ``period`` (first day, datetime64),
        ``period_label`` (e.g. ``"2020-08"``), ``period_end`` (last day) and
        ``observed_days`` (:func:`~firesmoke.burned.periods.period_coords`), the cube's CRS,
        and provenance attrs. Lazy: the work is done where it is computed, e.g.
        :func:`firesmoke.store.write_product` (``progress=True`` shows it) or
        :func:`firesmoke.store.progress.compute`. :func:`unobserved_periods` names the
        periods with no observation at all (a warning).

    Raises
    ------
    InputError
        Before any work: a cube without a CRS, with irregular or non-monotonic ``x``/``y``,
        lacking variables, or (unless ``allow_partial``) lacking days of a window.

    Examples
    --------
    A model is a :class:`~firesmoke.inference.model.TileModel` (e.g.
    ``TileModel.from_weights(["banet_synthetic"])``) or any callable on tile batches; here a
    stand-in that puts a 0.9 probability on day 30 of every 64-day window (August's window
    starts on July 15, so day 30 is August 14, day of year 227):

    >>> import numpy as np, pandas as pd
    >>> from firesmoke import Region, predict_burned
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)
    >>> days = pd.date_range("2020-07-15", "2020-09-16")
    >>> cube = region.coords_dataset(days)
    >>> for band in ("red", "nir", "mir", "frp"):
    ...     cube[band] = (("time", "y", "x"), np.zeros((len(days), 16, 16), np.float32))
    >>> def model(batch):  # (n, 4, 64, t, t) -> (n, 1, 64, t, t)
    ...     p = np.zeros((batch.shape[0], 1, *batch.shape[2:]), np.float32)
    ...     p[:, :, 30] = 0.9
    ...     return p
    >>> product = predict_burned(cube, model, "2020-08-01", "2020-08-31").compute()
    >>> str(product["period_label"].values[0]), sorted(product.data_vars)
    ('2020-08', ['burn_date', 'confidence', 'valid_days'])
    >>> int(product["burn_date"].max()), float(product["confidence"].max())
    (227, 0.8999999761581421)
    """
    import dask.array as da

    check_mode(mode)
    if batch_size is not None:
        batch_size = bounds.check_integer(batch_size, "batch_size", 1, bounds.MAX_BATCH_SIZE)
    if mode != "nrt" and end is not None:
        bounds.check_date_span(as_date(start, "start"), as_date(end, "end"), "end")
    rules = rules_for(compat)
    missing = [b for b in BANET_BANDS if b not in cube]
    if missing:
        raise InputError(f"cube lacks variables {missing}", field="cube")
    check_georeferenced(cube, "cube")
    rules.check_tiling(tile, step, blend)
    windows = rules.windows(mode, start, end)
    thr = rules.threshold(mode, threshold)
    model = rules.model(model)
    counts = _coverage(cube, windows, allow_partial)
    dev = resolve_device(device)
    kw: dict[str, Any] = dict(tile=tile, step=step, blend=blend, batch_size=batch_size,
                              device=dev, rules=rules, tasks=tasks)
    zero = rules.zero_days(cube, windows)
    n_out = len(rules.outputs)

    def combined(stats: list[Any]) -> Any:
        return da.map_blocks(partial(rules.combine, mode, windows, thr), *stats, dtype=np.float32,
                             drop_axis=[1] if stats[0].ndim == 4 else [],
                             meta=np.array((), np.float32),
                             chunks=((n_out,), *stats[0].chunks[-2:]))

    valid = [window_valid_days(cube, w) for w in windows]
    if mode == "range":  # one map from every window's reduced outputs
        stats = [_window_product(cube, model, w, rules.reducer(mode, w, thr),
                                 zero_days=zero[w.label], **kw) for w in windows]
        products = [combined(stats)]
        valid = [sum(valid[1:], valid[0])]  # the windows' kept days do not overlap
        end = start if end is None else end
        labels = _labels(mode, windows, start, end)
        p_start = [pd.Timestamp(start)]
        p_end = [pd.Timestamp(end)]
        every = pd.DatetimeIndex(sorted({d for w in windows for d in w.days}))
        counts = [int(every.isin(pd.DatetimeIndex(cube["time"].values)).sum())]
    else:
        products = [_window_product(cube, model, w, rules.reducer(mode, w, thr),
                                    zero_days=zero[w.label], **kw) for w in windows]
        labels = _labels(mode, windows, start, end)
        p_start = [pd.Timestamp(w.keep_start) for w in windows]
        p_end = [pd.Timestamp(w.keep_end) for w in windows]

    for label, n in zip(labels, counts, strict=True):
        if n == 0:
            warnings.warn(f"period {label}: the cube holds none of its days; the period is all "
                          "nodata", UnobservedPeriodWarning, stacklevel=2)
    products = [_masked(o, v) for o, v in zip(products, valid, strict=True)]
    attrs = rules.variable_attrs(thr)
    variables = {}
    for i, name in enumerate(rules.outputs):
        layers = [o[i] if i == 0 else o[i].astype(np.int16) for o in products]
        variables[name] = (("period", "y", "x"), da.stack(layers), attrs[name])
    variables["valid_days"] = (("period", "y", "x"), da.stack(valid), attrs["valid_days"])
    ds = xr.Dataset(
        variables,
        coords={
            **period_coords(labels, p_start, p_end),
            "observed_days": ("period", np.array(counts, np.int16), {
                "long_name": "days of the model windows present in the cube",
                "description": "fewer than the windows' days only with allow_partial=True"}),
            "y": cube["y"], "x": cube["x"],
        },
    )
    for name, enc in rules.variable_encoding().items():
        ds[name].encoding = {k: v for k, v in enc.items() if v is not None}
    gm = grid_mapping_name(cube)  # the cube's CRS, the CF way (checked above)
    ds = ds.assign_coords({gm: cube[gm].variable})
    for v in ds.data_vars.values():
        v.encoding.pop("grid_mapping", None)
        v.attrs["grid_mapping"] = gm
    meta = getattr(model, "metadata", {}) or {}
    prov = {
        "Conventions": "CF-1.8",
        "firesmoke_version": __version__,
        **rules.provenance(mode, tile, step, blend),
        "weights": json.dumps(meta.get("weights", meta.get("name", getattr(model, "key", "callable")))),
        "weights_sha256": str(meta.get("sha256", "")),
        "inputs": cube.attrs.get("title", ""),
        "region": cube.attrs.get("region", ""),
        "region_json": cube.attrs.get("region_json", ""),
        "created": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
    }
    ds.attrs.update(prov)
    return ds
