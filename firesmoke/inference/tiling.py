"""Tile plans, halos and blending weights (pure numpy).

A tile plan is anchored to the *global* grid: tile origins are the multiples of ``step``
from 0 up to the first origin whose tile reaches the far edge (zero padding beyond the
edge, as the BA-Net reference). Because the plan depends only on the global array size,
processing a block of a chunked array with a halo of ``tile`` pixels, using only the
plan's tiles that touch the block, gives exactly the same result as one pass over the
whole array: results do not depend on chunking.

Following xbatcher, the plan (indices) is computed first and data are loaded second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from firesmoke.errors import InputError

__all__ = [
    "PLAN_RULES",
    "TilePlan",
    "accumulate_tiles",
    "blend_weights",
    "tile_origins",
]


PLAN_RULES = ("firesmoke", "reference")


def tile_origins(length: int, tile: int, step: int, rule: str = "firesmoke") -> np.ndarray:
    """Origins ``0, step, 2*step, ...`` of the tiles covering ``[0, length)``.

    ``rule="firesmoke"`` (default): up to the first origin whose tile reaches the far edge
    (the last tile may extend beyond ``length``, zero padded); ``length <= tile`` gives a
    single tile at 0. ``rule="reference"`` (BA-Net 0.6.7): every multiple of ``step``
    below ``length - 1``, i.e. ``range(0, length - 1, step)``; when ``length mod step``
    is 2 .. ``tile - step`` this adds one more tile, made mostly of padding, whose real
    pixels are already covered by the previous tile (see docs/compatibility.md).

    >>> tile_origins(300, 128, 100).tolist()
    [0, 100, 200]
    >>> tile_origins(128, 128, 100).tolist()
    [0]
    >>> tile_origins(128, 128, 100, rule="reference").tolist()
    [0, 100]
    """
    if tile <= 0 or step <= 0:
        raise InputError(f"tile and step must be positive, got tile={tile}, step={step}")
    if step > tile:
        raise InputError(f"step ({step}) larger than tile ({tile}) would leave gaps")
    if rule not in PLAN_RULES:
        raise InputError(f"unknown tile plan rule {rule!r}; use one of {PLAN_RULES}")
    if length <= 0:
        return np.zeros(0, dtype=np.int64)
    if rule == "reference":
        return np.arange(0, max(length - 1, 1), step, dtype=np.int64)
    n = math.ceil(max(length - tile, 0) / step) + 1
    return np.arange(n, dtype=np.int64) * step


def blend_weights(tile: int, kind: str = "mean", floor: float = 1e-3) -> np.ndarray:
    """2-D weights used to blend overlapping tiles.

    Parameters
    ----------
    tile
        Tile size in pixels.
    kind
        ``"mean"``: all ones (plain average of overlaps, the reference behaviour);
        ``"centre"``: a separable raised-cosine blend that down-weights tile borders,
        where a CNN sees least context (no seams).
    floor
        Smallest weight of the centre blend, so that pixels covered only by tile
        borders (region edges) still get a value.
    """
    if kind == "mean":
        return np.ones((tile, tile), dtype=np.float32)
    if kind in ("centre", "center"):
        pos = (np.arange(tile) + 0.5) / tile
        w1 = np.sin(np.pi * pos) ** 2
        w1 = np.maximum(w1, floor)
        return np.outer(w1, w1).astype(np.float32)
    raise InputError(f"unknown blend {kind!r}; use 'mean' or 'centre'")


@dataclass(frozen=True)
class TilePlan:
    """The tiles of a ``height x width`` array.

    Attributes
    ----------
    height, width
        Size of the whole (global) array.
    tile, step
        Tile size and distance between tile origins.
    rule
        ``"firesmoke"`` or ``"reference"`` (see :func:`tile_origins`).
    """

    height: int
    width: int
    tile: int = 128
    step: int = 100
    rule: str = "firesmoke"

    @property
    def rows(self) -> np.ndarray:
        return tile_origins(self.height, self.tile, self.step, self.rule)

    @property
    def cols(self) -> np.ndarray:
        return tile_origins(self.width, self.tile, self.step, self.rule)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Shape that holds every tile (the array zero padded at the bottom/right)."""
        return (int(self.rows[-1]) + self.tile, int(self.cols[-1]) + self.tile)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def origins(
        self, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None
    ) -> np.ndarray:
        """Origins ``(n, 2)`` of the tiles that overlap rows ``y0:y1`` and cols ``x0:x1``."""
        y1 = self.height if y1 is None else y1
        x1 = self.width if x1 is None else x1
        r = self.rows
        c = self.cols
        r = r[(r < y1) & (r + self.tile > y0)]
        c = c[(c < x1) & (c + self.tile > x0)]
        rr, cc = np.meshgrid(r, c, indexing="ij")
        return np.stack([rr.ravel(), cc.ravel()], axis=1)

    def redundancy(self) -> float:
        """Computed pixels per output pixel (1.0 = no overlap)."""
        return len(self) * self.tile**2 / (self.height * self.width)


