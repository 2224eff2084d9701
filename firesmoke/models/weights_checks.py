"""Checks on what a weights file says, made before anything is built from it.

Used by :func:`firesmoke.models.weights.load_weights`: constructor configs within
per-architecture bounds and matching the state dict's tensor shapes (checked on PyTorch's
``meta`` device, which allocates nothing), metadata that pipelines turn into array sizes
or divide by, and refusal messages for pickled code that name the blocked global without
passing on torch's advice to load the file unsafely.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from firesmoke.errors import WeightsError

__all__ = [
    "CONFIG_BOUNDS",
    "blocked_global",
    "check_config",
    "check_metadata",
    "check_shapes",
    "check_storage",
    "default_config",
    "unpickler_reason",
]

# -- configs and metadata ----------------------------------------------------------------
#: Allowed range of each constructor argument a weights file may set: ``(low, high)`` for
#: integers, ``bool`` for flags, ``("list", low, high, max_len)`` for integer lists.
#: Wide enough for every published and practical variant, narrow enough that a hostile
#: file cannot make :func:`~firesmoke.models.weights.load_weights` build a model of hundreds of GiB.
CONFIG_BOUNDS: dict[str, dict[str, Any]] = {
    "banet": {"in_ch": (1, 1024), "n_classes": (1, 1024), "sequence_len": (16, 4096)},
    "smoke_unet": {"in_ch": (1, 1024), "n_classes": (1, 1024), "base": (1, 1024), "bilinear": bool},
    "smoke_resnet50": {
        "in_ch": (1, 1024),
        "width": (1, 1024),
        "layers": ("list", 1, 64, 8),
        "n_outputs": (1, 1024),
        "stem_kernel": (1, 31),
        "stem_stride": (1, 8),
        "stem_padding": (0, 31),
    },
}


def default_config(constructor: Callable[..., Any]) -> dict[str, Any]:
    """The defaults of a model constructor (what a config leaves out)."""
    params = inspect.signature(constructor).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def check_config(arch: str, cfg: Any, path: Path) -> dict[str, Any]:
    """``cfg`` as a dict if every key is a known constructor argument within its bounds."""
    if not isinstance(cfg, Mapping):
        raise WeightsError(f"config must be a mapping, got {type(cfg).__name__}", path=path)
    bounds = CONFIG_BOUNDS.get(arch, {})
    for key, value in cfg.items():
        rule = bounds.get(key)
        if rule is None:
            raise WeightsError(
                f"unknown {arch!r} config key {key!r}; allowed: {', '.join(sorted(bounds))}", path=path
            )
        if rule is bool:
            ok = isinstance(value, bool)
            want = "true or false"
        elif rule[0] == "list":
            _, low, high, max_len = rule
            ok = (
                isinstance(value, list | tuple)
                and 0 < len(value) <= max_len
                and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value)
            )
            want = f"a list of 1 to {max_len} integers in [{low}, {high}]"
        else:
            low, high = rule
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
            want = f"an integer in [{low}, {high}]"
        if not ok:
            raise WeightsError(f"config {key}={value!r} refused: must be {want}", path=path)
    return dict(cfg)


#: Bounds of the metadata fields that pipelines turn into array sizes.
_META_INT_BOUNDS = {"tile_size": (1, 8192), "sequence_length": (1, 4096)}


def check_metadata(meta: Mapping[str, Any], cfg: Mapping[str, Any], path: Path) -> None:
    """Refuse metadata that would make pipelines allocate wildly or divide by zero.

    ``tile_size`` / ``sequence_length`` must be integers within bounds, and a
    ``normalization`` must give one finite mean and one finite, positive std per band,
    as many bands as the model's input channels.
    """
    for key, (low, high) in _META_INT_BOUNDS.items():
        value = meta.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise WeightsError(f"metadata {key}={value!r} refused: must be an integer in [{low}, {high}]", path=path)
    norm = meta.get("normalization")
    if norm is None:
        return
    try:
        bands = [str(b) for b in norm["bands"]]
        mean = [float(v) for v in norm["mean"]]
        std = [float(v) for v in norm["std"]]
        fill = norm.get("nan_fill")
        fill_ok = fill is None or math.isfinite(float(fill))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"malformed normalization in weights metadata ({exc!r})", path=path) from exc
    n = len(bands)
    if len(mean) != n or len(std) != n or n == 0:
        raise WeightsError(
            f"normalization has {n} bands, {len(mean)} means and {len(std)} stds", path=path
        )
    if not (all(math.isfinite(v) for v in mean) and all(math.isfinite(v) and v > 0 for v in std) and fill_ok):
        raise WeightsError("normalization refused: means, stds and nan_fill must be finite, stds > 0", path=path)
    in_ch = cfg.get("in_ch")
    if isinstance(in_ch, int) and in_ch != n:
        raise WeightsError(f"normalization has {n} bands but the model takes {in_ch} input channels", path=path)


def check_shapes(
    build: Callable[..., nn.Module],
    arch: str,
    cfg: Mapping[str, Any],
    sd: Mapping[str, torch.Tensor],
    path: Path,
) -> None:
    """Refuse unless the model ``cfg`` describes has exactly the tensors of ``sd``.

    The model is built on PyTorch's ``meta`` device, which records shapes and allocates
    no memory, so the real model built afterwards is no larger than the file's tensors.
    """
    try:
        with torch.device("meta"):
            skeleton = build(**cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot build {arch!r} from config {dict(cfg)}: {exc}", path=path) from exc
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in sd.items()}
    problems = [f"missing {k}" for k in want if k not in have]
    problems += [f"unexpected {k}" for k in have if k not in want]
    problems += [f"{k} is {have[k]}, expected {want[k]}" for k in want if k in have and have[k] != want[k]]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise WeightsError(
            f"weights do not fit the {arch!r} architecture with config {dict(cfg)}: "
            + "; ".join(problems[:5])
            + more,
            path=path,
        )


#: Largest total of tensor bytes a weights file may describe (materialised), in bytes.
MAX_TENSOR_BYTES = 16 * 2**30


def check_storage(sd: Mapping[str, Any], path: Path) -> None:
    """Refuse tensors whose views claim more memory than their storage holds.

    A tensor loaded from a file is a view (shape, strides, offset) of a storage read from
    it. A stride of 0 lets a 4-byte storage pose as a tensor of 64 GiB, which hashing
    (``.contiguous()``) or loading into a model would allocate. Checked from the
    metadata only (nothing is copied): every element of the view must lie inside its
    storage, the view may not hold more elements than its storage (no overlapping
    strides), and all tensors together stay under :data:`MAX_TENSOR_BYTES`.
    """
    total = 0
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise WeightsError(f"state dict entry {name!r} is not a tensor ({type(t).__name__})",
                               path=path)
        if t.layout != torch.strided or t.is_quantized or t.is_nested:
            raise WeightsError(f"tensor {name!r} has an unsupported layout ({t.layout})", path=path)
        item = t.element_size()
        numel = math.prod(int(s) for s in t.shape)
        try:
            stored = int(t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError) as exc:
            raise WeightsError(f"tensor {name!r} has no readable storage ({exc})", path=path) from exc
        need = numel * item
        if numel:
            last = int(t.storage_offset()) + sum((int(s) - 1) * int(st)
                                                 for s, st in zip(t.shape, t.stride(), strict=True))
            if int(t.storage_offset()) < 0 or min(t.stride(), default=0) < 0 or (last + 1) * item > stored:
                raise WeightsError(f"tensor {name!r} {tuple(t.shape)} reaches outside its "
                                   f"{stored}-byte storage", path=path)
            if need > stored:
                raise WeightsError(
                    f"tensor {name!r} {tuple(t.shape)} claims {need:,} bytes but its storage in "
                    f"the file holds {stored:,} (overlapping or stride-0 view); refused",
                    path=path)
        total += need
        if total > MAX_TENSOR_BYTES:
            raise WeightsError(f"tensors claim more than {MAX_TENSOR_BYTES / 2**30:.0f} GiB; "
                               "refused", path=path)


# -- refusal messages ------------------------------------------------------------------
_GLOBAL_RE = re.compile(r"GLOBAL\s+([A-Za-z_][\w.]*)")
#: Phrases of torch's refusal text that advise loading the file unsafely; never passed on.
_ADVICE_RE = re.compile(r"weights_only|trust|add_safe_globals|safe_globals|documentation|load failed", re.I)


def blocked_global(exc: BaseException) -> str | None:
    """The dotted name of the global torch's weights-only unpickler refused, if it says."""
    m = _GLOBAL_RE.search(str(exc))
    return m.group(1) if m else None


def unpickler_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, without its advice to load unsafely."""
    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please|\n|$)", text)
    if m and not _ADVICE_RE.search(m.group(1)):
        return " ".join(m.group(1).split())
    lines = [" ".join(line.split()) for line in re.split(r"\n|\(\d\)", text)]
    kept = [line for line in lines if line and not _ADVICE_RE.search(line)]
    return kept[0] if kept else "unsupported pickle content"
