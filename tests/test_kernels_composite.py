"""Overpass compositing kernels vs plain numpy references, hand-made cases, dask wrapper."""

from __future__ import annotations

import dask.array as da
import numba
import numpy as np
import pytest

from firesmoke import ops
from firesmoke.kernels.composite import (
    composite_by_order,
    composite_min_zenith,
    mean_zenith,
    reference_order,
    select_by_order,
    select_min_zenith,
)


# --------------------------------------------------------------------------- references
def numpy_reference_rule(stack, zenith):
    n, nb, h, w = stack.shape
    out = np.full((nb, h, w), np.nan, dtype=np.float32)
    if n == 0:
        return out
    means = []
    for g in range(n):
        z = zenith[g][~np.isnan(zenith[g])]
        means.append(z.mean() if z.size else np.inf)
    order = sorted(range(n), key=lambda g: (means[g], g))
    for i in range(h):
        for j in range(w):
            for g in order:
                if not np.isnan(zenith[g, i, j]):
                    out[:, i, j] = stack[g, :, i, j]
                    break
    return out


def numpy_min_zenith(stack, zenith):
    n, nb, h, w = stack.shape
    out = np.full((nb, h, w), np.nan, dtype=np.float32)
    for i in range(h):
        for j in range(w):
            best, arg = np.inf, -1
            for g in range(n):
                z = zenith[g, i, j]
                if not np.isnan(z) and (arg < 0 or z < best):
                    best, arg = z, g
            if arg >= 0:
                out[:, i, j] = stack[arg, :, i, j]
    return out


def random_case(rng, n=4, nb=3, h=23, w=31):
    stack = rng.normal(size=(n, nb, h, w)).astype(np.float32)
    zenith = rng.uniform(0, 70, size=(n, h, w)).astype(np.float32)
    # each granule covers a different band of columns (swath edges), some holes
    for g in range(n):
        lo = rng.integers(0, w // 2)
        zenith[g, :, :lo] = np.nan
        zenith[g, rng.random((h, w)) < 0.1] = np.nan
    stack[rng.random(stack.shape) < 0.02] = np.nan  # NaN band values are copied as is
    zenith[:, 0, 0] = np.nan  # a pixel seen by nobody
    zenith[:, 1, 1] = 12.5  # a tie at one pixel
    return stack, zenith


# --------------------------------------------------------------------------- tests
def test_reference_rule_matches_numpy():
    rng = np.random.default_rng(0)
    for _ in range(3):
        stack, zenith = random_case(rng)
        order = reference_order(mean_zenith(zenith))
        got = composite_by_order(stack, zenith, order)
        assert got.dtype == np.float32 and got.shape == stack.shape[1:]
        np.testing.assert_array_equal(got, numpy_reference_rule(stack, zenith))
        assert np.isnan(got[:, 0, 0]).all()


def test_min_zenith_matches_numpy():
    rng = np.random.default_rng(1)
    for _ in range(3):
        stack, zenith = random_case(rng)
        got = composite_min_zenith(stack, zenith)
        np.testing.assert_array_equal(got, numpy_min_zenith(stack, zenith))


def test_selected_granule_maps():
    rng = np.random.default_rng(4)
    stack, zenith = random_case(rng, n=3, nb=1, h=9, w=11)
    # tag each granule's values with its index: the composite then shows the selection
    tagged = np.broadcast_to(np.arange(3, dtype=np.float32)[:, None, None, None],
                             stack.shape).copy()
    order = reference_order(mean_zenith(zenith))
    ref_sel = numpy_reference_rule(tagged, zenith)[0]
    np.testing.assert_array_equal(select_by_order(zenith, order),
                                  np.where(np.isnan(ref_sel), -1, ref_sel).astype(np.int64))
    mz = numpy_min_zenith(tagged, zenith)[0]
    np.testing.assert_array_equal(select_min_zenith(zenith),
                                  np.where(np.isnan(mz), -1, mz).astype(np.int64))


def test_hand_made_reference_vs_min_zenith():
    # granule 0: low zenith on average but high at pixel (0, 1); granule 1: the opposite
    zen = np.array([
        [[10.0, 60.0], [10.0, np.nan]],
        [[50.0, 20.0], [50.0, 40.0]],
    ], dtype=np.float32)
    stack = np.stack([np.full((2, 2, 2), 1.0), np.full((2, 2, 2), 2.0)]).astype(np.float32)
    stack[1, 1] = 20.0  # second band of granule 1
    ref = ops.composite(stack, zen, rule="reference")
    # mean zenith: g0 = 26.7, g1 = 40 -> g0 first wherever it is valid
    np.testing.assert_array_equal(ref[0], [[1, 1], [1, 2]])
    np.testing.assert_array_equal(ref[1], [[1, 1], [1, 20]])  # all bands from one granule
    mz = ops.composite(stack, zen, rule="min_zenith")
    np.testing.assert_array_equal(mz[0], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(mz[1], [[1, 20], [1, 20]])


def test_ties_go_to_earliest_and_nan_mean_last():
    zen = np.full((3, 2, 2), 30.0, dtype=np.float32)
    zen[0] = np.nan  # granule 0 never valid: mean NaN, ordered last
    stack = np.arange(3, dtype=np.float32)[:, None, None, None] * np.ones((3, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(ops.composite(stack, zen, "min_zenith")[0], 1.0)
    np.testing.assert_array_equal(ops.composite(stack, zen, "reference")[0], 1.0)
    assert list(reference_order(np.array([5.0, np.nan, 5.0, 1.0]))) == [3, 0, 2, 1]


@pytest.mark.parametrize("rule", ["reference", "min_zenith"])
def test_zero_overpasses_gives_all_nan(rule):
    out = ops.composite(np.zeros((0, 3, 4, 5), np.float32), np.zeros((0, 4, 5), np.float32), rule)
    assert out.shape == (3, 4, 5) and out.dtype == np.float32 and np.isnan(out).all()


@pytest.mark.parametrize("rule", ["reference", "min_zenith"])
def test_dask_matches_numpy_for_any_chunking(rule):
    rng = np.random.default_rng(2)
    stack, zenith = random_case(rng, n=5, nb=2, h=40, w=37)
    expect = ops.composite(stack, zenith, rule)
    for s_chunks, z_chunks in [((2, 1, 16, 10), (3, 7, 20)), ((5, 2, 40, 37), (1, 40, 37))]:
        got = ops.composite(da.from_array(stack, chunks=s_chunks),
                            da.from_array(zenith, chunks=z_chunks), rule)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), expect)


def test_thread_count_does_not_matter():
    rng = np.random.default_rng(3)
    stack, zenith = random_case(rng, n=6, nb=2, h=50, w=20)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = composite_min_zenith(stack, zenith)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, composite_min_zenith(stack, zenith))


def test_bad_inputs():
    with pytest.raises(ValueError, match="rule"):
        ops.composite(np.zeros((1, 1, 2, 2)), np.zeros((1, 2, 2)), "median")
    with pytest.raises(ValueError, match="do not match"):
        composite_min_zenith(np.zeros((2, 1, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="order"):
        composite_by_order(np.zeros((2, 1, 2, 2)), np.zeros((2, 2, 2)), np.array([0, 2]))
