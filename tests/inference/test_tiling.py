"""Tile plans and blending: block-wise processing equals one whole-array pass."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from firesmoke.inference.tiling import TilePlan, accumulate_tiles, blend_weights, tile_origins


def test_tile_origins():
    assert tile_origins(300, 128, 100).tolist() == [0, 100, 200]
    assert tile_origins(328, 128, 100).tolist() == [0, 100, 200]
    assert tile_origins(329, 128, 100).tolist() == [0, 100, 200, 300]
    assert tile_origins(50, 128, 100).tolist() == [0]
    assert tile_origins(256, 128, 128).tolist() == [0, 128]
    with pytest.raises(ValueError, match="gaps"):
        tile_origins(100, 10, 20)


def test_plan_covers_everything():
    plan = TilePlan(300, 250, tile=128, step=100)
    cover = np.zeros(plan.padded_shape, int)
    for r, c in plan.origins():
        cover[r : r + 128, c : c + 128] += 1
    assert (cover[:300, :250] >= 1).all()
    assert plan.redundancy() == pytest.approx(len(plan) * 128**2 / (300 * 250))


def test_windows():
    assert blend_weights(8, "mean").sum() == 64
    w = blend_weights(16, "centre")
    assert w.shape == (16, 16) and w.min() > 0 and w[8, 8] > w[0, 0]
    with pytest.raises(ValueError):
        blend_weights(8, "nope")


def reference_whole_pass(arr, predict, tile, step, blend):
    """Straightforward reference: zero-pad the whole array, loop over tiles one by one."""
    plan = TilePlan(*arr.shape[-2:], tile=tile, step=step)
    ph, pw = plan.padded_shape
    padded = np.zeros((*arr.shape[:-2], ph, pw), arr.dtype)
    padded[..., : arr.shape[-2], : arr.shape[-1]] = arr
    w = blend_weights(tile, blend)
    acc = None
    wsum = np.zeros((ph, pw))
    for r in plan.rows:
        for c in plan.cols:
            out = predict(padded[None, ..., r : r + tile, c : c + tile])[0]
            if acc is None:
                acc = np.zeros((*out.shape[:-2], ph, pw))
            acc[..., r : r + tile, c : c + tile] += out * w
            wsum[r : r + tile, c : c + tile] += w
    return (acc / wsum)[..., : arr.shape[-2], : arr.shape[-1]]


def nonlinear_model(batch):
    # position-dependent, non-linear: any misplacement of tiles or weights shows
    t = batch.shape[-1]
    ramp = np.linspace(0.5, 1.5, t)[None, :] * np.linspace(1.0, 2.0, t)[:, None]
    return np.tanh(batch.sum(axis=1, keepdims=True) * ramp) + 0.1 * batch[:, :1] ** 2


@pytest.mark.parametrize("blend", ["mean", "centre"])
@pytest.mark.parametrize("blocks", [(1, 1), (2, 3), (4, 2)])
def test_blockwise_equals_whole_pass(blend, blocks):
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(3, 173, 211)).astype(np.float32)
    tile, step = 32, 24
    plan = TilePlan(173, 211, tile=tile, step=step)
    expected = reference_whole_pass(arr, nonlinear_model, tile, step, blend)
    ys = np.linspace(0, 173, blocks[0] + 1).astype(int)
    xs = np.linspace(0, 211, blocks[1] + 1).astype(int)
    out = np.zeros((1, 173, 211), np.float32)
    for y0, y1 in itertools.pairwise(ys):
        for x0, x1 in itertools.pairwise(xs):
            # blend = core plus a halo of one tile, clipped to the array
            wy0, wy1 = max(y0 - tile, 0), min(y1 + tile, 173)
            wx0, wx1 = max(x0 - tile, 0), min(x1 + tile, 211)
            out[:, y0:y1, x0:x1] = accumulate_tiles(
                arr[:, wy0:wy1, wx0:wx1], nonlinear_model, plan, offset=(wy0, wx0),
                core=(y0, y1, x0, x1), batch_size=5, blend=blend,
            )
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_identity_model_reproduces_input():
    rng = np.random.default_rng(1)
    arr = rng.random((2, 5, 70, 90)).astype(np.float32)
    plan = TilePlan(70, 90, tile=32, step=20)
    out = accumulate_tiles(arr, lambda b: b, plan, blend="centre")
    np.testing.assert_allclose(out, arr, rtol=1e-6)


def test_centre_window_pinned_values_and_symmetry():
    """Values written out by hand (sin^2 of pixel centres), not computed by blend_weights's
    formula: an asymmetric or shifted blend fails here."""
    s1, s3 = (1 - np.sqrt(0.5)) / 2, (1 + np.sqrt(0.5)) / 2  # sin^2(pi/8), sin^2(3 pi/8)
    w1 = np.array([s1, s3, s3, s1])
    np.testing.assert_allclose(blend_weights(4, "centre"), np.outer(w1, w1), rtol=1e-6)
    np.testing.assert_allclose(blend_weights(4, "centre")[0], [0.0214466, 0.125, 0.125, 0.0214466],
                               rtol=1e-5)
    for tile in (5, 16, 128):
        w = blend_weights(tile, "centre")
        assert w.dtype == np.float32 and w.shape == (tile, tile)
        np.testing.assert_array_equal(w, w[::-1, :])  # symmetric top/bottom
        np.testing.assert_array_equal(w, w[:, ::-1])  # left/right
        np.testing.assert_array_equal(w, w.T)  # the same along both axes
        mid = tile // 2
        assert w[mid, mid] == w.max() and w.max() <= 1.0
        row = w[mid, : (tile + 1) // 2]
        assert (np.diff(row) >= 0).all()  # rises towards the centre
    w = blend_weights(128, "centre")
    # the edge rows are held at the floor (1e-3), so border-only pixels still get a value
    assert w[0, 0] == pytest.approx(1e-6, rel=1e-4)
    assert w[0, 64] == pytest.approx(1e-3, rel=1e-3)
    np.testing.assert_allclose(w[64, 64], np.sin(np.pi * 64.5 / 128) ** 4, rtol=1e-6)
