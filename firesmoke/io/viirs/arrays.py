"""Decoding and lazily indexed arrays of the VIIRS readers.

- :class:`Decoder` (HDF4 gridded layers) and :class:`NcDecoder` (netCDF4 swath variables)
  turn raw stored values into float32 with NaN for missing data; the readers
  (:mod:`firesmoke.io.viirs.readers`) decode every window they read with them.
- :class:`WindowArray` is the dask backend of :func:`~firesmoke.io.viirs.gridded.open_vmaes_granule`
  and :func:`~firesmoke.io.viirs.swath.open_l1b_swath`: a lazily indexed 2-D view of one
  variable of a reader. Indexing it with ints and slices reads just that window through
  the reader's ``read_window(name, window)`` (cached file handles, the process-wide file
  lock), so the Datasets and the readers share one read path. It holds only the reader (a
  small frozen dataclass), so it pickles to any worker.
- :func:`lazy_array` builds the dask array over it without reading anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

__all__ = [
    "Decoder",
    "NcDecoder",
    "WindowArray",
    "lazy_array",
    "scalar",
    "scale_to_float32",
    "window_from_key",
]

_DEFAULT_UINT_FILL_TEST = 65527  # banet.md: raw >= 65527 is fill for uint16 layers
_DEFAULT_FLOAT_FILL_TEST = -999.0  # raw <= -999 is fill for angle layers


def scalar(value: Any) -> Any:
    """The first element of an attribute value as a Python scalar (None when empty)."""
    arr = np.asarray(value)
    return arr.ravel()[0].item() if arr.size else None


def window_from_key(
    key: Any, shape: tuple[int, ...]
) -> tuple[list[tuple[int, int]], tuple[Any, ...]]:
    """Bounding window of an index (ints and slices) and the index within that window.

    Lazily indexed arrays read the window ``[(lo, hi), ...]`` from the file and apply the
    local index to it. Anything other than ints and slices gets the full extent and the
    key unchanged.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    bounds: list[tuple[int, int]] = []
    local: list[Any] = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            idx = range(start, stop, step)
            if len(idx) == 0:
                bounds.append((0, 0))
                local.append(slice(0, 0))
                continue
            lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            end = idx[-1] - lo + (1 if step > 0 else -1)
            bounds.append((lo, hi))
            local.append(slice(idx[0] - lo, end if end >= 0 else None, step))
        elif isinstance(k, (int, np.integer)):
            i = int(k) + n if int(k) < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} out of range for axis of size {n}")
            bounds.append((i, i + 1))
            local.append(0)
        else:
            return [(0, m) for m in shape], key
    return bounds, tuple(local)


def lazy_array(backend: Any, chunks: Any, name: str) -> da.Array:
    """Dask array over a backend array; building it reads nothing (``meta`` is given)."""
    meta = np.empty((0,) * backend.ndim, dtype=backend.dtype)
    return da.from_array(backend, chunks=chunks, name=name, meta=meta, asarray=False)


# --------------------------------------------------------------------------- decoding
def _fill_test(attrs: Mapping[str, Any], dtype: np.dtype) -> float | None:
    text = attrs.get("FILL_TEST_VALUE")
    if isinstance(text, str):
        m = re.search(r"=\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", text)
        if m:
            return float(m.group(1))
    if dtype.kind == "u":
        return float(_DEFAULT_UINT_FILL_TEST)
    if dtype.kind == "f":
        return _DEFAULT_FLOAT_FILL_TEST
    return None


def scale_to_float32(raw: np.ndarray, scale: float, offset: float, invalid: np.ndarray) -> np.ndarray:
    """``raw * scale + offset`` (computed in float64) as float32, NaN where ``invalid``."""
    if scale != 1.0 or offset != 0.0:
        values = raw.astype(np.float64)
        values *= scale
        values += offset
        out = values.astype(np.float32)
    else:
        out = raw.astype(np.float32)
    out[invalid] = np.nan
    return out


