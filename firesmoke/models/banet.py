"""BA-Net: spatio-temporal burned-area network (Pinto et al. 2020).

The module tree below reproduces the published architecture so that a state dict
with the parameter names of the reference software (``reference/banet_state_dict.tsv``,
132 entries, 3,415,361 trainable parameters) loads with ``strict=True``:

* ``stconv1`` .. ``stconv5``: a *space* block (Conv3d kernel ``(1, k, k)``, per-day batch
  norm, ReLU) followed by a *time* block (optional LSTM over each pixel's series,
  Conv3d kernel ``(kt, 1, 1)``, per-day batch norm, ReLU) and ``Dropout3d(0.2)``;
* ``stconv6``: one space block;
* ``ustconv6`` .. ``ustconv2``: transposed convolutions doubling H, W (and T from
  ``ustconv5`` on), each fed the concatenation ``(skip, up)``;
* head: Conv3d ``(3, 1, 1)`` 64 -> 64, batch norm, ReLU, Conv3d 1x1x1 64 -> n_classes.

Input ``(B, in_ch, T, H, W)`` -> logits ``(B, n_classes, T, H, W)`` with ``T`` a multiple
of 16 and ``H``, ``W`` multiples of 32.

:class:`BANet` is the straightforward (reference-shaped) module, used for training and
as the ground truth; :func:`prepare_for_inference` turns a trained instance into an
equivalent, much faster eval-only module (:class:`FastBANet`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "DROPOUT",
    "BANet",
    "DayBatchNorm",
    "FastBANet",
    "PixelLSTM",
    "SpaceConv",
    "SpaceTimeConv",
    "TimeConv",
    "UpSpaceConv",
    "UpSpaceTimeConv",
    "UpTimeConv",
    "prepare_for_inference",
]

DROPOUT = 0.2
"""Dropout3d probability after each encoder block and decoder stage."""


class DayBatchNorm(nn.Module):
    """Batch norm applied to every day of a ``(B, C, T, H, W)`` tensor.

    Days are folded into the batch axis and a :class:`torch.nn.BatchNorm2d` (kept as
    ``self.bn`` for state-dict compatibility) normalises ``(B*T, C, H, W)``. This is the
    reference formulation; its statistics equal those of a ``BatchNorm3d`` over the
    whole block, which is what the fast inference path uses.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)
        y = self.bn(y)
        return y.reshape(b, t, c, h, w).transpose(1, 2).contiguous()


class PixelLSTM(nn.Module):
    """One-layer unidirectional LSTM run over the time series of every pixel.

    ``(B, C, T, H, W)`` -> ``(B, hidden, T, H, W)``: the hidden state at every day.
    """

    def __init__(self, in_ch: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_ch, hidden, num_layers=1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)
        out, _ = self.lstm(seq)
        hidden = out.shape[-1]
        return out.reshape(b, h, w, t, hidden).permute(0, 4, 3, 1, 2).contiguous()


def _norm_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, DayBatchNorm(channels), nn.ReLU(inplace=True))


