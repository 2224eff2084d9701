"""Metadata of gridded VIIRS ``NPP_VMAES_L1`` granules: read and checked, no pixel data read.

:func:`read_vmaes_metadata` opens one layer file once: global attributes (the 32 kB
``StructMetadata.0`` copied in one go), the HDF-EOS2 grid (:class:`GridDef`, checked to be
a ``GCTP_GEO`` grid with upper-left origin) and the SDS descriptions (:class:`SdsDef`).
:func:`validate_vmaes_granule` resolves the accepted ways of naming a granule (layer
files, a folder, ``(folder, granule_id)``, a discovered granule), reads the metadata of
the layer files asked for and checks them together (one granule, one grid, every layer
present, plausible decoding): a :class:`ValidGranule`. The window reader
:class:`firesmoke.io.viirs.readers.VmaesReader` is built from it, and
:func:`firesmoke.io.viirs.gridded.open_vmaes_granule` reads through that reader.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from firesmoke.errors import (
    CorruptFileError,
    GridMismatchError,
    InputError,
    MissingLayerError,
    WrongProductError,
)
from firesmoke.grid import Region
from firesmoke.io._core import hdf4
from firesmoke.io.viirs.arrays import Decoder
from firesmoke.io.viirs.bands import (
    GRANULE_ID_RE,
    VMAES_SHORT_NAMES,
    parse_granule_time,
    vmaes_layer_variable,
)
from firesmoke.io.viirs.names import match_file

__all__ = [
    "GridDef",
    "LayerFile",
    "SdsDef",
    "ValidGranule",
    "read_vmaes_metadata",
    "validate_vmaes_granule",
]

log = logging.getLogger(__name__)

_KEEP_ATTRS = (
    "ShortName",
    "LongName",
    "DayNightFlag",
    "Mission_Name",
    "Spacecraft",
    "OrbitNumber",
    "StartOrbitNumber",
    "StopOrbitNumber",
    "NumberOfScans",
    "InstrumentShortName",
    "ProductionTime",
    "BeginningDate",
    "StructMetadata.0",
)


# --------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class GridDef:
    """Geometry of a VMAES grid, from the file's own StructMetadata."""

    name: str
    shape: tuple[int, int]  # (ydim, xdim)
    bounds: tuple[float, float, float, float]  # left, bottom, right, top (degrees)
    projection: str
    origin: str
    registration: str

    @property
    def transform(self) -> Affine:
        left, bottom, right, top = self.bounds
        h, w = self.shape
        return Affine((right - left) / w, 0.0, left, 0.0, -(top - bottom) / h, top)

    def same_as(self, other: GridDef, tol: float = 1e-7) -> bool:
        return (
            self.shape == other.shape
            and self.projection == other.projection
            and self.origin == other.origin
            and all(abs(a - b) <= tol for a, b in zip(self.bounds, other.bounds, strict=True))
        )

    def describe(self) -> str:
        return f"{self.shape[0]}x{self.shape[1]} bounds {tuple(round(v, 9) for v in self.bounds)}"


@dataclass(frozen=True)
class SdsDef:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class LayerFile:
    """Metadata of one VMAES HDF4 file (read without touching pixel data)."""

    path: Path
    attrs: Mapping[str, Any]
    grid: GridDef
    sds: Mapping[str, SdsDef]


def _hdf4_dtype(code: int) -> np.dtype:
    from pyhdf.SD import SDC

    table = {
        SDC.UINT8: np.uint8,
        SDC.INT8: np.int8,
        SDC.UINT16: np.uint16,
        SDC.INT16: np.int16,
        SDC.UINT32: np.uint32,
        SDC.INT32: np.int32,
        SDC.FLOAT32: np.float32,
        SDC.FLOAT64: np.float64,
    }
    if code not in table:
        raise KeyError(code)
    return np.dtype(table[code])


#: ``StructMetadata.0`` text -> its grid (only grids that parsed and passed the checks).
_GRID_CACHE: dict[str, GridDef] = {}
_GRID_LOCK = threading.Lock()


