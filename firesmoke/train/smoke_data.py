"""Chip data for the smoke models: loading, sampling, augmented batches and evaluation.

* :func:`load_smoke_data` reads a chip dataset (12 bands, padded to 120 px) and its masks
  into memory once; :func:`segmentation_subset` keeps the positives with at least one
  smoke pixel plus as many negatives (the reference segmentation training set);
  :func:`balanced_order` draws class-balanced epochs (minority class upsampled).
* :func:`train_batch` augments (random 90 x 90 crop, flips, 90-degree rotations, the same
  for image and mask) and z-scores a batch with the reference constants
  (:data:`~firesmoke.models.normalization.SMOKE_S2`).
* :func:`evaluate_smoke_classifier` / :func:`evaluate_smoke_segmenter` score models on
  full 120 x 120 images (deterministic standard metrics) and report the paper's legacy
  definitions and protocol (one seeded random crop/flip per test image) beside them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from firesmoke.errors import InputError
from firesmoke.inference.model import resolve_device
from firesmoke.io.sentinel2.chips import CHIP_SIZE, SMOKE_BANDS, read_chips
from firesmoke.io.sentinel2.dataset import SmokeDataset, open_smoke_dataset
from firesmoke.metrics import (
    classification_scores,
    smoke_segmentation_legacy,
    smoke_segmentation_scores,
)
from firesmoke.models.normalization import SMOKE_S2
from firesmoke.models.weights import load_weights
from firesmoke.train.augment import CropFlipRotate
from firesmoke.train.common import step_rng

__all__ = [
    "CROP_SIZE",
    "PIXEL_AREA_M2",
    "SmokeData",
    "as_dataset",
    "balanced_order",
    "bce",
    "classifier_scores",
    "draw_indices",
    "evaluate_smoke_classifier",
    "evaluate_smoke_segmenter",
    "forward_all",
    "legacy_classifier_rows",
    "legacy_segmentation_rows",
    "load_smoke_data",
    "normalise_chips",
    "segmentation_subset",
    "segmenter_scores",
    "train_batch",
    "val_row",
]

#: Training crop size (pixels) of the reference.
CROP_SIZE = 90
#: Area of a 10 m pixel (m2).
PIXEL_AREA_M2 = 100.0
# random-stream ids of step_rng(seed, stream, ...)
ORDER_STREAM, AUG_STREAM, SUBSET_STREAM, EVAL_STREAM = 1, 2, 3, 4


# ----------------------------------------------------------------------------- data
@dataclass
class SmokeData:
    """Chips of one split held in memory.

    Attributes
    ----------
    images
        ``(n, 12, 120, 120)`` uint16 reflectance x 1e4 (bands :data:`SMOKE_BANDS`).
    labels
        ``(n,)`` int8, 1 = smoke.
    masks
        ``(n, 120, 120)`` bool truth masks (padded like the images).
    index
        The dataset index rows of the images.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    index: pd.DataFrame

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> SmokeData:
        rows = np.asarray(rows, dtype=np.int64)
        return SmokeData(
            self.images[rows], self.labels[rows], self.masks[rows],
            self.index.iloc[rows].reset_index(drop=True),
        )


def as_dataset(root_or_dataset: str | os.PathLike[str] | SmokeDataset) -> SmokeDataset:
    if isinstance(root_or_dataset, SmokeDataset):
        return root_or_dataset
    return open_smoke_dataset(root_or_dataset)


def load_smoke_data(dataset: SmokeDataset | str | os.PathLike[str]) -> SmokeData:
    """Read every chip (12 bands, padded to 120) and mask of a dataset into memory."""
    ds = as_dataset(dataset)
    if len(ds) == 0:
        return SmokeData(
            np.zeros((0, len(SMOKE_BANDS), CHIP_SIZE, CHIP_SIZE), np.uint16),
            np.zeros(0, np.int8), np.zeros((0, CHIP_SIZE, CHIP_SIZE), bool), ds.index,
        )
    images = read_chips(list(ds.index["path"]), bands=SMOKE_BANDS, pad_to=CHIP_SIZE)
    masks = np.stack([ds.mask(i, pad_to=CHIP_SIZE) for i in range(len(ds))])
    labels = ds.index["label"].to_numpy(np.int8)
    return SmokeData(images, labels, masks, ds.index.reset_index(drop=True))


def segmentation_subset(data: SmokeData, seed: int) -> SmokeData:
    """Positives with at least one smoke pixel plus as many negatives (reference rule)."""
    pos = np.flatnonzero((data.labels == 1) & data.masks.reshape(len(data), -1).any(axis=1))
    neg = np.flatnonzero(data.labels == 0)
    rng = step_rng(seed, SUBSET_STREAM)
    if len(neg) > len(pos):
        neg = np.sort(rng.choice(neg, size=len(pos), replace=False))
    return data.take(np.concatenate([pos, neg]))


