"""Granule readers for window reads (the reader idea of stackstac and satpy's file handlers).

Discovery (:mod:`firesmoke.io.viirs.discovery`) describes granules: their files, start time and
product. A *reader* is built once per granule from that description: :func:`open_reader`
opens the metadata of each file once (the descriptor check, the HDF-EOS ODL parse, the
grid and the SDS/variable descriptions) and keeps only what pixel reads need (paths,
variable names, shapes and decoding rules). Readers are small frozen dataclasses, so they
pickle to any worker, and read pixels through per-process caches of open file handles.

- :class:`VmaesReader` (gridded ``NPP_VMAES_L1``, one HDF4 file per layer):
  ``read(window, bands)`` returns the decoded ``(len(bands), h, w)`` float32 window of
  the granule grid. Made for a region, it also knows where its grid lies on the region
  (:class:`~firesmoke.io.viirs.placement.GridPlacement`): ``read_region(window, bands)``
  reads a window of an aligned region grid (the granule window it covers, NaN
  elsewhere); a grid of another pixel size or alignment is resampled by the cube.
- :class:`SwathReader` (L1B ``V??02MOD`` + ``V??03MOD`` pair): ``read_swath(bands)``
  returns the decoded swath arrays of the granule (lat, lon, values), cached per process
  (every spatial block of a day needs the whole granule); regridding onto a grid is
  processing and lives with the cube.

Band names are the cube's variable names: ``M05``, ``M07``, ``M12``, ``M15``,
``solar_zenith``, ``sensor_zenith`` (and ``M10`` for the gridded product).

Decoding is the readers' own (:class:`~firesmoke.io.viirs.arrays.Decoder`,
:class:`~firesmoke.io.viirs.arrays.NcDecoder`): values are byte-identical to those of
:func:`~firesmoke.io.viirs.gridded.open_vmaes_granule` and
:func:`~firesmoke.io.viirs.swath.open_l1b_swath`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from firesmoke.errors import CorruptFileError, GridMismatchError
from firesmoke.io._core import hdf4
from firesmoke.io._core.handles import HandleCache
from firesmoke.io.viirs.arrays import Decoder, NcDecoder, NcVariableArray, read_sds_window
from firesmoke.io.viirs.bands import VMAES_LAYER_TO_VARIABLE
from firesmoke.io.viirs.placement import GridPlacement, grid_placement

__all__ = [
    "CUBE_BANDS",
    "SwathArrays",
    "SwathReader",
    "VmaesReader",
    "close_cached_handles",
    "open_reader",
]

log = logging.getLogger(__name__)

#: Bands the cube reads from every granule, in the order of its per-day stack.
CUBE_BANDS: tuple[str, ...] = ("M05", "M07", "M12", "M15", "solar_zenith", "sensor_zenith")
_VAR_TO_LAYER = {v: k for k, v in VMAES_LAYER_TO_VARIABLE.items()}
PixelBox = tuple[int, int, int, int]  # row offset, column offset, height, width (pixels)

# --------------------------------------------------------------------------- HDF4 handles
_MAX_SD_HANDLES = 32
#: (path, mtime, size) of files checked complete in this process (by validation or open)
_CHECKED: set[tuple[str, int, int]] = set()


def _mark_checked(path: str) -> None:
    """Remember that ``path``, as it is now, passed :func:`~firesmoke.io._core.hdf4.verify_hdf4_data`."""
    st = os.stat(path)
    _CHECKED.add((path, st.st_mtime_ns, st.st_size))


def _open_sd(path: str, st: os.stat_result) -> Any:
    """Open ``path`` with pyhdf (caller holds :data:`~firesmoke.io._core.hdf4.HDF4_LOCK`), after the
    same completeness and checksum checks as :func:`firesmoke.io._core.hdf4.open_sd` unless this
    process already checked the file as it is now."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    version = (path, st.st_mtime_ns, st.st_size)
    if version not in _CHECKED:
        hdf4.verify_hdf4_data(path)
    try:
        sd = SD(path, SDC.READ)
    except HDF4Error as exc:
        raise CorruptFileError(f"cannot open HDF4 file ({exc})", path=path) from exc
    _CHECKED.add(version)
    return sd


def _end_quietly(sd: Any) -> None:
    from pyhdf.error import HDF4Error

    try:
        sd.end()
    except HDF4Error:  # pragma: no cover - closing a broken file
        log.debug("error closing an HDF4 handle", exc_info=True)


