"""Floating-point precision controls for inference on CUDA.

On NVIDIA GPUs since Ampere, cuDNN runs float32 convolutions in TF32 by default (10-bit
mantissa): a BA-Net confidence map computed that way differs from the plain float32
module by up to about 0.02. Reference-compatible (float32) inference therefore runs
with TF32 off, through :func:`no_tf32`.

The flags are process-wide in PyTorch; :func:`no_tf32` is reentrant and thread-safe
(the first entrant saves and clears them, the last one restores them), so concurrent
float32 forwards in worker threads keep TF32 off for as long as any of them runs. A
bf16 / fp16 forward is not affected by these flags.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["no_tf32", "tf32_enabled"]

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: tuple[bool, bool] | None = None


def _get() -> tuple[bool, bool]:
    return bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32)


def _set(matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def tf32_enabled() -> tuple[bool, bool]:
    """``(matmul, cudnn)``: whether TF32 is allowed for float32 matmuls / convolutions."""
    return _get()


@contextmanager
def no_tf32() -> Iterator[None]:
    """Run the block with TF32 disabled for cuBLAS matmuls and cuDNN convolutions.

    Float32 results then agree with a CPU float32 run to float32 rounding. Harmless on
    CPU-only machines (the flags exist and are ignored).
    """
    global _DEPTH, _SAVED
    with _LOCK:
        if _DEPTH == 0:
            _SAVED = _get()
            _set(False, False)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED is not None:
                _set(*_SAVED)
                _SAVED = None
