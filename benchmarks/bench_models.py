"""Model forward passes on CPU, fp32 (asv).

* :class:`BANetTile`: one 64-day 128 x 128 tile through the straightforward BA-Net
  module (the reference formulation: per-day batch norm with permute copies, NCDHW)
  beside :func:`firesmoke.models.banet_fast.prepare_for_inference` (folded batch norm,
  time-major channels-last activations, one LSTM call, GEMM up-convolutions, fused
  ReLU) at batch 1 and batch 4 (``time_fast_batch4`` is for 4 tiles: divide by 4 for
  seconds per tile), and the fast path with the row-unfolded first convolution that
  CUDA uses by default (``time_fast_batch1_unfold_first``: on CPU oneDNN's direct
  kernel is the default; this row keeps the CUDA variant's CPU cost visible);
  :class:`BANetTileTunedAllocator` the same with firesmoke's allocator tuning and the
  monthly kept days.
* :class:`SmokeChips`: ResNet-50 classifier and U-Net segmenter on 8 chips of
  12 x 120 x 120 px, reference-style (NCHW, ``no_grad``) beside channels-last +
  ``inference_mode``.

Weights are random (timings do not depend on their values). Threads are left at
torch's default; each timing runs once (``number = repeat = 1``) to keep
``asv run --quick`` short.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from firesmoke.models.banet import BANet
from firesmoke.models.banet_fast import prepare_for_inference
from firesmoke.models.resnet import smoke_resnet50
from firesmoke.models.unet import SmokeUNet


def _banet() -> BANet:
    torch.manual_seed(0)
    model = BANet()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.3, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
    return model.eval()


class BANetTile:
    """Seconds per call; tiles of 4 x 64 x 128 x 128, fp32."""

    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 300

    def setup(self) -> None:
        self.model = _banet()
        self.fast = prepare_for_inference(self.model)
        self.x1 = torch.randn(1, 4, 64, 128, 128)
        self.x4 = torch.randn(4, 4, 64, 128, 128)
        # first call of each path creates oneDNN primitives; keep that out of timings
        small = torch.randn(1, 4, 16, 32, 32)
        with torch.inference_mode():
            self.model(small)
        self.fast(small)

    def time_reference_batch1(self) -> None:
        with torch.inference_mode():
            self.model(self.x1)

    def time_fast_batch1(self) -> None:
        self.fast(self.x1)

    def time_fast_batch1_unfold_first(self) -> None:
        self.fast.first_conv = "unfold"
        try:
            self.fast(self.x1)
        finally:
            self.fast.first_conv = "auto"

    def time_fast_batch4(self) -> None:
        self.fast(self.x4)

    def peakmem_fast_batch4(self) -> None:
        self.fast(self.x4)


class BANetTileTunedAllocator(BANetTile):
    """As :class:`BANetTile`, in a process with firesmoke's allocator tuning
    (:func:`firesmoke.inference.runtime.tune_allocator`, what CPU inference runs with), plus the
    fast path asked only for the days of a monthly product (``days=(16, 47)``: August in
    its 64-day window), which skips that share of the decoder."""

    def setup(self) -> None:
        from firesmoke.inference.runtime import tune_allocator

        tune_allocator()
        super().setup()
        # the heap settles over the first large passes
        for _ in range(2):
            self.fast(self.x1)
            self.fast(self.x1, days=(16, 47))

    def time_fast_batch1_monthly_days(self) -> None:
        self.fast(self.x1, days=(16, 47))


class SmokeChips:
    """Seconds per batch of 8 chips, 12 x 120 x 120 px, fp32."""

    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 120
    params: ClassVar[list[str]] = ["resnet50", "unet"]
    param_names: ClassVar[list[str]] = ["model"]

    def setup(self, name: str) -> None:
        torch.manual_seed(0)
        self.model = (smoke_resnet50() if name == "resnet50" else SmokeUNet()).eval()
        self.x = torch.randn(8, 12, 120, 120)
        self.model_cl = (smoke_resnet50() if name == "resnet50" else SmokeUNet()).eval()
        self.model_cl.load_state_dict(self.model.state_dict())
        self.model_cl = self.model_cl.to(memory_format=torch.channels_last)
        self.x_cl = self.x.contiguous(memory_format=torch.channels_last)

    def time_reference_nchw(self, name: str) -> None:
        with torch.no_grad():
            self.model(self.x)

    def time_channels_last_inference(self, name: str) -> None:
        with torch.inference_mode():
            self.model_cl(self.x_cl)
