"""Granule readers: the one read path of VIIRS pixels (the reader idea of stackstac and
satpy's file handlers).

Discovery (:mod:`firesmoke.io.viirs.discovery`) describes granules: their files, start time and
product. A *reader* is built once per granule from that description: :func:`open_reader`
opens the metadata of each file once (the descriptor check, the HDF-EOS ODL parse, the
grid and the SDS/variable descriptions; :func:`~firesmoke.io.viirs.vmaes_metadata.validate_vmaes_granule`,
:func:`~firesmoke.io.viirs.l1b_metadata.validate_l1b_pair`) and keeps only what pixel reads
need (paths, variable names, shapes and decoding rules). Readers are small frozen
dataclasses, so they pickle to any worker.

Every pixel is read by a reader's ``read_window(name, window)``: one window of one
variable, through the process's cache of open files
(:data:`firesmoke.io._core.handles.OPEN_FILES`, holding
:data:`~firesmoke.io._core.handles.FILE_LOCK`), then decoded. The lazy Datasets of
:func:`~firesmoke.io.viirs.gridded.open_vmaes_granule` and
:func:`~firesmoke.io.viirs.swath.open_l1b_swath` are dask arrays over these window reads
(:class:`~firesmoke.io.viirs.arrays.WindowArray`), so their values are those of the readers.

- :class:`VmaesReader` (gridded ``NPP_VMAES_L1``, one HDF4 file per layer):
  ``read(window, bands)`` returns the decoded ``(len(bands), h, w)`` float32 window of
  the granule grid. Made for a region, it also knows where its grid lies on the region
  (:class:`~firesmoke.io.viirs.placement.GridPlacement`): ``read_region(window, bands)``
  reads a window of an aligned region grid (the granule window it covers, NaN
  elsewhere); a grid of another pixel size or alignment is resampled by the cube.
- :class:`SwathReader` (L1B ``V??02MOD`` + ``V??03MOD`` pair): ``read_variable(name)``
  reads one whole variable, ``read_swath(bands)`` the decoded swath arrays of the
  granule (lat, lon, values), cached per process by the versions of both files (every
  spatial block of a day needs the whole granule; a rewritten file is read afresh);
  regridding onto a grid is processing and lives with the cube.

Band names are the cube's variable names: ``M05``, ``M07``, ``M12``, ``M15``,
``solar_zenith``, ``sensor_zenith`` (and ``M10`` for the gridded product).

Decoding is :class:`~firesmoke.io.viirs.arrays.Decoder` /
:class:`~firesmoke.io.viirs.arrays.NcDecoder`. Library errors met while reading pixels
become :class:`~firesmoke.errors.CorruptFileError` naming the file (the file's cached
handle is dropped).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from firesmoke.errors import CorruptFileError, GridMismatchError, MissingLayerError
from firesmoke.grid import Region
from firesmoke.io._core.handles import FILE_LOCK, OPEN_FILES, FileKind, HandleCache, mark_checked
from firesmoke.io.viirs.arrays import Decoder, NcDecoder
from firesmoke.io.viirs.bands import VMAES_LAYER_TO_VARIABLE, vmaes_layer_variable
from firesmoke.io.viirs.l1b_metadata import DEFAULT_SWATH_BANDS, L1bPair, validate_l1b_pair
from firesmoke.io.viirs.placement import GridPlacement, grid_placement
from firesmoke.io.viirs.vmaes_metadata import ValidGranule, validate_vmaes_granule

__all__ = [
    "CUBE_BANDS",
    "SwathArrays",
    "SwathReader",
    "VmaesReader",
    "open_reader",
]

log = logging.getLogger(__name__)

#: Bands the cube reads from every granule, in the order of its per-day stack.
CUBE_BANDS: tuple[str, ...] = ("M05", "M07", "M12", "M15", "solar_zenith", "sensor_zenith")
_VAR_TO_LAYER = {v: k for k, v in VMAES_LAYER_TO_VARIABLE.items()}
PixelBox = tuple[int, int, int, int]  # row offset, column offset, height, width (pixels)


# --------------------------------------------------------------------------- window reads
def _read_sds_window(path: str, sds_name: str, window: PixelBox) -> np.ndarray:
    """Raw pixels of one SDS window through a cached pyhdf handle (under FILE_LOCK).

    Errors of any kind from the HDF4 library become
    :class:`~firesmoke.errors.CorruptFileError` (or :class:`~firesmoke.errors.MissingLayerError`
    for an absent SDS) naming ``path``; the handle is dropped after one.
    """
    from pyhdf.error import HDF4Error

    r0, c0, h, w = window
    r1, c1 = r0 + h, c0 + w
    with FILE_LOCK:
        sd = OPEN_FILES.get("hdf4", path)
        try:
            try:
                obj = sd.select(sds_name)
            except HDF4Error as exc:
                raise MissingLayerError(f"SDS not found ({exc})", path=path, field=sds_name) from exc
            try:
                if r1 <= r0 or c1 <= c0:
                    return np.empty((max(h, 0), max(w, 0)), dtype=np.float32)
                return np.asarray(obj.get(start=(r0, c0), count=(h, w)))
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
        except CorruptFileError:
            OPEN_FILES.forget(path)
            raise


def _read_nc_window(path: str, varpath: str, window: PixelBox) -> np.ndarray:
    """Raw values of one window of a netCDF variable through a cached handle (under
    FILE_LOCK); library errors become :class:`~firesmoke.errors.CorruptFileError` naming the
    file (the handle is dropped after one)."""
    r0, c0, h, w = window
    group, name = varpath.split("/", 1)
    with FILE_LOCK:
        ds = OPEN_FILES.get("netcdf", path)
        try:
            try:
                var = ds.groups[group].variables[name]
            except KeyError as exc:
                raise MissingLayerError("variable not found", path=path, field=varpath) from exc
            var.set_auto_maskandscale(False)
            return np.asarray(var[r0 : r0 + h, c0 : c0 + w])
        except (OSError, RuntimeError, ValueError, IndexError) as exc:
            OPEN_FILES.forget(path)
            raise CorruptFileError(
                f"cannot read {varpath}[{r0}:{r0 + h}, {c0}:{c0 + w}] ({exc}); "
                "file truncated or corrupt?",
                path=path,
                field=varpath,
            ) from exc


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
        return cls.from_valid(v, layers, placement)

    @classmethod
    def from_valid(cls, v: ValidGranule, layers: Sequence[str],
                   placement: GridPlacement | None = None) -> VmaesReader:
        """The reader of the checked ``layers`` (HDF4 layer names) of a validated granule;
        its bands are their variable names (``Reflectance_M5`` -> ``M05``)."""
        sources = {}
        for layer in layers:
            lf, sds = v.by_layer[layer]
            band = vmaes_layer_variable(layer)
            assert band is not None
            sources[band] = LayerSource(os.fspath(lf.path), sds.name, Decoder.from_attrs(sds.attrs, sds.dtype))
            mark_checked(lf.path)  # validation opened it through hdf4.open_sd
        return cls(v.granule_id, v.start, tuple(v.grid.shape), sources, placement=placement)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.layers)

    def read_window(self, band: str, window: PixelBox | None = None) -> np.ndarray:
        """Decoded float32 ``(h, w)`` of one band (NaN = fill); ``window`` is (row, col,
        height, width), default the whole grid. Every pixel read of the granule comes here."""
        r0, c0, h, w = window if window is not None else (0, 0, *self.shape)
        if h <= 0 or w <= 0:
            return np.empty((max(h, 0), max(w, 0)), np.float32)
        src = self.layers[band]
        return src.decoder(_read_sds_window(src.path, src.sds_name, (r0, c0, h, w)))

    def read(self, window: PixelBox | None = None, bands: Sequence[str] | None = None) -> np.ndarray:
        """Decoded float32 ``(len(bands), h, w)`` of ``window`` (row, col, height, width;
        default the whole grid); fill is NaN."""
        r0, c0, h, w = window if window is not None else (0, 0, *self.shape)
        names = self.bands if bands is None else tuple(bands)
        out = np.empty((len(names), h, w), np.float32)
        if h <= 0 or w <= 0:
            return out
        for i, b in enumerate(names):
            out[i] = self.read_window(b, (r0, c0, h, w))
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
    """Where one variable of a swath granule is and how it decodes (``decoder`` None: the
    raw stored values, e.g. quality flags)."""

    path: str
    varpath: str
    dtype: str
    decoder: NcDecoder | None

    @classmethod
    def of(cls, pair: L1bPair, name: str, decoder: NcDecoder | None) -> VariableSource:
        """Variable ``name`` of a checked pair (a name of ``pair.variables``, or a
        variable path ``group/name`` of the observation file)."""
        if name in pair.variables:
            var, path = pair.variables[name], pair.path_of(name)
        else:
            var, path = pair.obs.variables[name], pair.obs.path
        return cls(os.fspath(path), var.path, str(np.dtype(var.dtype)), decoder)


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
    start: datetime | None
    shape: tuple[int, int]
    variables: Mapping[str, VariableSource]
    rows_per_scan: int
    kind: str = "l1b"

    @classmethod
    def open(cls, granule: Any, bands: Sequence[str] = CUBE_BANDS) -> SwathReader:
        """Check the pair once; errors as :func:`~firesmoke.io.viirs.swath.open_l1b_swath`."""
        pair = validate_l1b_pair(granule.paths["observation"], granule.paths["geolocation"],
                                 DEFAULT_SWATH_BANDS)
        sources = {n: VariableSource.of(pair, n, pair.decoder(n)) for n in ("latitude", "longitude", *bands)}
        return cls(granule.granule_id, granule.start, tuple(pair.shape), sources, int(pair.rows_per_scan))

    @property
    def bands(self) -> tuple[str, ...]:
        """The decoded variables other than latitude and longitude."""
        return tuple(n for n, src in self.variables.items()
                     if n not in ("latitude", "longitude") and src.decoder is not None)

    def read_window(self, name: str, window: PixelBox | None = None) -> np.ndarray:
        """One variable in ``window`` (row, col, height, width; default the whole swath):
        decoded float32 (NaN = fill), or the raw values of a variable without decoder.
        Every pixel read of the granule comes here."""
        return _read_variable(self.variables[name], window if window is not None else (0, 0, *self.shape))

    def read_variable(self, name: str) -> np.ndarray:
        """One decoded variable of the whole swath (float32, NaN = fill)."""
        return self.read_window(name)

    def read_swath(self, bands: Sequence[str] | None = None) -> SwathArrays:
        """Decoded lat, lon and ``(bands, lines, pixels)`` values, cached per process by
        the versions of the files (a file rewritten since is read afresh)."""
        names = self.bands if bands is None else tuple(bands)
        sources = tuple((n, self.variables[n]) for n in ("latitude", "longitude", *names))
        paths = tuple(dict.fromkeys(src.path for _, src in sources))
        with _SWATH_LOCK:  # taken before FILE_LOCK (by the reads), never after it
            return _SWATHS.get("swath", *paths, args=(tuple(self.shape), self.rows_per_scan, sources))

    def __str__(self) -> str:
        return f"L1B swath {self.granule_id}"


def _read_variable(src: VariableSource, window: PixelBox) -> np.ndarray:
    _, _, h, w = window
    if h <= 0 or w <= 0:
        dtype = np.float32 if src.decoder is not None else np.dtype(src.dtype)
        return np.empty((max(h, 0), max(w, 0)), dtype)
    raw = _read_nc_window(src.path, src.varpath, window)
    return src.decoder(raw) if src.decoder is not None else raw


def _decode_swath(paths: tuple[str, ...], stats: tuple[os.stat_result, ...], shape: tuple[int, int],
                  rows_per_scan: int, sources: tuple[tuple[str, VariableSource], ...]) -> SwathArrays:
    """The :class:`SwathArrays` of ``sources`` (latitude, longitude, then the bands)."""
    whole = (0, 0, *shape)
    lat, lon, *bands = (_read_variable(src, whole) for _, src in sources)
    values = np.stack(bands) if bands else np.empty((0, *shape), np.float32)
    for a in (lat, lon, values):
        a.flags.writeable = False  # shared by the cache: nobody may modify them
    return SwathArrays(lat, lon, values, rows_per_scan)


_MAX_SWATHS = 4
#: Decoded swaths of this process, by the versions of their files and the variables read.
_SWATHS = HandleCache({"swath": FileKind(_decode_swath, lambda arrays: None)}, _MAX_SWATHS)
_SWATH_LOCK = threading.Lock()


def open_reader(granule: Any, region: Any = None, bands: Sequence[str] = CUBE_BANDS) -> VmaesReader | SwathReader:
    """The reader of a discovered granule (:class:`~firesmoke.io.viirs.discovery.Granule`).

    Gridded granules are placed on ``region``
    (:class:`~firesmoke.io.viirs.placement.GridPlacement`).
    """
    if granule.kind == "vmaes":
        return VmaesReader.open(granule, bands, region=region)
    return SwathReader.open(granule, bands)
