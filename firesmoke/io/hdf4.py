"""Low-level HDF4 / HDF-EOS2 helpers shared by the VIIRS and MCD64A1 readers.

The HDF4 C library is not thread-safe, so every call into pyhdf goes through
:data:`HDF4_LOCK`. Errors from pyhdf are turned into :class:`~firesmoke.errors.InputError`
subclasses that name the file.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import CorruptFileError, MissingLayerError, WrongProductError

__all__ = [
    "HDF4_LOCK",
    "GridInfo",
    "check_hdf4_complete",
    "grid_info",
    "open_sd",
    "packed_dms_to_degrees",
    "parse_odl",
    "read_attributes",
    "read_sds",
    "sds_info",
]

log = logging.getLogger(__name__)

#: Process-wide lock around every pyhdf call (the HDF4 library is not thread-safe).
HDF4_LOCK = threading.RLock()

_HDF4_MAGIC = b"\x0e\x03\x13\x01"


# One data descriptor (DD): tag, reference number, offset and length of a data element.
_DD_DTYPE = np.dtype([("tag", ">u2"), ("ref", ">u2"), ("offset", ">i4"), ("length", ">i4")])
_DFTAG_NULL = 1  # an unused descriptor slot


def check_hdf4_complete(path: str | os.PathLike[str]) -> None:
    """Raise :class:`CorruptFileError` unless ``path`` is a complete (untruncated) HDF4 file.

    An HDF4 file starts with a 4-byte signature followed by a chain of data-descriptor
    blocks (``int16`` count, ``int32`` offset of the next block, then ``count`` 12-byte
    descriptors ``tag, ref, offset, length``). A truncated file has a broken chain or
    data elements that end beyond its size; this catches both before pyhdf opens the
    file (the HDF4 library itself only notices when a cut data block is read, if at all).
    The cost is two small reads per descriptor block (about ten blocks in the MCD64A1 and
    VIIRS samples) and one numpy pass over the descriptors; no pixel data are read.

    Parameters
    ----------
    path
        The file to check.

    Raises
    ------
    CorruptFileError
        Missing, not a regular file, empty, not HDF4 (bad signature), broken descriptor
        chain, or truncated (the message names the file and the byte counts).
    """
    p = Path(path)
    try:
        if not p.is_file():
            raise CorruptFileError("file not found" if not p.exists() else "not a regular file", path=p)
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise CorruptFileError("file is empty", path=p)
            if fh.read(4) != _HDF4_MAGIC:
                raise CorruptFileError("not an HDF4 file (bad signature)", path=p)
            offset, seen, blocks = 4, set(), []
            while offset:
                if offset in seen or offset + 6 > size:
                    raise CorruptFileError(
                        f"broken HDF4 descriptor chain at byte {offset} (file truncated or corrupt)", path=p
                    )
                seen.add(offset)
                fh.seek(offset)
                ndds, nxt = struct.unpack(">hi", fh.read(6))
                raw = fh.read(_DD_DTYPE.itemsize * ndds) if ndds >= 0 else b""
                if ndds < 0 or nxt < 0 or len(raw) < _DD_DTYPE.itemsize * ndds:
                    raise CorruptFileError(
                        f"HDF4 descriptor block at byte {offset} is cut short or corrupt (file truncated?)", path=p
                    )
                blocks.append(raw)
                offset = nxt
    except (OSError, struct.error) as exc:  # struct.error: the file shrank while being read
        raise CorruptFileError(f"cannot read file ({exc})", path=p) from exc
    dds = np.frombuffer(b"".join(blocks), dtype=_DD_DTYPE)  # one numpy pass for all blocks
    used = (dds["tag"] != _DFTAG_NULL) & (dds["offset"] > 0) & (dds["length"] > 0)
    end = int((dds["offset"][used].astype(np.int64) + dds["length"][used]).max()) if used.any() else 0
    if end > size:
        raise CorruptFileError(f"file truncated: data run to byte {end} but the file has {size} bytes", path=p)


@contextmanager
def open_sd(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open an HDF4 file read-only with pyhdf, holding :data:`HDF4_LOCK` throughout.

    The file is first checked with :func:`check_hdf4_complete`, so truncated files are
    refused here, before pyhdf sees them.

    Raises
    ------
    CorruptFileError
        If the file is missing, empty, not HDF4, truncated, or pyhdf cannot open it.
    """
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    p = Path(path)
    check_hdf4_complete(p)  # outside the lock: plain file reads
    with HDF4_LOCK:
        try:
            sd = SD(os.fspath(p), SDC.READ)
        except HDF4Error as exc:
            raise CorruptFileError(f"cannot open HDF4 file ({exc})", path=p) from exc
        try:
            yield sd
        finally:
            try:
                sd.end()
            except HDF4Error:  # pragma: no cover - closing a broken file
                log.debug("error closing %s", p, exc_info=True)


def read_attributes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Global attributes of an HDF4 file."""
    from pyhdf.error import HDF4Error

    with open_sd(path) as sd:
        try:
            return dict(sd.attributes())
        except HDF4Error as exc:
            raise CorruptFileError(f"cannot read global attributes ({exc})", path=path) from exc


def sds_info(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Name -> ``{"dims", "shape", "attrs"}`` for every SDS of a file."""
    from pyhdf.error import HDF4Error

    out: dict[str, dict[str, Any]] = {}
    with open_sd(path) as sd:
        try:
            for name, info in sd.datasets().items():
                dims, shape = info[0], info[1]
                sds = sd.select(name)
                try:
                    out[name] = {
                        "dims": tuple(dims),
                        "shape": tuple(int(s) for s in np.atleast_1d(shape)),
                        "attrs": dict(sds.attributes()),
                    }
                finally:
                    sds.endaccess()
        except HDF4Error as exc:
            raise CorruptFileError(f"cannot list datasets ({exc})", path=path) from exc
    return out


