"""The smoke models' weights: shipped defaults, loading, normalisation from metadata.

Default weights are the named ``smoke_classifier_synthetic`` / ``smoke_segmenter_synthetic``
files shipped in ``firesmoke/data/weights`` (small models trained on SYNTHETIC chips only;
see their model cards); any path or name that
:func:`~firesmoke.models.weights.find_weights` resolves works, e.g. full-size weights.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from firesmoke.errors import WeightsError
from firesmoke.io.sentinel2.chips import BANDS

__all__ = [
    "DEFAULT_CLASSIFIER",
    "DEFAULT_SEGMENTER",
    "load_smoke_model",
    "normalization_from_meta",
    "weights_bands",
]

logger = logging.getLogger(__name__)


#: Named weights used by default (shipped with the package; synthetic training data only).
DEFAULT_CLASSIFIER = "smoke_classifier_synthetic"
DEFAULT_SEGMENTER = "smoke_segmenter_synthetic"


def _card_path(weights: str | os.PathLike[str]) -> Path | None:
    """The model card (``<stem>.json``) of a weights path or name, found without importing
    torch: beside an existing file, else in the folders that
    :func:`firesmoke.models.weights.weights_dirs` searches, in its order."""
    p = Path(weights).expanduser()
    if p.is_file():
        return p.with_suffix(".json")
    text = os.fspath(weights)
    if os.sep in text or "/" in text:
        return None
    env = os.environ.get("FIRESMOKE_WEIGHTS")
    if env:
        dirs = [Path(d).expanduser() for d in env.split(os.pathsep) if d]
    else:
        dirs = [Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "firesmoke"]
    dirs.append(Path(__file__).resolve().parents[1] / "data" / "weights")
    stem = text.removesuffix(".pt").removesuffix(".pth")
    for d in dirs:
        if any((d / (stem + s)).is_file() for s in ("", ".pt", ".pth")):
            return d / (stem + ".json")
    return None


def weights_bands(weights: Any) -> tuple[str, ...] | None:
    """The Sentinel-2 bands a model uses, known without building it (nor importing torch):
    the reference bands for an in-memory module, the ``bands`` of a weights file's model
    card (the ``.json`` beside it) for a path or name; None when no card says (the bands
    are then known when the weights are loaded). Used to refuse inputs without those
    bands before any model is built (loading torch and a model takes seconds)."""
    import json

    if weights is None:
        return None
    if not isinstance(weights, str | os.PathLike):
        if hasattr(weights, "state_dict"):  # an in-memory module: the reference bands
            return tuple(b for b in BANDS if b != "B10")
        return None
    card = _card_path(weights)
    try:
        bands = json.loads(card.read_text()).get("bands") if card is not None and card.is_file() else None
    except (OSError, ValueError, AttributeError):
        logger.debug("unreadable model card %s", card, exc_info=True)
        return None
    if not isinstance(bands, list) or not bands or any(b not in BANDS for b in bands):
        return None
    return tuple(bands)


def load_smoke_model(weights: Any, device: str, want: str) -> tuple[Any, dict[str, Any]]:
    """Model (eval mode, on ``device``) and metadata from a weights path/name or a module."""
    import torch

    from firesmoke.models.normalization import SMOKE_S2  # deferred: torch (~1.4 s)
    from firesmoke.models.weights import load_weights  # deferred: torch (~1.4 s)

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
    from firesmoke.models.normalization import Normalization  # deferred: torch (~1.4 s)

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


