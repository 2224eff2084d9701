"""The block pipeline on the device: one copy in, tiles, forward, blend, reduce, one copy out.

Every product (burned area, smoke masks, raw probabilities) runs through
:func:`run_block` (one block with all the tiles that touch it: campaign units, whole
arrays) or :func:`predict_blocks` (a chunked dask array, each tile of the global plan run
once). For a block, everything between the host read and the reduced result happens on
the device (``torch``; the same code runs on ``"cpu"``):

1. the block and the margin its tiles need are copied to the device once (pinned host
   memory and a non-blocking copy on CUDA) into a buffer padded with the model's fill
   value (NaN for a :class:`~firesmoke.inference.model.TileModel`, which its
   :class:`~firesmoke.models.normalization.Normalization` then fills; zeros for plain
   callables);
2. the whole buffer is normalised once (NaN fill, per-channel z-score);
3. tiles are views of the buffer, stacked ``batch_size`` at a time for the forward pass;
4. outputs are blended by a weighted scatter-add into a float64 accumulator;
5. a per-pixel *reduction* (:mod:`firesmoke.burned.rules`: e.g. burned area's
   ``confidence`` / ``burn_date``) turns the blended stack into the product, so no
   per-day probability stack leaves the device, only the reduced block.

Overlap-add (:func:`predict_blocks`): block ``(i, j)`` runs only the tiles whose origin
lies in it. Their outputs spill up to one tile beyond its bottom/right edges, and the
top/left strips of the block receive spills of the blocks above/left. The first pass
reduces the block's interior (pixels reached only by its own tiles) on the device and
returns the accumulator of the strips; a second, cheap pass adds the strips of the
neighbours (in a fixed order) and reduces them. Each tile of the plan runs exactly once
per model, whatever the chunking (the previous design ran every tile touching a block's
one-tile halo again in each block: 1.44x the tiles with 512 px chunks, 1.96x with 256 px).
Accumulating in float64 makes the mosaic independent of the chunking.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.inference.tiling import TilePlan, blend_weights

__all__ = [
    "Identity",
    "accumulate_block",
    "predict_blocks",
    "run_block",
    "task_grid",
    "to_device",
]

# A reduction maps a blended float32 stack ``(*lead, h, w)`` (torch) to ``(*out_lead, h, w)``
# per pixel; ``out_lead`` is its attribute.
Reduction = Callable[[Any], Any]


@dataclass(frozen=True)
class Identity:
    """The blended outputs themselves (no reduction), reshaped to ``out_lead``."""

    out_lead: tuple[int, ...]

    def __call__(self, p: Any) -> Any:
        return p.reshape(*self.out_lead, *p.shape[-2:])


_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


@contextlib.contextmanager
def device_slot(device: str) -> Iterator[None]:
    """Hold one of the accelerator's block slots (``FIRESMOKE_BLOCKS_PER_GPU``, default 2).

    Dask's threads scheduler runs as many blocks at once as there are cores; on one GPU
    two blocks in flight keep it busy (one copies in while the other computes) and more
    only multiply its memory. CPU blocks are not limited.
    """
    if str(device).startswith("cpu"):
        yield
        return
    with _SLOTS_LOCK:
        sem = _SLOTS.get(device)
        if sem is None:
            n = max(1, int(os.environ.get("FIRESMOKE_BLOCKS_PER_GPU", "2")))
            sem = _SLOTS[device] = threading.BoundedSemaphore(n)
    with sem:
        yield


# ----------------------------------------------------------------------------- model adapter
class _Runner:
    """The forward side of a model on one device: input preparation and batched forward."""

    def __init__(self, model: Any, device: str) -> None:
        self.device = device
        # a firesmoke.inference.model.TileModel (duck-typed: the engine does not import inference)
        is_tile_model = hasattr(model, "prepare_input") and hasattr(model, "forward")
        self.tile_model = model if is_tile_model else None
        self.model = model
        self.pad_value = float("nan") if self.tile_model is not None else 0.0

    def prepare(self, x: Any) -> Any:
        """Normalise the engine's own buffer ``x`` in place."""
        return self.tile_model.prepare_input(x, inplace=True) if self.tile_model is not None else x

    def forward(self, tiles: Any) -> Any:
        import torch

        if self.tile_model is not None:
            return self.tile_model.forward(tiles, self.device)
        out = np.asarray(self.model(tiles.cpu().numpy()), np.float32)
        return torch.from_numpy(out).to(self.device)


