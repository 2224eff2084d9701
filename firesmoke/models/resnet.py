"""ResNet-50 smoke classifier (Mommert et al. 2020), pure PyTorch.

An ImageNet-style bottleneck ResNet (blocks 3-4-6-3, expansion 4) whose stem is a
single ``Conv2d(in_ch, width, 3, stride 2, padding 3, bias=False)`` + batch norm + ReLU +
3x3/2 max pool, and whose head is global average pooling + ``Linear(8 * 4 * width, 1)``.
Parameter names follow the torchvision layout (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ``fc``) so that the published weights
(``reference/smoke_resnet50_state_dict.tsv``, 23,507,585 parameters) load with
``strict=True``. ``width`` scales every layer for small demonstration models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from firesmoke.errors import InputError

__all__ = ["Bottleneck", "SmokeResNet", "smoke_resnet50"]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand (x4), residual, ReLU."""

    expansion = 4

    def __init__(self, in_ch: int, mid_ch: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = mid_ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class SmokeResNet(nn.Module):
    """Bottleneck ResNet for multispectral chips -> one logit per chip.

    Parameters
    ----------
    in_ch
        Input bands (12 Sentinel-2 bands for the published model).
    width
        Channels of the stem (64 published); stage ``i`` uses ``width * 2**i`` bottleneck
        channels and ``4 * width * 2**i`` output channels.
    layers
        Bottleneck blocks per stage (3, 4, 6, 3 for ResNet-50).
    n_outputs
        Logits per chip (1 published).
    stem_kernel, stem_stride, stem_padding
        The modified first convolution (3, 2, 3 published).
    """

    def __init__(
        self,
        in_ch: int = 12,
        width: int = 64,
        layers: Sequence[int] = (3, 4, 6, 3),
        n_outputs: int = 1,
        stem_kernel: int = 3,
        stem_stride: int = 2,
        stem_padding: int = 3,
    ) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.width = width
        self._config = {
            "in_ch": in_ch,
            "width": width,
            "layers": [int(n) for n in layers],
            "n_outputs": n_outputs,
            "stem_kernel": stem_kernel,
            "stem_stride": stem_stride,
            "stem_padding": stem_padding,
        }
        self.conv1 = nn.Conv2d(
            in_ch, width, stem_kernel, stride=stem_stride, padding=stem_padding, bias=False
        )
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        ch = width
        for i, n_blocks in enumerate(layers):
            mid = width * 2**i
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck(ch, mid, stride))
                ch = mid * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, n_outputs)
        self._init_weights()

    @property
    def config(self) -> dict:
        """Constructor arguments (saved with the weights)."""
        return dict(self._config)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled feature vector ``(B, C)`` before the linear head."""
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise InputError(f"expected (batch, {self.in_ch}, height, width), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> logits ``(B, n_outputs)``."""
        return self.fc(self.features(x))


def smoke_resnet50(
    in_ch: int = 12, width: int = 64, n_outputs: int = 1, **kwargs: object
) -> SmokeResNet:
    """The smoke classifier of Mommert et al. (2020): ResNet-50 with a 12-band stem.

    ``width=64`` gives the published network (23,507,585 parameters); a smaller
    ``width`` (e.g. 16) keeps the structure and names with fewer channels.
    """
    return SmokeResNet(in_ch=in_ch, width=width, n_outputs=n_outputs, **kwargs)  # type: ignore[arg-type]
