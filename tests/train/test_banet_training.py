"""BA-Net training: augmentations, loss, learning, determinism, resume, weights, CLI entry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from _banet_helpers import make_arrays, write_pair

from firesmoke.errors import InputError
from firesmoke.models.weights import load_weights
from firesmoke.train.augment_banet import (
    BANetAugment,
    fill_reflectance_square,
    random_square,
    zero_frp_squares,
)
from firesmoke.train.banet import banet_loss, train_banet, train_banet_stores
from firesmoke.train.sampler import TrainingSampler, open_source

TINY = dict(batch_size=2, seq_len=16, patch=32, stride=16, t_stride=8, threshold=5,
            progress=False, threads=1)


# ----------------------------------------------------------------------------- augmentations
def _window(seed=0, shape=(4, 6, 64, 64)):
    return np.random.default_rng(seed).uniform(0.1, 0.9, size=shape).astype(np.float32)


def test_random_square_inside_and_in_range():
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(500):
        r, c, s = random_square(rng, (64, 40), (5, 50))
        assert 5 <= s <= 40 and 0 <= r <= 64 - s and 0 <= c <= 40 - s
        sides.append(s)
    assert min(sides) == 5 and max(sides) == 40  # range covered, clipped to the window


def test_zero_frp_squares_touches_only_frp_in_its_squares():
    x = _window()
    out, squares = zero_frp_squares(x, np.random.default_rng(1))
    assert 1 <= len(squares) <= 5
    inside = np.zeros(x.shape[-2:], bool)
    for r, c, s in squares:
        assert 5 <= s <= 50
        inside[r : r + s, c : c + s] = True
    np.testing.assert_array_equal(out[:3], x[:3])  # reflectances untouched
    assert np.all(out[3][:, inside] == 0.0)  # every day zeroed inside
    np.testing.assert_array_equal(out[3][:, ~inside], x[3][:, ~inside])
    assert np.all(x[3] > 0)  # input not modified in place


def test_fill_reflectance_square_uses_one_constant_per_channel():
    x = _window(2)
    out, (r, c, s), values = fill_reflectance_square(x, np.random.default_rng(3))
    assert 5 <= s <= 50 and values.shape == (3,)
    for ch in range(3):
        assert np.all(out[ch, :, r : r + s, c : c + s] == values[ch])
    np.testing.assert_array_equal(out[3], x[3])  # FRP untouched
    mask = np.ones(x.shape[-2:], bool)
    mask[r : r + s, c : c + s] = False
    np.testing.assert_array_equal(out[:, :, mask], x[:, :, mask])


def test_banet_augment_probabilities_and_determinism():
    aug = BANetAugment()
    x = _window(4, (4, 2, 48, 48))
    y = np.zeros((1, 2, 48, 48), np.float32)
    m = np.ones_like(y)
    frp_hits = fill_hits = 0
    n = 300
    for k in range(n):
        out, y2, m2 = aug(x, y, m, np.random.default_rng(k))
        frp_hits += bool(np.any(out[3] != x[3]))
        fill_hits += bool(np.any(out[:3] != x[:3]))
        assert y2 is y and m2 is m  # no geometric change without flips
    assert abs(frp_hits / n - 0.5) < 0.1 and abs(fill_hits / n - 0.5) < 0.1
    a = aug(x, y, m, np.random.default_rng(7))[0]
    b = aug(x, y, m, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(a, b)
    # flips move inputs, targets and mask together
    y3 = np.zeros_like(y)
    y3[0, :, 0, :5] = 1.0
    x3 = x.copy()
    x3[3] = y3[0]
    flipped = BANetAugment(p_frp=0, p_fill=0, flips=True)
    moved = False
    for k in range(8):
        ox, oy, _ = flipped(x3, y3, m, np.random.default_rng(k))
        np.testing.assert_array_equal(ox[3], oy[0])
        moved |= not np.array_equal(oy, y3)
    assert moved


# ----------------------------------------------------------------------------- loss
def test_banet_loss_is_masked_scaled_bce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 16, 8, 8, generator=g)
    target = torch.rand(2, 1, 16, 8, 8, generator=g)
    mask = (torch.rand(2, 1, 16, 8, 8, generator=g) > 0.3).float()
    p = torch.sigmoid(logits)
    bce = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    expect = 100 * (bce * mask).sum() / mask.sum()
    got = banet_loss(logits, target, mask)
    assert float(got) == pytest.approx(float(expect), rel=1e-5)
    # unobserved pixel-days do not matter
    t2 = torch.where(mask > 0, target, torch.rand_like(target))
    assert float(banet_loss(logits, t2, mask)) == pytest.approx(float(got), rel=1e-6)
    assert float(banet_loss(logits, target)) == pytest.approx(float(100 * bce.mean()), rel=1e-5)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_banet")
    x, y = make_arrays(48, 64, 64, burns=((12, 4, 4, 14), (36, 40, 36, 12)))
    train = write_pair(tmp, "TRA", x, y, chunks=(16, 32, 32))
    x1, y1 = make_arrays(16, 32, 32, seed=1, burns=((7, 6, 6, 14),))
    one = write_pair(tmp, "ONE", x1, y1, chunks=(16, 32, 32))
    return {"train": train, "one": one, "start": pd.Timestamp("2021-06-01")}


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_decreases_when_overfitting_one_batch(cubes, tmp_path):
    # the sampler has a single candidate (the cube is one window): every step sees it
    r = train_banet([cubes["one"]], tmp_path, steps=12, lr_max=1e-2, augment=False,
                    log_every=1, checkpoint_every=100, **TINY)
    losses = [row["loss"] for row in r.history if row["split"] == "train"]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.4 * np.mean(losses[:2])


def test_same_seed_same_weights_and_saved_metadata(cubes, tmp_path):
    kw = dict(steps=2, checkpoint_every=100, jitter=True, flips=True, **TINY)
    a = train_banet([cubes["train"]], tmp_path / "a", seed=5, **kw)
    b = train_banet([cubes["train"]], tmp_path / "b", seed=5, **kw)
    c = train_banet([cubes["train"]], tmp_path / "c", seed=6, **kw)
    assert _same(_state(a.model), _state(b.model))
    assert a.sha256 == b.sha256
    assert not _same(_state(a.model), _state(c.model))
    model, meta = load_weights(a.weights)
    assert _same(_state(model), _state(a.model))
    assert meta["bands"] == ["red", "nir", "mir", "frp"]
    assert meta["normalization"]["mean"] == pytest.approx([0.2349, 0.3548, 0.1128, 0.0016])
    assert meta["sequence_length"] == 16 and meta["training_patch"] == 32
    assert "TRA" in meta["training_data"]
    assert meta["training"]["steps"] == 2 and meta["training"]["optimizer"].startswith("AdamW")
    assert (tmp_path / "a" / "metrics.csv").is_file() and (tmp_path / "a" / "metrics.json").is_file()


def test_resume_gives_the_uninterrupted_weights(cubes, tmp_path):
    s = cubes["start"]
    val = (s + pd.Timedelta(days=32), s + pd.Timedelta(days=47))  # time split
    # 2 steps, stopped after the first: a validation and a checkpoint on either side
    kw = dict(steps=2, val=val, val_every=1, val_samples=2, checkpoint_every=1, jitter=True,
              flips=True, seed=1, **TINY)
    full = train_banet([cubes["train"]], tmp_path / "full", **kw)
    part = train_banet([cubes["train"]], tmp_path / "part", stop_at=1, **kw)
    assert part.weights is None and part.steps == 1
    assert (tmp_path / "part" / "checkpoint.pt").is_file()
    done = train_banet([cubes["train"]], tmp_path / "part", resume=True, **kw)
    assert done.steps == 2
    assert len([r for r in done.history if r["split"] == "val"]) == 2
    assert _same(_state(full.model), _state(done.model))
    steps = [(r["step"], r["split"]) for r in done.history]
    assert len(steps) == len(set(steps))  # no duplicated rows after the resume
    assert [r["dice"] for r in full.history if r["split"] == "val"] == pytest.approx(
        [r["dice"] for r in done.history if r["split"] == "val"], nan_ok=True)
    assert done.splits["val"] and "TRA" in done.splits["train"]
    # a resume with other settings is refused
    with pytest.raises(InputError, match="other settings"):
        train_banet([cubes["train"]], tmp_path / "part", resume=True,
                    **{**kw, "seed": 2})


def test_cli_entry(cubes, tmp_path):
    cube, targets = cubes["train"]
    s = cubes["start"]
    r = train_banet_stores(
        str(cube), str(targets), str(tmp_path),
        val_period=f"{(s + pd.Timedelta(days=32)).date()}..{(s + pd.Timedelta(days=47)).date()}",
        steps=2, batch_size=2, seq_len=16, patch=32, progress=False)
    assert r.weights is not None and r.weights.is_file()
    assert r.metrics["validation_windows"] > 0
    with pytest.raises(InputError, match="unknown option"):
        train_banet_stores(str(cube), str(targets), str(tmp_path), step=3)
    with pytest.raises(InputError, match="steps"):
        train_banet([cubes["train"]], tmp_path / "x", steps=1)
    with pytest.raises(InputError, match="batch norm"):
        train_banet([cubes["train"]], tmp_path / "x", steps=2, batch_size=1, seq_len=16,
                    patch=32)


def test_fastai_lighting_matches_its_definition():
    from firesmoke.train.augment_banet import fastai_lighting

    rng = np.random.default_rng(0)
    img = rng.uniform(-0.2, 2.0, size=(4, 9, 11)).astype(np.float32)  # log1p(FRP) > 1 too
    changed = 0
    for seed in range(200):
        got = fastai_lighting(img, np.random.default_rng(seed))
        r = np.random.default_rng(seed)
        do_b, do_c = r.random(2) < 0.75
        b = r.uniform(0.4, 0.6)
        c = np.exp(r.uniform(np.log(0.8), np.log(1.25)))
        if not (do_b or do_c):
            np.testing.assert_array_equal(got, img)
            continue
        changed += 1
        x = np.clip(img.astype(np.float64), 1e-7, 1 - 1e-7)
        lg = np.log(x / (1 - x)) + (np.log(b / (1 - b)) if do_b else 0.0)
        lg = lg * (c if do_c else 1.0)
        np.testing.assert_allclose(got, 1 / (1 + np.exp(-lg)), rtol=1e-6, atol=1e-7)
        assert got.max() <= 1.0 and got.min() >= 0.0  # squashed into [0, 1] (float32)
    assert abs(changed / 200 - (1 - 0.25**2)) < 0.06


def test_reference_augment_is_per_day():
    from firesmoke.train.augment_banet import ReferenceAugment

    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 0.9, size=(4, 40, 64, 64)).astype(np.float32)
    x[3] = 0.7
    y = rng.random((1, 40, 64, 64)).astype(np.float32)
    mask = np.ones_like(y)
    aug = ReferenceAugment(p_lighting=0.0)  # only the squares: easy to see
    xa, ya, ma = aug(x, y, mask, np.random.default_rng(2))
    assert ya is y and ma is mask  # no flips or rotations: targets untouched
    assert not np.shares_memory(xa, x)
    frp_cut = [(xa[3, t] == 0).any() for t in range(40)]
    refl = [(xa[:3, t] != x[:3, t]).any() for t in range(40)]
    # each day on its own, each with probability 0.5
    assert 8 < sum(frp_cut) < 32 and 8 < sum(refl) < 32
    cut_days = [t for t in range(40) if frp_cut[t]]
    masks = [xa[3, t] == 0 for t in cut_days]
    assert any(not np.array_equal(masks[0], m) for m in masks[1:])  # squares differ by day
    t = next(t for t in range(40) if refl[t])
    for ch in range(3):  # cutout2: one value per channel in the square
        vals = np.unique(xa[ch, t][xa[ch, t] != x[ch, t]])
        assert len(vals) == 1 and 0.0 <= vals[0] < 1.0
    np.testing.assert_array_equal(aug(x, y, mask, np.random.default_rng(2))[0], xa)


def test_reference_recipe_runs_with_its_sampler_and_augmentation(cubes, tmp_path):
    r = train_banet([cubes["train"]], tmp_path, steps=2, recipe="reference", checkpoint_every=100,
                    **TINY)
    meta = json.loads((tmp_path / "metrics.json").read_text())
    cfg = meta["config"]
    assert cfg["recipe"] == "reference" and cfg["random_share"] == 0.0 and cfg["jitter"] is False
    # the reference's anchors: tile-days with target sum > threshold
    src = open_source(*cubes["train"])
    ref = TrainingSampler([src], seq_len=16, patch=32, stride=16, threshold=5, rule="reference")
    assert cfg["burned_candidates"] == len(ref.burned_ids) and cfg["candidates"] == len(ref)
    assert r.weights is not None and r.weights.is_file()
    with pytest.raises(InputError, match="recipe"):
        train_banet([cubes["train"]], tmp_path / "x", steps=2, recipe="nope", **TINY)
    with pytest.raises(InputError, match="flips"):
        train_banet([cubes["train"]], tmp_path / "x", steps=2, recipe="reference", flips=True,
                    **TINY)


def test_targets_built_from_mcd64_with_either_denominator(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from firesmoke.train.banet import _prepare_targets
    from firesmoke.train.sampler import open_targets

    x, y = make_arrays(16, 32, 32, burns=((5, 4, 4, 8),))
    cube, _ = write_pair(tmp_path, "MCD", x, y, chunks=(16, 32, 32))  # 10.0..10.32 E, 19.68..20 N
    res = 0.01 / 2.4
    bd = np.zeros((96, 96), np.int16)
    bd[10:40, 10:40] = 152 + 3       # burned on 2021-06-04 (the cube starts 2021-06-01)
    bd[30:50, 30:60] = -1            # unmapped cells, partly over the burn
    src = tmp_path / "mcd"
    src.mkdir()
    profile = {"driver": "GTiff", "height": 96, "width": 96, "count": 1, "crs": "EPSG:4326",
               "transform": from_origin(9.99, 20.01, res, res), "dtype": "int16", "nodata": -1}
    with rasterio.open(src / "MCD64monthly.A2021152.Win20.061.burndate.tif", "w", **profile) as dst:
        dst.write(bd, 1)
    obs = open_targets(_prepare_targets(str(cube), str(src), tmp_path / "run", 0)).values
    every = open_targets(_prepare_targets(str(cube), str(src), tmp_path / "run", 0, "all")).values
    assert (tmp_path / "run" / "targets" / "targets_0_all.zarr").is_dir()
    assert np.nansum(obs[3]) > 0 and np.nansum(obs[:3]) == 0
    # the same burned area over a larger (all cells) or equal (observed) area
    assert (np.nan_to_num(every[3]) <= np.nan_to_num(obs[3]) + 1e-6).all()
    assert (every[3] < obs[3] - 1e-3).any()
    assert np.isnan(obs).sum() > np.isnan(every).sum()


def test_vnp64a1_hdf4_tiles_train_banet_as_targets(tmp_path):
    """A VNP64A1 v002 HDF4 tile (as NASA distributes it) is a BA-Net target like MCD64A1:
    burned cells give the day's fraction, unmapped cells (-1) give NaN, and training runs."""
    from firesmoke.grid import Region
    from firesmoke.synthetic.mcd64 import TILE_PIXELS, tile_mapping
    from firesmoke.synthetic.vnp64 import vnp64_file_name, write_vnp64a1
    from firesmoke.train.banet import _prepare_targets
    from firesmoke.train.sampler import open_targets

    x, y = make_arrays(16, 32, 32, burns=((5, 4, 4, 8),))
    cube, _ = write_pair(tmp_path, "VNP", x, y, chunks=(16, 32, 32))  # 10.0..10.32 E, 19.68..20 N
    region = Region.from_shape("VNP", 10.0, 20.0, 0.01, 32, 32)
    m = tile_mapping(region, 18, 7)
    row, col = np.divmod(m.pixel, 32)
    bd = np.full((TILE_PIXELS, TILE_PIXELS), -1, np.int16)          # unmapped outside the cube
    bd[m.cell_row, m.cell_col] = 0                                  # observed, unburned
    bd[m.cell_row[(row >= 8) & (row < 20) & (col >= 8) & (col < 20)],
       m.cell_col[(row >= 8) & (row < 20) & (col >= 8) & (col < 20)]] = 152 + 3  # 2021-06-04
    bd[m.cell_row[row >= 28], m.cell_col[row >= 28]] = -1           # an unmapped strip
    src = tmp_path / "vnp"
    write_vnp64a1(src / vnp64_file_name("2021-06", 18, 7), {"Burn Date": bd}, (18, 7), "2021-06")
    t = open_targets(_prepare_targets(str(cube), str(src), tmp_path / "run", 0)).values
    assert t.shape == (16, 32, 32)
    np.testing.assert_array_equal(t[3, 9:19, 9:19], 1.0)  # burned pixels, whole
    assert np.nansum(t[:3]) == 0 and np.nansum(t[4:]) == 0
    assert (t[:, :6, :] == 0).all()        # observed, unburned (cells of ~463 m: a margin)
    assert np.isnan(t[:, 29:, :]).all()    # unmapped: no target
    r = train_banet_stores(str(cube), str(src), str(tmp_path / "train"), steps=2, batch_size=2,
                           seq_len=16, patch=32, progress=False)
    assert r.weights is not None and r.weights.is_file()
