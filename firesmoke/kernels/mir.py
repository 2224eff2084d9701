"""MIR (3.7 um) reflectance from VIIRS M12 and M15 radiances (``reference/banet.md``).

The thermal part of the M12 signal is removed using the brightness temperature of M15::

    T   = c2 / (lt * ln(c1 / (lt**5 * L15) + 1))          # M15 brightness temperature (K)
    B   = c1 * lm**-5 / (exp(c2 / (lm * T)) - 1)          # emitted radiance at 3.7 um
    rho = (L12 - B) / (E0 * cos(SZA) / pi - B)

with ``c1 = 1.1911e8`` (W um^4 m^-2 sr^-1), ``c2 = 1.439e4`` (um K), ``lm = 3.6966`` um
(M12), ``lt = 10.7343`` um (M15) and ``E0 = 11.7881`` (W m^-2 um^-1). Radiances in
W m^-2 sr^-1 um^-1, solar zenith angle in degrees.

Rules: negative reflectances become 0; a radiance <= 0 gives NaN; NaN in any input gives
NaN. Where the denominator ``E0 cos(SZA) / pi - B`` is <= 0 (sun at or below the horizon,
or a target so hot that its emission exceeds the reflected solar term) the reflectance is
undefined and NaN is returned (the reference would divide anyway and clip to 0 or produce
a meaningless value).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["C1", "C2", "E0", "LAMBDA_M12", "LAMBDA_M15", "mir_reflectance", "planck_radiance"]

C1 = 1.1911e8
C2 = 1.439e4
LAMBDA_M12 = 3.6966
LAMBDA_M15 = 10.7343
E0 = 11.7881

# the formula's constants folded once (same formula, fewer operations per pixel)
_K15 = C1 / LAMBDA_M15**5
_A15 = C2 / LAMBDA_M15
_K12 = C1 * LAMBDA_M12**-5
_A12 = C2 / LAMBDA_M12
_E0_PI = E0 / math.pi
_DEG = math.pi / 180.0


@numba.njit(cache=True, nogil=True)
def _mir_one(l12: float, l15: float, sza_deg: float) -> float:
    if not (l12 > 0.0 and l15 > 0.0) or math.isnan(sza_deg):  # also catches NaN radiances
        return np.nan
    t = _A15 / math.log(_K15 / l15 + 1.0)  # M15 brightness temperature (K)
    b = _K12 / (math.exp(_A12 / t) - 1.0)  # emitted radiance at 3.7 um
    denom = _E0_PI * math.cos(sza_deg * _DEG) - b
    if not denom > 0.0:
        return np.nan
    rho = (l12 - b) / denom
    return rho if rho > 0.0 else 0.0


@numba.njit(cache=True, parallel=True, nogil=True)
def _mir_flat(l12, l15, sza, out):
    for i in numba.prange(out.shape[0]):
        out[i] = np.float32(_mir_one(np.float64(l12[i]), np.float64(l15[i]), np.float64(sza[i])))


def mir_reflectance(m12: np.ndarray, m15: np.ndarray, sza: np.ndarray) -> np.ndarray:
    """MIR reflectance (float32) from M12/M15 radiances and solar zenith (degrees).

    Parameters
    ----------
    m12, m15
        Radiances in W m^-2 sr^-1 um^-1 (any float dtype); broadcast together with ``sza``.
    sza
        Solar zenith angle in degrees.

    Returns
    -------
    numpy.ndarray
        float32 array of the broadcast shape; NaN where undefined (see module docstring).
    """
    a, b, c = np.broadcast_arrays(np.asarray(m12), np.asarray(m15), np.asarray(sza))
    shape = a.shape
    flat = [np.ascontiguousarray(x, dtype=x.dtype if x.dtype.kind == "f" else np.float64).ravel()
            for x in (a, b, c)]
    dt = np.result_type(*flat)
    l12, l15, z = (f.astype(dt, copy=False) for f in flat)
    out = np.empty(l12.size, dtype=np.float32)
    if out.size:
        _mir_flat(l12, l15, z, out)
    return out.reshape(shape)


def planck_radiance(wavelength_um: float, temperature_k: np.ndarray) -> np.ndarray:
    """Planck spectral radiance (W m^-2 sr^-1 um^-1) with the constants above (float64)."""
    t = np.asarray(temperature_k, dtype=np.float64)
    return C1 * wavelength_um**-5 / (np.exp(C2 / (wavelength_um * t)) - 1.0)