def to_device(a: np.ndarray, device: str) -> Any:
    """A float32 tensor of ``a`` on ``device`` (via pinned memory, non-blocking on CUDA)."""
    import torch

    a = np.asarray(a, dtype=np.float32)
    if not str(device).startswith("cuda"):
        return torch.from_numpy(a)  # a strided view: copied once, into the device buffer
    pinned = torch.empty(a.shape, dtype=torch.float32, pin_memory=True)
    pinned.numpy()[...] = a
    return pinned.to(device, non_blocking=True)


def accumulate_block(
    parts: Sequence[tuple[np.ndarray, int, int]],
    lead: tuple[int, ...],
    runner: _Runner,
    plan: TilePlan,
    origins: np.ndarray,
    region: tuple[int, int, int, int],
    batch_size: int,
    blend: str | np.ndarray,
    acc_dtype: str = "float64",
) -> tuple[Any, Any]:
    """Weighted sums ``(K.., rh, rw)`` and weights ``(rh, rw)`` (``acc_dtype``, on the
    device) of the tiles ``origins``, added in that order, over the global
    ``region = (y0, y1, x0, x1)``.

    ``parts`` are host arrays ``(*lead, h, w)`` (or tuples of the ``lead[0]`` channels,
    each ``(*lead[1:], h, w)``, stacked straight into the device buffer) with the global
    ``(row, col)`` of their first pixel; together they must hold every pixel of the tiles
    inside the global array.
    ``acc_dtype="float16"`` reproduces BA-Net 0.6.7's float16 blending.
    """
    import torch

    dev, t = runner.device, plan.tile
    y0, y1, x0, x1 = region
    adt = getattr(torch, acc_dtype)
    w2d = blend_weights(t, blend) if isinstance(blend, str) else np.asarray(blend, np.float32)
    wt = torch.from_numpy(np.ascontiguousarray(w2d, dtype=np.float64)).to(dev, adt)
    ones = isinstance(blend, str) and blend == "mean"
    wsum = torch.zeros((y1 - y0, x1 - x0), dtype=adt, device=dev)
    if len(origins) == 0:
        return None, wsum
    py0, px0 = int(origins[:, 0].min()), int(origins[:, 1].min())
    py1, px1 = int(origins[:, 0].max()) + t, int(origins[:, 1].max()) + t
    # pad only beyond the array when the (disjoint) parts cover the rest of the buffer
    inside = (min(py1, plan.height) - py0) * (min(px1, plan.width) - px0)
    covered = 0
    for a, ay, ax in parts:
        h, w = (a[0] if isinstance(a, tuple | list) else a).shape[-2:]
        covered += (max(0, min(ay + h, py1) - max(ay, py0))
                    * max(0, min(ax + w, px1) - max(ax, px0)))
    shape = (*lead, py1 - py0, px1 - px0)
    if covered == inside:
        buf = torch.empty(shape, dtype=torch.float32, device=dev)
        buf[..., plan.height - py0 :, :] = runner.pad_value  # no-op when inside the array
        buf[..., plan.width - px0 :] = runner.pad_value
    else:
        buf = torch.full(shape, runner.pad_value, dtype=torch.float32, device=dev)
    for a, ay, ax in parts:  # each host part copied to the device once
        chans = tuple(a) if isinstance(a, tuple | list) else None
        h, w = (chans[0] if chans else a).shape[-2:]
        iy0, iy1 = max(ay, py0), min(ay + h, py1)
        ix0, ix1 = max(ax, px0), min(ax + w, px1)
        if iy1 <= iy0 or ix1 <= ix0:
            continue
        dst = (slice(iy0 - py0, iy1 - py0), slice(ix0 - px0, ix1 - px0))
        src = (slice(iy0 - ay, iy1 - ay), slice(ix0 - ax, ix1 - ax))
        if chans is None:
            buf[(..., *dst)] = to_device(a[(..., *src)], dev)
        else:  # channels given separately: no host-side stacking
            for c, ac in enumerate(chans):
                buf[(c, ..., *dst)] = to_device(ac[(..., *src)], dev)
    buf = runner.prepare(buf)
    acc = None
    for i in range(0, len(origins), batch_size):
        batch = origins[i : i + batch_size]
        views = [buf[..., r - py0 : r - py0 + t, c - px0 : c - px0 + t] for r, c in batch]
        tiles = views[0][None] if len(views) == 1 else torch.stack(views)  # one tile: no copy
        out = runner.forward(tiles)
        if acc is None:
            acc = torch.zeros((*out.shape[1:-2], y1 - y0, x1 - x0), dtype=adt, device=dev)
        for k, (r, c) in enumerate(batch):
            ty0, ty1 = max(y0 - r, 0), min(y1 - r, t)
            tx0, tx1 = max(x0 - c, 0), min(x1 - c, t)
            if ty1 <= ty0 or tx1 <= tx0:
                continue
            sy = slice(r + ty0 - y0, r + ty1 - y0)
            sx = slice(c + tx0 - x0, c + tx1 - x0)
            piece = out[k, ..., ty0:ty1, tx0:tx1]
            wv = wt[ty0:ty1, tx0:tx1]
            acc[..., sy, sx] += piece if ones else piece * wv  # float32 into float64
            wsum[sy, sx] += wv
    return acc, wsum