def legacy_classifier_rows(n: int, seed: int, batch: int = 10) -> np.ndarray:
    """The reference classifier's scored images: the first image of each batch of
    ``batch`` of a shuffled test set (seeded here; the reference's shuffle was not)."""
    order = step_rng(seed, EVAL_STREAM, 1).permutation(n)
    return np.sort(order[::batch]) if n else np.zeros(0, np.int64)


def legacy_segmentation_rows(data: SmokeData) -> np.ndarray:
    """The reference segmenter's evaluation population: every positive with at least one
    labelled smoke pixel plus as many negatives taken in dataset order (the reference took
    them in file-walk order, and they were also in its training set)."""
    pos = np.flatnonzero((data.labels == 1) & data.masks.reshape(len(data), -1).any(axis=1))
    neg = np.flatnonzero(data.labels == 0)[: len(pos)]
    return np.sort(np.concatenate([pos, neg]))


def draw_indices(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """``n`` items of ``pool``: without replacement, whole permutations repeated if short."""
    if n <= 0 or len(pool) == 0:
        return np.zeros(0, np.int64)
    reps = [rng.permutation(pool) for _ in range(-(-n // len(pool)))]
    return np.concatenate(reps)[:n]


def balanced_order(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices, half positives and half negatives (minority upsampled), shuffled."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(pos) == 0 or len(neg) == 0:
        return draw_indices(rng, np.arange(len(labels)), n)
    n_pos = n // 2
    return rng.permutation(np.concatenate([draw_indices(rng, pos, n_pos), draw_indices(rng, neg, n - n_pos)]))


# ----------------------------------------------------------------------------- batches
_MEAN = np.asarray(SMOKE_S2.mean, np.float32)[:, None, None]
_STD = np.asarray(SMOKE_S2.std, np.float32)[:, None, None]


def normalise_chips(images: np.ndarray) -> np.ndarray:
    """uint16 ``(n, 12, h, w)`` -> float32 z-scores with the reference constants."""
    return (images.astype(np.float32) - _MEAN) / _STD


def train_batch(
    data: SmokeData, rows: np.ndarray, rng: np.random.Generator, aug: CropFlipRotate, task: str
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in rows:
        img, mask = aug(rng, data.images[i], data.masks[i])
        xs.append(img)
        ys.append(mask)
    x = normalise_chips(np.stack(xs))
    if task == "classifier":
        y = data.labels[rows].astype(np.float32)[:, None]
    else:
        y = np.stack(ys).astype(np.float32)[:, None]
    return x, y


def forward_all(
    model: nn.Module, images: np.ndarray, batch_size: int, device: str
) -> np.ndarray:
    """Logits of the model over all images (eval mode, no autograd), as float32 numpy."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(normalise_chips(images[i : i + batch_size])).to(device)
            outs.append(model(x).float().cpu().numpy())
    if not outs:
        return np.zeros((0, 1), np.float32)
    return np.concatenate(outs)


def bce(logits: np.ndarray, target: np.ndarray) -> float:
    if logits.size == 0:
        return float("nan")
    lt = torch.from_numpy(np.ascontiguousarray(logits, np.float32))
    tt = torch.from_numpy(np.ascontiguousarray(target, np.float32))
    return float(nn.functional.binary_cross_entropy_with_logits(lt, tt))


# ----------------------------------------------------------------------------- evaluation
def augmented_copies(data: SmokeData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One random 90 x 90 crop/flip/rotation of every image and mask (seeded)."""
    aug = CropFlipRotate(CROP_SIZE)
    rng = step_rng(seed, EVAL_STREAM)
    imgs, masks = [], []
    for i in range(len(data)):
        a, b = aug(rng, data.images[i], data.masks[i])
        imgs.append(np.ascontiguousarray(a))
        masks.append(np.ascontiguousarray(b))
    return np.stack(imgs), np.stack(masks)


def classifier_scores(
    model: nn.Module, data: SmokeData, batch_size: int, device: str, seed: int
) -> dict[str, Any]:
    if len(data) == 0:
        return {"n_images": 0}
    logits = forward_all(model, data.images, batch_size, device)[:, 0]
    standard = classification_scores(logits, data.labels, threshold=0.0)
    standard["loss"] = bce(logits, data.labels.astype(np.float32))
    crops, _ = augmented_copies(data, seed)
    leg_logits = forward_all(model, crops, batch_size, device)[:, 0]
    rows = legacy_classifier_rows(len(data), seed)
    population = classification_scores(leg_logits[rows], data.labels[rows], threshold=0.0)
    population["n_images"] = len(rows)
    return {
        "standard": standard,
        "legacy_protocol": classification_scores(leg_logits, data.labels, threshold=0.0),
        "legacy_population": population,
        "n_images": len(data),
        "n_positive": int(data.labels.sum()),
    }


def segmenter_scores(
    model: nn.Module, data: SmokeData, batch_size: int, device: str, seed: int
) -> dict[str, Any]:
    if len(data) == 0:
        return {"n_images": 0}
    logits = forward_all(model, data.images, batch_size, device)[:, 0]
    standard = smoke_segmentation_scores(logits >= 0, data.masks, PIXEL_AREA_M2)
    standard["loss"] = bce(logits, data.masks)
    crops, cmasks = augmented_copies(data, seed)
    leg_logits = forward_all(model, crops, batch_size, device)[:, 0]
    return {
        "standard": standard,
        "legacy_definitions": smoke_segmentation_legacy(logits, data.masks),
        "legacy_protocol": smoke_segmentation_legacy(leg_logits, cmasks),
        "n_images": len(data),
        "n_positive": int(data.labels.sum()),
    }


def _model_from(model_or_weights: nn.Module | str | os.PathLike[str], device: str) -> nn.Module:
    if isinstance(model_or_weights, nn.Module):
        return model_or_weights.to(device)
    model, _ = load_weights(model_or_weights, map_location=device)
    return model


def evaluate_smoke_classifier(
    model_or_weights: nn.Module | str | os.PathLike[str],
    root_or_dataset: str | os.PathLike[str] | SmokeDataset | SmokeData,
    batch_size: int = 64,
    device: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a smoke classifier on every image of a chip dataset.

    ``legacy_population`` reproduces the reference's evaluation population: the legacy
    protocol scored on the first image of each batch of 10 of the shuffled images only
    (:func:`legacy_classifier_rows`).

    Returns
    -------
    dict
        ``standard``: :func:`~firesmoke.metrics.classification_scores` on the full
        120 x 120 images (positive when the logit > 0) plus the BCE ``loss``;
        ``legacy_protocol``: the same on one random 90 x 90 crop/flip/rotation of each
        image (the reference evaluated augmented test images; seeded here);
        ``n_images``, ``n_positive``.
    """
    dev = resolve_device(device)
    data = root_or_dataset if isinstance(root_or_dataset, SmokeData) else load_smoke_data(
        root_or_dataset
    )
    return classifier_scores(_model_from(model_or_weights, dev), data, batch_size, dev, seed)


def evaluate_smoke_segmenter(
    model_or_weights: nn.Module | str | os.PathLike[str],
    root_or_dataset: str | os.PathLike[str] | SmokeDataset | SmokeData,
    batch_size: int = 32,
    device: str | None = None,
    seed: int = 0,
    population: str = "all",
) -> dict[str, Any]:
    """Score a smoke segmenter on every image (positives and negatives) of a chip dataset.

    With ``population="legacy"`` only the reference's evaluation population is scored:
    the positives with a labelled polygon plus as many negatives in dataset order
    (:func:`legacy_segmentation_rows`; give the *whole* dataset, as the reference did).

    Returns
    -------
    dict
        ``standard``: :func:`~firesmoke.metrics.smoke_segmentation_scores` of
        ``logit >= 0`` on the full 120 x 120 images (pooled IoU, per-image IoU counting
        misses and false alarms, detection precision/recall/F1, area error) plus the BCE
        ``loss``; ``legacy_definitions``: :func:`~firesmoke.metrics.smoke_segmentation_legacy`
        on the same images; ``legacy_protocol``: the legacy definitions on one seeded
        random crop/flip/rotation of each image (the reference's evaluation);
        ``n_images``, ``n_positive``.
    """
    dev = resolve_device(device)
    data = root_or_dataset if isinstance(root_or_dataset, SmokeData) else load_smoke_data(
        root_or_dataset
    )
    if population not in ("all", "legacy"):
        raise InputError(f"population must be 'all' or 'legacy', got {population!r}",
                         field="population")
    if population == "legacy":
        data = data.take(legacy_segmentation_rows(data))
    return segmenter_scores(_model_from(model_or_weights, dev), data, batch_size, dev, seed)


# ----------------------------------------------------------------------------- loop
def val_row(task: str, model: nn.Module, data: SmokeData, batch_size: int, device: str) -> dict:
    logits = forward_all(model, data.images, batch_size, device)[:, 0]
    if task == "classifier":
        s = classification_scores(logits, data.labels, threshold=0.0)
        return {"val_loss": bce(logits, data.labels.astype(np.float32)),
                "val_accuracy": s["accuracy"], "val_f1": s["f1"]}
    s = smoke_segmentation_scores(logits >= 0, data.masks, PIXEL_AREA_M2)
    return {"val_loss": bce(logits, data.masks), "val_pooled_iou": s["pooled_iou"],
            "val_mean_iou": s["mean_iou"], "val_detection_f1": s["f1"],
            "val_legacy_iou": smoke_segmentation_legacy(logits, data.masks)["iou"]}
