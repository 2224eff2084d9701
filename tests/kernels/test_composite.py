"""Overpass compositing kernels vs plain numpy references, hand-made cases, dask wrapper."""

from __future__ import annotations

import dask.array as da
import numba
import numpy as np
import pytest
from _viirs_helpers import decode_banet_rules

from firesmoke.cube import ops
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
    """banet.md, "Details confirmed": granules by mean zenith; each band filled separately
    from the first granule with a valid zenith there while that band is still missing."""
    n, nb, h, w = stack.shape
    out = np.full((nb, h, w), np.nan, dtype=np.float32)
    if n == 0:
        return out
    means = []
    for g in range(n):
        z = zenith[g][~np.isnan(zenith[g])]
        means.append(z.mean() if z.size else np.inf)
    order = sorted(range(n), key=lambda g: (means[g], g))
    for g in order:
        for b in range(nb):
            fill = np.isnan(out[b]) & ~np.isnan(zenith[g])
            out[b][fill] = stack[g, b][fill]
    return out


def numpy_min_zenith(stack, zenith):
    """Per band: the smallest valid zenith among granules with a value of the band (ties:
    the earliest granule)."""
    have = ~np.isnan(stack) & ~np.isnan(zenith)[:, None]  # (n, bands, h, w)
    z = np.where(have, zenith[:, None], np.inf)
    pick = np.argmin(z, axis=0)[None]  # the first of equal minima
    out = np.take_along_axis(stack, pick, axis=0)[0].astype(np.float32)
    out[~have.any(axis=0)] = np.nan
    return out