def _lead(part: Any) -> tuple[int, ...]:
    """Leading dims ``(C, ...)`` of a host part: an array or a tuple of channel arrays."""
    if isinstance(part, tuple | list):
        return (len(part), *part[0].shape[:-2])
    return tuple(part.shape[:-2])


def _grouped(blocks: Sequence[Any], n_channels: int | None) -> list[Any]:
    """Dask hands a task its blocks flat; regroup them ``n_channels`` at a time."""
    if not n_channels:
        return list(blocks)
    return [tuple(blocks[i : i + n_channels]) for i in range(0, len(blocks), n_channels)]


def _blend(acc: Any, wsum: Any) -> Any:
    return (acc / wsum).float()


def run_block(
    x: np.ndarray,
    model: Any,
    plan: TilePlan,
    offset: tuple[int, int] = (0, 0),
    core: tuple[int, int, int, int] | None = None,
    reduce: Reduction | None = None,
    batch_size: int = 1,
    blend: str | np.ndarray = "mean",
    device: str = "cpu",
    acc_dtype: str = "float64",
) -> np.ndarray:
    """Product of the block ``core`` from every plan tile touching it (no neighbours needed).

    Parameters
    ----------
    x
        ``(C, ..., h, w)`` host data (or a tuple of the ``C`` channels ``(..., h, w)``)
        whose ``[..., 0, 0]`` is the global pixel ``offset``; it must hold every pixel of
        the tiles touching ``core`` that lies in the global array (a halo of up to one
        tile).
    model
        A :class:`~firesmoke.inference.model.TileModel` or a callable on numpy batches.
    plan
        The global tile plan.
    core
        Global ``(y0, y1, x0, x1)`` to produce (default: the extent of ``x``).
    reduce
        Per-pixel reduction of the blended stack (default: none).
    batch_size, blend, device
        Tiles per forward pass, blending weights, resolved device string.
    acc_dtype
        Blending accumulator: ``"float64"`` or ``"float16"`` (BA-Net 0.6.7).

    Returns
    -------
    numpy.ndarray
        float32 ``(*out_lead, y1 - y0, x1 - x0)``.
    """

    oy, ox = offset
    if core is None:
        h, w = (x[0] if isinstance(x, tuple | list) else x).shape[-2:]
        core = (oy, oy + h, ox, ox + w)
    return _run_parts([(x, oy, ox)], model, plan, core, reduce, batch_size, blend, device,
                      acc_dtype)


def _run_parts(parts: list[tuple[np.ndarray, int, int]], model: Any, plan: TilePlan,
               core: tuple[int, int, int, int], reduce: Reduction | None, batch_size: int,
               blend: str | np.ndarray, device: str, acc_dtype: str) -> np.ndarray:
    import torch

    runner = _Runner(model, device)
    origins = plan.origins(*core)
    with device_slot(device), torch.inference_mode():
        acc, wsum = accumulate_block(parts, _lead(parts[0][0]), runner, plan, origins, core,
                                     batch_size, blend, acc_dtype)
        if acc is None:
            raise InputError("no tile of the plan touches the block")
        p = _blend(acc, wsum)
        out = reduce(p) if reduce is not None else p
        return out.float().cpu().numpy()


