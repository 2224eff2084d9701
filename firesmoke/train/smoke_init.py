"""Initialising the smoke classifier from torchvision ResNet-50 ImageNet weights.

The reference classifier (reference/smoke.md, "Details confirmed from the reference code")
starts from torchvision's ImageNet-pretrained ResNet-50; only the first convolution (12
input bands, 3 x 3, stride 2) and the head (one logit) are new. Those weights cannot be
downloaded by firesmoke: the user supplies the file (a torchvision ``resnet50`` state
dict, e.g. ``resnet50-0676ba61.pth`` or ``resnet50-11ad3fa6.pth``).

:func:`load_imagenet_resnet50` reads it with ``torch.load(weights_only=True)`` (no code
is executed), checks that it is a ResNet-50 ImageNet state dict (3-band 7 x 7 ``conv1``,
1000-class ``fc``, and every other tensor with the shape of firesmoke's network at width
64), drops ``conv1`` and ``fc`` (they keep their fresh initialisation) and loads the rest.
Anything else is refused with :class:`~firesmoke.errors.InputError` naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from firesmoke.errors import InputError

__all__ = ["NEW_KEYS", "load_imagenet_resnet50"]

logger = logging.getLogger(__name__)

#: Parameters of the smoke classifier that are not taken from ImageNet weights.
NEW_KEYS = ("conv1.weight", "fc.weight", "fc.bias")

_IMAGENET_SHAPES = {"conv1.weight": (64, 3, 7, 7), "fc.weight": (1000, 2048), "fc.bias": (1000,)}


def _read_state(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise InputError("ImageNet ResNet-50 weights file not found", path=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"not a readable PyTorch weights file ({exc})", path=path) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError("expected a torchvision ResNet-50 state dict (name -> tensor)", path=path)
    return obj


def load_imagenet_resnet50(model: nn.Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy torchvision ResNet-50 ImageNet weights into the smoke classifier ``model``.

    Parameters
    ----------
    model
        :func:`firesmoke.models.resnet.smoke_resnet50` at width 64 (the published size).
    path
        The torchvision ``resnet50`` ImageNet state dict.

    Returns
    -------
    dict
        ``path``, ``sha256`` of the file, ``loaded`` (number of tensors copied) and
        ``new`` (the parameters left at their fresh initialisation, :data:`NEW_KEYS`).

    Raises
    ------
    InputError
        Missing or unreadable file, not a ResNet-50 ImageNet state dict, or a model of
        another width.
    """
    p = Path(path)
    state = _read_state(p)
    for key, shape in _IMAGENET_SHAPES.items():
        got = tuple(state[key].shape) if key in state else None
        if got != shape:
            raise InputError(
                f"not torchvision ResNet-50 ImageNet weights: {key} has shape {got}, "
                f"expected {shape}", path=p)
    target = model.state_dict()
    skip = set(NEW_KEYS)
    missing = sorted(k for k in target if k not in skip and k not in state
                     and not k.endswith("num_batches_tracked"))
    extra = sorted(k for k in state if k not in target and k not in skip)
    if missing or extra:
        raise InputError(
            f"state dict does not match the ResNet-50 layout: missing {missing[:3]}, "
            f"unexpected {extra[:3]} ({len(missing)} missing, {len(extra)} unexpected)", path=p)
    bad = [(k, tuple(state[k].shape), tuple(target[k].shape)) for k in state
           if k not in skip and tuple(state[k].shape) != tuple(target[k].shape)]
    if bad:
        raise InputError(
            f"tensor shapes differ from the classifier's (is it built with width=64?): "
            f"{bad[0][0]} {bad[0][1]} vs {bad[0][2]} ({len(bad)} differ)", path=p)
    keep = {k: v.to(target[k].dtype) for k, v in state.items() if k not in skip}
    result = model.load_state_dict(keep, strict=False)
    left = sorted(set(result.missing_keys) - skip - {k for k in target if k.endswith("num_batches_tracked")})
    if left or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise InputError(f"could not load {left or result.unexpected_keys}", path=p)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    logger.info("initialised the smoke classifier from %s (%d tensors; new: %s)", p, len(keep),
                ", ".join(NEW_KEYS))
    return {"path": str(p), "sha256": digest, "loaded": len(keep), "new": list(NEW_KEYS)}
