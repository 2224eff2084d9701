"""Campaign work units, the worker side: read a block's window, run the model, write.

A :class:`UnitTask` holds everything one unit needs (small and picklable); :func:`run_unit`
runs on a Dask worker: it reads, for each window, exactly the pixels of the global tile
plan's tiles that touch the block, runs the model over them (kept days only), reduces to
``confidence``/``burn_date`` as :func:`firesmoke.burned.predict.predict_window` does, writes the
block's aligned region of the product store and then its ledger marker. Planning,
scheduling and reporting are in :mod:`firesmoke.campaign.run`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.burned.periods import Window
from firesmoke.campaign.plan import WorkUnit
from firesmoke.campaign.spec import BurnedProduct
from firesmoke.errors import InputError
from firesmoke.store import Ledger

__all__ = ["UnitTask", "run_unit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitTask:
    """Everything a worker needs for one unit (small and picklable)."""

    unit: WorkUnit
    cube_store: str
    store: str
    shape: tuple[int, int]
    windows: tuple[Window, ...]
    product: BurnedProduct
    model: Any
    torch_threads: int | None = None
    zero_days: tuple[tuple[bool, ...], ...] | None = None  # quantised rules: no-VIIRS days


def _has_data(x: np.ndarray) -> bool:
    """Any finite reflectance or any positive FRP in a ``(4, T, h, w)`` window input."""
    return bool(np.isfinite(x[:3]).any() or (np.nan_to_num(x[3]) > 0).any())


def _read_window(cube: Any, window: Window, rows: slice, cols: slice) -> np.ndarray:
    """``(4, 64, h, w)`` float32 model input of a window (NaN on days the cube lacks).

    The same values as :func:`firesmoke.burned.predict.window_input`, read band by band from the
    (non-dask) store straight into one array: peak memory is the window plus one band.
    """
    from firesmoke.burned.rules import BANET_BANDS

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


def _block_input(task: UnitTask, cube: Any, window: Window) -> tuple[np.ndarray, tuple[int, int]]:
    """The window's input over the block plus the halo its tiles need, and its origin."""
    from firesmoke.inference.tiling import TilePlan

    p = task.product
    H, W = task.shape
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols
    plan = TilePlan(H, W, tile=p.tile, step=p.step, rule=p.rules.plan_rule)
    # read exactly the pixels of the global plan's tiles that touch the block (a halo of
    # less than one tile); beyond the region edge tiles are zero padded
    origins = plan.origins(r0, r1, c0, c1)
    ya, xa = (max(0, int(v)) for v in origins.min(axis=0))
    yb, xb = (min(n, int(v) + p.tile) for n, v in zip((H, W), origins.max(axis=0), strict=True))
    return _read_window(cube, window, slice(ya, yb), slice(xa, xb)), (ya, xa)


def _block_product(task: UnitTask, window: Window, x: np.ndarray, offset: tuple[int, int],
                   reduce: Any, skip: bool = True) -> np.ndarray | None:
    """The reduced product ``(R, h, w)`` of one window in the unit's block, from every tile
    of the global plan that touches it (None if the block has no data)."""
    from firesmoke.inference.engine import run_block
    from firesmoke.inference.model import default_batch_size, keep_days, resolve_device
    from firesmoke.inference.tiling import TilePlan

    p = task.product
    rules = p.rules
    if skip and p.skip_empty and not _has_data(x):
        return None
    plan = TilePlan(*task.shape, tile=p.tile, step=p.step, rule=rules.plan_rule)
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols
    dev = resolve_device(p.device, check_available=False)
    model = keep_days(rules.model(task.model), window.keep_slice)  # only the kept days
    return run_block(x, model, plan, offset=offset, core=(r0, r1, c0, c1), reduce=reduce,
                     batch_size=p.batch_size or default_batch_size(dev), window=p.blend,
                     device=dev, acc_dtype=rules.acc_dtype)