#: Open pyhdf ``SD`` handles of this process (a forked worker never reuses its parent's;
#: a rewritten file is opened afresh)
_SD_HANDLES = HandleCache(_open_sd, _end_quietly, _MAX_SD_HANDLES)


def close_cached_handles() -> None:
    """Close the HDF4 handles the readers keep open in this process."""
    with hdf4.HDF4_LOCK:
        _SD_HANDLES.clear()


def _read_sds_window(path: str, sds_name: str, window: PixelBox) -> np.ndarray:
    """Raw pixels of one SDS window through a cached handle (under HDF4_LOCK); errors as
    :func:`firesmoke.io.viirs.arrays.read_sds_window` (the handle is dropped after one)."""
    r0, c0, h, w = window
    with hdf4.HDF4_LOCK:
        sd = _SD_HANDLES.get(path)
        try:
            return read_sds_window(sd, path, sds_name, (r0, r0 + h), (c0, c0 + w))
        except CorruptFileError:
            _SD_HANDLES.forget(path)
            raise


# --------------------------------------------------------------------------- gridded
@dataclass(frozen=True)
class LayerSource:
    """Where one band of a gridded granule is and how it decodes."""

    path: str
    sds_name: str
    decoder: Decoder


@dataclass(frozen=True)
class VmaesReader:
    """Window reader of one gridded ``NPP_VMAES_L1`` granule (files checked once)."""

    granule_id: str
    start: datetime
    shape: tuple[int, int]
    layers: Mapping[str, LayerSource]
    kind: str = "vmaes"
    placement: GridPlacement | None = None

    @classmethod
    def open(cls, granule: Any, bands: Sequence[str] = CUBE_BANDS, region: Any = None) -> VmaesReader:
        """Check the granule's layer files once (metadata, grids) and keep what window
        reads need; with ``region``, place the granule grid on it
        (:func:`~firesmoke.io.viirs.placement.grid_placement`: a granule that does not
        overlap the region is a :class:`~firesmoke.errors.GridMismatchError`). Other
        errors as :func:`~firesmoke.io.viirs.gridded.open_vmaes_granule`."""
        from firesmoke.grid import Region
        from firesmoke.io.viirs.gridded import validate_vmaes_granule

        layers = [_VAR_TO_LAYER[b] for b in bands]
        v = validate_vmaes_granule(granule, layers)
        placement = None
        if region is not None:
            reg = Region.resolve(region)
            if reg.crs.to_epsg() != 4326:  # NPP_VMAES_L1 grids are geographic (GCTP_GEO)
                raise GridMismatchError(f"region {reg.name} is in {reg.crs}, the granule grid in "
                                        "EPSG:4326 lat/lon: reproject the region", path=v.ref.path)
            placement = grid_placement(v.grid.transform, v.grid.shape, reg.transform, reg.shape,
                                       path=v.ref.path, region_name=f"region {reg.name}")
            log.debug("%s: %s", v.granule_id, placement.describe())
        sources = {}
        for band, layer in zip(bands, layers, strict=True):
            lf, sds = v.by_layer[layer]
            sources[band] = LayerSource(os.fspath(lf.path), sds.name, Decoder.from_attrs(sds.attrs, sds.dtype))
            _mark_checked(os.fspath(lf.path))  # validation opened it through hdf4.open_sd
        return cls(v.granule_id, v.start, tuple(v.grid.shape), sources, placement=placement)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.layers)

    def read(self, window: PixelBox | None = None, bands: Sequence[str] | None = None) -> np.ndarray:
        """Decoded float32 ``(len(bands), h, w)`` of ``window`` (row, col, height, width;
        default the whole grid); fill is NaN."""
        r0, c0, h, w = window if window is not None else (0, 0, *self.shape)
        names = self.bands if bands is None else tuple(bands)
        out = np.empty((len(names), h, w), np.float32)
        if h <= 0 or w <= 0:
            return out
        for i, b in enumerate(names):
            src = self.layers[b]
            out[i] = src.decoder(_read_sds_window(src.path, src.sds_name, (r0, c0, h, w)))
        return out

    def read_region(self, window: PixelBox, bands: Sequence[str] | None = None) -> np.ndarray:
        """Decoded float32 ``(len(bands), h, w)`` of a window of the region grid the reader
        was placed on, which must be aligned with the granule grid: the granule window it
        covers is read (nothing more), the rest is NaN."""
        p = self.placement
        if p is None or p.kind != "aligned":
            raise ValueError(f"{self}: read_region needs a grid aligned with the region")
        names = self.bands if bands is None else tuple(bands)
        _, _, h, w = window
        hit = p.aligned_window(window)
        if hit is not None and hit[0][2:] == (h, w):
            return self.read(hit[0] if hit is not None else window, names)
        out = np.full((len(names), h, w), np.nan, np.float32)
        if hit is not None:
            src, (rows, cols) = hit
            out[:, rows, cols] = self.read(src, names)
        return out

    def __str__(self) -> str:
        return f"NPP_VMAES_L1 {self.granule_id}"


