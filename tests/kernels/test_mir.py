"""MIR reflectance kernel: inversion of synthetic Planck radiances, rules, dask wrapper."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from firesmoke.cube import ops
from firesmoke.kernels.mir import (
    C1,
    C2,
    E0,
    LAMBDA_M12,
    LAMBDA_M15,
    mir_reflectance,
    planck_radiance,
)


def numpy_mir(l12, l15, sza):
    """The banet.md formula written with numpy (float64), rules applied afterwards."""
    l12 = np.asarray(l12, np.float64)
    l15 = np.asarray(l15, np.float64)
    with np.errstate(all="ignore"):
        t = C2 / (LAMBDA_M15 * np.log(C1 / (LAMBDA_M15**5 * l15) + 1))
        b = C1 * LAMBDA_M12**-5 / (np.exp(C2 / (LAMBDA_M12 * t)) - 1)
        den = E0 * np.cos(np.deg2rad(sza)) / np.pi - b
        rho = (l12 - b) / den
    rho = np.where(rho < 0, 0.0, rho)
    rho = np.where((l12 > 0) & (l15 > 0) & (den > 0), rho, np.nan)
    return rho.astype(np.float32)


def synthetic(rng, n):
    rho = rng.uniform(0.0, 0.5, n)
    temp = rng.uniform(250.0, 330.0, n)
    sza = rng.uniform(0.0, 75.0, n)
    b = planck_radiance(LAMBDA_M12, temp)
    l15 = planck_radiance(LAMBDA_M15, temp)
    den = E0 * np.cos(np.deg2rad(sza)) / np.pi - b
    ok = den > 0.2  # physically meaningful: reflected sunlight exceeds the emission
    rho, temp, sza, b, l15, den = rho[ok], temp[ok], sza[ok], b[ok], l15[ok], den[ok]
    l12 = rho * den + b
    return rho, temp, sza, l12, l15


def test_inverts_synthetic_radiances():
    rng = np.random.default_rng(0)
    rho, _, sza, l12, l15 = synthetic(rng, 20000)
    assert rho.size > 15000
    got = mir_reflectance(l12.astype(np.float32), l15.astype(np.float32), sza.astype(np.float32))
    assert got.dtype == np.float32 and got.shape == rho.shape
    # float32 radiances carry ~1e-7 relative error; the thermal term amplifies it a little
    np.testing.assert_allclose(got, rho, atol=2e-5, rtol=1e-4)
    got64 = mir_reflectance(l12, l15, sza)
    np.testing.assert_allclose(got64, rho, atol=1e-6, rtol=1e-6)


def test_brightness_temperature_is_recovered():
    # rho = 0 means L12 == B(T15): the kernel then returns exactly 0 (negatives clipped)
    temp = np.array([260.0, 290.0, 320.0])
    l15 = planck_radiance(LAMBDA_M15, temp)
    l12 = planck_radiance(LAMBDA_M12, temp)
    np.testing.assert_allclose(mir_reflectance(l12, l15, np.zeros(3)), 0.0, atol=1e-6)
    below = mir_reflectance(l12 * 0.9, l15, np.zeros(3))  # emission > signal: negative -> 0
    np.testing.assert_array_equal(below, 0.0)


def test_matches_numpy_formula_and_rules():
    rng = np.random.default_rng(1)
    _, _, sza, l12, l15 = synthetic(rng, 5000)
    l12[:20] = -1.0  # radiance <= 0 -> NaN
    l15[20:40] = 0.0
    l12[40:50] = np.nan
    sza[50:60] = np.nan
    sza[60:70] = 95.0  # sun below the horizon: undefined -> NaN
    l12[70:80] = 1e-4  # below the emitted radiance: negative reflectance -> 0
    got = mir_reflectance(l12, l15, sza)
    np.testing.assert_allclose(got, numpy_mir(l12, l15, sza), rtol=2e-6, atol=1e-7)
    assert np.isnan(got[:70]).all()
    assert (got[70:80] == 0).all()
    assert np.isfinite(got[80:]).all()


def test_broadcasting_and_dask():
    rng = np.random.default_rng(2)
    _, _, _, l12, l15 = synthetic(rng, 400)
    l12, l15 = l12[: 12 * 15], l15[: 12 * 15]
    l12 = l12.reshape(12, 15).astype(np.float32)
    l15 = l15.reshape(12, 15).astype(np.float32)
    sza = np.float32(35.0)
    expect = ops.mir_reflectance(l12, l15, np.full((12, 15), sza))
    np.testing.assert_array_equal(ops.mir_reflectance(l12, l15, sza), expect)
    got = ops.mir_reflectance(da.from_array(l12, chunks=(5, 4)), da.from_array(l15, chunks=(7, 15)),
                              da.full((12, 15), sza, chunks=(3, 3)))
    assert isinstance(got, da.Array)
    np.testing.assert_array_equal(got.compute(), expect)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_dtypes(dtype):
    out = mir_reflectance(np.array([1], dtype), np.array([9], dtype), np.array([0], dtype))
    assert out.dtype == np.float32 and np.isfinite(out).all()
