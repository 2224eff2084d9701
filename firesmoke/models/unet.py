"""U-Net smoke segmenter (Mommert et al. 2020), pure PyTorch.

Encoder ``in_ch -> b, 2b, 4b, 8b, 8b`` (``b = base``, 64 published) with four 2x2 max-pool
downsamplings; decoder stages upsample by 2 (bilinear, ``align_corners=True``), pad to
the size of the skip tensor, concatenate ``(skip, up)`` and apply two
(3x3 conv with bias, BatchNorm, ReLU); widths 4b, 2b, b, b; a 1x1 convolution gives one
logit per pixel. Parameter names (``inc.double_conv.0``, ``down1.maxpool_conv.1...``,
``up1.conv.double_conv...``, ``outc.conv``) match ``reference/smoke_unet_state_dict.tsv``
(17,272,577 parameters for ``base=64``) so the published weights load with
``strict=True``. Any input height and width work; the output has the input's size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from firesmoke.errors import InputError

__all__ = ["DoubleConv", "Down", "OutConv", "SmokeUNet", "Up"]


class DoubleConv(nn.Module):
    """Two (3x3 conv with bias, BatchNorm, ReLU), kept in ``self.double_conv``."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None) -> None:
        super().__init__()
        mid_ch = mid_ch or out_ch
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 3, padding=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """2x2 max pool, then :class:`DoubleConv` (``self.maxpool_conv``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upsample x2, pad to the skip's size, concatenate ``(skip, up)``, DoubleConv.

    ``bilinear=True``: parameter-free bilinear upsampling (``align_corners=True``) and a
    DoubleConv whose middle width is half its input. ``bilinear=False``: a learned
    ``ConvTranspose2d`` halving the channels.
    """

    def __init__(self, in_ch: int, out_ch: int, bilinear: bool = True) -> None:
        super().__init__()
        self.up: nn.Module
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_ch, out_ch, in_ch // 2)
        else:
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat((skip, x), dim=1))


class OutConv(nn.Module):
    """1x1 convolution to the output logits (``self.conv``)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SmokeUNet(nn.Module):
    """U-Net smoke segmenter: ``(B, in_ch, H, W)`` -> logits ``(B, n_classes, H, W)``.

    Parameters
    ----------
    in_ch
        Input bands (12 Sentinel-2 bands for the published model).
    n_classes
        Output logits per pixel (1 published).
    base
        Width of the first stage (64 published); smaller values give small demo models
        with the same structure and parameter names.
    bilinear
        Bilinear upsampling (published) or learned transposed convolutions.
    """

    def __init__(
        self, in_ch: int = 12, n_classes: int = 1, base: int = 64, bilinear: bool = True
    ) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.n_classes = n_classes
        self.base = base
        self.bilinear = bilinear
        f = 2 if bilinear else 1
        b = base
        self.inc = DoubleConv(in_ch, b)
        self.down1 = Down(b, 2 * b)
        self.down2 = Down(2 * b, 4 * b)
        self.down3 = Down(4 * b, 8 * b)
        self.down4 = Down(8 * b, 16 * b // f)
        self.up1 = Up(16 * b, 8 * b // f, bilinear)
        self.up2 = Up(8 * b, 4 * b // f, bilinear)
        self.up3 = Up(4 * b, 2 * b // f, bilinear)
        self.up4 = Up(2 * b, b, bilinear)
        self.outc = OutConv(b, n_classes)

    @property
    def config(self) -> dict:
        """Constructor arguments (saved with the weights)."""
        return {
            "in_ch": self.in_ch,
            "n_classes": self.n_classes,
            "base": self.base,
            "bilinear": self.bilinear,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise InputError(f"expected (batch, {self.in_ch}, height, width), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 16:
            raise InputError(f"height and width must be >= 16, got {tuple(x.shape[-2:])}")
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        return self.outc(y)