# --------------------------------------------------------------------------- swath
@dataclass(frozen=True)
class VariableSource:
    """Where one variable of a swath granule is and how it decodes."""

    path: str
    varpath: str
    dtype: str
    decoder: NcDecoder


@dataclass(frozen=True)
class SwathArrays:
    """Decoded swath arrays of one granule (read-only: shared by a per-process cache)."""

    lat: np.ndarray
    lon: np.ndarray
    values: np.ndarray  # (bands, lines, pixels) float32
    rows_per_scan: int


@dataclass(frozen=True)
class SwathReader:
    """Reader of one L1B swath granule (observation + geolocation checked once)."""

    granule_id: str
    start: datetime
    shape: tuple[int, int]
    variables: Mapping[str, VariableSource]
    rows_per_scan: int
    kind: str = "l1b"

    @classmethod
    def open(cls, granule: Any, bands: Sequence[str] = CUBE_BANDS) -> SwathReader:
        """Check the pair once; errors as :func:`~firesmoke.io.viirs.swath.open_l1b_swath`."""
        from firesmoke.io.viirs.swath import DEFAULT_SWATH_BANDS, validate_l1b_pair

        pair = validate_l1b_pair(granule.paths["observation"], granule.paths["geolocation"],
                                 DEFAULT_SWATH_BANDS)
        names = ("latitude", "longitude", *bands)
        sources = {
            n: VariableSource(os.fspath(pair.path_of(n)), pair.variables[n].path,
                              str(np.dtype(pair.variables[n].dtype)), pair.decoder(n))
            for n in names
        }
        return cls(granule.granule_id, granule.start, tuple(pair.shape), sources, int(pair.rows_per_scan))

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(n for n in self.variables if n not in ("latitude", "longitude"))

    def read_variable(self, name: str) -> np.ndarray:
        """One decoded variable of the whole swath (float32, NaN = fill)."""
        src = self.variables[name]
        arr = NcVariableArray(src.path, src.varpath, self.shape, np.dtype(src.dtype), src.decoder)
        return np.asarray(arr[:, :])

    def read_swath(self, bands: Sequence[str] | None = None) -> SwathArrays:
        """Decoded lat, lon and ``(bands, lines, pixels)`` values, cached per process."""
        names = self.bands if bands is None else tuple(bands)
        key = tuple((n, self.variables[n].path, self.variables[n].varpath)
                    for n in ("latitude", "longitude", *names))
        with _SWATH_LOCK:
            hit = _SWATH_CACHE.get(key)
            if hit is not None:
                _SWATH_CACHE.move_to_end(key)
                return hit
        hit = _swath_arrays(self, names)  # outside the lock: reads take their own locks
        with _SWATH_LOCK:
            _SWATH_CACHE[key] = hit
            while len(_SWATH_CACHE) > _MAX_SWATHS:
                _SWATH_CACHE.popitem(last=False)
        return hit

    def __str__(self) -> str:
        return f"L1B swath {self.granule_id}"


_SWATH_CACHE: OrderedDict[tuple[tuple[str, str, str], ...], SwathArrays] = OrderedDict()
_MAX_SWATHS = 4
_SWATH_LOCK = threading.Lock()


def _swath_arrays(reader: SwathReader, bands: tuple[str, ...]) -> SwathArrays:
    values = np.stack([reader.read_variable(b) for b in bands])
    lat = reader.read_variable("latitude")
    lon = reader.read_variable("longitude")
    for a in (lat, lon, values):
        a.flags.writeable = False  # shared by the cache: nobody may modify them
    return SwathArrays(lat, lon, values, reader.rows_per_scan)


def open_reader(granule: Any, region: Any = None, bands: Sequence[str] = CUBE_BANDS) -> VmaesReader | SwathReader:
    """The reader of a discovered granule (:class:`~firesmoke.io.viirs.discovery.Granule`).

    Gridded granules are placed on ``region``
    (:class:`~firesmoke.io.viirs.placement.GridPlacement`).
    """
    if granule.kind == "vmaes":
        return VmaesReader.open(granule, bands, region=region)
    return SwathReader.open(granule, bands)
