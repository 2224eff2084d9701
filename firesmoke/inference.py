"""Run any tile model over a (dask) array: halo, batching, blending, device, model cache.

The engine is generic: a :class:`TileModel` says how to build the network(s) inside a
worker (so nothing heavy is pickled into the task graph), how to normalise the input
and which activation to apply. :func:`predict_array` cuts every block of a dask array
into tiles of a *global* :class:`~firesmoke.tiling.TilePlan`, runs many tiles per forward
pass, blends overlaps and trims the halo. Since the plan is global and each block gets a
halo of one tile, the mosaic does not depend on chunk sizes or on the number of workers.

Models are built once per worker process and kept on their device (CUDA when available,
else CPU); on CUDA the forward pass runs under autocast (bf16 by default).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firesmoke.tiling import TilePlan, accumulate_tiles

__all__ = [
    "TileModel",
    "clear_model_cache",
    "default_batch_size",
    "keep_days",
    "predict_array",
    "predict_numpy",
    "resolve_device",
]

log = logging.getLogger(__name__)

_CACHE: dict[tuple[str, str], list[Any]] = {}
_CACHE_LOCK = threading.Lock()


def resolve_device(device: str | None = None) -> str:
    """``"cuda"`` when a CUDA GPU is available (or asked for), else ``"cpu"``."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but no CUDA GPU is available")
    return str(device)


def default_batch_size(device: str) -> int:
    """Tiles per forward pass when none is given: 1 on CPU, 4 on a GPU.

    On CPU a larger batch is not faster and multiplies the memory (BA-Net on a 2-core
    VM: 2.5-2.7 s per tile at batch 4 against 1.2-1.65 s at batch 1, see
    ``benchmarks/bench_models.py``); a GPU needs a batch to fill its cores.
    """
    return 1 if str(device).startswith("cpu") else 4


def _load_from_weights(path: str) -> Any:
    from firesmoke.models.weights import load_weights

    model, _meta = load_weights(path)
    return model


