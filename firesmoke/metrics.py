"""Evaluation metrics for burned-area maps/dates and smoke plume classification/segmentation.

All functions are vectorised numpy (no loops over pixels or images) and return plain
dicts of floats, ready for CSV/JSON logs.

Burned area (BA-Net, reference/banet.md):

* per pixel-day accuracy of ``p > 0.5`` against ``target > 0.5``;
* Dice, commission and omission errors of a burned map against a reference map;
* dating error (MAE in days and the shares within +-1 and +-2 days) on pixels burned in
  both maps.

Smoke (Mommert et al. 2020, reference/smoke.md): the paper's *legacy* definitions
exactly, and deterministic *standard* ones (pooled IoU, per-image IoU that counts misses
and false alarms as 0, detection precision/recall/F1, area error).
"""

from __future__ import annotations

import numpy as np

from firesmoke.errors import InputError

__all__ = [
    "burned_area_scores",
    "classification_scores",
    "sequence_scores",
    "smoke_segmentation_legacy",
    "smoke_segmentation_scores",
]


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


# ------------------------------------------------------------------------ burned area
def burned_area_scores(
    pred_burned: np.ndarray,
    ref_burned: np.ndarray,
    pred_date: np.ndarray | None = None,
    ref_date: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Compare a burned map (and optionally burn dates) with a reference.

    Parameters
    ----------
    pred_burned, ref_burned
        Boolean maps of the same shape.
    pred_date, ref_date
        Burn dates (any numeric day unit, e.g. day of year; NaN where unburned).
    valid
        Pixels to score (default: all).

    Returns
    -------
    dict
        ``dice``, ``commission`` (FP / predicted burned), ``omission`` (FN / reference
        burned), ``accuracy``, ``tp``, ``fp``, ``fn``, ``tn``; with dates also
        ``date_mae``, ``date_within_1``, ``date_within_2`` and ``n_dated`` (pixels burned in
        both with finite dates).
    """
    p = np.asarray(pred_burned, bool)
    r = np.asarray(ref_burned, bool)
    if p.shape != r.shape:
        raise InputError(f"shapes differ: {p.shape} vs {r.shape}")
    v = np.ones_like(p) if valid is None else np.asarray(valid, bool)
    tp = int(np.count_nonzero(p & r & v))
    fp = int(np.count_nonzero(p & ~r & v))
    fn = int(np.count_nonzero(~p & r & v))
    tn = int(np.count_nonzero(~p & ~r & v))
    out = {
        "tp": float(tp), "fp": float(fp), "fn": float(fn), "tn": float(tn),
        "dice": _safe_div(2 * tp, 2 * tp + fp + fn),
        "commission": _safe_div(fp, tp + fp),
        "omission": _safe_div(fn, tp + fn),
        "accuracy": _safe_div(tp + tn, tp + fp + fn + tn),
    }
    if pred_date is not None and ref_date is not None:
        pd_ = np.asarray(pred_date, np.float64)
        rd = np.asarray(ref_date, np.float64)
        both = p & r & v & np.isfinite(pd_) & np.isfinite(rd)
        err = np.abs(pd_[both] - rd[both])
        out["n_dated"] = float(err.size)
        out["date_mae"] = float(err.mean()) if err.size else float("nan")
        out["date_within_1"] = float((err <= 1).mean()) if err.size else float("nan")
        out["date_within_2"] = float((err <= 2).mean()) if err.size else float("nan")
    return out


def sequence_scores(prob: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The BA-Net reference metrics on ``(..., T, H, W)`` daily sequences.

    * ``pixel_day_accuracy``: accuracy of ``prob > threshold`` vs ``target > threshold``;
    * ``dice``: Dice of ``sum_t prob > threshold`` vs ``sum_t target > threshold``;
    * ``date_mae``: ``|argmax_t prob - argmax_t target|`` in days on pixels burned in both
      (the reference averaged over pixels *predicted* burned; pixels with no reference
      burn have no reference date, so both are required here), plus the shares within
      +-1 and +-2 days.
    """
    prob = np.asarray(prob, np.float32)
    target = np.asarray(target, np.float32)
    if prob.shape != target.shape:
        raise InputError(f"shapes differ: {prob.shape} vs {target.shape}")
    acc = float(((prob > threshold) == (target > threshold)).mean())
    tax = prob.ndim - 3
    pb = prob.sum(axis=tax) > threshold
    rb = target.sum(axis=tax) > threshold
    pd_ = np.argmax(prob, axis=tax).astype(np.float64)
    rd = np.argmax(target, axis=tax).astype(np.float64)
    scores = burned_area_scores(pb, rb, pd_, rd)
    scores["pixel_day_accuracy"] = acc
    return scores


# ------------------------------------------------------------------------ smoke
def classification_scores(
    logits_or_prob: np.ndarray, labels: np.ndarray, threshold: float = 0.0
) -> dict[str, float]:
    """Binary classification: accuracy (positive when the score > threshold), precision,
    recall, F1 and the confusion counts. With logits use ``threshold=0`` (the paper's
    rule), with probabilities ``0.5``."""
    pred = np.asarray(logits_or_prob) > threshold
    lab = np.asarray(labels).astype(bool)
    tp = int(np.count_nonzero(pred & lab))
    fp = int(np.count_nonzero(pred & ~lab))
    fn = int(np.count_nonzero(~pred & lab))
    tn = int(np.count_nonzero(~pred & ~lab))
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    return {
        "accuracy": _safe_div(tp + tn, pred.size),
        "precision": precision,
        "recall": recall,
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "tp": float(tp), "fp": float(fp), "fn": float(fn), "tn": float(tn),
    }


def _per_image(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, ...]:
    n = pred.shape[0]
    p = pred.reshape(n, -1)
    t = truth.reshape(n, -1)
    inter = np.count_nonzero(p & t, axis=1)
    union = np.count_nonzero(p | t, axis=1)
    npred = np.count_nonzero(p, axis=1)
    ntrue = np.count_nonzero(t, axis=1)
    return inter, union, npred, ntrue


def smoke_segmentation_legacy(logits: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """The paper's segmentation metrics, exactly as it defined them.

    Parameters
    ----------
    logits
        ``(N, H, W)`` logits (a pixel is smoke when ``logit >= 0``).
    masks
        ``(N, H, W)`` boolean truth.

    Returns
    -------
    dict
        ``iou``: per-image IoU averaged only over images where prediction and truth are
        both non-empty (misses and false alarms excluded); ``detection_accuracy``: image
        positive if any pixel is positive, compared per image; ``area_ratio``: mean of the
        per-image ratio predicted px / true px, with 1 when both are empty and 0 when the
        truth is empty but the prediction is not.
    """
    pred = np.asarray(logits) >= 0
    truth = np.asarray(masks).astype(bool)
    inter, union, npred, ntrue = _per_image(pred, truth)
    both = (npred > 0) & (ntrue > 0)
    iou = float((inter[both] / union[both]).mean()) if both.any() else float("nan")
    det = float(((npred > 0) == (ntrue > 0)).mean())
    ratio = np.where(ntrue > 0, npred / np.maximum(ntrue, 1), np.where(npred == 0, 1.0, 0.0))
    return {"iou": iou, "detection_accuracy": det, "area_ratio": float(ratio.mean()),
            "n_images_iou": float(both.sum())}


def smoke_segmentation_scores(
    pred: np.ndarray, masks: np.ndarray, pixel_area_m2: float = 100.0
) -> dict[str, float]:
    """Deterministic standard segmentation scores on full images.

    Parameters
    ----------
    pred
        ``(N, H, W)`` boolean predicted masks.
    masks
        ``(N, H, W)`` boolean truth.
    pixel_area_m2
        Area of one pixel (Sentinel-2 10 m bands: 100 m2).

    Returns
    -------
    dict
        ``pooled_iou`` (sum of intersections / sum of unions over all images);
        ``mean_iou`` (per-image IoU over images where prediction or truth is non-empty, a
        miss or a false alarm counting 0); detection ``precision``/``recall``/``f1``/
        ``accuracy`` (image positive if any pixel is); ``area_error`` (relative error of
        the total predicted area vs the total true area) and ``mean_abs_area_error_m2``.
    """
    p = np.asarray(pred).astype(bool)
    t = np.asarray(masks).astype(bool)
    if p.shape != t.shape:
        raise InputError(f"shapes differ: {p.shape} vs {t.shape}")
    inter, union, npred, ntrue = _per_image(p, t)
    some = union > 0
    det = classification_scores((npred > 0).astype(float), ntrue > 0, threshold=0.5)
    return {
        "pooled_iou": _safe_div(inter.sum(), union.sum()),
        "mean_iou": float((inter[some] / union[some]).mean()) if some.any() else float("nan"),
        "precision": det["precision"],
        "recall": det["recall"],
        "f1": det["f1"],
        "detection_accuracy": det["accuracy"],
        "area_error": _safe_div(npred.sum() - ntrue.sum(), ntrue.sum()),
        "mean_abs_area_error_m2": float(np.abs(npred - ntrue).mean() * pixel_area_m2),
    }
