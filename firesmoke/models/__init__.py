"""PyTorch models of firesmoke and their weights.

Plain :class:`torch.nn.Module` s whose parameter names match the reference software, so
published weights load with ``strict=True``:

* :class:`~firesmoke.models.banet.BANet` - burned area and burn date (Pinto et al. 2020),
  with :func:`~firesmoke.models.banet_fast.prepare_for_inference` for a fast eval path;
* :func:`~firesmoke.models.resnet.smoke_resnet50` - smoke classifier;
* :class:`~firesmoke.models.unet.SmokeUNet` - smoke segmenter (Mommert et al. 2020).

Weights travel with their metadata (bands, normalisation, tile size, sequence length,
checksum): :func:`~firesmoke.models.weights.save_weights`,
:func:`~firesmoke.models.weights.load_weights`.
"""

from firesmoke.models.banet import BANet
from firesmoke.models.banet_fast import FastBANet, prepare_for_inference
from firesmoke.models.normalization import BANET, SMOKE_S2, Normalization
from firesmoke.models.resnet import SmokeResNet, smoke_resnet50
from firesmoke.models.unet import SmokeUNet
from firesmoke.models.weights import (
    ARCHITECTURES,
    available_weights,
    find_weights,
    load_weights,
    save_weights,
    state_dict_sha256,
    weights_dirs,
)

__all__ = [
    "ARCHITECTURES",
    "BANET",
    "SMOKE_S2",
    "BANet",
    "FastBANet",
    "Normalization",
    "SmokeResNet",
    "SmokeUNet",
    "available_weights",
    "find_weights",
    "load_weights",
    "prepare_for_inference",
    "save_weights",
    "smoke_resnet50",
    "state_dict_sha256",
    "weights_dirs",
]
