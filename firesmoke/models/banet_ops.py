"""Building blocks of the fast BA-Net inference path (:mod:`firesmoke.models.banet_fast`).

* :func:`fold`: an eval-mode (per-day) batch norm folded into the convolution before it;
* :class:`Kernels`: which fused convolution / matmul kernels a forward pass uses
  (oneDNN conv + ReLU on CPU, cuDNN conv + bias + ReLU and cuBLASLt matmul + bias + ReLU
  epilogues on CUDA, plain ``conv2d`` / ``linear`` + ``relu_`` otherwise); each fused
  kernel is checked once against the plain one before it is trusted;
* :class:`FoldedConv` / :class:`FoldedUpConv`: the folded layers, applied to
  *time-major* activations ``(T, B, H, W, C)`` (contiguous). In that order a
  ``(1, k, k)`` convolution is a 2-D channels-last convolution over ``T*B`` images, a
  ``(kt, 1, 1)`` one a 2-D channels-last convolution over one ``(T, B*H*W)`` image, and a
  transposed convolution with kernel == stride a matrix product; none of them needs a
  copy of its input or output. The weights are kept in the layout and dtype of the
  kernel that reads them (cached per dtype and device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from firesmoke.errors import InputError

__all__ = ["FoldedConv", "FoldedUpConv", "Kernels", "fold", "mkldnn_fusion_available"]

_MKLDNN_FUSION: bool | None = None
_CUDA_FUSION: dict[tuple[str, torch.dtype], bool] = {}


def mkldnn_fusion_available() -> bool:
    """Whether oneDNN conv/linear + ReLU fusion ops exist and give the right answer."""
    global _MKLDNN_FUSION
    if _MKLDNN_FUSION is None:
        ok = False
        try:
            if torch.backends.mkldnn.is_available():
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(1, 3, 5, 5, generator=gen).contiguous(
                    memory_format=torch.channels_last
                )
                w = torch.randn(4, 3, 3, 3, generator=gen)
                b = torch.randn(4, generator=gen)
                with torch.inference_mode():
                    got = torch.ops.mkldnn._convolution_pointwise(
                        x, w, b, [1, 1], [1, 1], [1, 1], 1, "relu", [], ""
                    )
                    want = torch.relu(nn.functional.conv2d(x, w, b, padding=1))
                    lin = torch.ops.mkldnn._linear_pointwise(
                        x.reshape(-1, 3), w[:, :, 0, 0], b, "relu", [], ""
                    )
                    lin_want = torch.relu(nn.functional.linear(x.reshape(-1, 3), w[:, :, 0, 0], b))
                ok = torch.allclose(got, want, atol=1e-5) and torch.allclose(
                    lin, lin_want, atol=1e-5
                )
        except (AttributeError, RuntimeError, NotImplementedError):  # pragma: no cover
            ok = False
        _MKLDNN_FUSION = ok
    return _MKLDNN_FUSION


def _cuda_fusion(op: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fused CUDA kernel ``op`` ("conv" or "linear") works for ``dtype``."""
    key = (op, dtype)
    if key not in _CUDA_FUSION:
        ok = False
        try:
            gen = torch.Generator().manual_seed(0)
            tol = 1e-4 if dtype == torch.float32 else 3e-2
            with torch.inference_mode():
                if op == "conv":
                    x = torch.randn(2, 16, 6, 6, generator=gen).to(device, dtype)
                    x = x.contiguous(memory_format=torch.channels_last)
                    w = torch.randn(8, 16, 3, 3, generator=gen).to(device, dtype)
                    w = w.contiguous(memory_format=torch.channels_last)
                    b = torch.randn(8, generator=gen).to(device, dtype)
                    got = torch.cudnn_convolution_relu(x, w, b, [1, 1], [1, 1], [1, 1], 1)
                    want = torch.relu(nn.functional.conv2d(x, w, b, padding=1))
                else:
                    x = torch.randn(40, 16, generator=gen).to(device, dtype)
                    w = torch.randn(24, 16, generator=gen).to(device, dtype)
                    b = torch.randn(24, generator=gen).to(device, dtype)
                    got = torch._addmm_activation(b, x, w.t())
                    want = torch.relu(nn.functional.linear(x, w, b))
                ok = bool(torch.allclose(got.float(), want.float(), atol=tol, rtol=tol))
        except (AttributeError, RuntimeError, NotImplementedError):
            ok = False
        _CUDA_FUSION[key] = ok
    return _CUDA_FUSION[key]


