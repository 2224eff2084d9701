"""Training samples for BA-Net read straight from Zarr datacubes and target cubes.

No tile files are written: a sample ``(T days, P x P px)`` is cut from the cube
(:func:`firesmoke.cube.build.open_cube`) and from the daily burned-fraction targets
(``bafrac``, :func:`write_targets` / :func:`open_targets`) when it is drawn, so only the
Zarr chunks it overlaps are read.

Sampling follows the BA-Net reference (reference/banet.md): sequences are taken where
the targets hold burned pixels, i.e. whose burned-fraction sum exceeds a threshold
(10), with a share of samples drawn uniformly among all candidates (20 % by default) so
that unburned scenes are seen too. To know the burned-fraction sum of every candidate
cheaply:

1. candidate origins ``(t0, y0, x0)`` lie on a grid of *cells* of ``t_stride`` days x
   ``stride`` px anchored at the cube origin (the origin of the first Zarr chunk), and
   the sample size is a whole number of cells;
2. the per-cell sums of ``bafrac`` (and counts of observed target pixels) are computed
   once, chunk by chunk (:func:`cell_sums`, memory bounded by one chunk);
3. the sum over any candidate is then a box sum over the cell table (a summed-volume
   table), for all candidates at once.

Windows are drawn by index: draw ``k`` uses the generator ``(seed, k)``
(:func:`firesmoke.train.common.step_rng`), so a run is reproducible, draws can be made
in any order or in parallel workers, and a training run resumed at step ``s`` continues
with exactly the samples an uninterrupted run would have used.

With ``rule="reference"`` the sampler follows the reference software exactly as
banet.md's "Details confirmed from the reference code" describes it: an *anchor* is one
tile-day (a ``patch`` x ``patch`` tile on one day) whose target sum exceeds
``threshold`` (10); the sample starts ``seq_len // 2`` (32) days before the anchor, the
day ``seq_len`` days after the anchor must exist, and draws are uniform among anchors
(no uniform share, no jitter, no minimum share of observed targets). Tile origins are
the sampler's ``stride`` grid.

Validation splits never overlap training samples:

* by region: give the validation cubes as other :class:`CubeSource` objects;
* by time (leave one year out): ``exclude=(start, end)`` for the training sampler drops
  every candidate with any day in the held-out period, ``period=(start, end)`` for the
  validation sampler keeps only candidates entirely inside it (:func:`time_split`).

Samples are float32: ``x`` ``(4, T, P, P)`` Red, NIR, MIR, FRP with NaN -> 0 and the
BA-Net normalisation; ``y`` ``(1, T, P, P)`` soft ``bafrac`` targets with NaN -> 0 and
``mask`` ``(1, T, P, P)`` (1 where the target was observed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from firesmoke.errors import InputError
from firesmoke.models.normalization import BANET, Normalization
from firesmoke.train.common import step_rng
from firesmoke.train.sources import (
    TARGET_VARIABLE,
    CubeSource,
    box_sums,
    cell_sums,
    open_source,
    open_targets,
    write_targets,
)

# CubeSource, cell_sums, open_source, open_targets, write_targets live in
# firesmoke.train.sources and stay importable from here.
__all__ = [
    "SAMPLER_RULES",
    "TARGET_VARIABLE",
    "BANetSamples",
    "CubeSource",
    "Sample",
    "TrainingSampler",
    "cell_sums",
    "normalize",
    "open_source",
    "open_targets",
    "time_split",
    "write_targets",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sampler
#: Sampling rules of :class:`TrainingSampler`; the first is the default.
SAMPLER_RULES = ("firesmoke", "reference")

_DTYPE = [("source", np.int32), ("t0", np.int32), ("y0", np.int32), ("x0", np.int32),
          ("burned", np.float64), ("valid", np.float64)]


@dataclass(frozen=True)
class Sample:
    """One training sample: source index, origin and the burned-fraction sum inside."""

    source: int
    t0: int
    y0: int
    x0: int
    burned: float


def _as_day_range(value: Any, what: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if value is None:
        return None
    try:
        a, b = value
        a, b = pd.Timestamp(a).normalize(), pd.Timestamp(b).normalize()
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a (start, end) pair of dates: {exc}", field=what) from exc
    if b < a:
        raise InputError(f"{what}: end {b.date()} is before start {a.date()}", field=what)
    return a, b


def normalize(x: np.ndarray, norm: Normalization = BANET) -> np.ndarray:
    """``(nan_to_num(x) - mean) / std`` on the first axis of a ``(C, ...)`` float32 array."""
    x = np.nan_to_num(np.asarray(x, np.float32), nan=norm.nan_fill or 0.0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    mean = np.asarray(norm.mean, np.float32).reshape(shape)
    std = np.asarray(norm.std, np.float32).reshape(shape)
    return (x - mean) / std


def _read(arr: Any, sl: tuple[slice, ...]) -> np.ndarray:
    import dask.array as da

    part = arr[sl]
    if isinstance(part, da.Array):
        return np.asarray(part.compute(scheduler="synchronous"))
    return np.asarray(part)


class TrainingSampler:
    """Index of candidate samples over cubes and a seeded rule to draw them.

    Parameters
    ----------
    sources
        :class:`CubeSource` objects (or ``(cube, targets)`` pairs for :func:`open_source`).
    seq_len
        Days per sample ``T`` (multiple of 16; 64 in the reference).
    patch
        Sample side ``P`` in pixels (multiple of 32; 128 in the reference).
    stride
        Spacing of candidate origins in pixels (a divisor of ``patch``); default
        ``patch // 2``. Choose a divisor of the Zarr chunk size so that the cell grid
        follows the chunk grid.
    t_stride
        Spacing of candidate origins in days (a divisor of ``seq_len``), default 8.
    threshold
        A sample is "burned" when its burned-fraction sum exceeds this (reference 10).
    random_share
        Share of draws taken uniformly among all candidates (burned or not); the rest
        are drawn uniformly among burned candidates.
    min_valid
        Minimum share of observed (finite) target pixel-days in a candidate.
    period
        Keep only candidates whose days all lie in ``[start, end]`` (validation split).
    exclude
        Drop candidates with any day in ``[start, end]`` (training split).
    jitter
        Move each drawn sample by a random offset of up to half a stride (clipped to the
        cube), for more positional variety. The burned sum of a jittered sample is the
        candidate's (approximately).
    seed
        Seed of the draws.
    norm
        Input normalisation (default the BA-Net constants).
    rule
        ``"firesmoke"`` (default): sample sums as above; ``"reference"``: the reference
        software's anchor tile-days (see the module docstring; ``t_stride``,
        ``random_share``, ``min_valid`` and ``jitter`` are not used).
    """

    def __init__(
        self,
        sources: Sequence[CubeSource | tuple[Any, Any]],
        seq_len: int = 64,
        patch: int = 128,
        stride: int | None = None,
        t_stride: int = 8,
        threshold: float = 10.0,
        random_share: float = 0.2,
        min_valid: float = 0.5,
        period: Any = None,
        exclude: Any = None,
        jitter: bool = False,
        seed: int = 0,
        norm: Normalization = BANET,
        rule: str = "firesmoke",
    ) -> None:
        if rule not in SAMPLER_RULES:
            raise InputError(f"unknown sampler rule {rule!r}; choose from {SAMPLER_RULES}",
                             field="rule")
        self.rule = rule
        if rule == "reference":
            random_share, jitter = 0.0, False
        if seq_len <= 0 or seq_len % 16:
            raise InputError(f"seq_len must be a positive multiple of 16, got {seq_len}",
                             field="seq_len")
        if patch <= 0 or patch % 32:
            raise InputError(f"patch must be a positive multiple of 32, got {patch}", field="patch")
        stride = patch // 2 if stride is None else int(stride)
        if stride <= 0 or patch % stride:
            raise InputError(f"stride {stride} must divide patch {patch}", field="stride")
        if t_stride <= 0 or seq_len % t_stride:
            raise InputError(f"t_stride {t_stride} must divide seq_len {seq_len}",
                             field="t_stride")
        if not 0.0 <= random_share <= 1.0:
            raise InputError("random_share must be in [0, 1]", field="random_share")
        self.sources = [s if isinstance(s, CubeSource) else open_source(*s) for s in sources]
        if not self.sources:
            raise InputError("no training cubes given", field="cubes")
        self.seq_len, self.patch, self.stride, self.t_stride = seq_len, patch, stride, t_stride
        self.threshold, self.random_share, self.min_valid = float(threshold), float(
            random_share), float(min_valid)
        self.period = _as_day_range(period, "period")
        self.exclude = _as_day_range(exclude, "exclude")
        self.jitter = bool(jitter)
        self.seed = int(seed)
        self.norm = norm
        self.candidates = self._index()
        self.burned_ids = np.flatnonzero(self.candidates["burned"] > self.threshold)
        if len(self.candidates) == 0:
            raise InputError(
                f"no {seq_len}-day x {patch} px sample fits the cubes with the given split "
                f"(cube shapes {[s.shape for s in self.sources]})", field="cubes")
        if len(self.burned_ids) == 0:
            logger.warning("no sample has a burned-fraction sum above %g; drawing uniformly",
                           self.threshold)
        logger.info("%d candidate samples, %d burned (sum > %g)", len(self.candidates),
                    len(self.burned_ids), self.threshold)

    # -- index ---------------------------------------------------------------------
    def _keep_days(self, src: CubeSource, t0: np.ndarray) -> np.ndarray:
        """Candidates whose days respect ``period`` / ``exclude``."""
        times = src.times
        first = times[t0]
        last = times[t0 + self.seq_len - 1]
        keep = np.ones(len(t0), bool)
        if self.period is not None:
            keep &= (first >= self.period[0]) & (last <= self.period[1])
        if self.exclude is not None:
            keep &= (last < self.exclude[0]) | (first > self.exclude[1])
        return keep

    def _index_anchors(self, i: int, src: CubeSource) -> np.ndarray:
        """The reference's candidates: every tile-day (anchor) with its target sum."""
        nt, ny, nx = src.shape
        before = self.seq_len // 2
        sums, _ = cell_sums(src.targets, (1, self.stride, self.stride))
        my = (ny - self.patch) // self.stride + 1
        mx = (nx - self.patch) // self.stride + 1
        day_sums = box_sums(sums, (1, self.patch // self.stride,
                                   self.patch // self.stride))[:, :my, :mx]
        # anchor a: sample from a - before; the day a + seq_len must exist
        anchors = np.arange(before, nt - self.seq_len)
        ia, iy, ix = np.meshgrid(anchors, np.arange(my), np.arange(mx), indexing="ij")
        rec = np.empty(ia.size, dtype=_DTYPE)
        rec["source"] = i
        rec["t0"] = ia.ravel() - before
        rec["y0"] = iy.ravel() * self.stride
        rec["x0"] = ix.ravel() * self.stride
        rec["burned"] = day_sums[ia.ravel(), iy.ravel(), ix.ravel()]
        rec["valid"] = 1.0
        return rec[self._keep_days(src, rec["t0"])]

    def _index(self) -> np.ndarray:
        dtype = _DTYPE
        parts = []
        cell = (self.t_stride, self.stride, self.stride)
        size = (self.seq_len // self.t_stride, self.patch // self.stride,
                self.patch // self.stride)
        for i, src in enumerate(self.sources):
            nt, ny, nx = src.shape
            if nt < self.seq_len or ny < self.patch or nx < self.patch:
                logger.warning("cube %s %s is smaller than a sample (%d days, %d px); skipped",
                               src.name, src.shape, self.seq_len, self.patch)
                continue
            if self.rule == "reference":
                if nt <= self.seq_len + self.seq_len // 2:
                    logger.warning("cube %s has %d days: too few for a reference anchor", src.name, nt)
                    continue
                parts.append(self._index_anchors(i, src))
                continue
            sums, counts = cell_sums(src.targets, cell)
            # candidates: sample made of whole cells and fully inside the cube
            mt = (nt - self.seq_len) // self.t_stride + 1
            my = (ny - self.patch) // self.stride + 1
            mx = (nx - self.patch) // self.stride + 1
            burned = box_sums(sums, size)[:mt, :my, :mx]
            valid = box_sums(counts.astype(np.float64), size)[:mt, :my, :mx]
            valid = valid / float(self.seq_len * self.patch * self.patch)
            it, iy, ix = np.meshgrid(np.arange(mt), np.arange(my), np.arange(mx), indexing="ij")
            rec = np.empty(it.size, dtype=dtype)
            rec["source"] = i
            rec["t0"] = it.ravel() * self.t_stride
            rec["y0"] = iy.ravel() * self.stride
            rec["x0"] = ix.ravel() * self.stride
            rec["burned"] = burned.ravel()
            rec["valid"] = valid.ravel()
            keep = (rec["valid"] >= self.min_valid) & self._keep_days(src, rec["t0"])
            parts.append(rec[keep])
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    def __len__(self) -> int:
        return len(self.candidates)

    def sample_days(self, w: Sample) -> pd.DatetimeIndex:
        """Days covered by a sample."""
        return self.sources[w.source].times[w.t0 : w.t0 + self.seq_len]

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to recreate the draws (plain data)."""
        return {"seed": self.seed, "rule": self.rule, "n_candidates": len(self.candidates),
                "n_burned": len(self.burned_ids), "seq_len": self.seq_len, "patch": self.patch,
                "threshold": self.threshold, "random_share": self.random_share}

    # -- drawing -------------------------------------------------------------------
    def draw(self, k: int, rng: np.random.Generator | None = None) -> Sample:
        """Sample of draw number ``k`` (deterministic for the sampler's seed)."""
        rng = step_rng(self.seed, k) if rng is None else rng
        c = self.candidates
        if len(self.burned_ids) and rng.random() >= self.random_share:
            j = int(self.burned_ids[rng.integers(len(self.burned_ids))])
        else:
            j = int(rng.integers(len(c)))
        rec = c[j]
        t0, y0, x0 = int(rec["t0"]), int(rec["y0"]), int(rec["x0"])
        if self.jitter:
            nt, ny, nx = self.sources[int(rec["source"])].shape
            ht, hs = self.t_stride // 2, self.stride // 2
            dt_, dy, dx = (int(v) for v in rng.integers([-ht, -hs, -hs], [ht + 1, hs + 1, hs + 1]))
            t0 = int(np.clip(t0 + dt_, 0, nt - self.seq_len))
            if self.period is not None or self.exclude is not None:
                t0 = int(rec["t0"])  # never move a sample across a split boundary
            y0 = int(np.clip(y0 + dy, 0, ny - self.patch))
            x0 = int(np.clip(x0 + dx, 0, nx - self.patch))
        return Sample(int(rec["source"]), t0, y0, x0, float(rec["burned"]))

    def samples(self, n: int, seed: int | None = None) -> list[Sample]:
        """``n`` distinct samples drawn with the sampler's rule (e.g. a validation set).

        With fewer than ``n`` candidates, all candidates are returned (burned first).
        """
        s = self.seed if seed is None else int(seed)
        if n >= len(self.candidates):
            order = np.argsort(-self.candidates["burned"], kind="stable")
            return [self._sample(int(j)) for j in order]
        out: dict[tuple[int, int, int, int], Sample] = {}
        k = 0
        while len(out) < n and k < 50 * n:
            w = self.draw(k, step_rng(s, k, 7))
            out.setdefault((w.source, w.t0, w.y0, w.x0), w)
            k += 1
        return list(out.values())

    def _sample(self, j: int) -> Sample:
        r = self.candidates[j]
        return Sample(int(r["source"]), int(r["t0"]), int(r["y0"]), int(r["x0"]),
                      float(r["burned"]))

    # -- reading -------------------------------------------------------------------
    def read_raw(self, w: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Raw inputs ``(4, T, P, P)`` (physical units, NaN kept) and targets ``(T, P, P)``.

        Only the Zarr chunks overlapping the sample are read.
        """
        src = self.sources[w.source]
        sl = (slice(w.t0, w.t0 + self.seq_len), slice(w.y0, w.y0 + self.patch),
              slice(w.x0, w.x0 + self.patch))
        x = np.stack([_read(src.cube[b].data, sl).astype(np.float32, copy=False)
                      for b in self.norm.bands])
        y = _read(src.targets.data, sl).astype(np.float32, copy=False)
        return x, y

    def read(self, w: Sample) -> dict[str, np.ndarray]:
        """Model-ready ``x`` (normalised), ``y`` (NaN -> 0) and ``mask`` of a sample."""
        x, y = self.read_raw(w)
        return _finish(x, y, self.norm)


def _finish(x: np.ndarray, y: np.ndarray, norm: Normalization,
            augment: Callable[..., Any] | None = None,
            rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    mask = np.isfinite(y)[None]
    x = np.nan_to_num(x, nan=norm.nan_fill or 0.0)
    y = np.nan_to_num(y, nan=0.0)[None]
    if augment is not None:
        x, y, mask = augment(x, y, mask, rng)
    return {
        "x": np.ascontiguousarray(normalize(x, norm), np.float32),
        "y": np.ascontiguousarray(np.clip(y, 0.0, 1.0), np.float32),
        "mask": np.ascontiguousarray(mask, np.float32),
    }


def time_split(val_start: Any, val_end: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments of the training and validation samplers of a time split.

    ``TrainingSampler(src, **train_kw)`` never draws a sample touching
    ``[val_start, val_end]``; ``TrainingSampler(src, **val_kw)`` draws only inside it.
    """
    rng = (val_start, val_end)
    return {"exclude": rng}, {"period": rng}


# --------------------------------------------------------------------------- torch


class BANetSamples(torch.utils.data.Dataset):
    """Map-style :class:`torch.utils.data.Dataset` of sampled samples.

    Item ``k`` is draw ``k`` of the sampler, augmented with the generator
    ``(seed, k, 1)``; items are independent of each other and of the order in which
    they are read (safe with DataLoader workers and resume).

    Parameters
    ----------
    sampler
        A :class:`TrainingSampler`.
    length
        Number of items (e.g. ``steps x batch_size``).
    augment
        Optional ``augment(x, y, mask, rng) -> (x, y, mask)`` on raw arrays
        (:class:`firesmoke.train.augment_banet.BANetAugment`).
    offset
        Index of the first item (``length`` items from ``offset``).
    """

    def __init__(self, sampler: TrainingSampler, length: int,
                 augment: Callable[..., Any] | None = None, offset: int = 0) -> None:
        self.sampler = sampler
        self.length = int(length)
        self.augment = augment
        self.offset = int(offset)

    def __len__(self) -> int:
        return self.length

    def item(self, k: int) -> dict[str, np.ndarray]:
        """Numpy arrays of draw ``k`` (absolute index)."""
        w = self.sampler.draw(k)
        x, y = self.sampler.read_raw(w)
        rng = step_rng(self.sampler.seed, k, 1)
        return _finish(x, y, self.sampler.norm, self.augment, rng)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return {k: torch.from_numpy(v) for k, v in self.item(self.offset + i).items()}