def _prefetched(read: Callable[[Window], Any], windows: Sequence[Window]) -> Iterator[Any]:
    """``read(w)`` for each window, the next one read on a thread while this one computes."""
    from concurrent.futures import ThreadPoolExecutor

    if not windows:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="firesmoke-read") as pool:
        fut = pool.submit(read, windows[0])
        for i in range(len(windows)):
            cur = fut.result()
            if i + 1 < len(windows):
                fut = pool.submit(read, windows[i + 1])
            yield cur


def _compute_unit(task: UnitTask) -> tuple[np.ndarray, ...] | None:
    """The product variables of the block (``confidence`` float32, dates int16,
    ``valid_days`` int16; unobserved pixels nodata), as
    :func:`~firesmoke.burned.predict.predict_burned` computes them: the same rules object
    gives the inputs, the reductions and the combination (:mod:`firesmoke.burned.rules`)."""
    import xarray as xr

    from firesmoke.burned.rules import mask_unobserved, observed_days

    p = task.product
    rules = p.rules
    thr = p.effective_threshold
    cube = xr.open_zarr(task.cube_store, consolidated=None, chunks=None)  # no dask: plain reads
    zero = task.zero_days or (None,) * len(task.windows)
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols

    def read(i: int) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
        w = task.windows[i]
        x, offset = _block_input(task, cube, w)
        core = x[:3, w.keep_slice, r0 - offset[0]:r1 - offset[0], c0 - offset[1]:c1 - offset[1]]
        valid = observed_days(*core)  # before any quantisation (NaN -> 0)
        days = None if zero[i] is None else np.asarray(zero[i])
        return rules.prepare(x, days), offset, valid

    stats = []
    valid = np.zeros((r1 - r0, c1 - c0), np.int16)
    reads = _prefetched(read, list(range(len(task.windows))))
    for w, (x, offset, v) in zip(task.windows, reads, strict=True):
        valid += v  # the windows' kept days do not overlap
        red = rules.reducer(p.mode, w, thr)
        s = _block_product(task, w, x, offset, red, skip=rules.skips_empty_windows(p.mode))
        del x
        if s is not None:
            stats.append(s)
    if not stats:
        return None
    out = mask_unobserved(rules.combine(p.mode, task.windows, thr, *stats), valid)
    return (*(o.astype(np.int16) if i else o for i, o in enumerate(out)), valid)


def run_unit(task: UnitTask) -> dict[str, Any]:
    """Compute one unit and write it (runs on a worker); never raises for bad inputs.

    Returns a dict with ``unit``, ``status`` (``done``, ``empty``, ``skipped`` or
    ``failed``), ``seconds`` and, for failures, ``reason``.
    """
    import xarray as xr

    from firesmoke.store import write_block

    t0 = time.perf_counter()
    u = task.unit
    ledger = Ledger(task.store)
    if ledger.done(u.id):
        return {"unit": u.id, "status": "skipped", "seconds": 0.0}
    try:
        if task.torch_threads:
            import torch

            if torch.get_num_threads() != task.torch_threads:
                torch.set_num_threads(task.torch_threads)
        out = _compute_unit(task)
        info = {"rows": list(u.rows), "cols": list(u.cols), "period": u.period, "pid": os.getpid()}
        if out is None:
            ledger.mark(u.id, {**info, "empty": True})
            return {"unit": u.id, "status": "empty", "seconds": time.perf_counter() - t0}
        dims = ("period", "y", "x")
        block = xr.Dataset({name: (dims, o[None])
                            for name, o in zip(task.product.rules.variables, out, strict=True)})
        region = {"period": slice(u.period_index, u.period_index + 1),
                  "y": slice(*u.rows), "x": slice(*u.cols)}
        write_block(block, task.store, region, block_id=u.id,
                    info={**info, "seconds": round(time.perf_counter() - t0, 3)})
    except Exception as exc:  # reported per unit; the campaign goes on
        log.exception("unit %s failed", u.id)
        return {"unit": u.id, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0}
    return {"unit": u.id, "status": "done", "seconds": time.perf_counter() - t0}