def _grid_def(struct_metadata: str, path: Path) -> GridDef:
    try:
        info = hdf4.grid_info(struct_metadata, path=path)
    except WrongProductError as exc:  # the ShortName said VMAES: the metadata are damaged
        raise CorruptFileError(f"StructMetadata.0 is unreadable ({exc.reason})", path=path) from exc
    odl = hdf4.parse_odl(struct_metadata)
    extra: dict[str, Any] = {}
    for grid in odl.get("GridStructure", {}).values():
        if isinstance(grid, dict) and grid.get("GridName") == info.name:
            extra = grid
            break
    projection = info.projection
    if projection != "GCTP_GEO":
        raise WrongProductError(
            f"grid {info.name} uses projection {projection}; NPP_VMAES_L1 grids are GCTP_GEO",
            path=path,
        )
    origin = str(extra.get("GridOrigin", "HDFE_GD_UL"))
    if origin != "HDFE_GD_UL":
        raise WrongProductError(f"unsupported GridOrigin {origin} (expected HDFE_GD_UL)", path=path)
    registration = str(extra.get("PixelRegistration", "HDFE_CENTER"))
    left = hdf4.packed_dms_to_degrees(info.upper_left[0])
    top = hdf4.packed_dms_to_degrees(info.upper_left[1])
    right = hdf4.packed_dms_to_degrees(info.lower_right[0])
    bottom = hdf4.packed_dms_to_degrees(info.lower_right[1])
    bounds = tuple(round(v, 10) for v in (left, bottom, right, top))
    if not (bounds[0] < bounds[2] and bounds[1] < bounds[3]) or info.xdim <= 0 or info.ydim <= 0:
        raise WrongProductError(
            f"degenerate grid {info.name}: {bounds}, {info.ydim}x{info.xdim}", path=path
        )
    return GridDef(info.name, (info.ydim, info.xdim), bounds, projection, origin, registration)  # type: ignore[arg-type]


