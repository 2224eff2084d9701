"""Lazy pixel access for the VIIRS readers: windowed reads, decoding, lazily indexed arrays.

The readers build dask arrays with :func:`lazy_array` from *backend arrays*
(:class:`Hdf4LayerArray` for the HDF4 gridded product, :class:`NcVariableArray` for the
netCDF4 swath product). A backend array holds only a file path and decoding constants
(so it pickles to any worker); indexing it with slices reads just that window from the
file and decodes it:

- HDF4 (:func:`read_hdf4_window`) holds :data:`firesmoke.io._core.hdf4.HDF4_LOCK` for the whole
  open-read-close;
- netCDF4/HDF5 (:func:`read_nc_window`) holds :data:`NETCDF_LOCK` and reuses open file
  handles from a small per-process cache (opening costs more than reading a window).

Every library error met while reading pixels becomes
:class:`~firesmoke.errors.CorruptFileError` naming the file, chained to the original.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from firesmoke.errors import CorruptFileError, MissingLayerError
from firesmoke.io._core import hdf4
from firesmoke.io._core.handles import HandleCache

__all__ = [
    "NETCDF_LOCK",
    "Decoder",
    "Hdf4LayerArray",
    "NcDecoder",
    "NcVariableArray",
    "cached_nc_dataset",
    "close_cached_files",
    "lazy_array",
    "read_hdf4_window",
    "read_nc_window",
    "read_sds_window",
    "window_from_key",
]

log = logging.getLogger(__name__)

#: Process-wide lock around every netCDF4/HDF5 call of the VIIRS swath reader.
NETCDF_LOCK = threading.RLock()

_DEFAULT_UINT_FILL_TEST = 65527  # banet.md: raw >= 65527 is fill for uint16 layers
_DEFAULT_FLOAT_FILL_TEST = -999.0  # raw <= -999 is fill for angle layers


def _scalar(value: Any) -> Any:
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


# --------------------------------------------------------------------------- HDF4
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
        scale = _scalar(attrs.get("Scale", 1.0))
        offset = _scalar(attrs.get("Offset", 0.0))
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


def read_sds_window(
    sd: Any, path: str | os.PathLike[str], sds_name: str, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray:
    """Raw pixels ``rows[0]:rows[1], cols[0]:cols[1]`` of one SDS of an open pyhdf ``SD``
    (the caller holds :data:`firesmoke.io._core.hdf4.HDF4_LOCK`).

    Errors of any kind from the HDF4 library become
    :class:`~firesmoke.errors.CorruptFileError` (or :class:`~firesmoke.errors.MissingLayerError`
    for an absent SDS) naming ``path``.
    """
    from pyhdf.error import HDF4Error

    (r0, r1), (c0, c1) = rows, cols
    try:
        obj = sd.select(sds_name)
    except HDF4Error as exc:
        raise MissingLayerError(f"SDS not found ({exc})", path=path, field=sds_name) from exc
    try:
        if r1 <= r0 or c1 <= c0:
            return np.empty((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=np.float32)
        return np.asarray(obj.get(start=(r0, c0), count=(r1 - r0, c1 - c0)))
    except (HDF4Error, ValueError, OSError, RuntimeError) as exc:
        raise CorruptFileError(
            f"cannot read pixels [{r0}:{r1}, {c0}:{c1}] of SDS {sds_name} ({exc}); "
            "file truncated or corrupt?",
            path=path,
            field=sds_name,
        ) from exc
    finally:
        try:
            obj.endaccess()
        except HDF4Error:  # pragma: no cover - closing a broken SDS
            pass


def read_hdf4_window(
    path: str, sds_name: str, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray:
    """Read raw pixels ``rows[0]:rows[1], cols[0]:cols[1]`` of one SDS (under HDF4_LOCK).

    Opens and closes the file (:func:`firesmoke.io._core.hdf4.open_sd`); errors as
    :func:`read_sds_window`.
    """
    with hdf4.open_sd(path) as sd:  # holds HDF4_LOCK until closed
        return read_sds_window(sd, path, sds_name, rows, cols)


class Hdf4LayerArray:
    """Lazily indexed, decoded view of one SDS (what dask chunks are read from).

    Indexing with slices reads just that window from the file (HDF4 hyperslab) and
    decodes it; the object holds only the file path and decoding constants, so it pickles
    to any worker.
    """

    def __init__(
        self, path: str | os.PathLike[str], sds_name: str, shape: tuple[int, int], decoder: Decoder
    ) -> None:
        self.path = os.fspath(path)
        self.sds_name = sds_name
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self.decoder = decoder

    def __getitem__(self, key: Any) -> np.ndarray:
        bounds, local = window_from_key(key, self.shape)
        (r0, r1), (c0, c1) = bounds
        if r1 <= r0 or c1 <= c0:
            return np.empty((r1 - r0, c1 - c0), dtype=np.float32)[local]
        raw = read_hdf4_window(self.path, self.sds_name, bounds[0], bounds[1])
        return self.decoder(raw)[local]

    def __repr__(self) -> str:
        return f"Hdf4LayerArray({self.path!r}, {self.sds_name!r}, shape={self.shape})"


# --------------------------------------------------------------------------- netCDF4
def _open_nc(path: str | os.PathLike[str]) -> Any:
    """``netCDF4.Dataset`` read-only; the caller must hold :data:`NETCDF_LOCK`."""
    import netCDF4

    p = Path(path)
    if not p.exists():
        raise CorruptFileError("file not found", path=p)
    if p.stat().st_size == 0:
        raise CorruptFileError("file is empty", path=p)
    try:
        return netCDF4.Dataset(os.fspath(p), "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise CorruptFileError(
            f"cannot open netCDF4/HDF5 file ({exc}); truncated or not netCDF?", path=p
        ) from exc


def _close_quietly(ds: Any) -> None:
    try:
        if ds.isopen():
            ds.close()
    except (OSError, RuntimeError):  # pragma: no cover - closing a broken file
        log.debug("error closing a netCDF handle", exc_info=True)


_MAX_HANDLES = 16
_HANDLES = HandleCache(lambda p, st: _open_nc(p), _close_quietly, _MAX_HANDLES,
                       alive=lambda ds: ds.isopen())


def cached_nc_dataset(path: str | os.PathLike[str]) -> Any:
    """An open ``netCDF4.Dataset`` from a small per-process cache (caller holds the lock).

    Opening a netCDF4/HDF5 file costs ~10 ms, more than reading a window of it, so handles
    are kept open (at most :data:`_MAX_HANDLES`, least recently used closed first; see
    :class:`~firesmoke.io._core.handles.HandleCache`).
    """
    return _HANDLES.get(path)


def close_cached_files(path: str | os.PathLike[str] | None = None) -> None:
    """Close the netCDF handles this module keeps open (all, or those of ``path``).

    Needed only before rewriting, in the same process, a file that was read (HDF5 refuses
    to open for writing a file that is open for reading).
    """
    with NETCDF_LOCK:
        if path is not None:
            _HANDLES.forget(path)
            return
        _HANDLES.clear()


def read_nc_window(
    path: str, varpath: str, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray:
    """Raw values ``rows[0]:rows[1], cols[0]:cols[1]`` of one variable (under NETCDF_LOCK).

    Every netCDF pixel read of the swath reader goes through here; library errors become
    :class:`~firesmoke.errors.CorruptFileError` naming the file.
    """
    group, name = varpath.split("/", 1)
    with NETCDF_LOCK:
        ds = cached_nc_dataset(path)
        try:
            try:
                var = ds.groups[group].variables[name]
            except KeyError as exc:
                raise MissingLayerError("variable not found", path=path, field=varpath) from exc
            var.set_auto_maskandscale(False)
            (r0, r1), (c0, c1) = rows, cols
            return np.asarray(var[r0:r1, c0:c1])
        except (OSError, RuntimeError, ValueError, IndexError) as exc:
            _HANDLES.forget(path)
            raise CorruptFileError(
                f"cannot read {varpath}[{rows[0]}:{rows[1]}, {cols[0]}:{cols[1]}] ({exc}); "
                "file truncated or corrupt?",
                path=path,
                field=varpath,
            ) from exc


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
            return None if v is None else float(_scalar(v))

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


class NcVariableArray:
    """Lazily indexed view of one netCDF variable (decoded, or raw when ``decoder`` is None)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        varpath: str,
        shape: tuple[int, int],
        dtype: np.dtype,
        decoder: NcDecoder | None,
    ) -> None:
        self.path = os.fspath(path)
        self.varpath = varpath
        self.shape = tuple(int(n) for n in shape)
        self.ndim = len(self.shape)
        self.decoder = decoder
        self.dtype = np.dtype(np.float32) if decoder is not None else np.dtype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        bounds, local = window_from_key(key, self.shape)
        (r0, r1), (c0, c1) = bounds
        if r1 <= r0 or c1 <= c0:
            return np.empty((r1 - r0, c1 - c0), dtype=self.dtype)[local]
        raw = read_nc_window(self.path, self.varpath, bounds[0], bounds[1])
        out = self.decoder(raw) if self.decoder is not None else raw
        return out[local]

    def __repr__(self) -> str:
        return f"NcVariableArray({self.path!r}, {self.varpath!r}, shape={self.shape})"