# ----------------------------------------------------------------------------- overlap-add
def _spill_edge(plan_axis: np.ndarray, tile: int, start: int, stop: int) -> int:
    """First row/col of ``[start, stop)`` not reached by tiles whose origin is before ``start``."""
    before = plan_axis[plan_axis < start]
    if before.size == 0:
        return start
    return int(min(max(int(before.max()) + tile, start), stop))


@dataclass(frozen=True)
class _BlockGeometry:
    y0: int
    y1: int
    x0: int
    x1: int
    ey: int  # interior starts at (ey, ex): above/left of it the neighbours' tiles spill in
    ex: int
    ya1: int  # end of the accumulated region of the block's own tiles (clipped to the array)
    xa1: int


def _geometry(plan: TilePlan, y0: int, y1: int, x0: int, x1: int) -> tuple[_BlockGeometry, np.ndarray]:
    rows, cols = plan.rows, plan.cols
    r = rows[(rows >= y0) & (rows < y1)]
    c = cols[(cols >= x0) & (cols < x1)]
    ya1 = min(plan.height, int(r.max()) + plan.tile) if r.size else y1
    xa1 = min(plan.width, int(c.max()) + plan.tile) if c.size else x1
    ya1, xa1 = max(ya1, y1), max(xa1, x1)
    g = _BlockGeometry(y0, y1, x0, x1, _spill_edge(rows, plan.tile, y0, y1),
                       _spill_edge(cols, plan.tile, x0, x1), ya1, xa1)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    return g, np.stack([rr.ravel(), cc.ravel()], axis=1)


def _pieces(g: _BlockGeometry) -> list[tuple[int, int, int, int]]:
    """Rectangles of the accumulated region outside the interior (they partition it)."""
    rects = [(g.y0, g.ey, g.x0, g.xa1), (g.ey, g.ya1, g.x0, g.ex),
             (g.ey, g.y1, g.x1, g.xa1), (g.y1, g.ya1, g.ex, g.xa1)]
    return [q for q in rects if q[1] > q[0] and q[3] > q[2]]


def _first_pass(
    *blocks: np.ndarray,
    origins_of_parts: tuple[tuple[int, int], ...],
    geometry: _BlockGeometry,
    origins: np.ndarray,
    model: Any,
    plan: TilePlan,
    reduce: Reduction,
    batch_size: int,
    blend: str | np.ndarray,
    device: str,
    acc_dtype: str = "float64",
    n_channels: int | None = None,
) -> dict[str, Any]:
    """Run the block's own tiles; reduce the interior; return the border accumulators."""
    import torch

    g = geometry
    runner = _Runner(model, device)
    region = (g.y0, g.ya1, g.x0, g.xa1)
    grouped = _grouped(blocks, n_channels)
    parts = [(b, oy, ox) for b, (oy, ox) in zip(grouped, origins_of_parts, strict=True)]
    lead = _lead(grouped[0])
    with device_slot(device), torch.inference_mode():
        acc, wsum = accumulate_block(parts, lead, runner, plan, origins, region, batch_size,
                                     blend, acc_dtype)
        out: dict[str, Any] = {"interior": None, "pieces": []}
        if acc is None:
            return out
        iy, ix = slice(g.ey - g.y0, g.y1 - g.y0), slice(g.ex - g.x0, g.x1 - g.x0)
        if g.y1 > g.ey and g.x1 > g.ex:
            out["interior"] = reduce(_blend(acc[..., iy, ix], wsum[iy, ix])).float().cpu().numpy()
        for q in _pieces(g):
            sy, sx = slice(q[0] - g.y0, q[1] - g.y0), slice(q[2] - g.x0, q[3] - g.x0)
            out["pieces"].append((q, acc[..., sy, sx].cpu().numpy(), wsum[sy, sx].cpu().numpy()))
    return out