def _batches(items: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def accumulate_tiles(
    array: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    plan: TilePlan,
    offset: tuple[int, int] = (0, 0),
    core: tuple[int, int, int, int] | None = None,
    batch_size: int = 8,
    blend: str | np.ndarray = "mean",
    out_channels: int | None = None,
) -> np.ndarray:
    """Run ``predict`` over the plan's tiles that touch ``core`` and blend them.

    Parameters
    ----------
    array
        ``(..., h, w)`` data of a rectangle of the global array; its element ``[..., 0, 0]``
        is the global pixel ``offset``. Everything outside ``array`` is treated as zero
        (zero padding), so ``array`` must contain every pixel of every needed tile that
        lies inside the global array (give a halo of ``tile`` pixels around ``core``).
    predict
        Maps a batch ``(n, ..., tile, tile)`` to ``(n, ..., tile, tile)`` outputs
        (leading output dims may differ from the input's, e.g. channels -> classes).
    plan
        The global :class:`TilePlan`.
    offset
        Global ``(row, col)`` of ``array[..., 0, 0]``.
    core
        Global ``(y0, y1, x0, x1)`` to produce; default: the whole ``array`` extent.
    batch_size
        Tiles per call of ``predict``.
    blend
        ``"mean"``, ``"centre"`` or a ``(tile, tile)`` weight array.

    Returns
    -------
    numpy.ndarray
        ``(..., y1 - y0, x1 - x0)`` float32 blended outputs for ``core``.
    """
    oy, ox = offset
    h, w = array.shape[-2:]
    if core is None:
        core = (oy, oy + h, ox, ox + w)
    y0, y1, x0, x1 = core
    t = plan.tile
    weights = blend_weights(t, blend) if isinstance(blend, str) else np.asarray(blend, np.float32)
    origins = plan.origins(y0, y1, x0, x1)
    lead = array.shape[:-2]
    acc: np.ndarray | None = None
    wsum = np.zeros((y1 - y0, x1 - x0), dtype=np.float64)

    for batch in _batches(origins, batch_size):
        tiles = np.zeros((len(batch), *lead, t, t), dtype=array.dtype)
        for i, (r, c) in enumerate(batch):
            # intersection of the tile with the data given, in its coordinates
            ry0, ry1 = max(r - oy, 0), min(r + t - oy, h)
            rx0, rx1 = max(c - ox, 0), min(c + t - ox, w)
            if ry1 > ry0 and rx1 > rx0:
                tiles[i, ..., ry0 - (r - oy) : ry1 - (r - oy), rx0 - (c - ox) : rx1 - (c - ox)] = (
                    array[..., ry0:ry1, rx0:rx1]
                )
        out = np.asarray(predict(tiles))
        if acc is None:
            out_lead = out.shape[1:-2]
            acc = np.zeros((*out_lead, y1 - y0, x1 - x0), dtype=np.float64)
        for i, (r, c) in enumerate(batch):
            # intersection of the tile with the core, in tile coordinates
            ty0, ty1 = max(y0 - r, 0), min(y1 - r, t)
            tx0, tx1 = max(x0 - c, 0), min(x1 - c, t)
            if ty1 <= ty0 or tx1 <= tx0:
                continue
            wv = weights[ty0:ty1, tx0:tx1]
            sl = (..., slice(r + ty0 - y0, r + ty1 - y0), slice(c + tx0 - x0, c + tx1 - x0))
            acc[sl] += out[i, ..., ty0:ty1, tx0:tx1] * wv
            wsum[sl[1:]] += wv
    if acc is None:
        shape = ((out_channels,) if out_channels else lead) + (y1 - y0, x1 - x0)
        return np.full(shape, np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (acc / wsum).astype(np.float32)