def random_case(rng, n=4, nb=3, h=23, w=31):
    stack = rng.normal(size=(n, nb, h, w)).astype(np.float32)
    zenith = rng.uniform(0, 70, size=(n, h, w)).astype(np.float32)
    # each granule covers a different band of columns (swath edges), some holes
    for g in range(n):
        lo = rng.integers(0, w // 2)
        zenith[g, :, :lo] = np.nan
        zenith[g, rng.random((h, w)) < 0.1] = np.nan
    stack[rng.random(stack.shape) < 0.15] = np.nan  # band fill: the next granule fills it
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
                             stack.shape).copy()  # no band fill: selection by zenith only
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
    np.testing.assert_array_equal(ref[1], [[1, 1], [1, 20]])
    mz = ops.composite(stack, zen, rule="min_zenith")
    np.testing.assert_array_equal(mz[0], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(mz[1], [[1, 20], [1, 20]])


def test_band_fill_falls_back_band_by_band():
    # both granules see the pixel; granule 0 (lower mean zenith) has band 0 fill there
    zen = np.array([[[10.0, 10.0]], [[30.0, 5.0]]], dtype=np.float32)
    stack = np.array([
        [[[np.nan, 1.0]], [[11.0, 12.0]]],   # granule 0: band 0 fill at pixel 0
        [[[2.0, 3.0]], [[21.0, 22.0]]],      # granule 1
    ], dtype=np.float32)
    ref = ops.composite(stack, zen, rule="reference")
    # pixel 0: band 0 from granule 1 (fallback), band 1 from granule 0 -> mixed granules
    np.testing.assert_array_equal(ref[:, 0, 0], [2.0, 11.0])
    np.testing.assert_array_equal(ref[:, 0, 1], [1.0, 12.0])
    mz = ops.composite(stack, zen, rule="min_zenith")
    np.testing.assert_array_equal(mz[:, 0, 0], [2.0, 11.0])   # min zenith g0, band 0 falls back
    np.testing.assert_array_equal(mz[:, 0, 1], [3.0, 22.0])   # g1 has the smaller zenith
    # a band fill no other granule covers stays missing; the other band is kept
    zen1 = zen.copy()
    zen1[1, 0, 0] = np.nan
    ref1 = ops.composite(stack, zen1, rule="reference")
    assert np.isnan(ref1[0, 0, 0]) and ref1[1, 0, 0] == 11.0
    # a granule whose zenith is missing never fills, even where its bands have values
    assert np.isnan(ops.composite(stack, zen1, rule="min_zenith")[0, 0, 0])


REAL_LAYERS = ("Reflectance_M5", "Reflectance_M7", "Radiance_M12", "Radiance_M15", "SolarZenithAngle")


def real_granule_pair(folder):
    """The real granule (bands, zenith, raw red) and a synthetic second granule that sees the
    same pixels from a larger zenith angle (so the real one comes first in the reference
    order) with valid values of every band."""
    layers, raws = [], []
    for name in REAL_LAYERS:
        val, raw = decode_banet_rules(next(folder.glob(f"*.{name}.hdf")), name)
        layers.append(val)
        raws.append(raw)
    zen, _ = decode_banet_rules(next(folder.glob("*.SatelliteZenithAngle.hdf")), "SatelliteZenithAngle")
    real = np.stack(layers)
    valid = np.isfinite(zen)
    rng = np.random.default_rng(7)
    second = np.where(valid, rng.uniform(0.05, 0.3, size=real.shape), np.nan).astype(np.float32)
    zen2 = np.where(valid, zen + 10.0, np.nan).astype(np.float32)
    return np.stack([real, second]), np.stack([zen, zen2]), raws[0]


def test_real_granule_band_fill_is_filled_by_the_second_granule(real_viirs_dir):
    stack, zen, raw_red = real_granule_pair(real_viirs_dir)
    valid = np.isfinite(zen[0])
    # the on-board trim: most zenith-valid pixels of the real granule are band fill 65533
    assert valid.sum() == 807
    assert (raw_red[valid] == 65533).sum() == 559
    ref = ops.composite(stack, zen, rule="reference")
    np.testing.assert_array_equal(ref, numpy_reference_rule(stack, zen))
    # real values kept where present; the fill taken from the second granule band by band
    for b in range(stack.shape[1]):
        have = valid & np.isfinite(stack[0, b])
        np.testing.assert_array_equal(ref[b][have], stack[0, b][have])
        np.testing.assert_array_equal(ref[b][valid & ~have], stack[1, b][valid & ~have])
        assert np.isfinite(ref[b][valid]).all()
    red_filled = int((valid & np.isnan(stack[0, 0])).sum())
    assert red_filled == 559
    mz = ops.composite(stack, zen, rule="min_zenith")
    np.testing.assert_array_equal(mz, numpy_min_zenith(stack, zen))
    np.testing.assert_array_equal(mz, ref)  # the real granule also has the smaller zenith


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
    order = reference_order(mean_zenith(zenith))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = composite_min_zenith(stack, zenith)
        one_ref = composite_by_order(stack, zenith, order)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, composite_min_zenith(stack, zenith))
    np.testing.assert_array_equal(one_ref, composite_by_order(stack, zenith, order))


def test_heavy_band_fill_float64_inputs():
    # half the band values missing: the zenith-chosen granule often lacks the band, so most
    # values come from the per-band fallback; float64 inputs are cast to float32 values
    rng = np.random.default_rng(5)
    stack, zenith = random_case(rng, n=5, nb=4, h=19, w=45)
    stack[rng.random(stack.shape) < 0.5] = np.nan
    stack, zenith = stack.astype(np.float64), zenith.astype(np.float64)
    np.testing.assert_array_equal(composite_min_zenith(stack, zenith),
                                  numpy_min_zenith(stack, zenith))
    np.testing.assert_array_equal(
        composite_by_order(stack, zenith, reference_order(mean_zenith(zenith))),
        numpy_reference_rule(stack, zenith))


def test_bad_inputs():
    with pytest.raises(ValueError, match="rule"):
        ops.composite(np.zeros((1, 1, 2, 2)), np.zeros((1, 2, 2)), "median")
    with pytest.raises(ValueError, match="do not match"):
        composite_min_zenith(np.zeros((2, 1, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="order"):
        composite_by_order(np.zeros((2, 1, 2, 2)), np.zeros((2, 2, 2)), np.array([0, 2]))
