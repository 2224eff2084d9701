"""Metadata of gridded VIIRS ``NPP_VMAES_L1`` HDF4 layer files (no pixel data read).

:func:`read_vmaes_metadata` opens one layer file once: global attributes (the 32 kB
``StructMetadata.0`` copied in one go), the HDF-EOS2 grid (:class:`GridDef`, checked to be
a ``GCTP_GEO`` grid with upper-left origin) and the SDS descriptions (:class:`SdsDef`).
Used by :func:`firesmoke.io.viirs.gridded.open_vmaes_granule` and by the window reader
:class:`firesmoke.io.viirs.readers.VmaesReader`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from firesmoke.errors import CorruptFileError, WrongProductError
from firesmoke.io._core import hdf4
from firesmoke.io.viirs.bands import VMAES_SHORT_NAMES

__all__ = ["GridDef", "LayerFile", "SdsDef", "read_vmaes_metadata"]

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