@dataclass(frozen=True)
class TileModel:
    """A picklable recipe for a (possibly ensembled) tile model.

    Parameters
    ----------
    builders
        Callables (picklable: module-level functions or ``functools.partial``) that each
        return an ``nn.Module``; several make an ensemble whose outputs are averaged
        (after the activation).
    key
        Cache key: models are built once per worker process and key.
    mean, std
        Per-channel normalisation applied to the input's first (channel) axis, after
        NaN -> ``nan_value``.
    activation
        ``"sigmoid"`` or ``None`` (raw outputs).
    prepare
        Optional callable applied to each built module (e.g. BA-Net's
        ``prepare_for_inference``).
    autocast
        ``"bf16"``, ``"fp16"`` or ``None``; used on CUDA only.
    output_days
        ``(d0, d1)``: return only positions ``d0:d1`` of the first axis after the
        channels (the days of a BA-Net window). Modules with ``supports_days = True``
        (:class:`~firesmoke.models.banet.FastBANet`) get ``days=(d0, d1)`` and skip the
        work of the other days; others are sliced after the forward pass. See
        :meth:`keep_days`.
    """

    builders: tuple[Callable[[], Any], ...]
    key: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    nan_value: float = 0.0
    activation: str | None = "sigmoid"
    prepare: Callable[[Any], Any] | None = None
    autocast: str | None = "bf16"
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    output_days: tuple[int, int] | None = None

    def keep_days(self, days: slice | tuple[int, int] | None) -> TileModel:
        """The same model returning only days ``days`` (a slice with ints, or a pair)."""
        if days is None:
            return dataclasses.replace(self, output_days=None)
        if isinstance(days, slice):
            if days.step not in (None, 1) or days.start is None or days.stop is None:
                raise ValueError(f"days must be a contiguous slice with bounds, got {days}")
            days = (days.start, days.stop)
        d0, d1 = (int(v) for v in days)
        if not 0 <= d0 < d1:
            raise ValueError(f"days must satisfy 0 <= d0 < d1, got {days}")
        return dataclasses.replace(self, output_days=(d0, d1))

    @classmethod
    def from_weights(
        cls,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        prepare: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> TileModel:
        """An ensemble of weights files (or named weights) with their normalisation.

        The normalisation constants are read from the first file's metadata.
        """
        import functools

        from firesmoke.models.weights import load_weights

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [os.fspath(p) for p in paths]
        _, meta = load_weights(paths[0])
        norm = meta.get("normalization") or {}
        digest = hashlib.sha256()
        for p in paths:
            digest.update(p.encode())
        kwargs.setdefault("mean", tuple(norm["mean"]) if "mean" in norm else None)
        kwargs.setdefault("std", tuple(norm["std"]) if "std" in norm else None)
        return cls(
            builders=tuple(functools.partial(_load_from_weights, p) for p in paths),
            key=f"weights:{digest.hexdigest()[:16]}",
            prepare=prepare,
            metadata=dict(meta),
            **kwargs,
        )

    def modules(self, device: str) -> list[Any]:
        """The built modules on ``device`` (cached per process)."""
        ck = (self.key, device)
        with _CACHE_LOCK:
            mods = _CACHE.get(ck)
            if mods is None:
                if device == "cpu":
                    from firesmoke.runtime import tune_allocator

                    tune_allocator()  # reuse freed activation memory (see firesmoke.runtime)
                mods = []
                for build in self.builders:
                    m = build().to(device).eval()
                    if self.prepare is not None:
                        m = self.prepare(m)
                    mods.append(m)
                _CACHE[ck] = mods
                log.info("built %d model(s) %s on %s (pid %d)", len(mods), self.key, device, os.getpid())
        return mods

    def normalise(self, batch: np.ndarray) -> np.ndarray:
        x = np.nan_to_num(batch.astype(np.float32, copy=False), nan=self.nan_value)
        if self.mean is not None and self.std is not None:
            shape = (1, len(self.mean)) + (1,) * (x.ndim - 2)
            x = (x - np.asarray(self.mean, np.float32).reshape(shape)) / np.asarray(
                self.std, np.float32
            ).reshape(shape)
        return x

    def __call__(self, batch: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Forward a batch ``(n, C, ...)`` -> ``(n, K, ...)`` (ensemble mean)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(self.normalise(batch))).to(device)
        outs = []
        use_amp = device.startswith("cuda") and self.autocast is not None
        amp_dtype = torch.bfloat16 if self.autocast == "bf16" else torch.float16
        days = self.output_days
        with torch.inference_mode():
            for m in self.modules(device):
                with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    if days is not None and getattr(m, "supports_days", False):
                        y = m(x, days=days)
                    else:
                        y = m(x)
                        if days is not None:
                            if days[1] > y.shape[2]:
                                raise ValueError(f"output_days {days} beyond the model's "
                                                 f"{y.shape[2]} output days")
                            y = y[:, :, days[0] : days[1]]
                y = y.float()
                if self.activation == "sigmoid":
                    y = torch.sigmoid(y)
                outs.append(y)
            y = torch.stack(outs).mean(0)
        return y.cpu().numpy()


@dataclass(frozen=True)
class _SliceDays:
    """A plain batch callable restricted to positions ``d0:d1`` of its output's axis 2."""

    fn: Callable[[np.ndarray], np.ndarray]
    d0: int
    d1: int

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.fn(batch)[:, :, self.d0 : self.d1]


def keep_days(
    model: TileModel | Callable[[np.ndarray], np.ndarray], days: slice
) -> TileModel | Callable[[np.ndarray], np.ndarray]:
    """``model`` returning only the days ``days`` of each tile (see ``TileModel.output_days``)."""
    if isinstance(model, TileModel):
        return model.keep_days(days)
    return _SliceDays(model, int(days.start), int(days.stop))


def clear_model_cache() -> None:
    """Drop every cached model of this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


def predict_numpy(
    array: np.ndarray,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    tile: int = 128,
    step: int = 100,
    batch_size: int | None = None,
    window: str = "mean",
    device: str | None = None,
) -> np.ndarray:
    """Whole-array pass (no dask): ``(C, ..., H, W)`` -> ``(K, ..., H, W)``."""
    dev = resolve_device(device)
    plan = TilePlan(array.shape[-2], array.shape[-1], tile=tile, step=step)
    fn = (lambda b: model(b, dev)) if isinstance(model, TileModel) else model
    return accumulate_tiles(array, fn, plan, batch_size=batch_size or default_batch_size(dev),
                            window=window)


def _block_predict(
    block: np.ndarray,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    plan: TilePlan,
    halo: int,
    batch_size: int | None,
    window: str,
    device: str | None,
    out_lead: tuple[int, ...],
    block_info: dict | None = None,
) -> np.ndarray:
    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc[-2], loc[-1]
    if y1 <= y0 or x1 <= x0:
        return np.zeros((*out_lead, y1 - y0, x1 - x0), np.float32)
    dev = resolve_device(device)
    fn = (lambda b: model(b, dev)) if isinstance(model, TileModel) else model
    return accumulate_tiles(
        block, fn, plan, offset=(y0 - halo, x0 - halo), core=(y0, y1, x0, x1),
        batch_size=batch_size or default_batch_size(dev), window=window,
    ).reshape((*out_lead, y1 - y0, x1 - x0))


def _merge_small_chunks(chunks: Sequence[int], minimum: int) -> tuple[int, ...]:
    """Merge chunks smaller than ``minimum`` into a neighbour (a halo needs room)."""
    out: list[int] = []
    for c in chunks:
        if out and (out[-1] < minimum or c < minimum):
            out[-1] += c
        else:
            out.append(c)
    return tuple(out)


def predict_array(
    array: Any,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    out_channels: int = 1,
    tile: int = 128,
    step: int = 100,
    batch_size: int | None = None,
    window: str = "mean",
    device: str | None = None,
    out_lead: tuple[int, ...] | None = None,
) -> Any:
    """Run a tile model over a dask (or numpy) array ``(C, ..., H, W)``.

    Parameters
    ----------
    array
        Input with channels first and the two spatial dims last; any dims in between
        (e.g. time) are passed to the model whole.
    model
        A :class:`TileModel` or a plain callable mapping ``(n, C, ..., t, t)`` batches to
        ``(n, K, ..., t, t)``.
    out_channels
        ``K``; the output has shape ``(K, ..., H, W)`` unless ``out_lead`` says otherwise.
    tile, step
        Tiling (reference-compatible mode: 128 and 100 with ``window="mean"``).
    batch_size
        Tiles per forward pass; default :func:`default_batch_size` of the device.
    window
        Blending window: ``"mean"`` (reference) or ``"centre"``.
    device
        ``"cuda"``, ``"cpu"`` or ``None`` (CUDA when available).
    out_lead
        Leading output dims, default ``(out_channels, *array.shape[1:-2])``.

    Returns
    -------
    dask.array.Array
        float32, chunked like the input in space, lazily computed.
    """
    import dask.array as da

    arr = da.asarray(array)
    lead_in = arr.shape[:-2]
    H, W = arr.shape[-2:]
    out_lead = tuple(out_lead) if out_lead is not None else (out_channels, *lead_in[1:])
    if len(out_lead) != len(lead_in):
        raise ValueError(
            f"the output must have as many leading dims as the input ({len(lead_in)}), "
            f"got out_lead={out_lead}"
        )
    # leading dims whole; spatial chunks at least one tile so a one-tile halo is allowed
    ych = _merge_small_chunks(arr.chunks[-2], tile)
    xch = _merge_small_chunks(arr.chunks[-1], tile)
    arr = arr.rechunk({**{i: -1 for i in range(arr.ndim - 2)}, arr.ndim - 2: ych, arr.ndim - 1: xch})
    plan = TilePlan(H, W, tile=tile, step=step)
    halo = tile
    depth = {arr.ndim - 2: halo, arr.ndim - 1: halo}
    depth.update({i: 0 for i in range(arr.ndim - 2)})
    padded = da.overlap.overlap(arr, depth=depth, boundary={k: 0 for k in depth})
    out_chunks = (*tuple((n,) for n in out_lead), arr.chunks[-2], arr.chunks[-1])
    return da.map_blocks(
        _block_predict,
        padded,
        model=model,
        plan=plan,
        halo=halo,
        batch_size=batch_size,
        window=window,
        device=device,
        out_lead=out_lead,
        chunks=out_chunks,
        dtype=np.float32,
        meta=np.array((), dtype=np.float32),
    )