@dataclass(frozen=True)
class Decoder:
    """raw -> float32: ``raw * scale + offset``; fill (by the fill test) -> NaN.

    Integer layers: ``raw >= fill_test`` is fill. Float layers: ``raw <= fill_test`` is
    fill, as are non-finite values.
    """

    scale: float = 1.0
    offset: float = 0.0
    fill_test: float | None = None
    integer: bool = True

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], dtype: np.dtype) -> Decoder:
        """From the HDF4 attributes ``Scale``, ``Offset`` and ``FILL_TEST_VALUE``."""
        scale = scalar(attrs.get("Scale", 1.0))
        offset = scalar(attrs.get("Offset", 0.0))
        dtype = np.dtype(dtype)
        return cls(float(scale), float(offset), _fill_test(attrs, dtype), dtype.kind in "iu")

    def describe(self) -> str:
        if self.fill_test is None:
            return "no fill test"
        return f"raw {'>=' if self.integer else '<='} {self.fill_test:g} -> NaN"

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.integer:
            invalid = (
                raw >= self.fill_test if self.fill_test is not None else np.zeros(raw.shape, bool)
            )
        else:
            invalid = ~np.isfinite(raw)
            if self.fill_test is not None:
                invalid |= raw <= self.fill_test
        return scale_to_float32(raw, self.scale, self.offset, invalid)


@dataclass(frozen=True)
class NcDecoder:
    """raw -> float32 ``raw * scale + offset``; fill, flag values and out-of-range -> NaN."""

    scale: float = 1.0
    offset: float = 0.0
    fill_value: float | None = None
    valid_min: float | None = None
    valid_max: float | None = None
    flag_values: tuple[float, ...] = ()

    @classmethod
    def from_attrs(
        cls,
        attrs: Mapping[str, Any],
        scale_key: str = "scale_factor",
        offset_key: str = "add_offset",
    ) -> NcDecoder:
        def num(key: str) -> float | None:
            v = attrs.get(key)
            return None if v is None else float(scalar(v))

        vr = attrs.get("valid_range")
        vmin, vmax = num("valid_min"), num("valid_max")
        if vr is not None and np.size(vr) == 2:
            vmin, vmax = float(np.asarray(vr).ravel()[0]), float(np.asarray(vr).ravel()[1])
        flags = attrs.get("flag_values")
        return cls(
            scale=num(scale_key) if num(scale_key) is not None else 1.0,
            offset=num(offset_key) if num(offset_key) is not None else 0.0,
            fill_value=num("_FillValue"),
            valid_min=vmin,
            valid_max=vmax,
            flag_values=tuple(float(v) for v in np.atleast_1d(flags)) if flags is not None else (),
        )

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        # validity tests on the stored values (integer compares are cheap)
        invalid = np.zeros(raw.shape, dtype=bool) if raw.dtype.kind in "iu" else ~np.isfinite(raw)
        if self.fill_value is not None:
            invalid |= raw == self.fill_value
        if self.valid_min is not None:
            invalid |= raw < self.valid_min
        if self.valid_max is not None:
            invalid |= raw > self.valid_max
        for fv in self.flag_values:
            inside = (self.valid_min is None or fv >= self.valid_min) and (
                self.valid_max is None or fv <= self.valid_max
            )
            if inside:  # flag values outside the valid range are already invalid
                invalid |= raw == fv
        return scale_to_float32(raw, self.scale, self.offset, invalid)


class WindowArray:
    """Lazily indexed view of variable ``name`` of a reader (what dask chunks are read from).

    ``reader.read_window(name, (row, col, height, width))`` returns the window as
    ``dtype``; indexing with ints and slices reads the bounding window of the index and
    applies the rest of the index to it.
    """

    def __init__(self, reader: Any, name: str, shape: tuple[int, int], dtype: Any) -> None:
        self.reader = reader
        self.name = name
        self.shape = tuple(int(n) for n in shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        bounds, local = window_from_key(key, self.shape)
        (r0, r1), (c0, c1) = bounds
        if r1 <= r0 or c1 <= c0:
            return np.empty((r1 - r0, c1 - c0), dtype=self.dtype)[local]
        return self.reader.read_window(self.name, (r0, c0, r1 - r0, c1 - c0))[local]

    def __repr__(self) -> str:
        return f"WindowArray({self.reader}, {self.name!r}, shape={self.shape})"
