"""Metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from firesmoke.metrics import (
    burned_area_scores,
    classification_scores,
    sequence_scores,
    smoke_segmentation_legacy,
    smoke_segmentation_scores,
)


def test_burned_area_scores_hand_made():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    ref = np.array([[1, 0, 0], [1, 1, 0]], bool)
    s = burned_area_scores(pred, ref)
    # tp=2 fp=1 fn=1 tn=2
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 1, 1, 2)
    assert s["dice"] == pytest.approx(4 / 6)
    assert s["commission"] == pytest.approx(1 / 3)
    assert s["omission"] == pytest.approx(1 / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)


def test_dating_errors():
    pred = np.ones((1, 4), bool)
    ref = np.array([[1, 1, 1, 0]], bool)
    pdate = np.array([[10, 12, 20, 5]], float)
    rdate = np.array([[10, 11, 17, np.nan]])
    s = burned_area_scores(pred, ref, pdate, rdate)
    assert s["n_dated"] == 3
    assert s["date_mae"] == pytest.approx((0 + 1 + 3) / 3)
    assert s["date_within_1"] == pytest.approx(2 / 3)
    assert s["date_within_2"] == pytest.approx(2 / 3)


def test_valid_mask_and_empty():
    pred = np.array([True, False])
    ref = np.array([True, True])
    s = burned_area_scores(pred, ref, valid=np.array([True, False]))
    assert s["dice"] == 1.0 and s["omission"] == 0.0
    e = burned_area_scores(np.zeros(3, bool), np.zeros(3, bool))
    assert np.isnan(e["dice"])


def test_sequence_scores():
    T = 6
    target = np.zeros((T, 2, 2), np.float32)
    prob = np.zeros((T, 2, 2), np.float32)
    target[2, 0, 0] = 1.0  # burned on day 2
    prob[3, 0, 0] = 0.9    # predicted day 3
    target[4, 1, 1] = 1.0  # missed
    prob[1, 0, 1] = 0.8    # false alarm
    s = sequence_scores(prob, target)
    assert s["dice"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    assert s["date_mae"] == pytest.approx(1.0)
    # pixel-days: 24; wrong: (2,0,0), (3,0,0), (4,1,1), (1,0,1) -> 20/24
    assert s["pixel_day_accuracy"] == pytest.approx(20 / 24)


def test_classification_scores():
    s = classification_scores(np.array([2.0, -1.0, 0.5, -3.0, 0.0]), np.array([1, 1, 0, 0, 0]))
    # pred: 1 0 1 0 0 (0.0 is not > 0)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 1, 1, 2)
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["f1"] == pytest.approx(0.5)


def _masks():
    truth = np.zeros((4, 4, 4), bool)
    logits = -np.ones((4, 4, 4))
    truth[0, :2, :2] = True          # image 0: 4 true px
    logits[0, :2, :1] = 1            # 2 predicted, both correct -> IoU 0.5, ratio 0.5
    truth[1, 0, 0] = True            # image 1: a miss -> IoU 0, ratio 0
    logits[2, 3, 3] = 1              # image 2: a false alarm (truth empty) -> ratio 0
    # image 3: both empty -> ratio 1
    return logits, truth


def test_smoke_legacy_definitions():
    logits, truth = _masks()
    s = smoke_segmentation_legacy(logits, truth)
    assert s["iou"] == pytest.approx(0.5)  # only image 0 has both non-empty
    assert s["n_images_iou"] == 1
    assert s["detection_accuracy"] == pytest.approx(2 / 4)  # images 0 and 3 right
    assert s["area_ratio"] == pytest.approx((0.5 + 0 + 0 + 1) / 4)
    # logit == 0 counts as smoke in the legacy rule
    z = np.zeros((1, 2, 2))
    assert smoke_segmentation_legacy(z, np.ones((1, 2, 2), bool))["iou"] == 1.0


def test_smoke_standard_scores():
    logits, truth = _masks()
    s = smoke_segmentation_scores(logits >= 0, truth)
    # pooled: inter 2, union 4 + 1 + 1 = 6
    assert s["pooled_iou"] == pytest.approx(2 / 6)
    # per image over images 0, 1, 2: 0.5, 0, 0
    assert s["mean_iou"] == pytest.approx(0.5 / 3)
    # detection: img0 TP, img1 FN, img2 FP, img3 TN
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(0.5)
    assert s["area_error"] == pytest.approx((3 - 5) / 5)
    assert s["mean_abs_area_error_m2"] == pytest.approx((2 + 1 + 1 + 0) / 4 * 100)