@dataclass(frozen=True)
class Kernels:
    """The convolution / matmul kernels of one forward pass.

    ``mode`` is ``"mkldnn"`` (CPU float32: oneDNN conv / linear with fused ReLU),
    ``"cuda"`` (cuDNN conv + bias + ReLU and cuBLASLt matmul + bias + ReLU where they
    work for the dtype) or ``"plain"`` (``conv2d`` / ``linear`` then ``relu_``, what
    :func:`torch.compile` sees). ``first`` is how the first 7 x 7 convolution on the
    4 input channels runs: ``"direct"`` or ``"unfold"`` (rows unfolded into channels,
    then a 1 x 7 convolution on 32 channels: tensor-core friendly on a GPU).
    """

    mode: str
    first: str
    fused_conv: bool = False
    fused_linear: bool = False

    @classmethod
    def select(
        cls, device: torch.device, dtype: torch.dtype, fusion: bool, first: str = "auto"
    ) -> Kernels:
        if first == "auto":
            first = "unfold" if device.type == "cuda" else "direct"
        if first not in ("direct", "unfold"):
            raise InputError(f"first_conv must be 'auto', 'direct' or 'unfold', got {first!r}")
        if fusion and device.type == "cpu" and dtype == torch.float32 and mkldnn_fusion_available():
            return cls("mkldnn", first)
        if fusion and device.type == "cuda":
            return cls(
                "cuda", first, _cuda_fusion("conv", device, dtype), _cuda_fusion("linear", device, dtype)
            )
        return cls("plain", first)

    def conv(
        self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: tuple, padding: tuple,
        relu: bool,
    ) -> torch.Tensor:
        """2-D convolution (+ bias, + optional ReLU) of a channels-last ``(N, C, H, W)`` view."""
        if relu and self.mode == "mkldnn":
            return torch.ops.mkldnn._convolution_pointwise(
                x, w, b, list(padding), list(stride), [1, 1], 1, "relu", [], ""
            )
        if relu and self.fused_conv:
            return torch.cudnn_convolution_relu(x, w, b, list(stride), list(padding), [1, 1], 1)
        y = nn.functional.conv2d(x, w, b, stride, padding)
        return y.relu_() if relu else y

    def linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, relu: bool) -> torch.Tensor:
        """``x @ w.T + b`` (+ optional ReLU) for a 2-D ``x``."""
        if relu and self.mode == "mkldnn":
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
        if relu and self.fused_linear:
            return torch._addmm_activation(b, x, w.t())
        y = nn.functional.linear(x, w, b)
        return y.relu_() if relu else y


