"""Smoke in Sentinel-2 chips: the classifier's probability and the segmenter's plume area.

:func:`classify_chips` gives a table of chips with the classifier's smoke probability and
the segmenter's mask area (m2), in batches with weights loaded once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from firesmoke._version import __version__
from firesmoke.errors import CorruptFileError, InputError
from firesmoke.inference.model import resolve_device
from firesmoke.io.sentinel2.chips import CHIP_SIZE, check_chip_bands, parse_chip_name, read_chips
from firesmoke.io.sentinel2.dataset import SmokeDataset, open_smoke_dataset
from firesmoke.smoke.weights import (
    DEFAULT_CLASSIFIER,
    DEFAULT_SEGMENTER,
    load_smoke_model,
    normalization_from_meta,
    weights_bands,
)

__all__ = [
    "PIXEL_AREA_M2",
    "classify_chips",
]

logger = logging.getLogger(__name__)

#: Area of a 10 m Sentinel-2 pixel (m2).
PIXEL_AREA_M2 = 100.0


def _chip_table(paths_or_dataset: Any) -> pd.DataFrame:
    """``path``, ``site_id``, ``time`` (and ``label`` for datasets) of the chips to score."""
    if isinstance(paths_or_dataset, SmokeDataset):
        return paths_or_dataset.index[["path", "site_id", "time", "label"]].reset_index(drop=True)
    if isinstance(paths_or_dataset, str | os.PathLike):
        p = Path(paths_or_dataset)
        if p.is_dir():
            if (p / "positive").is_dir() or (p / "negative").is_dir():
                return _chip_table(open_smoke_dataset(p))
            paths = sorted(q for q in p.iterdir() if q.suffix.lower() in (".tif", ".tiff"))
            if not paths:
                raise InputError("folder holds no .tif chips", path=p)
        else:
            paths = [p]
    else:
        paths = [Path(q) for q in paths_or_dataset]
    rows = []
    for q in paths:
        try:
            name = parse_chip_name(Path(q).name)
            rows.append((str(q), name.site_id, name.time))
        except InputError:
            rows.append((str(q), None, pd.NaT))
    return pd.DataFrame(rows, columns=["path", "site_id", "time"]).astype({"time": "datetime64[ns]"})


def _chip_geometry(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Original ``(h, w)`` and pixel area (m2) of each chip, from the file headers."""
    import rasterio
    from rasterio.errors import RasterioError

    shapes = np.zeros((len(paths), 2), np.int64)
    areas = np.full(len(paths), PIXEL_AREA_M2)
    for i, p in enumerate(paths):
        try:
            with rasterio.open(p) as src:
                shapes[i] = src.height, src.width
                t = src.transform
                if src.crs is not None and src.crs.is_projected and not t.is_identity:
                    areas[i] = abs(t.a * t.e - t.b * t.d)
        except (RasterioError, OSError) as exc:
            if not Path(p).exists():
                raise InputError("file not found", path=p) from exc
            raise CorruptFileError(f"cannot read as GeoTIFF ({exc})", path=p) from exc
    return shapes, areas


