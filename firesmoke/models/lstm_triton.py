"""A fused one-layer LSTM over many short sequences (Triton; CUDA, bf16 / fp16).

BA-Net runs an LSTM (32 -> 32) over the 64-day series of every pixel: about a million
sequences per tile. cuDNN computes the input projection for all steps into a
``(T, N, 4H)`` tensor and then runs one recurrent matmul and one element-wise cell kernel
per step, so the gates go through memory several times. Here one program takes a block
of sequences through all ``T`` steps with ``h`` and ``c`` in registers: it reads each
input once and writes each output once (the gate matmuls are tiny ``tl.dot``). ``c``
and the gate sums are float32; ``h`` is rounded to the input dtype before each
recurrent product, as cuDNN does in reduced precision.

:func:`lstm_forward` returns ``None`` when the kernel does not apply (no Triton, not
CUDA, float32, other sizes): callers fall back to :class:`torch.nn.LSTM`. With
``TRITON_INTERPRET=1`` the kernel also runs on CPU (the unit tests do that).
"""

from __future__ import annotations

import importlib.util
import logging
import os

import torch

__all__ = ["lstm_forward", "triton_available"]

log = logging.getLogger(__name__)

_KERNEL = None


def triton_available() -> bool:
    """Whether Triton is importable (the kernel needs it)."""
    return importlib.util.find_spec("triton") is not None


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _build():
    import triton
    import triton.language as tl

    @triton.jit
    def lstm_kernel(x_ptr, wih_ptr, whh_ptr, b_ptr, out_ptr, N, T: tl.constexpr,
                    C: tl.constexpr, H: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        rows = pid * BLOCK + tl.arange(0, BLOCK)
        mask = rows[:, None] < N
        ci = tl.arange(0, C)
        hi = tl.arange(0, H)
        # gate weights as (in, H) tiles: W[g*H + j, k] at (k, j); PyTorch gate order i, f, g, o
        wx_i = tl.load(wih_ptr + (0 * H + hi[None, :]) * C + ci[:, None])
        wx_f = tl.load(wih_ptr + (1 * H + hi[None, :]) * C + ci[:, None])
        wx_g = tl.load(wih_ptr + (2 * H + hi[None, :]) * C + ci[:, None])
        wx_o = tl.load(wih_ptr + (3 * H + hi[None, :]) * C + ci[:, None])
        wh_i = tl.load(whh_ptr + (0 * H + hi[None, :]) * H + hi[:, None])
        wh_f = tl.load(whh_ptr + (1 * H + hi[None, :]) * H + hi[:, None])
        wh_g = tl.load(whh_ptr + (2 * H + hi[None, :]) * H + hi[:, None])
        wh_o = tl.load(whh_ptr + (3 * H + hi[None, :]) * H + hi[:, None])
        b_i = tl.load(b_ptr + 0 * H + hi)[None, :]
        b_f = tl.load(b_ptr + 1 * H + hi)[None, :]
        b_g = tl.load(b_ptr + 2 * H + hi)[None, :]
        b_o = tl.load(b_ptr + 3 * H + hi)[None, :]
        h = tl.zeros((BLOCK, H), dtype=tl.float32)
        c = tl.zeros((BLOCK, H), dtype=tl.float32)
        x_ptrs = x_ptr + (rows[:, None].to(tl.int64) * C + ci[None, :])
        o_ptrs = out_ptr + (rows[:, None].to(tl.int64) * H + hi[None, :])
        for _ in range(T):
            xt = tl.load(x_ptrs, mask=mask, other=0.0)
            hb = h.to(xt.dtype)
            gi = tl.dot(xt, wx_i) + tl.dot(hb, wh_i) + b_i
            gf = tl.dot(xt, wx_f) + tl.dot(hb, wh_f) + b_f
            gg = tl.dot(xt, wx_g) + tl.dot(hb, wh_g) + b_g
            go = tl.dot(xt, wx_o) + tl.dot(hb, wh_o) + b_o
            # tanh(v) = 2 sigmoid(2v) - 1
            c = tl.sigmoid(gf) * c + tl.sigmoid(gi) * (2.0 * tl.sigmoid(2.0 * gg) - 1.0)
            h = tl.sigmoid(go) * (2.0 * tl.sigmoid(2.0 * c) - 1.0)
            tl.store(o_ptrs, h.to(xt.dtype), mask=mask)
            x_ptrs += N * C
            o_ptrs += N * H

    return lstm_kernel


def lstm_forward(lstm: torch.nn.LSTM, x: torch.Tensor, block: int = 64) -> torch.Tensor | None:
    """Hidden states ``(T, N, H)`` of a one-layer LSTM over a contiguous ``(T, N, C)`` input.

    Returns ``None`` when the fused kernel does not apply (see the module notes); the
    result otherwise equals ``lstm(x)[0]`` to the rounding of ``x.dtype``.
    """
    global _KERNEL
    ok_device = x.is_cuda or (_interpreted() and x.device.type == "cpu")
    if (
        not ok_device
        or x.dtype not in (torch.bfloat16, torch.float16)
        or lstm.num_layers != 1
        or lstm.bidirectional
        or lstm.batch_first
        or lstm.proj_size
        or not lstm.bias
        or x.ndim != 3
        or not x.is_contiguous()
        or not triton_available()
    ):
        return None
    t, n, c = x.shape
    h = lstm.hidden_size
    if c % 16 or h % 16 or c > 128 or h > 128:
        return None
    if _KERNEL is None:
        try:
            _KERNEL = _build()
        except Exception as exc:  # pragma: no cover - broken Triton install
            log.info("Triton LSTM kernel unavailable (%s); using torch.nn.LSTM", exc)
            _KERNEL = False
    if _KERNEL is False:
        return None
    wih = lstm.weight_ih_l0.to(x.dtype).contiguous()
    whh = lstm.weight_hh_l0.to(x.dtype).contiguous()
    bias = (lstm.bias_ih_l0.float() + lstm.bias_hh_l0.float()).contiguous()
    out = torch.empty((t, n, h), dtype=x.dtype, device=x.device)
    grid = ((n + block - 1) // block,)
    _KERNEL[grid](x, wih, whh, bias, out, n, T=t, C=c, H=h, BLOCK=block)
    return out