class SpaceConv(nn.Module):
    """Conv3d ``(1, k, k)`` / stride ``(1, s, s)`` without bias, per-day norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        conv = nn.Conv3d(
            in_ch,
            out_ch,
            kernel_size=(1, kernel, kernel),
            stride=(1, stride, stride),
            padding=(0, kernel // 2, kernel // 2),
            bias=False,
        )
        self.conv = _norm_relu(conv, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TimeConv(nn.Module):
    """[Pixel LSTM], Conv3d ``(kt, 1, 1)`` / stride ``(st, 1, 1)`` without bias, norm, ReLU."""

    def __init__(self, channels: int, kernel: int, stride: int, lstm: bool = False) -> None:
        super().__init__()
        self.timeConv = nn.Conv3d(
            channels,
            channels,
            kernel_size=(kernel, 1, 1),
            stride=(stride, 1, 1),
            padding=(kernel // 2, 0, 0),
            bias=False,
        )
        self.timeLstm = PixelLSTM(channels, channels) if lstm else None
        self.bn = DayBatchNorm(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.timeLstm is not None:
            x = self.timeLstm(x)
        return self.relu(self.bn(self.timeConv(x)))


class UpSpaceConv(nn.Module):
    """ConvTranspose3d ``(1, 2, 2)`` / ``(1, 2, 2)`` without bias, per-day norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        conv = nn.ConvTranspose3d(
            in_ch, out_ch, kernel_size=(1, 2, 2), stride=(1, 2, 2), bias=False
        )
        self.conv = _norm_relu(conv, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UpTimeConv(nn.Module):
    """ConvTranspose3d ``(2, 1, 1)`` / ``(2, 1, 1)`` without bias, per-day norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        conv = nn.ConvTranspose3d(
            in_ch, out_ch, kernel_size=(2, 1, 1), stride=(2, 1, 1), bias=False
        )
        self.conv = _norm_relu(conv, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpaceTimeConv(nn.Module):
    """Encoder block: space conv, time conv, Dropout3d (``self.stconv``)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        time_kernel: int,
        time_stride: int,
        lstm: bool = False,
    ) -> None:
        super().__init__()
        self.stconv = nn.Sequential(
            SpaceConv(in_ch, out_ch, kernel, stride),
            TimeConv(out_ch, time_kernel, time_stride, lstm=lstm),
            nn.Dropout3d(DROPOUT),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stconv(x)


class UpSpaceTimeConv(nn.Module):
    """Decoder stage: up-space conv, up-time conv, Dropout3d (``self.upstconv``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.upstconv = nn.Sequential(
            UpSpaceConv(in_ch, out_ch),
            UpTimeConv(out_ch, out_ch),
            nn.Dropout3d(DROPOUT),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upstconv(x)


class BANet(nn.Module):
    """BA-Net burned-area model (reference architecture, reference parameter names).

    Parameters
    ----------
    in_ch
        Input channels (Red, NIR, MIR, FRP for the published model).
    n_classes
        Output channels (1: logit of "burned on this day").
    sequence_len
        Nominal number of days per sequence (64 published). The network itself works
        on any ``T`` that is a multiple of 16; the value is kept as metadata and used
        by :meth:`check_input`.

    Notes
    -----
    ``forward`` maps ``(B, in_ch, T, H, W)`` float32 to logits ``(B, n_classes, T, H, W)``.
    """

    def __init__(self, in_ch: int = 4, n_classes: int = 1, sequence_len: int = 64) -> None:
        super().__init__()
        if sequence_len % 16:
            raise ValueError(f"sequence_len must be a multiple of 16, got {sequence_len}")
        self.in_ch = in_ch
        self.n_classes = n_classes
        self.sequence_len = sequence_len
        self.stconv1 = SpaceTimeConv(in_ch, 32, 7, 1, 7, 1, lstm=True)
        self.stconv2 = SpaceTimeConv(32, 64, 3, 2, 7, 2)
        self.stconv3 = SpaceTimeConv(64, 128, 3, 2, 5, 2)
        self.stconv4 = SpaceTimeConv(128, 256, 3, 2, 3, 2)
        self.stconv5 = SpaceTimeConv(256, 256, 3, 2, 3, 2)
        self.stconv6 = SpaceConv(256, 256, 3, 2)
        self.ustconv6 = UpSpaceConv(256, 256)
        self.ustconv5 = UpSpaceTimeConv(512, 256)
        self.ustconv4 = UpSpaceTimeConv(512, 128)
        self.ustconv3 = UpSpaceTimeConv(256, 64)
        self.ustconv2 = UpSpaceTimeConv(128, 32)
        self.conv3 = nn.Conv3d(64, 64, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn = DayBatchNorm(64)
        self.relu = nn.ReLU(inplace=True)
        self.final_conv = nn.Conv3d(64, n_classes, kernel_size=1)

    @property
    def config(self) -> dict:
        """Constructor arguments (saved with the weights)."""
        return {"in_ch": self.in_ch, "n_classes": self.n_classes, "sequence_len": self.sequence_len}

    @staticmethod
    def check_input(x: torch.Tensor, in_ch: int) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, in_ch, T, H, W)`` with valid sizes."""
        if x.ndim != 5 or x.shape[1] != in_ch:
            raise ValueError(
                f"BA-Net expects (batch, {in_ch}, time, height, width), got {tuple(x.shape)}"
            )
        t, h, w = x.shape[2:]
        if t % 16 or h % 32 or w % 32:
            raise ValueError(
                "BA-Net needs time % 16 == 0 and height, width % 32 == 0, "
                f"got time={t}, height={h}, width={w}"
            )

    def forward(self, x: torch.Tensor, days: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes, T, H, W)``; only days ``[d0, d1)`` with ``days``.

        This module computes every day and slices (it is the plain reference network);
        :class:`FastBANet` skips the decoder work of the days not asked for.
        """
        self.check_input(x, self.in_ch)
        d0, d1 = _check_days(days, x.shape[2])
        c1 = self.stconv1(x)
        c2 = self.stconv2(c1)
        c3 = self.stconv3(c2)
        c4 = self.stconv4(c3)
        c5 = self.stconv5(c4)
        up = self.ustconv6(self.stconv6(c5))
        up = self.ustconv5(torch.cat((c5, up), dim=1))
        up = self.ustconv4(torch.cat((c4, up), dim=1))
        up = self.ustconv3(torch.cat((c3, up), dim=1))
        up = self.ustconv2(torch.cat((c2, up), dim=1))
        up = torch.cat((c1, up), dim=1)
        return self.final_conv(self.relu(self.bn(self.conv3(up))))[:, :, d0:d1]


# --------------------------------------------------------------------------------------
# Fast inference path
# --------------------------------------------------------------------------------------
# In eval mode a per-day batch norm is one affine map per channel, so it folds into the
# convolution before it (scale -> weight, shift -> a new bias). The fast module keeps
# activations as (B, T, H, W, C) tensors (the memory order of channels_last_3d): the
# (1, k, k) convolutions become 2-D convolutions over B*T days, the (kt, 1, 1) ones 2-D
# convolutions over (T, H*W), both on channels-last views without copies; the LSTM reads
# each sample as a contiguous (T, H*W, C) sequence batch; the transposed convolutions
# (kernel == stride, no overlap) become matrix products whose columns are scattered to
# the finer grid, with the ReLU, the pixel shuffle and the skip concatenation done in
# one pass into a preallocated buffer.

_MKLDNN_FUSION: bool | None = None


def _mkldnn_fusion_available() -> bool:
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


def _fold(
    weight: torch.Tensor, norm: DayBatchNorm, out_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode batch norm into a bias-free convolution weight.

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


def _relu_into(src: torch.Tensor, dst: torch.Tensor) -> None:
    """``dst[...] = relu(src)`` in one pass (``dst`` is a strided view)."""
    if torch.compiler.is_compiling():  # no strided out= under dynamo; inductor fuses this
        dst.copy_(torch.relu(src))
    else:
        torch.clamp_min(src, 0, out=dst)


class _FoldedConv(nn.Module):
    """Conv3d with batch norm folded in (bias), optional ReLU; NCDHW or NDHWC input."""

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
        k = tuple(weight.shape[2:])
        if k == (1, 1, 1) and self.stride == (1, 1, 1):
            self.kind = "point"
        elif k[0] == 1 and self.stride[0] == 1 and self.padding[0] == 0:
            self.kind = "space"
        elif k[1:] == (1, 1) and self.stride[1:] == (1, 1) and self.padding[1:] == (0, 0):
            self.kind = "time"
        else:  # pragma: no cover - BA-Net has no such convolution
            raise ValueError(f"unsupported kernel {k} / stride {self.stride}")

    @classmethod
    def from_block(cls, conv: nn.Conv3d, norm: DayBatchNorm, relu: bool = True) -> _FoldedConv:
        w, b = _fold(conv.weight, norm, out_dim=0)
        return cls(w, b, conv.stride, conv.padding, relu)

    def ncdhw(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv3d(x, self.weight, self.bias, self.stride, self.padding)
        return y.relu_() if self.relu else y

    def _conv2d(
        self, x: torch.Tensor, w: torch.Tensor, stride: tuple, padding: tuple, fuse: bool
    ) -> torch.Tensor:
        if fuse and self.relu:
            return torch.ops.mkldnn._convolution_pointwise(
                x, w, self.bias, list(padding), list(stride), [1, 1], 1, "relu", [], ""
            )
        y = nn.functional.conv2d(x, w, self.bias, stride, padding)
        return y.relu_() if self.relu else y

    def ndhwc(self, x: torch.Tensor, fuse: bool) -> torch.Tensor:
        """Apply to a contiguous ``(B, T, H, W, C)`` tensor; returns the same layout."""
        b, t, h, w, c = x.shape
        if self.kind == "point":
            y = nn.functional.linear(
                x.reshape(-1, c), self.weight.view(self.weight.shape[:2]), self.bias
            )
            y = y.relu_() if self.relu else y
            return y.view(b, t, h, w, -1)
        if self.kind == "space":
            x4 = x.view(b * t, h, w, c).permute(0, 3, 1, 2)
            y = self._conv2d(x4, self.weight[:, :, 0], self.stride[1:], self.padding[1:], fuse)
            y = y.permute(0, 2, 3, 1).contiguous()  # no copy for channels-last output
            return y.view(b, t, y.shape[1], y.shape[2], y.shape[3])
        x4 = x.view(b, t, h * w, c).permute(0, 3, 1, 2)
        y = self._conv2d(x4, self.weight[..., 0], (self.stride[0], 1), (self.padding[0], 0), fuse)
        y = y.permute(0, 2, 3, 1).contiguous()
        return y.view(b, y.shape[1], h, w, y.shape[3])


class _FoldedUpConv(nn.Module):
    """ConvTranspose3d (kernel == stride) with batch norm folded in, then ReLU."""

    def __init__(self, conv: nn.ConvTranspose3d, norm: DayBatchNorm) -> None:
        super().__init__()
        if tuple(conv.kernel_size) != tuple(conv.stride) or any(conv.padding):
            raise ValueError("only non-overlapping transposed convolutions are supported")
        w, b = _fold(conv.weight, norm, out_dim=1)  # (Ci, Co, kt, kh, kw)
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

    def gemm(self, x2d: torch.Tensor, relu: bool, fuse: bool) -> torch.Tensor:
        """``(N, Ci)`` -> ``(N, kt*kh*kw*Co)``, columns ordered (kt, kh, kw, Co)."""
        if relu and fuse:
            return torch.ops.mkldnn._linear_pointwise(
                x2d, self.lin_weight, self.lin_bias, "relu", [], ""
            )
        y = nn.functional.linear(x2d, self.lin_weight, self.lin_bias)
        return y.relu_() if relu else y


def _check_days(days: tuple[int, int] | None, n_days: int) -> tuple[int, int]:
    """``(d0, d1)`` with ``0 <= d0 < d1 <= n_days`` (all days when ``None``)."""
    if days is None:
        return 0, n_days
    d0, d1 = (int(v) for v in days)
    if not 0 <= d0 < d1 <= n_days:
        raise ValueError(f"days must be (d0, d1) with 0 <= d0 < d1 <= {n_days}, got {days}")
    return d0, d1


class FastBANet(nn.Module):
    """Eval-only BA-Net equal to ``BANet.eval()`` up to float rounding, but faster.

    Built by :func:`prepare_for_inference`; holds folded copies of the weights as
    buffers (move it with ``.to(device)``). ``forward`` always runs under
    :func:`torch.inference_mode`.
    """

    def __init__(self, model: BANet, channels_last: bool = True) -> None:
        super().__init__()
        self.in_ch = model.in_ch
        self.n_classes = model.n_classes
        self.sequence_len = model.sequence_len
        self.channels_last = channels_last
        self.space = nn.ModuleList()
        self.time = nn.ModuleList()
        for blk in (model.stconv1, model.stconv2, model.stconv3, model.stconv4, model.stconv5):
            sc, tc = blk.stconv[0], blk.stconv[1]
            self.space.append(_FoldedConv.from_block(sc.conv[0], sc.conv[1]))
            self.time.append(_FoldedConv.from_block(tc.timeConv, tc.bn))
        src = model.stconv1.stconv[1].timeLstm.lstm
        # same weights, sequence-first layout: (T, pixels, C) is how NDHWC lies in memory
        self.lstm = nn.LSTM(src.input_size, src.hidden_size, num_layers=1).to(
            device=src.weight_ih_l0.device, dtype=src.weight_ih_l0.dtype
        )
        self.lstm.load_state_dict(src.state_dict())
        self.bottom = _FoldedConv.from_block(model.stconv6.conv[0], model.stconv6.conv[1])
        self.up6 = _FoldedUpConv(model.ustconv6.conv[0], model.ustconv6.conv[1])
        self.up_space = nn.ModuleList()
        self.up_time = nn.ModuleList()
        for st in (model.ustconv5, model.ustconv4, model.ustconv3, model.ustconv2):
            a, t = st.upstconv[0], st.upstconv[1]
            self.up_space.append(_FoldedUpConv(a.conv[0], a.conv[1]))
            self.up_time.append(_FoldedUpConv(t.conv[0], t.conv[1]))
        self.head = _FoldedConv.from_block(model.conv3, model.bn)
        fc = model.final_conv
        self.final = _FoldedConv(
            fc.weight.detach().clone(), fc.bias.detach().clone(), fc.stride, fc.padding, relu=False
        )
        self.use_fusion = True
        self._compiled = None
        self.eval()

    #: ``forward`` takes ``days=`` and computes only what those days need
    supports_days = True

    def forward(self, x: torch.Tensor, days: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes, T, H, W)``, or only days ``[d0, d1)`` with ``days``.

        With ``days`` the decoder (time-local but for the head's 3-day kernel) runs only
        on the days those outputs depend on: the same values, less work when a monthly
        product keeps half of its 64-day window. The encoder always runs whole (the LSTM
        and the strided time convolutions see the whole window).
        """
        BANet.check_input(x, self.in_ch)
        keep = _check_days(days, x.shape[2])
        if self._compiled is not None:
            pre, post = self._compiled
        elif self.channels_last:
            pre, post = self._pre_ndhwc, self._post_ndhwc
        else:
            pre, post = self._pre_ncdhw, self._post_ncdhw
        lstm = self._lstm_ndhwc if self.channels_last else self._lstm_ncdhw
        with torch.inference_mode():
            # the LSTM runs eagerly between two (optionally compiled) stages
            return post(lstm(pre(x)), x.shape, keep)

    def _fuse(self, x: torch.Tensor) -> bool:
        return (
            self.use_fusion
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and _mkldnn_fusion_available()
        )

    # -- NCDHW (folding only) ------------------------------------------------------------
    def _pre_ncdhw(self, x: torch.Tensor) -> torch.Tensor:
        return self.space[0].ncdhw(x)

    def _lstm_ncdhw(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        out = self.lstm(x.permute(2, 0, 3, 4, 1).reshape(t, b * h * w, c))[0]
        return out.view(t, b, h, w, -1).permute(1, 4, 0, 2, 3).contiguous()

    def _post_ncdhw(
        self, x: torch.Tensor, shape: torch.Size, keep: tuple[int, int]
    ) -> torch.Tensor:
        x = self.time[0].ncdhw(x)
        skips = [x]
        for sc, tc in zip(self.space[1:], self.time[1:], strict=True):
            x = tc.ncdhw(sc.ncdhw(x))
            skips.append(x)
        up = self.up6.ncdhw(self.bottom.ncdhw(x))
        for us, ut, skip in zip(self.up_space, self.up_time, skips[:0:-1], strict=True):
            up = ut.ncdhw(us.ncdhw(torch.cat((skip, up), dim=1)))
        up = self.head.ncdhw(torch.cat((skips[0], up), dim=1))
        return self.final.ncdhw(up[:, :, keep[0] : keep[1]])

    # -- NDHWC ---------------------------------------------------------------------------
    def _pre_ndhwc(self, x: torch.Tensor) -> torch.Tensor:
        return self.space[0].ndhwc(x.permute(0, 2, 3, 4, 1).contiguous(), self._fuse(x))

    def _post_ndhwc(
        self, x: torch.Tensor, shape: torch.Size, keep: tuple[int, int]
    ) -> torch.Tensor:
        fuse = self._fuse(x)
        x = self.time[0].ndhwc(x, fuse)
        skips = [x]
        for sc, tc in zip(self.space[1:], self.time[1:], strict=True):
            x = tc.ndhwc(sc.ndhwc(x, fuse), fuse)
            skips.append(x)
        x = self.bottom.ndhwc(x, fuse)
        # days each decoder level must produce: the kept days and the head's +-1 day,
        # halved (floor / ceil) per level, since every up step maps day t to 2t, 2t + 1
        t_full = shape[2]
        a0, a1 = max(keep[0] - 1, 0), min(keep[1] + 1, t_full)
        level = len(skips) - 1
        d0, d1 = a0 >> level, -(-a1 >> level)
        x = x[:, d0:d1].contiguous()
        b, t, h, w, c = x.shape
        co = self.up6.out_ch
        y = self.up6.gemm(x.view(-1, c), relu=False, fuse=fuse)  # rows (b,t,h,w), cols (kh,kw,co)
        # skips are popped as they are copied into the concat buffers: bounded memory
        buf, dst = self._concat_buffer(skips.pop()[:, d0:d1], co, (t, 2 * h, 2 * w), (1, 2, 2))
        _relu_into(y.view(b, t, h, w, 1, 2, 2, co).permute(0, 1, 4, 2, 5, 3, 6, 7), dst)
        del x, y, dst
        for us, ut in zip(self.up_space, self.up_time, strict=True):
            # buf holds days [d0, d1) of this level; keep those the finer level needs
            n0, n1 = a0 >> level, -(-a1 >> level)
            buf = buf[:, n0 - d0 : n1 - d0]
            level -= 1
            d0, d1 = 2 * n0, 2 * n1
            b, t, h, w, c = buf.shape
            y1 = us.gemm(buf.reshape(-1, c), relu=True, fuse=fuse)  # rows (b,t,h,w), cols (kh,kw,c1)
            del buf
            y2 = ut.gemm(y1.view(-1, us.out_ch), relu=False, fuse=fuse)  # cols (kt, co)
            del y1
            co = ut.out_ch
            buf, dst = self._concat_buffer(
                skips.pop()[:, d0:d1], co, (2 * t, 2 * h, 2 * w), (2, 2, 2)
            )
            # y2 rows (b,t,h,w,kh,kw), cols (kt,co) -> grid (b, t,kt, h,kh, w,kw, co)
            _relu_into(y2.view(b, t, h, w, 2, 2, 2, co).permute(0, 1, 6, 2, 4, 3, 5, 7), dst)
            del y2, dst
        # the head's 3-day kernel on days [a0, a1) (zero padding at their ends, which is
        # the real padding at the window ends); its first/last day are dropped when they
        # are only context
        y = self.head.ndhwc(buf[:, a0 - d0 : a1 - d0].contiguous(), fuse)
        del buf
        y = self.final.ndhwc(y[:, keep[0] - a0 : keep[1] - a0].contiguous(), fuse)
        batch, _, _, height, width = shape
        n_days = keep[1] - keep[0]
        return y.view(batch, n_days, height, width, -1).permute(0, 4, 1, 2, 3).contiguous()

    def _lstm_ndhwc(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        outs = [self.lstm(x[i].view(t, h * w, c))[0] for i in range(b)]
        y = outs[0].unsqueeze(0) if b == 1 else torch.stack(outs)
        return y.view(b, t, h, w, -1)

    @staticmethod
    def _concat_buffer(
        skip: torch.Tensor, up_ch: int, grid: tuple[int, int, int], factor: tuple[int, int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Buffer ``(B, *grid, Cskip + up_ch)`` holding ``skip``; returns it and the up part.

        The up part is returned as an 8-D view ``(B, t, ft, h, fh, w, fw, up_ch)`` so that
        a transposed-convolution output can be scattered into it in one pass.
        """
        b = skip.shape[0]
        cs = skip.shape[-1]
        buf = torch.empty((b, *grid, cs + up_ch), dtype=skip.dtype, device=skip.device)
        buf[..., :cs].copy_(skip)
        (t, h, w), (ft, fh, fw) = grid, factor
        dst = buf[..., cs:].unflatten(1, (t // ft, ft)).unflatten(3, (h // fh, fh))
        return buf, dst.unflatten(5, (w // fw, fw))


def prepare_for_inference(
    model: BANet, compile: bool = False, channels_last: bool = True
) -> FastBANet:
    """Return a fast eval-only module computing the same logits as ``model.eval()``.

    Batch norms are folded into the convolutions before them (a per-day batch norm in
    eval mode is a per-channel affine map), transposed convolutions become matrix
    products scattered onto the finer grid, activations stay in channels-last order
    (``channels_last=True``) and the whole forward runs under
    :func:`torch.inference_mode`. The per-pixel LSTM is run unchanged. On CPU, oneDNN's
    fused convolution + ReLU kernels are used when available.

    Parameters
    ----------
    model
        A :class:`BANet`; its weights are copied (folded), the original is untouched.
    compile
        Also compile the forward with :func:`torch.compile` (slow first call).
    channels_last
        Keep activations in channels-last (NDHWC) order; ``False`` keeps NCDHW
        tensors and only folds the batch norms.

    Returns
    -------
    FastBANet
        A module on the same device and dtype as ``model``, in eval mode.
    """
    fast = FastBANet(model, channels_last=channels_last)
    if compile:
        fast.use_fusion = False  # let the compiler see plain aten ops
        if channels_last:
            stages = (fast._pre_ndhwc, fast._post_ndhwc)
        else:
            stages = (fast._pre_ncdhw, fast._post_ncdhw)
        fast._compiled = tuple(torch.compile(f, dynamic=False) for f in stages)
    return fast
