"""Index of the industrial smoke plume chip dataset: ``positive/``, ``negative/``, ``labels/``.

:func:`open_smoke_dataset` lists the chips of a dataset folder laid out like the published
one (reference/smoke.md) with their label files; :class:`SmokeDataset` reads chips and masks
by row and splits by site (:func:`split_by_site`: all images of one site in one split).
Nothing here reads image content until asked (:meth:`SmokeDataset.chip`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.errors import RasterioError

from firesmoke.errors import InputError, SkippedInput
from firesmoke.io.sentinel2.chips import (
    CHIP_SIZE,
    _open_error,
    open_chip,
    pad_to_size,
    parse_chip_name,
)
from firesmoke.io.sentinel2.labels import (
    LABEL_SUFFIX,
    label_image_stem,
    load_label_tasks,
    read_labels,
)

__all__ = ["SmokeDataset", "open_smoke_dataset", "split_by_site"]

logger = logging.getLogger(__name__)

_INDEX_COLUMNS = ["path", "label", "site_id", "time", "index", "label_path"]


def _index_labels(labels_dir: Path, skipped: list[SkippedInput]) -> dict[str, Path]:
    """Map image stem -> label file: by ``<stem>_features.json`` name, else ``data.image``."""
    by_stem: dict[str, Path] = {}
    if not labels_dir.is_dir():
        return by_stem
    for p in sorted(labels_dir.iterdir()):
        if p.is_dir():
            continue
        if p.suffix.lower() != ".json":
            skipped.append(SkippedInput(str(p), "not a .json label file"))
            continue
        if p.name.endswith(LABEL_SUFFIX):
            stem = label_image_stem(p)
        else:
            try:
                tasks = load_label_tasks(p)
            except InputError as exc:
                skipped.append(SkippedInput(str(p), f"unreadable label file: {exc.reason}"))
                continue
            image = tasks[0].get("data", {}).get("image") if len(tasks) == 1 else None
            if not isinstance(image, str):
                skipped.append(
                    SkippedInput(
                        str(p),
                        "label file name is not <image-stem>_features.json and it names no single image",
                    )
                )
                continue
            stem = Path(image.split("?", 1)[0]).stem
        if stem in by_stem:
            skipped.append(
                SkippedInput(
                    str(p), f"second label file for image {stem!r} (kept {by_stem[stem].name})"
                )
            )
            continue
        by_stem[stem] = p
    return by_stem


def _match_label(stem: str, by_stem: dict[str, Path]) -> Path | None:
    hit = by_stem.pop(stem, None)
    if hit is None:  # Label Studio upload names carry a '<hash>-' prefix
        key = next((k for k in by_stem if k.endswith("-" + stem)), None)
        hit = by_stem.pop(key) if key is not None else None
    return hit


@dataclass
class SmokeDataset:
    """Index of a smoke-plume dataset laid out like the published one.

    Attributes
    ----------
    root
        Dataset folder holding ``positive/``, ``negative/`` and ``labels/``.
    index
        One row per image: ``path``, ``label`` (1 = smoke), ``site_id``, ``time``,
        ``index`` (the ``<n>`` of the file name, or -1), ``label_path`` (None when unlabelled).
    skipped
        Files that were found but could not be used, with the reason.
    """

    root: Path
    index: pd.DataFrame
    skipped: list[SkippedInput] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def chip(self, i: int, pad_to: int | None = CHIP_SIZE) -> xr.DataArray:
        """Image ``i`` (row position in :attr:`index`) through :func:`open_chip`."""
        return open_chip(self.index["path"].iat[i], pad_to=pad_to)

    def mask(self, i: int, pad_to: int | None = CHIP_SIZE) -> np.ndarray:
        """Smoke mask of image ``i`` on the image's own grid, padded like the image.

        Images without a label file get an all-False mask.
        """
        path = self.index["path"].iat[i]
        try:
            with rasterio.open(path) as src:
                shape = (src.height, src.width)
        except (RasterioError, OSError) as exc:
            raise _open_error(path, exc) from exc
        lp = self.index["label_path"].iat[i]
        mask = np.zeros(shape, dtype=bool) if lp is None else read_labels(lp, shape)
        return mask if pad_to is None else pad_to_size(mask, pad_to)

    def subset(self, rows: np.ndarray | Sequence[int] | pd.Series) -> SmokeDataset:
        """A dataset holding the given rows (positions or a boolean mask); ``skipped`` is shared."""
        rows = np.asarray(rows)
        sub = self.index[rows] if rows.dtype == bool else self.index.iloc[rows]
        return SmokeDataset(self.root, sub.reset_index(drop=True), self.skipped)

    def split_by_site(
        self, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
    ) -> tuple[SmokeDataset, ...]:
        """Split into datasets holding disjoint sets of sites; see :func:`split_by_site`."""
        groups = split_by_site(self.index, fractions, seed)
        return tuple(self.subset(self.index["site_id"].isin(g).to_numpy()) for g in groups)


def open_smoke_dataset(root: str | os.PathLike[str], labels_dir: str = "labels") -> SmokeDataset:
    """Index the images and label files of a smoke-plume dataset folder.

    Parameters
    ----------
    root
        Folder with ``positive/`` and ``negative/`` sub-folders of ``.tif`` chips named
        ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` and a ``labels/`` folder of Label
        Studio JSON files named ``<image-stem>_features.json``.
    labels_dir
        Name of the label sub-folder.

    Returns
    -------
    SmokeDataset
        Files whose names cannot be parsed, non-TIFF files, label files without an
        image and duplicate labels are listed in ``skipped`` (and a warning is issued),
        never dropped silently. Reading the image content is left to :meth:`SmokeDataset.chip`.

    Raises
    ------
    InputError
        ``root`` is not a folder or has neither ``positive/`` nor ``negative/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder not found", path=root)
    folders = [(root / name, lab) for name, lab in (("positive", 1), ("negative", 0))]
    if not any(f.is_dir() for f, _ in folders):
        raise InputError("no 'positive/' or 'negative/' folder", path=root)
    skipped: list[SkippedInput] = []
    labels = _index_labels(root / labels_dir, skipped)
    rows = []
    for folder, lab in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                continue
            try:
                parts = parse_chip_name(p.name)
            except InputError as exc:
                skipped.append(SkippedInput(str(p), exc.reason))
                continue
            lp = _match_label(p.stem, labels)
            if lp is not None and lab == 0:
                logger.info("%s: negative image has a label file %s", p, lp.name)
            idx = -1 if parts.index is None else parts.index
            rows.append(
                (str(p), lab, parts.site_id, parts.time, idx, None if lp is None else str(lp))
            )
    skipped.extend(SkippedInput(str(lp), "label file matches no image") for lp in labels.values())
    index = pd.DataFrame(rows, columns=_INDEX_COLUMNS)
    index["label"] = index["label"].astype(np.int8)
    index["time"] = pd.to_datetime(index["time"])
    index["index"] = index["index"].astype(np.int64)
    index["label_path"] = index["label_path"].astype(object)
    if skipped:
        msg = f"{root}: skipped {len(skipped)} file(s), e.g. {skipped[0]}; see SmokeDataset.skipped"
        logger.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    logger.info(
        "%s: %d images (%d positive) at %d sites",
        root,
        len(index),
        int(index["label"].sum()),
        index["site_id"].nunique(),
    )
    return SmokeDataset(root, index, skipped)


def split_by_site(
    index: pd.DataFrame, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[list[str]]:
    """Assign whole sites to splits so image counts approach ``fractions``.

    Sites are shuffled with ``seed`` and each goes to the split furthest below its target
    image count, so no site appears in two splits.

    Returns
    -------
    list (one per fraction) of sorted site-id lists.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or np.any(fr < 0) or not np.isfinite(fr).all() or fr.sum() <= 0:
        raise InputError(
            f"fractions must be non-negative and not all zero, got {fractions}", field="fractions"
        )
    fr = fr / fr.sum()
    counts = index.groupby("site_id").size()
    sites = np.array(sorted(counts.index))[np.random.default_rng(seed).permutation(len(counts))]
    target = fr * counts.sum()
    have = np.zeros(len(fr))
    groups: list[list[str]] = [[] for _ in fr]
    nonzero = [k for k in np.argsort(-fr, kind="stable") if fr[k] > 0]
    start = 0
    if len(sites) >= len(
        nonzero
    ):  # one site per non-empty split first, smallest sites to smallest splits
        seeds = sorted(sites[: len(nonzero)], key=lambda s: (counts[s], s), reverse=True)
        for k, s in zip(nonzero, seeds, strict=True):
            groups[k].append(str(s))
            have[k] += counts[s]
        start = len(nonzero)
    for s in sites[start:]:
        k = int(np.argmax(target - have))
        groups[k].append(str(s))
        have[k] += counts[s]
    return [sorted(g) for g in groups]
