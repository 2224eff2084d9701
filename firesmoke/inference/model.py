"""Run any tile model over a (dask) array: halo, batching, blending, device, model cache.

The engine is generic: a :class:`TileModel` says how to build the network(s) inside a
worker (so nothing heavy is pickled into the task graph), how to normalise the input
and which activation to apply. :func:`predict_array` cuts every block of a dask array
into tiles of a *global* :class:`~firesmoke.inference.tiling.TilePlan`, runs many tiles per forward
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
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.inference.cluster import task_target
from firesmoke.inference.engine import Identity, predict_blocks, run_block
from firesmoke.inference.runtime import tune_allocator, warn_thread_arena
from firesmoke.inference.tiling import TilePlan

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


_DEVICE_RE = re.compile(r"^(cpu|cuda|mps)(:\d+)?$")


def resolve_device(device: str | None = None, check_available: bool = True) -> str:
    """The device to run on, checked once at the API boundary.

    Parameters
    ----------
    device
        ``None`` or ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    check_available
        Also check that the device exists on this machine (turn off when the work runs
        on the workers of another machine's scheduler).

    Raises
    ------
    firesmoke.errors.InputError
        An unknown device string, or a device this machine lacks.
    """
    import torch

    if device is None or str(device).strip().lower() in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(device).strip().lower()
    if not _DEVICE_RE.match(text):
        raise InputError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or "
                         "'mps'", field="device")
    if check_available and text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} requested but no CUDA GPU is available",
                             field="device")
        if ":" in text and int(text.split(":")[1]) >= torch.cuda.device_count():
            raise InputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) visible", field="device")
    if check_available and text.startswith("mps") and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} requested but MPS is not available", field="device")
    return text


def default_batch_size(device: str) -> int:
    """Tiles per forward pass when none is given: 1 on CPU, 4 on a GPU.

    On CPU a larger batch is not faster and multiplies the memory (BA-Net on a 2-core
    VM: 2.5-2.7 s per tile at batch 4 against 1.2-1.65 s at batch 1, see
    ``benchmarks/bench_models.py``); a GPU needs a batch to fill its cores.
    """
    return 1 if str(device).startswith("cpu") else 4


def _load_from_weights(path: str) -> Any:
    from firesmoke.models.weights import load_weights  # deferred: torch (~1.4 s) only to load

    model, _meta = load_weights(path)
    return model


def _banet_prepare(module: Any) -> Any:
    """BA-Net's fast inference path (:func:`~firesmoke.models.banet_fast.prepare_for_inference`)."""
    from firesmoke.models.banet_fast import prepare_for_inference  # deferred: torch (~1.2 s)

    return prepare_for_inference(module)


@dataclass(frozen=True)
class TileModel:
    """A picklable recipe for a (possibly ensembled) tile model and its input normalisation.

    Parameters
    ----------
    builders
        Callables (picklable: module-level functions or ``functools.partial``) that each
        return an ``nn.Module``; several make an ensemble whose outputs are averaged
        (after the activation).
    key
        Cache key: models are built once per worker process and key.
    normalization
        The model's :class:`~firesmoke.models.normalization.Normalization` (NaN fill and
        per-channel z-score on the input's channel axis), or ``None`` for none.
    nan_value
        Value of whatever is still NaN after the normalisation (e.g. no-data pixels of a
        model whose normalisation has no ``nan_fill``; pixels beyond the array edge are
        NaN before normalisation, so with ``nan_fill=0`` they are zeros in physical units
        and otherwise ``nan_value`` after normalisation).
    mean, std
        Shorthand for ``normalization`` (with ``nan_fill=nan_value``); not stored.
    activation
        ``"sigmoid"`` or ``None`` (raw outputs).
    prepare
        Optional callable applied to each built module (e.g. BA-Net's
        ``prepare_for_inference``).
    autocast
        ``"bf16"``, ``"fp16"`` or ``None``; used on CUDA only.
    ensemble
        ``"mean"`` (float32 mean of the members' activations) or ``"float16"`` (BA-Net
        0.6.7: each member's sigmoid rounded to float16, their mean rounded to float16).
    output_days
        ``(d0, d1)``: return only positions ``d0:d1`` of the first axis after the
        channels (the days of a BA-Net window). Modules with ``supports_days = True``
        (:class:`~firesmoke.models.banet_fast.FastBANet`) get ``days=(d0, d1)`` and skip the
        work of the other days; others are sliced after the forward pass. See
        :meth:`keep_days`.

    Examples
    --------
    A model of any ``nn.Module`` builder (picklable, built once per worker process); the
    shipped BA-Net weights give ``TileModel.from_weights(["banet_synthetic"])``:

    >>> import numpy as np, torch
    >>> from firesmoke import TileModel, predict_array
    >>> model = TileModel((torch.nn.Identity,), key="identity", activation=None)
    >>> x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)  # (channels, y, x)
    >>> out = predict_array(x, model, out_channels=2, tile=4, step=4, device="cpu")
    >>> out.shape, bool(np.allclose(out.compute(scheduler="synchronous"), x))
    ((2, 8, 8), True)
    """

    builders: tuple[Callable[[], Any], ...]
    key: str
    normalization: Any = None
    nan_value: float = 0.0
    activation: str | None = "sigmoid"
    prepare: Callable[[Any], Any] | None = None
    autocast: str | None = "bf16"
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    output_days: tuple[int, int] | None = None
    ensemble: str = "mean"
    mean: dataclasses.InitVar[Sequence[float] | None] = None
    std: dataclasses.InitVar[Sequence[float] | None] = None

    def __post_init__(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        from firesmoke.models.normalization import Normalization  # deferred: torch (~1.3 s)

        if isinstance(self.normalization, dict):
            object.__setattr__(self, "normalization", Normalization.from_dict(self.normalization))
        if mean is not None and std is not None:
            if self.normalization is not None:
                raise InputError("give either normalization or mean/std, not both")
            object.__setattr__(self, "normalization", Normalization(
                name="custom", bands=tuple(f"c{i}" for i in range(len(mean))),
                mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                nan_fill=self.nan_value))

    def keep_days(self, days: slice | tuple[int, int] | None) -> TileModel:
        """The same model returning only days ``days`` (a slice with ints, or a pair)."""
        if days is None:
            return dataclasses.replace(self, output_days=None)
        if isinstance(days, slice):
            if days.step not in (None, 1) or days.start is None or days.stop is None:
                raise InputError(f"days must be a contiguous slice with bounds, got {days}")
            days = (days.start, days.stop)
        d0, d1 = (int(v) for v in days)
        if not 0 <= d0 < d1:
            raise InputError(f"days must satisfy 0 <= d0 < d1, got {days}")
        return dataclasses.replace(self, output_days=(d0, d1))

    @classmethod
    def from_weights(
        cls,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        prepare: Callable[[Any], Any] | str | None = "auto",
        **kwargs: Any,
    ) -> TileModel:
        """An ensemble of weights files (or named weights) with their normalisation.

        The normalisation is read from the first file's metadata. ``prepare="auto"``
        (default) gives BA-Net weights :func:`~firesmoke.models.banet_fast.prepare_for_inference`
        (folded batch norms, fused LSTM: about 3.7x faster on CPU) and others nothing;
        ``None`` keeps the plain modules.
        """
        import functools

        from firesmoke.models.weights import load_weights  # deferred: torch (~1.4 s) only to load

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [os.fspath(p) for p in paths]
        _, meta = load_weights(paths[0])
        norm = meta.get("normalization") or {}
        if prepare == "auto":
            prepare = _banet_prepare if meta.get("architecture") == "banet" else None
        digest = hashlib.sha256()
        for p in paths:
            digest.update(p.encode())
        if prepare is not None:  # a stable name (a function's repr holds its address)
            name = f"{getattr(prepare, '__module__', '')}.{getattr(prepare, '__qualname__', '')}"
            digest.update(name.encode())
        if "mean" not in kwargs and "normalization" not in kwargs and {"mean", "std"} <= set(norm):
            if "bands" in norm:
                kwargs["normalization"] = norm
            else:
                kwargs["mean"], kwargs["std"] = tuple(norm["mean"]), tuple(norm["std"])
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
                    tune_allocator()  # reuse freed activation memory (see firesmoke.inference.runtime)
                    warn_thread_arena()
                mods = []
                for build in self.builders:
                    m = build().to(device).eval()
                    if self.prepare is not None:
                        m = self.prepare(m)
                    mods.append(m)
                _CACHE[ck] = mods
                log.info("built %d model(s) %s on %s (pid %d)", len(mods), self.key, device, os.getpid())
        return mods

    def prepare_input(self, x: Any, inplace: bool = False) -> Any:
        """Normalised float32 tensor of raw input ``x`` ``(C, ...)`` (channels on axis 0):
        the normalisation's NaN fill and z-score, then ``nan_value`` for any NaN left.

        ``inplace``: ``x`` (float32) may be overwritten (the engine's own buffers).
        """
        import torch

        if x.dtype != torch.float32:
            x, inplace = x.float(), True
        norm = self.normalization
        if norm is not None:
            x = norm.apply(x, channel_dim=0, inplace=inplace)
            if norm.nan_fill is not None:
                return x  # nothing is NaN any more
            inplace = True
        return torch.nan_to_num(x, nan=self.nan_value, out=x) if inplace else torch.nan_to_num(
            x, nan=self.nan_value)

    def normalise(self, batch: np.ndarray) -> np.ndarray:
        """Normalised copy of a numpy batch ``(n, C, ...)`` (same rule as :meth:`prepare_input`)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return self.prepare_input(x.transpose(0, 1)).transpose(0, 1).contiguous().numpy()

    def forward(self, x: Any, device: str) -> Any:
        """Forward a normalised tensor batch ``(n, C, ...)`` on ``device`` -> ``(n, K, ...)``
        float32 (activation applied, ensemble mean), left on the device."""
        import contextlib

        import torch

        outs = []
        use_amp = device.startswith("cuda") and self.autocast is not None
        amp_dtype = torch.bfloat16 if self.autocast == "bf16" else torch.float16
        days = self.output_days
        exact = contextlib.nullcontext()
        if device.startswith("cuda") and self.autocast is None:  # float32: no TF32 either
            from firesmoke.models.precision import no_tf32  # deferred: torch (~1.3 s)

            exact = no_tf32()
        with exact, torch.inference_mode():
            for m in self.modules(device):
                with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    if days is not None and getattr(m, "supports_days", False):
                        y = m(x, days=days)
                    else:
                        y = m(x)
                        if days is not None:
                            if days[1] > y.shape[2]:
                                raise InputError(f"output_days {days} beyond the model's "
                                                 f"{y.shape[2]} output days")
                            y = y[:, :, days[0] : days[1]]
                y = y.float()
                if self.activation == "sigmoid":
                    y = torch.sigmoid(y)
                outs.append(y.half() if self.ensemble == "float16" else y)
            if self.ensemble == "float16":  # float32 mean of float16 values, rounded (numpy's)
                return torch.stack(outs).float().mean(0).half().float()
            return outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)

    def __call__(self, batch: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Forward a raw numpy batch ``(n, C, ...)`` -> ``(n, K, ...)`` (ensemble mean)."""
        x = torch_from(self.normalise(batch), device)
        return self.forward(x, device).cpu().numpy()


def torch_from(a: np.ndarray, device: str) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


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
    blend: str = "mean",
    device: str | None = None,
    reduce: Callable[[Any], Any] | None = None,
) -> np.ndarray:
    """Whole-array pass (no dask): ``(C, ..., H, W)`` -> ``(K, ..., H, W)`` (or the
    reduction's output)."""
    dev = resolve_device(device)
    plan = TilePlan(array.shape[-2], array.shape[-1], tile=tile, step=step)
    return run_block(np.asarray(array), model, plan, reduce=reduce,
                     batch_size=batch_size or default_batch_size(dev), blend=blend, device=dev)


def predict_array(
    array: Any,
    model: TileModel | Callable[[np.ndarray], np.ndarray],
    out_channels: int = 1,
    tile: int = 128,
    step: int = 100,
    batch_size: int | None = None,
    blend: str = "mean",
    device: str | None = None,
    out_lead: tuple[int, ...] | None = None,
    reduce: Callable[[Any], Any] | None = None,
    plan_rule: str = "firesmoke",
    acc_dtype: str = "float64",
    plan_order: bool = False,
    tasks: int | str | None = "auto",
) -> Any:
    """Run a tile model over a dask (or numpy) array ``(C, ..., H, W)``.

    Parameters
    ----------
    array
        Input with channels first and the two spatial dims last; any dims in between
        (e.g. time) are passed to the model whole. A list of the ``C`` channels (arrays
        ``(..., H, W)`` of one shape) is taken as their stack, without the host copy
        that stacking costs.
    model
        A :class:`TileModel` or a plain callable mapping ``(n, C, ..., t, t)`` batches to
        ``(n, K, ..., t, t)``.
    out_channels
        ``K``; the output has shape ``(K, ..., H, W)`` unless ``out_lead`` says otherwise.
    tile, step
        Tiling (reference-compatible mode: 128 and 100 with ``blend="mean"``).
    batch_size
        Tiles per forward pass; default :func:`default_batch_size` of the device.
    blend
        Blending weights of overlapping tiles: ``"mean"`` (reference) or ``"centre"``.
    device
        ``"cuda"``, ``"cpu"`` or ``None`` (CUDA when available); a bad one raises
        :class:`~firesmoke.errors.InputError`.
    out_lead
        Leading dims of the blended model output, default ``(out_channels,
        *array.shape[1:-2])``; with ``reduce``, the leading dims of the reduction's output
        (its ``out_lead`` attribute when it has one).
    reduce
        Per-pixel reduction of the blended output, run on the device (see
        :mod:`firesmoke.burned.rules`); default none.
    plan_rule, acc_dtype, plan_order
        Tile plan rule (:func:`~firesmoke.inference.tiling.tile_origins`), blending accumulator
        (``"float64"``, or ``"float16"`` as BA-Net 0.6.7) and whether tiles must be added
        in plan order (each block then runs every tile touching it; see
        :func:`firesmoke.inference.engine.predict_blocks`). The BA-Net-compatible mode uses
        ``"reference"``, ``"float16"``, ``True``.
    tasks
        About how many inference tasks to make: ``"auto"`` (default) a few per worker
        thread of the current ``distributed.Client`` (:func:`~firesmoke.inference.cluster.
        task_target`; one per chunk without a client), an int, or ``None`` for one task per
        chunk. With more tasks than chunks, the tiles of a chunk are shared among several
        tasks (:func:`firesmoke.inference.engine.task_grid`), so that a region of one
        chunk keeps several workers busy; the result is the same.

    Returns
    -------
    dask.array.Array
        float32, chunked like the input in space (chunks smaller than a tile merged),
        lazily computed. Each tile of the global plan runs once (see
        :mod:`firesmoke.inference.engine`), so the result does not depend on the chunking.
    """
    import dask.array as da

    if isinstance(array, list | tuple):
        arr = [da.asarray(a) for a in array]
        lead_in = (len(arr), *arr[0].shape[:-2])
        H, W = arr[0].shape[-2:]
    else:
        arr = da.asarray(array)
        lead_in = arr.shape[:-2]
        H, W = arr.shape[-2:]
    if reduce is None:
        out_lead = tuple(out_lead) if out_lead is not None else (out_channels, *lead_in[1:])
        if len(out_lead) != len(lead_in):
            raise InputError(
                f"the output must have as many leading dims as the input ({len(lead_in)}), "
                f"got out_lead={out_lead}"
            )
        reduce = Identity(out_lead)
    else:
        out_lead = tuple(getattr(reduce, "out_lead", out_lead or ()))
    dev = resolve_device(device)
    plan = TilePlan(H, W, tile=tile, step=step, rule=plan_rule)
    if tasks == "auto":
        tasks = task_target()
    elif tasks is not None and (isinstance(tasks, str) or int(tasks) < 1):
        raise InputError(f"tasks must be 'auto', None or a positive int, got {tasks!r}",
                         field="tasks")
    return predict_blocks(arr, model, plan, reduce, out_lead,
                          batch_size or default_batch_size(dev), blend, dev,
                          acc_dtype=acc_dtype, plan_order=plan_order,
                          tasks=None if tasks is None else int(tasks))