def _second_pass(
    *firsts: dict[str, Any],
    geometry: _BlockGeometry,
    reduce: Reduction,
    out_lead: tuple[int, ...],
) -> np.ndarray:
    """Add the neighbours' spills (order: up-left, up, left, self) to the border strips."""
    import torch

    g = geometry
    out = np.full((*out_lead, g.y1 - g.y0, g.x1 - g.x0), np.nan, np.float32)
    own = firsts[-1]
    if own["interior"] is not None:
        out[..., g.ey - g.y0 :, g.ex - g.x0 :] = own["interior"]
    zones = [(g.y0, g.ey, g.x0, g.x1), (g.ey, g.y1, g.x0, g.ex)]
    with torch.inference_mode():
        for zy0, zy1, zx0, zx1 in zones:
            if zy1 <= zy0 or zx1 <= zx0:
                continue
            acc = wsum = None
            for f in firsts:
                for (qy0, qy1, qx0, qx1), a, w in f["pieces"]:
                    iy0, iy1, ix0, ix1 = max(qy0, zy0), min(qy1, zy1), max(qx0, zx0), min(qx1, zx1)
                    if iy1 <= iy0 or ix1 <= ix0:
                        continue
                    if acc is None:
                        acc = np.zeros((*a.shape[:-2], zy1 - zy0, zx1 - zx0), a.dtype)
                        wsum = np.zeros((zy1 - zy0, zx1 - zx0), w.dtype)
                    dst = (..., slice(iy0 - zy0, iy1 - zy0), slice(ix0 - zx0, ix1 - zx0))
                    src = (..., slice(iy0 - qy0, iy1 - qy0), slice(ix0 - qx0, ix1 - qx0))
                    acc[dst] += a[src]
                    wsum[dst[1:]] += w[src[1:]]
            if acc is None:
                continue
            p = _blend(torch.from_numpy(acc), torch.from_numpy(wsum))
            out[..., zy0 - g.y0 : zy1 - g.y0, zx0 - g.x0 : zx1 - g.x0] = reduce(p).float().numpy()
    return out


def _merge_small_chunks(chunks: Sequence[int], minimum: int) -> tuple[int, ...]:
    """Merge chunks smaller than ``minimum`` into a neighbour (spills must stay adjacent)."""
    out: list[int] = []
    for c in chunks:
        if out and (out[-1] < minimum or c < minimum):
            out[-1] += c
        else:
            out.append(c)
    return tuple(out)


# ----------------------------------------------------------------------------- task grid
def _group_floor(plan: TilePlan) -> int:
    """Fewest tile origins per task along an axis so that a task's tiles spill only into
    the next task (a tile reaches ``tile`` px, a task of ``k`` origins spans ``k * step``)."""
    return max(1, math.ceil(plan.tile / plan.step) - 1)


def _spills_stay_adjacent(bounds: Sequence[int], origins: np.ndarray, tile: int,
                          length: int) -> bool:
    """Whether the tiles whose origin lies in each ``[bounds[i], bounds[i+1])`` reach no
    further than the next interval (what the two-pass overlap-add needs)."""
    for i in range(len(bounds) - 2):
        o = origins[(origins >= bounds[i]) & (origins < bounds[i + 1])]
        if o.size and min(length, int(o.max()) + tile) > bounds[i + 2]:
            return False
    return True


