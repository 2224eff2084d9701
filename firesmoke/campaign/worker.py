"""Campaign work units, the worker side: read a block's window, run the model, write.

A :class:`UnitTask` holds everything one unit needs (small and picklable); :func:`run_unit`
runs on a Dask worker. On a cluster, what the units of a product store share (cube,
store, model, windows: a :class:`UnitContext`) travels once per worker in a worker plugin
(:class:`CampaignContexts`, re-sent by the scheduler to workers that join later, so a lost
worker loses nothing), and each task carries only its :class:`WorkUnit` and a short key
(:func:`run_planned_units`, a few hundred bytes pickled; several units per task
when a campaign has many more units than the cluster has threads). A unit first looks at which
chunks of the cube store exist: a block whose input chunks were never written (no data;
a planet-size cube template holds none) is "empty" without reading a pixel. Otherwise it
reads, for each window, exactly the pixels of the global tile
plan's tiles that touch the block, runs the model over them (kept days only), reduces to
``confidence``/``burn_date`` as :func:`firesmoke.burned.predict.predict_window` does, writes the
block's aligned region of the product store and then its ledger marker. Planning,
scheduling and reporting are in :mod:`firesmoke.campaign.run`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.burned.periods import Window
from firesmoke.burned.predict import window_block
from firesmoke.burned.rules import BANET_BANDS, mask_unobserved, observed_days
from firesmoke.campaign.plan import WorkUnit
from firesmoke.campaign.spec import BurnedProduct
from firesmoke.inference.engine import run_block
from firesmoke.inference.model import default_batch_size, keep_days, resolve_device
from firesmoke.inference.tiling import TilePlan
from firesmoke.store import Ledger, Location, write_block
from firesmoke.store.zarr_store import quiet_zarr

__all__ = ["CampaignContexts", "UnitContext", "UnitTask", "run_planned_units", "run_unit"]

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
    cube_token: str | None = None  # opened cube stores are kept per process under this token


@dataclass(frozen=True)
class UnitContext:
    """What the units of one product store share: sent once per worker, not per task.

    ``windows`` and ``zero_days`` are indexed by the unit's ``period_index``; ``token``
    names the run (a worker keeps the cube store it opened for that run).
    """

    cube_store: str
    store: str
    shape: tuple[int, int]
    product: BurnedProduct
    model: Any
    windows: tuple[tuple[Window, ...], ...]
    torch_threads: int | None = None
    zero_days: tuple[tuple[tuple[bool, ...], ...] | None, ...] | None = None
    token: str | None = None

    def task(self, unit: WorkUnit) -> UnitTask:
        """The full task of one unit of this store."""
        zd = None if self.zero_days is None else self.zero_days[unit.period_index]
        return UnitTask(unit, self.cube_store, self.store, self.shape,
                        self.windows[unit.period_index], self.product, self.model,
                        self.torch_threads, zd, self.token)


try:  # distributed is a dependency of campaigns, not of this module's import
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - distributed missing
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class CampaignContexts(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """A Dask worker plugin carrying a run's :class:`UnitContext` objects to every worker.

    Register it once per run (``client.register_plugin(plugin)``); the scheduler gives it
    to every worker, also to workers that start (or restart) later.
    """

    def __init__(self, name: str, contexts: dict[str, UnitContext]) -> None:
        self.name = name
        self.contexts = contexts

    def setup(self, worker: Any) -> None:  # the plugin object itself is what tasks look up
        log.debug("campaign contexts %s on worker %s", self.name, getattr(worker, "name", "?"))


def run_planned_units(plugin: str, key: str, units: Sequence[WorkUnit]) -> list[dict[str, Any]]:
    """:func:`run_unit` of each unit with the context ``key`` of the worker plugin
    ``plugin`` (what a campaign submits: a few units and two short strings)."""
    from distributed import get_worker

    ctx = get_worker().plugins[plugin].contexts[key]
    return [run_unit(ctx.task(u)) for u in units]


_CUBES: dict[tuple[str, str], tuple[Any, Any]] = {}
_CUBES_LOCK = threading.Lock()


def _open(path: str) -> tuple[Any, Any]:
    import xarray as xr
    import zarr

    with quiet_zarr():
        ds = xr.open_zarr(path, consolidated=None, chunks=None)
        try:
            group = zarr.open_group(**Location.of(path).zarr_args(), mode="r")
            arrays = {b: group[b] for b in ds.data_vars}
        except Exception:  # a layout zarr cannot open as a group: chunks are not looked at
            arrays = None
    return ds, arrays


def _open_cube(path: str, token: str | None) -> tuple[Any, Any]:
    """The cube store as a (non-dask) Dataset and its zarr arrays by name (None if it cannot be
    opened so), opened once per process and run token."""
    if token is None:
        return _open(path)
    key = (path, token)
    with _CUBES_LOCK:
        if key not in _CUBES:
            if len(_CUBES) >= 4:  # a few runs at most: forget the oldest
                _CUBES.pop(next(iter(_CUBES)))
            _CUBES[key] = _open(path)
        return _CUBES[key]


def _chunks_written(cube_store: str, cube: Any, arrays: Any, window: Window, rows: slice,
                    cols: slice) -> bool:
    """Whether any chunk of the cube store under the window's days and pixels exists.

    Zarr does not write chunks that hold only fill values, so a region without data has
    no chunks: this answers from a few existence checks (one per time chunk and band on a
    cube without data) instead of reading the window. Unsure (a store layout it does not
    know): True.
    """
    pos = pd.DatetimeIndex(cube["time"].values).get_indexer(window.days)
    pos = pos[pos >= 0]
    if pos.size == 0:
        return False
    if arrays is None:
        return True
    loc = Location.of(cube_store)
    spans = ((int(pos.min()), int(pos.max()) + 1), (rows.start, rows.stop), (cols.start, cols.stop))
    for band in BANET_BANDS:
        if cube[band].dims != ("time", "y", "x"):
            return True
        arr = arrays.get(band)
        if arr is None:
            return True
        ranges = [range(a // c, (b - 1) // c + 1) for (a, b), c in zip(spans, arr.chunks, strict=True)]
        if _any_chunk(loc, band, arr.metadata.encode_chunk_key, ranges):
            return True
    return False


def _any_chunk(loc: Any, band: str, encode: Callable[[tuple[int, ...]], str],
               ranges: list[range]) -> bool:
    """Depth-first over the chunk indices of ``ranges``, pruned by missing folders when
    the keys are nested (``c/t/y/x``, Zarr v3's default), else one check per chunk."""
    if loc.local:  # read-only existence checks: no need for the write-side link checks
        root = os.fspath(loc.path)

        def exists(key: str) -> bool:
            return os.path.lexists(os.path.join(root, key))
    else:
        exists = loc.exists
    nd = len(ranges)
    first = encode(tuple(r[0] for r in ranges))
    parts = first.split("/")
    nested = parts[-nd:] == [str(r[0]) for r in ranges]
    if nested and len(parts) > nd and not exists("/".join([band, *parts[:-nd]])):
        return False  # no chunk at all (Zarr v3: the "c" folder is missing)

    def walk(prefix: tuple[int, ...]) -> bool:
        d = len(prefix)
        for i in ranges[d]:
            idx = (*prefix, i)
            if d + 1 == nd:
                if exists(f"{band}/{encode(idx)}"):
                    return True
                continue
            if nested:  # the folder of this index must exist for any chunk below it
                full = encode(idx + tuple(r[0] for r in ranges[d + 1:]))
                folder = "/".join(full.split("/")[: -(nd - d - 1)])
                if not exists(f"{band}/{folder}"):
                    continue
            if walk(idx):
                return True
        return False

    return walk(())


def _has_data(x: np.ndarray) -> bool:
    """Any finite reflectance or any positive FRP in a ``(4, T, h, w)`` window input."""
    return bool(np.isfinite(x[:3]).any() or (np.nan_to_num(x[3]) > 0).any())


def _input_span(task: UnitTask) -> tuple[slice, slice]:
    """Rows and columns of the pixels of the global plan's tiles that touch the block (the
    block plus a halo of less than one tile; beyond the region edge tiles are zero padded)."""
    p = task.product
    H, W = task.shape
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols
    plan = TilePlan(H, W, tile=p.tile, step=p.step, rule=p.rules.plan_rule)
    origins = plan.origins(r0, r1, c0, c1)
    ya, xa = (max(0, int(v)) for v in origins.min(axis=0))
    yb, xb = (min(n, int(v) + p.tile) for n, v in zip((H, W), origins.max(axis=0), strict=True))
    return slice(ya, yb), slice(xa, xb)


def _block_input(task: UnitTask, cube: Any, window: Window) -> tuple[np.ndarray, tuple[int, int]]:
    """The window's input over the block plus the halo its tiles need, and its origin."""
    rows, cols = _input_span(task)
    return window_block(cube, window, rows, cols), (rows.start, cols.start)


def _block_product(task: UnitTask, window: Window, x: np.ndarray, offset: tuple[int, int],
                   reduce: Any, skip: bool = True) -> np.ndarray | None:
    """The reduced product ``(R, h, w)`` of one window in the unit's block, from every tile
    of the global plan that touches it (None if the block has no data)."""
    p = task.product
    rules = p.rules
    if skip and p.skip_empty and not _has_data(x):
        return None
    plan = TilePlan(*task.shape, tile=p.tile, step=p.step, rule=rules.plan_rule)
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols
    dev = resolve_device(p.device, check_available=False)
    model = keep_days(rules.model(task.model), window.keep_slice)  # only the kept days
    return run_block(x, model, plan, offset=offset, core=(r0, r1, c0, c1), reduce=reduce,
                     batch_size=p.batch_size or default_batch_size(dev), blend=p.blend,
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
    p = task.product
    rules = p.rules
    thr = p.effective_threshold
    cube, arrays = _open_cube(task.cube_store, task.cube_token)  # no dask: plain reads
    zero = task.zero_days or (None,) * len(task.windows)
    (r0, r1), (c0, c1) = task.unit.rows, task.unit.cols
    todo = list(range(len(task.windows)))
    if p.skip_empty and rules.skips_empty_windows(p.mode) and not rules.quantised:
        # windows whose tiles lie where the cube has no chunk hold no data: never read
        span = _input_span(task)
        todo = [i for i in todo
                if _chunks_written(task.cube_store, cube, arrays, task.windows[i], *span)]

    def read(i: int) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
        w = task.windows[i]
        x, offset = _block_input(task, cube, w)
        core = x[:3, w.keep_slice, r0 - offset[0]:r1 - offset[0], c0 - offset[1]:c1 - offset[1]]
        valid = observed_days(*core)  # before any quantisation (NaN -> 0)
        days = None if zero[i] is None else np.asarray(zero[i])
        return rules.prepare(x, days), offset, valid

    stats = []
    valid = np.zeros((r1 - r0, c1 - c0), np.int16)
    for i, (x, offset, v) in zip(todo, _prefetched(read, todo), strict=True):
        w = task.windows[i]
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
