"""Smoke model training: augmentation, sampling, logs, checkpoints, determinism, resume."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from firesmoke.errors import InputError, WeightsError
from firesmoke.io.sentinel2.dataset import open_smoke_dataset
from firesmoke.models.normalization import SMOKE_S2
from firesmoke.models.weights import load_weights, state_dict_sha256
from firesmoke.synthetic.sentinel2 import generate_chips
from firesmoke.train.augment import (
    CropFlipRotate,
    apply_flip_rot,
    draw_crop,
    random_crop,
    random_flip_rot,
)
from firesmoke.train.common import (
    MetricLog,
    load_checkpoint,
    make_scheduler,
    save_checkpoint,
    step_rng,
)
from firesmoke.train.smoke import train_smoke_classifier, train_smoke_segmenter
from firesmoke.train.smoke_data import (
    balanced_order,
    load_smoke_data,
    normalise_chips,
    segmentation_subset,
)

TINY = dict(epochs=2, batch_size=4, width=2, progress=False, val_fraction=0.25,
            test_fraction=0.25, threads=1, eval_batch_size=16)


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    return generate_chips(tmp_path_factory.mktemp("chips"), 10, 10, seed=5)


# ----------------------------------------------------------------------------- augment
def test_crop_offsets_follow_the_reference_range():
    rng = np.random.default_rng(0)
    offs = np.array([draw_crop(rng, (120, 120), 90) for _ in range(3000)])
    assert offs.min() == 0 and offs.max() == 29  # 0-29 inclusive, never 30
    assert len(np.unique(offs[:, 0])) == 30 and len(np.unique(offs[:, 1])) == 30
    rows_cols = np.array([draw_crop(rng, (120, 120), 90, max_offset=30) for _ in range(2000)])
    assert rows_cols.max() == 30
    with pytest.raises(ValueError):
        draw_crop(rng, (80, 120), 90)


def test_flip_rot_matches_plain_numpy():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    for fx in (False, True):
        for fy in (False, True):
            for k in range(4):
                ref = a.copy()
                if fx:
                    ref = ref[:, :, ::-1]
                if fy:
                    ref = ref[:, ::-1, :]
                for _ in range(k):  # rot90 counter-clockwise, written out
                    ref = np.stack([np.flipud(ch.T) for ch in ref])
                np.testing.assert_array_equal(apply_flip_rot(a, fx, fy, k), ref)


def test_image_and_mask_transform_alike():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 1000, size=(12, 120, 120)).astype(np.uint16)
    mask = img[4] > 700  # mask is a function of the image
    aug = CropFlipRotate(90)
    seen = set()
    for _ in range(40):
        a, m = aug(rng, img, mask)
        assert a.shape == (12, 90, 90) and m.shape == (90, 90)
        np.testing.assert_array_equal(m, a[4] > 700)
        seen.add(a[:, 0, 0].tobytes())
    assert len(seen) > 30  # the draws vary
    c1, c2 = random_crop(np.random.default_rng(1), img, mask, size=90)
    np.testing.assert_array_equal(c2, c1[4] > 700)
    f1, f2 = random_flip_rot(np.random.default_rng(1), img, mask)
    np.testing.assert_array_equal(f2, f1[4] > 700)


# ----------------------------------------------------------------------------- sampling
def test_balanced_order_upsamples_the_minority():
    labels = np.array([1] * 5 + [0] * 25, dtype=np.int8)
    order = balanced_order(labels, 20, np.random.default_rng(0))
    assert len(order) == 20
    assert (labels[order] == 1).sum() == 10
    pos = order[labels[order] == 1]
    assert set(pos) == set(range(5)) and np.bincount(pos).min() == 2  # whole permutations
    neg = order[labels[order] == 0]
    assert len(set(neg)) == 10  # majority drawn without replacement


def test_segmentation_subset_rule(chips):
    data = load_smoke_data(open_smoke_dataset(chips.root))
    data.masks[0] = False  # a positive without any polygon is left out
    sub = segmentation_subset(data, seed=0)
    n_pos = int(((data.labels == 1) & data.masks.any(axis=(1, 2))).sum())
    assert n_pos == 9
    assert (sub.labels == 1).sum() == n_pos and (sub.labels == 0).sum() == n_pos
    assert sub.masks[sub.labels == 1].any(axis=(1, 2)).all()
    assert data.index["path"].iat[0] not in set(sub.index["path"])


def test_normalisation_uses_reference_constants():
    img = np.full((1, 12, 2, 2), 1000, np.uint16)
    z = normalise_chips(img)
    ref = (1000 - np.asarray(SMOKE_S2.mean)) / np.asarray(SMOKE_S2.std)
    np.testing.assert_allclose(z[0, :, 0, 0], ref, rtol=1e-6)
    assert z.dtype == np.float32


# ----------------------------------------------------------------------------- common
def test_metric_log_csv_json_and_truncate(tmp_path):
    log = MetricLog(tmp_path, "m")
    log.log(step=1, phase="train", loss=0.5)
    log.log(step=2, phase="val", val_loss=float("nan"))
    log.log(step=3, phase="train", loss=np.float32(0.25))
    log.update(config={"a": 1})
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"step", "phase", "loss", "val_loss"}
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["config"] == {"a": 1} and doc["history"][1]["val_loss"] is None
    again = MetricLog(tmp_path, "m", resume=True)
    again.truncate(2)
    assert [r["step"] for r in again.rows] == [1, 2]
    assert json.loads((tmp_path / "m.json").read_text())["config"] == {"a": 1}


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = make_scheduler("step", opt, step_size=2)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    sched.step()
    save_checkpoint(tmp_path / "c.pt", model, opt, sched, step=7, epoch=1, extra={"k": [1, 2]})
    m2 = torch.nn.Linear(3, 1)
    o2 = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    s2 = make_scheduler("step", o2, step_size=2)
    info = load_checkpoint(tmp_path / "c.pt", m2, o2, s2)
    assert info == {"step": 7, "epoch": 1, "extra": {"k": [1, 2]}}
    assert state_dict_sha256(m2.state_dict()) == state_dict_sha256(model.state_dict())
    assert s2.last_epoch == 1
    torch.testing.assert_close(o2.state_dict()["state"][0]["momentum_buffer"],
                               opt.state_dict()["state"][0]["momentum_buffer"])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"bad\.pt"):
        load_checkpoint(tmp_path / "bad.pt", m2)


def test_cosine_schedule_values():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = make_scheduler("cosine", opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    np.testing.assert_allclose(lrs, expected, atol=1e-12)


def test_step_rng_is_reproducible_and_independent():
    a = step_rng(1, 2, 3).integers(0, 2**31, 5)
    np.testing.assert_array_equal(a, step_rng(1, 2, 3).integers(0, 2**31, 5))
    assert not np.array_equal(a, step_rng(1, 2, 4).integers(0, 2**31, 5))


# ----------------------------------------------------------------------------- training
def test_classifier_run_logs_evaluates_and_saves(chips, tmp_path):
    res = train_smoke_classifier(chips.root, tmp_path / "c", recipe="reference-scratch", **TINY)
    assert res.weights is not None and res.weights.is_file()
    assert res.steps == res.epochs * json.loads(
        (tmp_path / "c" / "metrics.json").read_text())["config"]["steps_per_epoch"]
    # splits are site-wise: no site in two splits
    s = res.splits
    assert not (set(s["train"]) & set(s["val"])) and not (set(s["train"]) & set(s["test"]))
    assert not (set(s["val"]) & set(s["test"]))
    df = pd.read_csv(tmp_path / "c" / "metrics.csv")
    assert set(df["phase"]) == {"train", "val"}
    assert (df.loc[df["phase"] == "val", "val_accuracy"].between(0, 1)).all()
    test = res.metrics["test"]
    assert {"standard", "legacy_protocol"} <= set(test)
    assert {"accuracy", "precision", "recall", "f1", "loss"} <= set(test["standard"])
    _model, meta = load_weights(res.weights)
    assert meta["architecture"] == "smoke_resnet50" and meta["config"]["width"] == 2
    assert meta["bands"] == list(SMOKE_S2.bands)
    assert meta["normalization"]["mean"] == list(SMOKE_S2.mean)
    assert meta["tile_size"] == 120 and meta["crop_size"] == 90
    assert meta["training"]["recipe"] == "reference-scratch" and meta["training"]["lr"] == 0.3
    assert "metrics" in meta and "test" in meta["metrics"]
    assert meta["sha256"] == res.sha256


def test_same_seed_same_weights_and_resume_is_exact(chips, tmp_path):
    kw = dict(TINY, recipe="adamw", seed=3, checkpoint_every=1)
    a = train_smoke_classifier(chips.root, tmp_path / "a", max_steps=4,
                               weights_path=tmp_path / "a.pt", **kw)
    b = train_smoke_classifier(chips.root, tmp_path / "b", max_steps=4,
                               weights_path=tmp_path / "b.pt", **kw)
    assert a.sha256 == b.sha256
    # interrupted after 2 steps, then resumed to 4: the same weights as straight through
    train_smoke_classifier(chips.root, tmp_path / "r", max_steps=2, **kw)
    assert not (tmp_path / "r" / "smoke_classifier.pt").exists()  # incomplete: no weights
    r = train_smoke_classifier(chips.root, tmp_path / "r", max_steps=4, resume=True,
                               weights_path=tmp_path / "r.pt", **kw)
    assert r.steps == 4 and r.sha256 == a.sha256
    steps = [row["step"] for row in r.history if row["phase"] == "train"]
    assert steps == sorted(steps) and steps[-1] == 4
    c = train_smoke_classifier(chips.root, tmp_path / "c", max_steps=4,
                               weights_path=tmp_path / "c.pt", **{**kw, "seed": 4})
    assert c.sha256 != a.sha256


def test_segmenter_run(chips, tmp_path):
    res = train_smoke_segmenter(chips.root, tmp_path / "s", recipe="reference", **TINY)
    cfg = json.loads((tmp_path / "s" / "metrics.json").read_text())["config"]
    assert cfg["n_train"] % 2 == 0  # positives with polygons + as many negatives
    # the reference's epochs: 2/3 of N drawn with replacement; the plateau stops at 1e-6
    assert cfg["with_replacement"] and cfg["min_lr"] == 1e-6
    assert cfg["epoch_fraction"] == pytest.approx(2 / 3)
    test = res.metrics["test"]
    assert {"standard", "legacy_definitions", "legacy_protocol"} <= set(test)
    assert {"pooled_iou", "mean_iou", "f1", "area_error"} <= set(test["standard"])
    model, meta = load_weights(res.weights)
    assert meta["architecture"] == "smoke_unet" and meta["config"]["base"] == 2
    with torch.inference_mode():
        assert model(torch.zeros(1, 12, 120, 120)).shape == (1, 1, 120, 120)
    df = pd.read_csv(tmp_path / "s" / "metrics.csv")
    assert "val_pooled_iou" in df.columns


# ----------------------------------------------------------------------------- reference init
def imagenet_like_state(seed=0):
    """A state dict in torchvision's ResNet-50 ImageNet layout (3-band 7 x 7 conv1,
    1000-class fc), random values: torchvision's weights cannot be downloaded here."""
    from firesmoke.models.resnet import smoke_resnet50

    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
             for k, v in smoke_resnet50(width=64).state_dict().items()}
    state["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=g)
    state["fc.weight"] = torch.randn(1000, 2048, generator=g)
    state["fc.bias"] = torch.randn(1000, generator=g)
    return state


def test_imagenet_init_loads_all_but_conv1_and_fc(tmp_path):
    from firesmoke.models.resnet import smoke_resnet50
    from firesmoke.train.smoke_init import load_imagenet_resnet50

    state = imagenet_like_state()
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(state, path)
    model = smoke_resnet50(width=64)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    info = load_imagenet_resnet50(model, path)
    got = model.state_dict()
    assert info["new"] == ["conv1.weight", "fc.weight", "fc.bias"] and len(info["sha256"]) == 64
    for k, v in got.items():
        if k in info["new"]:
            assert torch.equal(v, fresh[k])  # new layers keep their initialisation
            continue
        assert torch.equal(v, state[k].to(v.dtype)), k
    assert info["loaded"] == len(state) - 3
    assert tuple(got["conv1.weight"].shape) == (64, 12, 3, 3) and tuple(got["fc.weight"].shape) == (1, 2048)


def test_imagenet_init_refuses_what_it_cannot_use(tmp_path):
    from firesmoke.models.resnet import smoke_resnet50
    from firesmoke.train.smoke_init import load_imagenet_resnet50

    model = smoke_resnet50(width=64)
    with pytest.raises(InputError, match="not found"):
        load_imagenet_resnet50(model, tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"junk\.pth"):
        load_imagenet_resnet50(model, tmp_path / "junk.pth")
    # the smoke classifier's own weights are not ImageNet weights (12-band conv1, 1-logit fc)
    torch.save(model.state_dict(), tmp_path / "smoke.pth")
    with pytest.raises(InputError, match=r"conv1\.weight has shape"):
        load_imagenet_resnet50(model, tmp_path / "smoke.pth")
    # a pickled object that is not plain tensors is refused by weights_only loading
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")
    with pytest.raises(InputError, match=r"module\.pth"):
        load_imagenet_resnet50(model, tmp_path / "module.pth")
    # a narrower network cannot take ResNet-50 tensors
    torch.save(imagenet_like_state(), tmp_path / "imagenet.pth")
    with pytest.raises(InputError, match="width=64"):
        load_imagenet_resnet50(smoke_resnet50(width=16), tmp_path / "imagenet.pth")
    state = imagenet_like_state()
    del state["layer4.2.bn3.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="missing"):
        load_imagenet_resnet50(model, tmp_path / "partial.pth")


def test_reference_classifier_recipe_needs_imagenet_weights(chips, tmp_path):
    with pytest.raises(InputError, match="ImageNet"):
        train_smoke_classifier(chips.root, tmp_path / "x", **TINY)  # default recipe
    path = tmp_path / "imagenet.pth"
    torch.save(imagenet_like_state(), path)
    kw = dict(TINY, width=64, epochs=1)
    res = train_smoke_classifier(chips.root, tmp_path / "r", init=path, max_steps=1, **kw)
    cfg = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert cfg["recipe"] == "reference" and cfg["schedule"] == "epoch-plateau"
    assert cfg["init"]["path"] == str(path) and cfg["init"]["loaded"] == 317
    assert res.steps == 1


def test_reference_schedule_halves_every_11_epochs_from_epoch_13():
    from firesmoke.train.common import make_optimizer, make_scheduler

    opt = make_optimizer("sgd", [torch.nn.Parameter(torch.zeros(1))], 0.3, 0.7, 0.0)
    sched = make_scheduler("epoch-plateau", opt, gamma=0.5, patience=10)
    lrs = []
    for epoch in range(40):  # 0-based epochs; the lr used during epoch e is lrs[e]
        lrs.append(opt.param_groups[0]["lr"])
        sched.step(epoch)  # stepped with the epoch number, as the reference code
    halvings = [e + 1 for e in range(1, 40) if lrs[e] < lrs[e - 1]]  # 1-based epochs
    assert halvings == [13, 24, 35]


def test_legacy_evaluation_populations(chips):
    from firesmoke.models.resnet import smoke_resnet50
    from firesmoke.models.unet import SmokeUNet
    from firesmoke.train.smoke_data import (
        evaluate_smoke_classifier,
        evaluate_smoke_segmenter,
        legacy_classifier_rows,
        legacy_segmentation_rows,
        load_smoke_data,
    )

    data = load_smoke_data(chips.root)
    rows = legacy_classifier_rows(len(data), seed=0)
    assert len(rows) == -(-len(data) // 10) and len(set(rows)) == len(rows)
    assert not np.array_equal(rows, legacy_classifier_rows(len(data), seed=1))
    seg = legacy_segmentation_rows(data)
    has_smoke = data.masks.reshape(len(data), -1).any(axis=1)
    pos = np.flatnonzero((data.labels == 1) & has_smoke)
    neg = np.flatnonzero(data.labels == 0)
    np.testing.assert_array_equal(seg, np.sort(np.r_[pos, neg[: len(pos)]]))  # first negatives
    torch.manual_seed(0)
    cls = evaluate_smoke_classifier(smoke_resnet50(width=2).eval(), data, batch_size=16)
    assert cls["legacy_population"]["n_images"] == len(rows)
    unet = SmokeUNet(in_ch=12, n_classes=1, base=2, bilinear=True).eval()
    legacy = evaluate_smoke_segmenter(unet, data, population="legacy")
    assert legacy["n_images"] == len(seg) and legacy["n_positive"] == len(pos)
    with pytest.raises(InputError, match="population"):
        evaluate_smoke_segmenter(unet, data, population="nope")