def read_sds(
    path: str | os.PathLike[str],
    name: str,
    window: tuple[slice, slice] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one SDS (raw values, no decoding) and its attributes.

    Parameters
    ----------
    path
        HDF4 file.
    name
        SDS name, e.g. ``"Burn Date"`` or ``"Reflectance_M5"``.
    window
        Optional ``(rows, cols)`` slices to read a sub-array only.
    """
    from pyhdf.error import HDF4Error

    with open_sd(path) as sd:
        try:
            names = list(sd.datasets().keys())
        except HDF4Error as exc:
            raise CorruptFileError(f"cannot list datasets ({exc})", path=path) from exc
        if name not in names:
            raise MissingLayerError(
                f"SDS not found; file has {', '.join(sorted(names)) or 'no SDS'}",
                path=path,
                field=name,
            )
        try:
            sds = sd.select(name)
            try:
                attrs = dict(sds.attributes())
                if window is None:
                    data = np.asarray(sds.get())
                else:
                    rows, cols = window
                    r0, r1, _ = rows.indices(sds.info()[2][0])
                    c0, c1, _ = cols.indices(sds.info()[2][1])
                    data = np.asarray(sds.get(start=(r0, c0), count=(r1 - r0, c1 - c0)))
            finally:
                sds.endaccess()
        except (HDF4Error, ValueError, OSError) as exc:
            # pyhdf raises a bare ValueError ("SDreaddata failure") on corrupted data blocks
            raise CorruptFileError(f"cannot read SDS ({exc}); file truncated or corrupt?", path=path, field=name) from exc
    return data, attrs


# --------------------------------------------------------------------------- ODL / HDF-EOS
_TOKEN = re.compile(r"^\s*(GROUP|END_GROUP|OBJECT|END_OBJECT)\s*=\s*(\S+)\s*$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*=\s*(.*?)\s*$")


def _odl_value(text: str) -> Any:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if text.startswith("(") and text.endswith(")"):
        return tuple(_odl_value(v) for v in text[1:-1].split(","))
    try:
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        return float(text)
    except ValueError:
        return text


def parse_odl(text: str) -> dict[str, Any]:
    """Parse HDF-EOS ``StructMetadata`` ODL text into nested dicts.

    ``GROUP=X ... END_GROUP=X`` and ``OBJECT=X ... END_OBJECT=X`` become nested dicts under
    key ``X``; ``KEY=VALUE`` lines become entries with numbers, strings and tuples decoded.
    """
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    for raw in text.replace("\x00", "").splitlines():
        line = raw.strip()
        if not line or line == "END":
            continue
        m = _TOKEN.match(line)
        if m:
            kind, name = m.groups()
            if kind in ("GROUP", "OBJECT"):
                child: dict[str, Any] = {}
                stack[-1][name] = child
                stack.append(child)
            elif len(stack) > 1:
                stack.pop()
            continue
        m = _ASSIGN.match(line)
        if m:
            stack[-1][m.group(1)] = _odl_value(m.group(2))
    return root


def packed_dms_to_degrees(value: float) -> float:
    """Convert a GCTP packed ``DDDMMMSSS.SS`` angle (as in GCTP_GEO grids) to degrees."""
    sign = -1.0 if value < 0 else 1.0
    v = abs(float(value))
    deg = int(v // 1_000_000)
    minutes = int((v - deg * 1_000_000) // 1_000)
    seconds = v - deg * 1_000_000 - minutes * 1_000
    return sign * (deg + minutes / 60.0 + seconds / 3600.0)


@dataclass(frozen=True)
class GridInfo:
    """An HDF-EOS2 grid description from ``StructMetadata.0``."""

    name: str
    xdim: int
    ydim: int
    upper_left: tuple[float, float]
    lower_right: tuple[float, float]
    projection: str
    proj_params: tuple[float, ...] | None
    fields: tuple[str, ...]


def grid_info(struct_metadata: str, path: str | os.PathLike[str] | None = None) -> GridInfo:
    """First grid of an HDF-EOS2 ``StructMetadata.0`` text.

    Raises
    ------
    WrongProductError
        If the metadata describe no grid.
    """
    odl = parse_odl(struct_metadata)
    grids = odl.get("GridStructure", {})
    for key, grid in grids.items():
        if not isinstance(grid, dict) or "GridName" not in grid:
            continue
        try:
            fields = tuple(
                str(obj.get("DataFieldName"))
                for obj in grid.get("DataField", {}).values()
                if isinstance(obj, dict)
            )
            params = grid.get("ProjParams")
            return GridInfo(
                name=str(grid["GridName"]),
                xdim=int(grid["XDim"]),
                ydim=int(grid["YDim"]),
                upper_left=tuple(float(v) for v in grid["UpperLeftPointMtrs"]),
                lower_right=tuple(float(v) for v in grid["LowerRightMtrs"]),
                projection=str(grid.get("Projection", "")),
                proj_params=tuple(float(v) for v in params) if isinstance(params, tuple) else None,
                fields=fields,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WrongProductError(f"incomplete HDF-EOS grid {key} in StructMetadata ({exc})", path=path) from exc
    raise WrongProductError("StructMetadata.0 describes no HDF-EOS grid", path=path)