def _split_axis(bounds: Sequence[int], origins: np.ndarray, groups: int, floor: int,
                tile: int, length: int) -> list[int]:
    """Boundaries of ``bounds`` with each interval split, at tile origins, into up to
    ``groups`` runs of consecutive origins (at least ``floor`` each, sizes balanced);
    ``bounds`` unchanged when the split would let a spill skip a task."""
    out = [int(bounds[0])]
    for a, b in itertools.pairwise(bounds):
        o = origins[(origins >= a) & (origins < b)]
        n = max(1, min(groups, len(o) // floor))
        out += [int(part[0]) for part in np.array_split(o, n)[1:]]
        out.append(int(b))
    if not _spills_stay_adjacent(out, origins, tile, length):
        return [int(v) for v in bounds]
    return out


def _origin_counts(bounds: Sequence[int], origins: np.ndarray) -> list[int]:
    return [int(((origins >= a) & (origins < b)).sum()) for a, b in itertools.pairwise(bounds)]


def _task_splits(target: int, n_blocks: int, max_y: int, max_x: int) -> tuple[int, int]:
    """Groups per block along y and x: the fewest tasks reaching ``target`` over the
    ``n_blocks`` blocks (squarest first), or as many as the tiles allow."""
    need = math.ceil(max(1, target) / max(1, n_blocks))
    if need <= 1:
        return 1, 1
    best: tuple[int, int] | None = None
    for gy in range(1, max_y + 1):
        gx = min(max_x, math.ceil(need / gy))
        if gy * gx < need:
            continue
        key = (gy * gx, abs(gy - gx))
        if best is None or key < (best[0] * best[1], abs(best[0] - best[1])):
            best = (gy, gx)
    return best if best is not None else (max_y, max_x)


def task_grid(plan: TilePlan, ych: Sequence[int], xch: Sequence[int],
              tasks: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spatial chunks of the inference tasks: the data chunks ``ych`` x ``xch`` split at
    tile origins until there are about ``tasks`` first-pass tasks (the tiles of a block
    shared among several tasks, so that a region of one or few chunks still keeps every
    worker busy). ``tasks=None`` or ``1``: the data chunks. A refinement of the data
    chunks; each tile of ``plan`` still belongs to exactly one task.
    """
    if not tasks or tasks <= 1:
        return tuple(ych), tuple(xch)
    ys = [0, *np.cumsum(ych).tolist()]
    xs = [0, *np.cumsum(xch).tolist()]
    floor = _group_floor(plan)
    max_y = max(1, max(_origin_counts(ys, plan.rows)) // floor)
    max_x = max(1, max(_origin_counts(xs, plan.cols)) // floor)
    gy, gx = _task_splits(int(tasks), len(ych) * len(xch), max_y, max_x)
    ty = _split_axis(ys, plan.rows, gy, floor, plan.tile, plan.height)
    tx = _split_axis(xs, plan.cols, gx, floor, plan.tile, plan.width)
    return tuple(np.diff(ty).tolist()), tuple(np.diff(tx).tolist())


def _chunks_meeting(bounds: np.ndarray, lo: int, hi: int) -> list[int]:
    """Indices of the chunks ``[bounds[k], bounds[k+1])`` that meet ``[lo, hi)``."""
    return [k for k in range(len(bounds) - 1) if bounds[k] < hi and bounds[k + 1] > lo]


def predict_blocks(
    array: Any,
    model: Any,
    plan: TilePlan,
    reduce: Reduction,
    out_lead: tuple[int, ...],
    batch_size: int,
    blend: str | np.ndarray,
    device: str,
    acc_dtype: str = "float64",
    plan_order: bool = False,
    tasks: int | None = None,
) -> Any:
    """Overlap-add over a dask array ``(C, ..., H, W)`` -> ``(*out_lead, H, W)`` float32.

    ``array`` may also be a list of the ``C`` channels, dask arrays ``(..., H, W)`` of
    the same shape: their blocks are copied straight into the device buffer, which saves
    the host copy that stacking them into one array costs (e.g. the bands of a cube).
    Spatial chunks smaller than a tile are merged with a neighbour (the channels are
    rechunked alike); leading dims are made whole. Each tile of ``plan`` is run once (by
    the block holding its origin).
    ``plan_order=True`` instead runs, for each block, every tile touching it and adds
    them in plan order (as one pass over the whole array would: what float16 blending
    needs to be reproducible), at the price of running tiles near block edges twice.

    ``tasks``: about how many inference tasks to make (e.g. a few per worker thread of
    the cluster; see :func:`firesmoke.inference.cluster.task_target`): the tiles of a
    block are then shared among several tasks (:func:`task_grid`), each reading the
    parts of the blocks its tiles need; the result is rechunked to the data's chunks and
    is the same whatever ``tasks``. ``None``/``1``: one task per block. Not used with
    ``plan_order``.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    split = isinstance(array, list | tuple)
    arrs = [da.asarray(a) for a in array] if split else [da.asarray(array)]
    if split and len({a.shape for a in arrs}) != 1:
        raise InputError(f"the channels differ in shape: {[a.shape for a in arrs]}")
    nd = arrs[0].ndim
    ych = _merge_small_chunks(arrs[0].chunks[-2], plan.tile)
    xch = _merge_small_chunks(arrs[0].chunks[-1], plan.tile)
    arrs = [a.rechunk({**{i: -1 for i in range(nd - 2)}, nd - 2: ych, nd - 1: xch})
            for a in arrs]
    n_channels = len(arrs) if split else None
    ys = np.concatenate([[0], np.cumsum(ych)]).astype(int)
    xs = np.concatenate([[0], np.cumsum(xch)]).astype(int)
    ny, nx = len(ych), len(xch)
    token = tokenize([a.name for a in arrs], model, plan, reduce, out_lead, batch_size, blend,
                     device)
    first, name = f"engine-tiles-{token}", f"engine-blend-{token}"
    zero_lead = (0,) * (nd - 2)
    zero_out = (0,) * len(out_lead)

    def block_keys(bi: int, bj: int) -> list[tuple[Any, ...]]:
        return [(a.name, *zero_lead, bi, bj) for a in arrs]

    chunks = (*((n,) for n in out_lead), ych, xch)
    meta = np.empty((0,) * (len(out_lead) + 2), np.float32)
    dsk: dict[Any, Any] = {}
    if plan_order:
        for i, j in itertools.product(range(ny), range(nx)):
            core = (int(ys[i]), int(ys[i + 1]), int(xs[j]), int(xs[j + 1]))
            keys, offs = [], []
            for bi, bj in itertools.product((i - 1, i, i + 1), (j - 1, j, j + 1)):
                if 0 <= bi < ny and 0 <= bj < nx:
                    keys += block_keys(bi, bj)
                    offs.append((int(ys[bi]), int(xs[bj])))
            fn = _partial(_halo_task, offsets=tuple(offs), model=model, plan=plan, core=core,
                          reduce=reduce, batch_size=batch_size, blend=blend, device=device,
                          acc_dtype=acc_dtype, n_channels=n_channels)
            dsk[(name, *zero_out, i, j)] = (fn, *keys)
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=arrs)
        return da.Array(graph, name, chunks=chunks, dtype=np.float32, meta=meta)
    tych, txch = task_grid(plan, ych, xch, tasks)
    if (tych, txch) != (ych, xch):
        first, name = f"{first}-t{len(tych)}x{len(txch)}", f"{name}-t{len(tych)}x{len(txch)}"
        chunks = (*((n,) for n in out_lead), tych, txch)
    tys = np.concatenate([[0], np.cumsum(tych)]).astype(int)
    txs = np.concatenate([[0], np.cumsum(txch)]).astype(int)
    nty, ntx = len(tych), len(txch)
    geoms = {}
    for i, j in itertools.product(range(nty), range(ntx)):
        g, origins = _geometry(plan, int(tys[i]), int(tys[i + 1]), int(txs[j]),
                               int(txs[j + 1]))
        geoms[i, j] = g
        keys, offs = [], []
        # the data blocks that hold the task's tiles: its own area and what its tiles reach
        for bi, bj in itertools.product(_chunks_meeting(ys, g.y0, g.ya1),
                                        _chunks_meeting(xs, g.x0, g.xa1)):
            keys += block_keys(bi, bj)
            offs.append((int(ys[bi]), int(xs[bj])))
        fn = _partial(_first_pass, origins_of_parts=tuple(offs), geometry=g, origins=origins,
                      model=model, plan=plan, reduce=reduce, batch_size=batch_size,
                      blend=blend, device=device, acc_dtype=acc_dtype,
                      n_channels=n_channels)
        dsk[(first, i, j)] = (fn, *keys)
    for i, j in itertools.product(range(nty), range(ntx)):
        deps = [(first, a, b) for a, b in ((i - 1, j - 1), (i - 1, j), (i, j - 1), (i, j))
                if a >= 0 and b >= 0]
        fn = _partial(_second_pass, geometry=geoms[i, j], reduce=reduce, out_lead=out_lead)
        dsk[(name, *zero_out, i, j)] = (fn, *deps)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=arrs)
    out = da.Array(graph, name, chunks=chunks, dtype=np.float32, meta=meta)
    if (nty, ntx) != (ny, nx):  # back to the data's chunks (a refinement: concatenations)
        out = out.rechunk({out.ndim - 2: ych, out.ndim - 1: xch})
    return out


def _halo_task(*blocks: np.ndarray, offsets: tuple[tuple[int, int], ...], model: Any,
               plan: TilePlan, core: tuple[int, int, int, int], reduce: Reduction,
               batch_size: int, blend: str | np.ndarray, device: str,
               acc_dtype: str, n_channels: int | None = None) -> np.ndarray:
    grouped = _grouped(blocks, n_channels)
    parts = [(b, oy, ox) for b, (oy, ox) in zip(grouped, offsets, strict=True)]
    return _run_parts(parts, model, plan, core, reduce, batch_size, blend, device, acc_dtype)


def _partial(fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    import functools

    return functools.partial(fn, **kwargs)
