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

from firesmoke.errors import InputError

__all__ = [
    "DROPOUT",
    "BANet",
    "DayBatchNorm",
    "PixelLSTM",
    "SpaceConv",
    "SpaceTimeConv",
    "TimeConv",
    "UpSpaceConv",
    "UpSpaceTimeConv",
    "UpTimeConv",
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
            raise InputError(f"sequence_len must be a multiple of 16, got {sequence_len}")
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
            raise InputError(
                f"BA-Net expects (batch, {in_ch}, time, height, width), got {tuple(x.shape)}"
            )
        t, h, w = x.shape[2:]
        if t % 16 or h % 32 or w % 32:
            raise InputError(
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


def _check_days(days: tuple[int, int] | None, n_days: int) -> tuple[int, int]:
    """``(d0, d1)`` with ``0 <= d0 < d1 <= n_days`` (all days when ``None``)."""
    if days is None:
        return 0, n_days
    d0, d1 = (int(v) for v in days)
    if not 0 <= d0 < d1 <= n_days:
        raise InputError(f"days must be (d0, d1) with 0 <= d0 < d1 <= {n_days}, got {days}")
    return d0, d1