def _forward(model: Any, norm: Any, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(norm.apply(torch.from_numpy(x).to(device))).float().cpu().numpy()


def classify_chips(
    paths_or_dataset: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | SmokeDataset,
    classifier: Any = DEFAULT_CLASSIFIER,
    segmenter: Any = DEFAULT_SEGMENTER,
    batch_size: int = 32,
    device: str | None = None,
    threshold: float = 0.5,
    return_masks: bool = False,
) -> pd.DataFrame:
    """Smoke probability and plume area of Sentinel-2 chips.

    Parameters
    ----------
    paths_or_dataset
        Chip GeoTIFFs holding the bands the models use (the 12 bands without B10 for the
        shipped weights), found by the band names in the file (descriptions or name
        tags; aliases such as ``B8`` or ``b04`` accepted) or, for 13 unnamed bands, in
        the order :data:`~firesmoke.io.sentinel2.chips.BANDS`: a list of
        paths, one path, a folder of ``.tif`` files, a dataset folder with ``positive/``
        / ``negative/``, or a :class:`~firesmoke.io.sentinel2.dataset.SmokeDataset`.
        Chips smaller than 120 px are padded like the reference.
    classifier, segmenter
        Weights paths or names (default: the shipped synthetic-data weights), or
        ``torch.nn.Module`` s using the reference normalisation; ``None`` skips the model
        (its columns are NaN).
    batch_size
        Chips per forward pass; chips are read batch by batch (memory stays bounded).
    device
        ``"cuda"``, ``"cpu"`` or ``None`` (CUDA when available).
    threshold
        Probability at or above which a chip (``smoke``) or a pixel (mask) is smoke.
    return_masks
        Add a ``mask`` column holding each chip's boolean mask at its original size.

    Returns
    -------
    pandas.DataFrame
        One row per chip: ``path``, ``site_id``, ``time`` (from the file name; None/NaT
        when it does not follow the dataset convention), ``label`` (datasets only),
        ``probability`` (classifier), ``smoke`` (probability >= threshold; nullable
        boolean, NA without a classifier),
        ``mask_pixels`` and ``mask_area_m2`` (segmenter mask pixels inside the original
        chip x pixel area, 100 m2 at 10 m). ``attrs`` records the weights used.
    """
    from scipy.special import expit

    if classifier is None and segmenter is None:
        raise InputError("give a classifier, a segmenter or both", field="classifier")
    table = _chip_table(paths_or_dataset)
    n = len(table)
    batch_size = max(int(batch_size), 1)
    # the bands the models use, known from their cards: a chip without them is refused
    # here, before torch or any model is loaded (later batches are checked as they are read)
    pre = tuple(dict.fromkeys(b for w in (classifier, segmenter)
                              for b in (weights_bands(w) or ())))
    if pre:
        check_chip_bands(list(table["path"])[:batch_size], pre)
    dev = resolve_device(device)
    cls = load_smoke_model(classifier, dev, "smoke_resnet50") if classifier is not None else (None, None)
    seg = load_smoke_model(segmenter, dev, "smoke_unet") if segmenter is not None else (None, None)
    prob = np.full(n, np.nan, np.float32)
    pixels = np.full(n, np.nan)
    masks: list[np.ndarray] = []
    paths = list(table["path"])
    shapes, areas = _chip_geometry(paths)
    logit_thr = float(np.log(threshold / (1 - threshold))) if 0 < threshold < 1 else None
    models = [(w, m, normalization_from_meta(meta)) for w, (m, meta) in (("cls", cls), ("seg", seg))
              if m is not None]
    wanted = tuple(dict.fromkeys(b for _, _, norm in models for b in norm.bands))
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        raw = read_chips(paths[sl], bands=wanted, pad_to=CHIP_SIZE)  # each file read once
        for which, model, norm in models:
            sel = raw[:, [wanted.index(b) for b in norm.bands]].astype(np.float32)
            out = _forward(model, norm, sel, dev)
            if which == "cls":
                prob[sl] = expit(out[:, 0])
                continue
            logits = out[:, 0]
            m = logits >= logit_thr if logit_thr is not None else (
                np.ones_like(logits, bool) if threshold <= 0 else np.zeros_like(logits, bool)
            )
            for j, i in enumerate(range(sl.start, sl.stop)):
                h, w = shapes[i]
                mi = m[j, :h, :w]
                pixels[i] = np.count_nonzero(mi)
                if return_masks:
                    masks.append(mi.copy())
    out_df = table.copy()
    out_df["probability"] = prob
    smoke = pd.array(prob >= threshold, dtype="boolean")
    smoke[np.isnan(prob)] = pd.NA  # no classifier: unknown
    out_df["smoke"] = smoke
    out_df["mask_pixels"] = pixels
    out_df["mask_area_m2"] = pixels * areas
    if return_masks:
        out_df["mask"] = masks if seg[0] is not None else [None] * n
    out_df.attrs.update(
        classifier=None if cls[1] is None else cls[1].get("path"),
        classifier_sha256=None if cls[1] is None else cls[1].get("sha256"),
        segmenter=None if seg[1] is None else seg[1].get("path"),
        segmenter_sha256=None if seg[1] is None else seg[1].get("sha256"),
        threshold=threshold,
        package_version=__version__,
    )
    return out_df


