"""Burned-area products from a datacube: BA-Net over Dask, monthly / range / NRT windows.

For each window (:mod:`firesmoke.windows`) the 64 days of ``red, nir, mir, frp`` are taken
from the cube (missing days are NaN, i.e. zeros after NaN -> 0 as the reference), the
model runs over the region with the tiling engine (:func:`firesmoke.inference.predict_array`)
and the per-day probabilities of the kept days are reduced to:

* ``confidence`` = min(sum over kept days of p, 1) (float32, 0..1);
* ``burn_date`` = day of year of the kept day with the highest p (int16; 0 where
  ``confidence < threshold``). Unlike the reference software, the day of year is that of
  the kept day itself (the reference used the index within the whole window, ~16 days
  early).

Provenance (weights ids and sha256, package version, window rule, inputs) is written in
the attributes of both variables and of the Dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from firesmoke._version import __version__
from firesmoke.errors import InputError
from firesmoke.inference import TileModel, keep_days, predict_array
from firesmoke.windows import Window, monthly_windows, nrt_window, range_windows

__all__ = ["BANET_BANDS", "predict_burned", "predict_window", "window_input"]

log = logging.getLogger(__name__)

BANET_BANDS = ("red", "nir", "mir", "frp")
MODES = ("monthly", "range", "nrt")


def window_input(cube: xr.Dataset, window: Window, bands: Sequence[str] = BANET_BANDS) -> da.Array:
    """``(4, 64, H, W)`` float32 dask array of a window; days missing from the cube are NaN."""
    missing = [b for b in bands if b not in cube]
    if missing:
        raise InputError(f"cube lacks variables {missing}", field="cube")
    sub = cube[list(bands)].reindex(time=window.days, fill_value=np.nan)
    ych = cube.chunks.get("y", (cube.sizes["y"],)) if cube.chunks else (cube.sizes["y"],)
    xch = cube.chunks.get("x", (cube.sizes["x"],)) if cube.chunks else (cube.sizes["x"],)
    arrs = [da.asarray(sub[b].data).astype(np.float32) for b in bands]
    arr = da.stack(arrs, axis=0)
    return arr.rechunk((len(bands), window.length, ych, xch))


def _reduce_block(prob: np.ndarray, keep: slice, doy0: int, threshold: float) -> np.ndarray:
    """``(1, T, h, w)`` probabilities -> ``(2, h, w)`` confidence, burn day of year."""
    p = prob[0, keep]
    conf = np.minimum(p.sum(axis=0), 1.0).astype(np.float32)
    date = (doy0 + np.argmax(p, axis=0)).astype(np.float32)
    date[conf < threshold] = 0
    return np.stack([conf, date])


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
) -> tuple[da.Array, da.Array]:
    """Lazy ``confidence`` and ``burn_date`` (day of year) maps of one window."""
    x = window_input(cube, window)
    keep = window.keep_slice
    # the model computes (and the engine blends) only the kept days
    prob = predict_array(x, keep_days(model, keep), tile=tile, step=step,
                         batch_size=batch_size, window=blend, device=device,
                         out_lead=(1, keep.stop - keep.start))
    doy0 = pd.Timestamp(window.keep_start).dayofyear
    out = da.map_blocks(
        _reduce_block, prob, keep=slice(None), doy0=doy0, threshold=threshold,
        chunks=((2,), prob.chunks[2], prob.chunks[3]), drop_axis=[0], dtype=np.float32,
        meta=np.array((), np.float32),
    )
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
) -> xr.Dataset:
    """Burned-area product of a cube.

    Parameters
    ----------
    cube
        Datacube with ``red, nir, mir, frp`` (:func:`firesmoke.cube.build_cube` /
        :func:`~firesmoke.cube.open_cube`).
    model
        A :class:`~firesmoke.inference.TileModel` (e.g. ``TileModel.from_weights([...])``
        for an ensemble) or a callable on ``(n, 4, 64, t, t)`` batches returning
        probabilities ``(n, 1, 64, t, t)``.
    start, end
        ``monthly``: months overlapping ``[start, end]``; ``range``: the days of
        ``[start, end]`` (one map); ``nrt``: ``start`` is the run date (``end`` unused).
    mode
        ``"monthly"``, ``"range"`` or ``"nrt"``.
    threshold
        Minimum confidence for a burn date; default 0.5 (monthly, NRT) or 0.05 (range,
        as the reference).
    tile, step, blend
        Tiling (reference-compatible: 128, 100, ``"mean"``).
    batch_size, device
        Tiles per forward pass (default: 1 on CPU, 4 on a GPU); ``"cuda"``/``"cpu"``/
        ``None`` (auto).

    Returns
    -------
    xarray.Dataset
        ``confidence`` (float32) and ``burn_date`` (int16 day of year, 0 = not burned) with
        dims ``(period, y, x)``, coordinates ``period`` (window labels) and
        ``period_start``/``period_end``, the cube's CRS, and provenance attrs. Lazy.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose from {MODES}", field="mode")
    if mode == "monthly":
        windows = monthly_windows(start, end if end is not None else start)
        thr = 0.5 if threshold is None else threshold
    elif mode == "nrt":
        windows = [nrt_window(start)]
        thr = 0.5 if threshold is None else threshold
    else:
        windows = range_windows(start, end if end is not None else start)
        thr = 0.05 if threshold is None else threshold
    kw = dict(tile=tile, step=step, blend=blend, batch_size=batch_size, device=device)
    confs, dates = [], []
    if mode == "range":
        # accumulate probabilities and the best day over the consecutive windows
        total = None
        best_p = None
        best_doy = None
        for w in windows:
            x = window_input(cube, w)
            keep = w.keep_slice
            prob = predict_array(x, keep_days(model, keep), tile=tile, step=step,
                                 batch_size=batch_size, window=blend, device=device,
                                 out_lead=(1, keep.stop - keep.start))[0]
            doy = np.array([d.dayofyear for d in w.days[w.keep_slice]], np.int16)
            s = prob.sum(axis=0)
            am = prob.argmax(axis=0)
            mx = prob.max(axis=0)
            wdoy = da.map_blocks(lambda a, lut=doy: lut[a], am, dtype=np.int16)
            if total is None:
                total, best_p, best_doy = s, mx, wdoy
            else:
                total = total + s
                better = mx > best_p
                best_doy = da.where(better, wdoy, best_doy)
                best_p = da.maximum(mx, best_p)
        conf = da.minimum(total, 1.0).astype(np.float32)
        date = da.where(conf >= thr, best_doy, 0).astype(np.int16)
        confs, dates = [conf], [date]
        labels = [f"{pd.Timestamp(start).date()}..{pd.Timestamp(end).date()}"]
        p_start = [pd.Timestamp(start)]
        p_end = [pd.Timestamp(end)]
    else:
        for w in windows:
            c, d = predict_window(cube, model, w, threshold=thr, **kw)
            confs.append(c)
            dates.append(d)
        labels = [w.label for w in windows]
        p_start = [pd.Timestamp(w.keep_start) for w in windows]
        p_end = [pd.Timestamp(w.keep_end) for w in windows]

    ds = xr.Dataset(
        {
            "confidence": (("period", "y", "x"), da.stack(confs), {
                "long_name": "burned-area confidence", "units": "1",
                "description": "min(sum of daily burn probabilities over the period, 1)"}),
            "burn_date": (("period", "y", "x"), da.stack(dates), {
                "long_name": "day of year of burning",
                "comment": "day of year 1-366 (no UDUNITS unit fits); 0: not burned",
                "flag_values": 0, "flag_meanings": "not_burned",
                "threshold": thr}),
        },
        coords={
            "period": labels,
            "period_start": ("period", np.array(p_start, dtype="datetime64[ns]")),
            "period_end": ("period", np.array(p_end, dtype="datetime64[ns]")),
            "y": cube["y"], "x": cube["x"],
        },
    )
    if "spatial_ref" in cube.coords:
        ds = ds.assign_coords(spatial_ref=cube["spatial_ref"])
        for v in ds.data_vars.values():
            v.attrs["grid_mapping"] = "spatial_ref"
    meta = getattr(model, "metadata", {}) or {}
    prov = {
        "firesmoke_version": __version__,
        "product_mode": mode,
        "window_rule": {
            "monthly": "64 days from the 15th of the previous month; days of the target month kept",
            "range": "consecutive 64-day windows keeping their central 32 days",
            "nrt": "the 64 days ending on the run date",
        }[mode],
        "weights": json.dumps(meta.get("weights", meta.get("name", getattr(model, "key", "callable")))),
        "weights_sha256": str(meta.get("sha256", "")),
        "tiling": json.dumps({"tile": tile, "step": step, "blend": blend}),
        "inputs": cube.attrs.get("title", ""),
        "region": cube.attrs.get("region", ""),
        "region_json": cube.attrs.get("region_json", ""),
        "created": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
    }
    ds.attrs.update(prov)
    return ds