def fold(weight: torch.Tensor, norm: nn.Module, out_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode batch norm (a ``DayBatchNorm``) into a bias-free conv weight.

    ``bn(conv(x)) = conv(x; weight * scale) + shift`` with ``scale = gamma / sqrt(var + eps)``
    and ``shift = beta - mean * scale`` per output channel (axis ``out_dim`` of ``weight``).
    Computed in float64, returned in the weight's dtype.
    """
    bn = norm.bn
    var = bn.running_var.detach().double()
    scale = bn.weight.detach().double() / torch.sqrt(var + bn.eps)
    shift = bn.bias.detach().double() - bn.running_mean.detach().double() * scale
    shape = [1] * weight.ndim
    shape[out_dim] = -1
    folded = weight.detach().double() * scale.view(shape)
    return folded.to(weight.dtype), shift.to(weight.dtype)


class _Cached(nn.Module):
    """A module whose derived weights are cached per (device, dtype, variant)."""

    def __init__(self) -> None:
        super().__init__()
        self._wcache: dict = {}

    def _apply(self, fn, recurse=True):
        self._wcache = {}  # .to() / .half() ...: derived copies are stale
        return super()._apply(fn, recurse)

    def _cached(self, key: tuple, make) -> tuple:
        got = self._wcache.get(key)
        if got is None:
            got = self._wcache[key] = make()
        return got


def _as_kernel_weight(w: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    w = w.to(device=device, dtype=dtype)
    # cuDNN reads NHWC weights for NHWC activations (else it converts them every call)
    return w.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else w.contiguous()


class FoldedConv(_Cached):
    """Conv3d with batch norm folded in (bias), optional ReLU; NCDHW or time-major input."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        relu: bool,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias.contiguous())
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.relu = relu
        self.in_ch = weight.shape[1]
        k = tuple(weight.shape[2:])
        if k == (1, 1, 1) and self.stride == (1, 1, 1):
            self.kind = "point"
        elif k[0] == 1 and self.stride[0] == 1 and self.padding[0] == 0:
            self.kind = "space"
        elif k[1:] == (1, 1) and self.stride[1:] == (1, 1) and self.padding[1:] == (0, 0):
            self.kind = "time"
        else:  # pragma: no cover - BA-Net has no such convolution
            raise InputError(f"unsupported kernel {k} / stride {self.stride}")

    @classmethod
    def from_block(cls, conv: nn.Conv3d, norm: nn.Module, relu: bool = True) -> FoldedConv:
        w, b = fold(conv.weight, norm, out_dim=0)
        return cls(w, b, conv.stride, conv.padding, relu)

    def ncdhw(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv3d(x, self.weight, self.bias, self.stride, self.padding)
        return y.relu_() if self.relu else y

    def _weights(self, device: torch.device, dtype: torch.dtype, variant: str = "") -> tuple:
        def make() -> tuple:
            w = self.weight
            if variant == "unfold":
                # (Co, Ci, 1, k, k) -> (Co, Ci*k [padded to a multiple of 8], 1, k):
                # input channel ci*k + dy is the input row y + dy - k//2 of channel ci
                co, ci, _, k, _ = w.shape
                kc = -(-ci * k // 8) * 8
                w2 = w.new_zeros((co, kc, 1, k))
                w2[:, : ci * k] = w[:, :, 0].reshape(co, ci * k, 1, k)
            elif self.kind == "point":
                w2 = w.reshape(w.shape[0], w.shape[1])
                return w2.to(device=device, dtype=dtype).contiguous(), self.bias.to(device, dtype)
            elif self.kind == "space":
                w2 = w[:, :, 0]
            else:
                w2 = w[..., 0]
            return _as_kernel_weight(w2, device, dtype), self.bias.to(device, dtype)

        return self._cached((device, dtype, variant), make)

    def tmajor(self, x: torch.Tensor, kern: Kernels) -> torch.Tensor:
        """Apply to a contiguous ``(T, B, H, W, C)`` tensor; returns the same layout."""
        t, b, h, w, c = x.shape
        wt, bias = self._weights(x.device, x.dtype)
        if self.kind == "point":
            return kern.linear(x.reshape(-1, c), wt, bias, self.relu).view(t, b, h, w, -1)
        if self.kind == "space":
            x4 = x.view(t * b, h, w, c).permute(0, 3, 1, 2)
            y = kern.conv(x4, wt, bias, self.stride[1:], self.padding[1:], self.relu)
            y = y.permute(0, 2, 3, 1).contiguous()  # no copy: the output is channels-last
            return y.view(t, b, y.shape[1], y.shape[2], y.shape[3])
        # a time convolution is 2-D on one (T, B*H*W) image: no mixing along its width
        x4 = x.view(1, t, b * h * w, c).permute(0, 3, 1, 2)
        y = kern.conv(x4, wt, bias, (self.stride[0], 1), (self.padding[0], 0), self.relu)
        y = y.permute(0, 2, 3, 1).contiguous()
        return y.view(y.shape[1], b, h, w, y.shape[3])

    def first_tmajor(self, x: torch.Tensor, dtype: torch.dtype, kern: Kernels) -> torch.Tensor:
        """The first (space) convolution on the model input ``(B, C, T, H, W)``.

        Returns the time-major output ``(T, B, H, W, Co)``. The input is transposed and
        cast in one copy. With ``kern.first == "unfold"`` (stride 1 only) the ``k`` input
        rows each output row reads are unfolded into ``C * k`` channels (zero padded to a
        multiple of 8) and a ``1 x k`` convolution finishes the job: the same sums,
        computed by tensor-core kernels that a 4-channel input does not get.
        """
        b, c, t, h, w = x.shape
        if kern.first != "unfold" or self.stride != (1, 1, 1) or self.kind != "space":
            xt = torch.empty((t, b, h, w, c), dtype=dtype, device=x.device)
            xt.copy_(x.permute(2, 0, 3, 4, 1))
            return self.tmajor(xt, kern)
        k = self.weight.shape[-1]
        p = self.padding[1]
        wt, bias = self._weights(x.device, dtype, "unfold")
        kc = wt.shape[1]
        xp = torch.empty((t * b, h + 2 * p, w, c), dtype=dtype, device=x.device)
        xp[:, :p].zero_()
        xp[:, h + p :].zero_()
        xp[:, p : p + h].view(t, b, h, w, c).copy_(x.permute(2, 0, 3, 4, 1))
        u = torch.empty((t * b, h, w, kc), dtype=dtype, device=x.device)
        u[..., : c * k].view(t * b, h, w, c, k).copy_(xp.unfold(1, k, 1))
        if kc > c * k:
            u[..., c * k :].zero_()
        del xp
        y = kern.conv(u.permute(0, 3, 1, 2), wt, bias, (1, 1), (0, self.padding[2]), self.relu)
        y = y.permute(0, 2, 3, 1).contiguous()
        return y.view(t, b, h, w, y.shape[3])


class FoldedUpConv(_Cached):
    """ConvTranspose3d (kernel == stride) with batch norm folded in, then ReLU."""

    def __init__(self, conv: nn.ConvTranspose3d, norm: nn.Module) -> None:
        super().__init__()
        if tuple(conv.kernel_size) != tuple(conv.stride) or any(conv.padding):
            raise InputError("only non-overlapping transposed convolutions are supported")
        w, b = fold(conv.weight, norm, out_dim=1)  # (Ci, Co, kt, kh, kw)
        self.factor = tuple(conv.kernel_size)
        self.out_ch = w.shape[1]
        self.register_buffer("weight", w.contiguous())
        self.register_buffer("bias", b)
        k = self.factor[0] * self.factor[1] * self.factor[2]
        # matrix form: rows (kt, kh, kw, Co), columns Ci
        self.register_buffer(
            "lin_weight", w.permute(2, 3, 4, 1, 0).reshape(k * w.shape[1], w.shape[0]).contiguous()
        )
        self.register_buffer("lin_bias", b.repeat(k))

    def ncdhw(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv_transpose3d(x, self.weight, self.bias, stride=self.factor)
        return y.relu_()

    def gemm(self, x2d: torch.Tensor, relu: bool, kern: Kernels) -> torch.Tensor:
        """``(N, Ci)`` -> ``(N, kt*kh*kw*Co)``, columns ordered (kt, kh, kw, Co)."""
        w, b = self._cached(
            (x2d.device, x2d.dtype),
            lambda: (self.lin_weight.to(x2d.device, x2d.dtype), self.lin_bias.to(x2d.device, x2d.dtype)),
        )
        return kern.linear(x2d, w, b, relu)
