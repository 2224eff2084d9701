"""The smoke models' weights: shipped defaults, loading, normalisation from metadata.

Default weights are the named ``smoke_classifier_synthetic`` / ``smoke_segmenter_synthetic``
files shipped in ``firesmoke/data/weights`` (small models trained on SYNTHETIC chips only;
see their model cards); any path or name that
:func:`~firesmoke.models.weights.find_weights` resolves works, e.g. full-size weights.
"""

from __future__ import annotations

import logging
from typing import Any

from firesmoke.errors import WeightsError
from firesmoke.io.sentinel2.chips import BANDS

__all__ = [
    "DEFAULT_CLASSIFIER",
    "DEFAULT_SEGMENTER",
    "load_smoke_model",
    "normalization_from_meta",
]

logger = logging.getLogger(__name__)


#: Named weights used by default (shipped with the package; synthetic training data only).
DEFAULT_CLASSIFIER = "smoke_classifier_synthetic"
DEFAULT_SEGMENTER = "smoke_segmenter_synthetic"


def load_smoke_model(weights: Any, device: str, want: str) -> tuple[Any, dict[str, Any]]:
    """Model (eval mode, on ``device``) and metadata from a weights path/name or a module."""
    import torch

    from firesmoke.models.normalization import SMOKE_S2
    from firesmoke.models.weights import load_weights

    if isinstance(weights, torch.nn.Module):
        meta = {"bands": list(SMOKE_S2.bands), "normalization": SMOKE_S2.to_dict(),
                "architecture": want, "sha256": None, "path": None}
        return weights.to(device).eval(), meta
    model, meta = load_weights(weights, map_location=device)
    if meta.get("architecture") != want:
        raise WeightsError(
            f"expected {want!r} weights, the file holds {meta.get('architecture')!r}",
            path=meta.get("path"),
        )
    return model, meta


def normalization_from_meta(meta: dict[str, Any]) -> Any:
    """The :class:`~firesmoke.models.normalization.Normalization` of weights, checked."""
    from firesmoke.models.normalization import Normalization

    norm = dict(meta.get("normalization") or {})
    bands = tuple(meta.get("bands") or norm.get("bands") or ())
    if not bands or "mean" not in norm or "std" not in norm:
        raise WeightsError("weights metadata lacks bands/normalization", path=meta.get("path"))
    unknown = [b for b in bands if b not in BANDS]
    if unknown:
        raise WeightsError(f"weights use unknown bands {unknown}", path=meta.get("path"))
    try:
        return Normalization.from_dict({**norm, "bands": bands})
    except ValueError as exc:
        raise WeightsError(f"normalization does not match the band list ({exc})",
                           path=meta.get("path")) from exc


