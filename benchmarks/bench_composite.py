"""Overpass compositing and MIR reflectance: firesmoke kernels beside plain numpy.

A day of 4 overpasses with 6 layers (red, nir, M12, M15, solar and sensor zenith) on the PI
grid (800 x 1500), each granule covering part of the grid (swath edges) with holes:

* reference rule (BA-Net: granules ordered by mean zenith; per band, the first valid
  granule whose band value is not fill);
* per-pixel minimum-zenith rule, also falling back band by band;
* MIR reflectance from M12/M15/SZA.

Two numpy versions of each rule, both a loop over granules with whole-array operations:
the masked assignment ``out[mask] = values[mask]`` of the reference code's style, and the
fastest numpy we know (``np.copyto(..., where=mask)``, in-place masks, no per-granule
gathers), so the ratio is not taken against a strawman. Both follow the tests' reference
semantics (zenith angles are finite or NaN). ``setup`` checks that all give identical
results.
"""

from __future__ import annotations

import numpy as np

from firesmoke.kernels.composite import (
    composite_by_order,
    composite_min_zenith,
    mean_zenith,
    reference_order,
)
from firesmoke.kernels.mir import C1, C2, E0, LAMBDA_M12, LAMBDA_M15, mir_reflectance


def make_day(n=4, bands=6, h=800, w=1500, seed=0):
    rng = np.random.default_rng(seed)
    stack = rng.uniform(0, 1, size=(n, bands, h, w)).astype(np.float32)
    cols = np.arange(w)[None, :]
    zen = np.empty((n, h, w), np.float32)
    for g in range(n):
        centre = rng.uniform(0, w)
        z = np.abs(cols - centre) / w * 140.0 + 0.0 * np.arange(h)[:, None]
        z = np.where(z < 70, z, np.nan).astype(np.float32)
        z[rng.random((h, w)) < 0.05] = np.nan
        zen[g] = z
    stack[rng.random(stack.shape) < 0.05] = np.nan  # band fill (on-board trim)
    return stack, zen


def numpy_reference_composite(stack, zen):
    means = [np.nanmean(z) if np.isfinite(z).any() else np.inf for z in zen]
    order = np.argsort(means, kind="stable")
    out = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    for g in order:
        take = np.isnan(out) & ~np.isnan(zen[g])[None]
        out[take] = stack[g][take]
    return out


def numpy_min_zenith_composite(stack, zen):
    out = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    best = np.full(stack.shape[1:], np.inf, dtype=np.float32)
    for g in range(zen.shape[0]):
        z = np.broadcast_to(zen[g][None], stack.shape[1:])
        better = ~np.isnan(z) & ~np.isnan(stack[g]) & (z < best)
        out[better] = stack[g][better]
        best = np.where(better, z, best)
    return out


def numpy_reference_composite_copyto(stack, zen):
    means = [np.nanmean(z) if np.isfinite(z).any() else np.inf for z in zen]
    order = np.argsort(means, kind="stable")
    out = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    take = np.empty(out.shape, dtype=bool)
    for g in order:
        np.isnan(out, out=take)
        take &= ~np.isnan(zen[g])[None]
        np.copyto(out, stack[g], where=take)
    return out


def numpy_min_zenith_composite_copyto(stack, zen):
    out = np.full(stack.shape[1:], np.nan, dtype=np.float32)
    best = np.full(stack.shape[1:], np.inf, dtype=np.float32)
    better = np.empty(out.shape, dtype=bool)
    for g in range(zen.shape[0]):
        z = np.broadcast_to(zen[g][None], out.shape)
        np.less(z, best, out=better)  # a NaN zenith compares False
        better &= ~np.isnan(stack[g])
        np.copyto(out, stack[g], where=better)
        np.copyto(best, z, where=better)
    return out


def numpy_mir(l12, l15, sza):
    with np.errstate(all="ignore"):
        t = C2 / (LAMBDA_M15 * np.log(C1 / (LAMBDA_M15**5 * l15.astype(np.float64)) + 1))
        b = C1 * LAMBDA_M12**-5 / (np.exp(C2 / (LAMBDA_M12 * t)) - 1)
        den = E0 * np.cos(np.deg2rad(sza.astype(np.float64))) / np.pi - b
        rho = (l12 - b) / den
    rho = np.where(rho < 0, 0.0, rho)
    return np.where((l12 > 0) & (l15 > 0) & (den > 0), rho, np.nan).astype(np.float32)


def kernel_reference(stack, zen):
    return composite_by_order(stack, zen, reference_order(mean_zenith(zen)))


class Composite:
    """4 overpasses x 6 layers on 800 x 1500."""

    number = 1
    repeat = 5

    def setup(self):
        self.stack, self.zen = make_day()
        ref = kernel_reference(self.stack, self.zen)
        mz = composite_min_zenith(self.stack, self.zen)
        for numpy_ref in (numpy_reference_composite, numpy_reference_composite_copyto):
            np.testing.assert_array_equal(ref, numpy_ref(self.stack, self.zen))
        for numpy_mz in (numpy_min_zenith_composite, numpy_min_zenith_composite_copyto):
            np.testing.assert_array_equal(mz, numpy_mz(self.stack, self.zen))

    def time_firesmoke_reference_rule(self):
        kernel_reference(self.stack, self.zen)

    def time_numpy_reference_rule(self):
        numpy_reference_composite(self.stack, self.zen)

    def time_numpy_copyto_reference_rule(self):
        numpy_reference_composite_copyto(self.stack, self.zen)

    def time_firesmoke_min_zenith(self):
        composite_min_zenith(self.stack, self.zen)

    def time_numpy_min_zenith(self):
        numpy_min_zenith_composite(self.stack, self.zen)

    def time_numpy_copyto_min_zenith(self):
        numpy_min_zenith_composite_copyto(self.stack, self.zen)


class MirReflectance:
    """M12/M15/SZA on 800 x 1500."""

    number = 1
    repeat = 5

    def setup(self):
        rng = np.random.default_rng(1)
        shape = (800, 1500)
        self.l15 = rng.uniform(5, 10, shape).astype(np.float32)
        self.l12 = rng.uniform(0.2, 1.5, shape).astype(np.float32)
        self.sza = rng.uniform(10, 70, shape).astype(np.float32)
        np.testing.assert_allclose(mir_reflectance(self.l12, self.l15, self.sza),
                                   numpy_mir(self.l12, self.l15, self.sza), rtol=2e-6, atol=1e-7)

    def time_firesmoke_mir(self):
        mir_reflectance(self.l12, self.l15, self.sza)

    def time_numpy_mir(self):
        numpy_mir(self.l12, self.l15, self.sza)