def _read_attrs(obj: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Attributes of an open pyhdf ``SD`` or ``SDS``: those in ``names`` (absent names are
    left out), or all of them.

    pyhdf converts character attributes one byte at a time (~25 ms for the 32 kB
    ``StructMetadata.0``); character attributes are copied in one go instead, falling
    back to pyhdf's own conversion if that is not possible.
    """
    import ctypes

    from pyhdf import hdfext
    from pyhdf.SD import SDC

    if names is None:
        indices = range(obj.info()[-1])  # SD: (datasets, attributes); SDS: (..., attributes)
    else:
        indices = [hdfext.SDfindattr(obj._id, name) for name in names]
    out: dict[str, Any] = {}
    for idx in indices:
        if idx < 0:
            continue
        attr = obj.attr(idx)
        name, dtype, count = attr.info()
        if dtype in (SDC.CHAR8, SDC.UCHAR8):
            try:
                buf = hdfext.array_byte(count)
                if hdfext.SDreadattr(obj._id, idx, buf) >= 0:
                    raw = ctypes.string_at(int(buf.this), count)
                    out[name] = raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
                    continue
            except (AttributeError, TypeError, ValueError):  # pragma: no cover - fallback
                pass
        out[name] = attr.get()
    return out


def read_vmaes_metadata(path: str | os.PathLike[str]) -> LayerFile:
    """Global attributes, grid and SDS descriptions of one VMAES file (no pixel data).

    Raises
    ------
    CorruptFileError
        If the file cannot be opened or its metadata cannot be read.
    WrongProductError
        If the file is not ``NPP_VMAES_L1`` or its grid is not a GCTP_GEO HDF-EOS grid.
    """
    from pyhdf.error import HDF4Error

    p = Path(path)
    with hdf4.open_sd(p) as sd:
        try:
            attrs = _read_attrs(sd, _KEEP_ATTRS)
            sds: dict[str, SdsDef] = {}
            for name, info in sd.datasets().items():
                shape = tuple(int(s) for s in np.atleast_1d(info[1]))
                obj = sd.select(name)
                try:
                    sattrs = _read_attrs(obj)
                finally:
                    obj.endaccess()
                try:
                    dtype = _hdf4_dtype(int(info[2]))
                except KeyError:
                    log.debug("%s: SDS %s has unsupported HDF4 type %s", p, name, info[2])
                    continue
                sds[name] = SdsDef(name, shape, dtype, sattrs)
        except (HDF4Error, ValueError, OSError) as exc:
            raise CorruptFileError(f"cannot read HDF4 metadata ({exc})", path=p) from exc
    short = attrs.get("ShortName")
    if short not in VMAES_SHORT_NAMES:
        raise WrongProductError(
            f"ShortName is {short!r}, expected {' or '.join(VMAES_SHORT_NAMES)}", path=p
        )
    text = attrs.get("StructMetadata.0")
    if not isinstance(text, str):
        raise WrongProductError("no StructMetadata.0 (not an HDF-EOS grid file)", path=p)
    grid = _GRID_CACHE.get(text)
    if grid is None:  # the layers (and granules) of one grid share the same text
        grid = _grid_def(text, p)
        with _GRID_LOCK:
            if len(_GRID_CACHE) >= 64:
                _GRID_CACHE.clear()
            _GRID_CACHE[text] = grid
    kept = {k: v for k, v in attrs.items() if k in _KEEP_ATTRS and k != "StructMetadata.0"}
    return LayerFile(p, kept, grid, sds)


# --------------------------------------------------------------------------- granules (layer files checked together)
def _resolve_sources(
    source: Any, granule_id: str | None
) -> tuple[list[Path], str | None, Path | None]:
    """Turn the accepted call forms into (files, granule id, folder)."""
    if hasattr(source, "paths") and isinstance(source.paths, Mapping):  # Granule
        return [Path(p) for p in source.paths.values()], getattr(source, "granule_id", None), None
    if (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[1], str)
        and GRANULE_ID_RE.match(source[1])
    ):
        source, granule_id = source[0], source[1]
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            return _files_in_folder(p, granule_id), granule_id, p
        return [p], granule_id, None
    if isinstance(source, Sequence):
        files = [Path(s) for s in source]
        if not files:
            raise InputError("no files given", field="paths")
        return files, granule_id, None
    raise InputError(
        f"expected a list of layer files, a folder, or (folder, granule_id); got {type(source).__name__}"
    )


def _files_in_folder(folder: Path, granule_id: str | None) -> list[Path]:
    """Layer files of one granule in a folder (the newest production of each layer)."""
    newest: dict[str, dict[str, tuple[str, Path]]] = {}
    for p in sorted(folder.iterdir()):
        hit = match_file(p)
        if hit is None or hit[0].kind != "vmaes" or not p.is_file():
            continue
        f = hit[1]
        layers = newest.setdefault(f"A{f['date']}.{f['time']}", {})
        prod = f.get("production", "")
        if f["layer"] not in layers or prod > layers[f["layer"]][0]:
            if f["layer"] in layers:
                log.info(
                    "%s: using %s, a newer production than %s",
                    folder,
                    p.name,
                    layers[f["layer"]][1].name,
                )
            layers[f["layer"]] = (prod, p)
    by_id = {gid: [p for _, p in layers.values()] for gid, layers in newest.items()}
    if granule_id is not None:
        if not GRANULE_ID_RE.match(granule_id):
            raise InputError(
                f"granule id must look like A2017300.1406, got {granule_id!r}", field="granule_id"
            )
        if granule_id not in by_id:
            raise MissingLayerError(
                f"no NPP_VMAES_L1 files of granule {granule_id} in this folder"
                + (f" (it has {', '.join(sorted(by_id))})" if by_id else ""),
                path=folder,
                field=granule_id,
            )
        return by_id[granule_id]
    if not by_id:
        raise InputError("no NPP_VMAES_L1 files in this folder", path=folder)
    if len(by_id) > 1:
        raise InputError(
            f"folder holds {len(by_id)} granules ({', '.join(sorted(by_id))}); "
            "pass (folder, granule_id) to choose one",
            path=folder,
        )
    return next(iter(by_id.values()))


def _name_time(files: Sequence[LayerFile]) -> tuple[datetime, str, dict[str, str]]:
    """Start time and granule id from the file names; all parseable names must agree."""
    found: dict[str, tuple[datetime, dict[str, str]]] = {}
    for lf in files:
        hit = match_file(lf.path)
        if hit is None or hit[0].kind != "vmaes":
            continue
        f = hit[1]
        gid = f"A{f['date']}.{f['time']}"
        try:
            found.setdefault(gid, (parse_granule_time(f["date"], f["time"]), f))
        except ValueError as exc:
            raise InputError(f"invalid date/time in file name ({exc})", path=lf.path) from exc
    if not found:
        raise InputError(
            "cannot tell the granule start time: no file name follows "
            "NPP_VMAES_L1.AYYYYDDD.HHMM.CCC.<production>[.<order>].<layer>.hdf",
            path=files[0].path,
        )
    if len(found) > 1:
        raise InputError(
            f"files belong to different granules ({', '.join(sorted(found))}): "
            + ", ".join(lf.path.name for lf in files)
        )
    gid, (start, fields) = next(iter(found.items()))
    return start, gid, fields


def _check_region(grid: GridDef, region: Any, path: Path) -> None:
    reg = Region.resolve(region)
    t_file, t_reg = grid.transform, reg.transform
    if grid.shape != reg.shape or not t_file.almost_equals(t_reg, 1e-9):
        raise GridMismatchError(
            f"granule grid {grid.describe()} (pixel {t_file.a:g} x {-t_file.e:g}) differs from "
            f"region {reg.name} {reg.shape[0]}x{reg.shape[1]} bounds {reg.bbox} (pixel {reg.pixel_size:g})",
            path=path,
        )


@dataclass(frozen=True)
class ValidGranule:
    """A gridded granule whose layer files have been opened and checked once.

    Attributes
    ----------
    by_layer
        Layer name -> (metadata of its file, its SDS description).
    grid
        The common grid of the layers.
    start, granule_id, fields
        Start time, ``AYYYYDDD.HHMM`` and the file-name fields.
    ref, metas
        Metadata of the first file and of every file opened.
    """

    by_layer: Mapping[str, tuple[LayerFile, SdsDef]]
    grid: GridDef
    start: datetime
    granule_id: str
    fields: Mapping[str, str]
    ref: LayerFile
    metas: tuple[LayerFile, ...]


def validate_vmaes_granule(
    source: Any,
    wanted_read: Sequence[str],
    *,
    granule_id: str | None = None,
    region: Any = None,
) -> ValidGranule:
    """Open the metadata of a granule's layer files once and check them (no pixel read).

    ``source`` and ``granule_id`` as in :func:`open_vmaes_granule`; ``wanted_read`` are
    HDF4 layer names (``"Reflectance_M5"``...). Raises the errors documented there.
    """
    files, gid_hint, folder = _resolve_sources(source, granule_id)
    # files found for us (a folder, a discovered granule): open only the layers asked for
    found = folder is not None or hasattr(source, "paths")

    metas: list[LayerFile] = []
    by_layer: dict[str, tuple[LayerFile, SdsDef]] = {}
    for p in files:
        hit = match_file(p)
        name_layer = hit[1].get("layer") if hit is not None and hit[0].kind == "vmaes" else None
        if found and name_layer is not None and name_layer not in wanted_read:
            continue  # do not even open files of layers nobody asked for
        lf = read_vmaes_metadata(p)
        metas.append(lf)
        for sds in lf.sds.values():
            if vmaes_layer_variable(sds.name) is not None:
                if sds.name in by_layer and by_layer[sds.name][0].path != lf.path:
                    raise InputError(
                        f"layer {sds.name} given twice: {by_layer[sds.name][0].path.name} and {lf.path.name}"
                    )
                by_layer[sds.name] = (lf, sds)
        if name_layer is not None and name_layer not in lf.sds and vmaes_layer_variable(name_layer):
            raise MissingLayerError(
                f"file name says layer {name_layer} but the file holds SDS {', '.join(lf.sds) or 'none'}",
                path=p,
                field=name_layer,
            )
    if not metas:
        raise MissingLayerError(
            f"none of the requested layers ({', '.join(wanted_read)}) has a file",
            path=folder,
            field=wanted_read[0],
        )
    start, gid, fields = _name_time(metas)
    if gid_hint is not None and gid_hint != gid:
        raise InputError(f"files are of granule {gid}, not {gid_hint}", path=metas[0].path)
    for layer in wanted_read:
        if layer not in by_layer:
            raise MissingLayerError(
                f"granule {gid} has no {layer} layer "
                f"(given: {', '.join(sorted(by_layer)) or 'none'})",
                path=folder if folder is not None else metas[0].path.parent,
                field=layer,
            )
    ref = metas[0]
    for lf in metas[1:]:
        if not lf.grid.same_as(ref.grid):
            raise GridMismatchError(
                f"layer grids differ: {lf.path.name} is {lf.grid.describe()}, "
                f"{ref.path.name} is {ref.grid.describe()}",
                path=lf.path,
            )
    grid = ref.grid
    for layer in wanted_read:
        lf, sds = by_layer[layer]
        if tuple(sds.shape) != grid.shape:
            raise GridMismatchError(
                f"SDS {layer} has shape {sds.shape}, grid {grid.name} is {grid.shape}", path=lf.path
            )
        dec = Decoder.from_attrs(sds.attrs, sds.dtype)
        if not (np.isfinite(dec.scale) and dec.scale != 0 and np.isfinite(dec.offset)):  # damaged attribute
            raise CorruptFileError(f"implausible Scale/Offset {dec.scale!r}/{dec.offset!r}", path=lf.path, field=sds.name)
    if region is not None:
        _check_region(grid, region, ref.path)
    return ValidGranule(by_layer, grid, start, gid, fields, ref, tuple(metas))
