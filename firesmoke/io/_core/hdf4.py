"""Low-level HDF4 / HDF-EOS2 helpers shared by the VIIRS and MCD64A1 readers.

The HDF4 C library is not thread-safe, so every call into pyhdf goes through
:data:`FILE_LOCK` (also named :data:`HDF4_LOCK`), the one process-wide lock that the
netCDF4/HDF5 readers hold too. Errors from pyhdf are turned into :class:`~firesmoke.errors.InputError`
subclasses that name the file.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import CorruptFileError, MissingLayerError, WrongProductError
from firesmoke.io._core.checksums import zlib_stream_problem

__all__ = [
    "FILE_LOCK",
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
    "verify_hdf4_data",
]

log = logging.getLogger(__name__)

#: Process-wide lock around every pyhdf and netCDF4/HDF5 call (neither library is
#: thread-safe); the open files of :data:`firesmoke.io._core.handles.OPEN_FILES` are used under it.
FILE_LOCK = threading.RLock()
#: The same lock, by its older name.
HDF4_LOCK = FILE_LOCK

_HDF4_MAGIC = b"\x0e\x03\x13\x01"


# One data descriptor (DD): tag, reference number, offset and length of a data element.
_DD_DTYPE = np.dtype([("tag", ">u2"), ("ref", ">u2"), ("offset", ">i4"), ("length", ">i4")])
_DFTAG_NULL = 1  # an unused descriptor slot


def check_hdf4_complete(path: str | os.PathLike[str]) -> np.ndarray:
    """Raise :class:`CorruptFileError` unless ``path`` is a complete (untruncated) HDF4 file.

    An HDF4 file starts with a 4-byte signature followed by a chain of data-descriptor
    blocks (``int16`` count, ``int32`` offset of the next block, then ``count`` 12-byte
    descriptors ``tag, ref, offset, length``). A truncated file has a broken chain or
    data elements that end beyond its size; a damaged descriptor has data elements that
    partly overlap one another or a descriptor block. This catches all three before pyhdf
    opens the file (the HDF4 library itself only notices when a cut data block is read, if at all).
    The cost is two small reads per descriptor block (about ten blocks in the MCD64A1 and
    VIIRS samples) and one numpy pass over the descriptors; no pixel data are read.

    Parameters
    ----------
    path
        The file to check.

    Returns
    -------
    numpy.ndarray
        The data descriptors (fields ``tag, ref, offset, length``), for
        :func:`verify_hdf4_data`.

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
            offset, seen, blocks, extents = 4, set(), [], []
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
                extents.append((offset, 6 + len(raw)))
                offset = nxt
    except (OSError, struct.error) as exc:  # struct.error: the file shrank while being read
        raise CorruptFileError(f"cannot read file ({exc})", path=p) from exc
    dds = np.frombuffer(b"".join(blocks), dtype=_DD_DTYPE)  # one numpy pass for all blocks
    used = (dds["tag"] != _DFTAG_NULL) & (dds["offset"] > 0) & (dds["length"] > 0)
    end = int((dds["offset"][used].astype(np.int64) + dds["length"][used]).max()) if used.any() else 0
    if end > size:
        raise CorruptFileError(f"file truncated: data run to byte {end} but the file has {size} bytes", path=p)
    _check_no_overlap(dds[used], extents, p)
    return dds


def _check_no_overlap(dds: np.ndarray, extents: list[tuple[int, int]], path: Path) -> None:
    """Refuse data elements that partly overlap one another or a descriptor block.

    HDF4 writes each element to its own byte range (several descriptors may name the same
    range); a partial overlap means a corrupted offset or length, which would otherwise
    make the library read another element's bytes (e.g. a chunk table) as its own.
    """
    starts = np.concatenate([dds["offset"].astype(np.int64), np.array([e[0] for e in extents], np.int64)])
    lengths = np.concatenate([dds["length"].astype(np.int64), np.array([e[1] for e in extents], np.int64)])
    pairs = np.unique(np.stack([starts, lengths], axis=1), axis=0)  # sorted, duplicates merged
    ends = pairs[:, 0] + pairs[:, 1]
    bad = np.flatnonzero(ends[:-1] > pairs[1:, 0])
    if bad.size:
        i = int(bad[0])
        raise CorruptFileError(
            f"corrupt HDF4 descriptors: bytes {pairs[i, 0]}-{ends[i]} and {pairs[i + 1, 0]}-{ends[i + 1]} "
            "overlap (a damaged offset or length)",
            path=path,
        )


# ------------------------------------------------------------------ verified compressed data
_SPECIAL = 0x4000  # tag bit of a "special" element (compressed, chunked, linked, ...)
_SPECIAL_COMP = 3  # special header code: compressed element
_DFTAG_COMPRESSED = 40  # the element holding a compressed stream
_COMP_CODE_DEFLATE = 4

#: (real path, inode, size, mtime_ns) of files whose compressed data verified in this
#: process, oldest first; at most :data:`_VERIFIED_MAX` are remembered.
_VERIFIED: OrderedDict[tuple[str, int, int, int], None] = OrderedDict()
_VERIFIED_MAX = 1 << 16
_VERIFIED_LOCK = threading.Lock()


def _compressed_elements(fh: Any, dds: np.ndarray) -> Iterator[tuple[int, int, int, int, int]]:
    """``(tag, ref, offset, length, uncompressed length)`` of each deflate-compressed element."""
    used = dds[(dds["tag"] != _DFTAG_NULL) & (dds["offset"] > 0) & (dds["length"] >= 2)]
    streams = {int(r["ref"]): (int(r["offset"]), int(r["length"])) for r in used[used["tag"] == _DFTAG_COMPRESSED]}
    for rec in used[(used["tag"] & _SPECIAL) != 0]:
        fh.seek(int(rec["offset"]))
        header = fh.read(min(int(rec["length"]), 16))
        if len(header) < 14 or struct.unpack(">h", header[:2])[0] != _SPECIAL_COMP:
            continue  # chunked / linked-block / external headers: their data carry their own headers
        _version, expected, comp_ref, _model, coder = struct.unpack(">HiHHH", header[2:14])
        if coder != _COMP_CODE_DEFLATE:
            continue  # RLE, N-bit, Huffman, SZIP, JPEG: no checksum to verify
        if comp_ref not in streams:
            raise KeyError(f"compressed element {int(rec['tag'])}/{int(rec['ref'])} points to missing data {comp_ref}")
        yield int(rec["tag"]), int(rec["ref"]), *streams[comp_ref], expected


def verify_hdf4_data(path: str | os.PathLike[str], dds: np.ndarray | None = None) -> None:
    """Raise :class:`CorruptFileError` if a deflate-compressed data element of ``path`` is corrupt.

    HDF4 stores deflate-compressed SDS (and SDS chunks) as zlib streams but never checks
    their adler32 checksum, so a flipped bit in compressed pixels reads back as plausible,
    wrong values. Here every such stream is inflated with :mod:`zlib` (which checks the
    checksum) and its length compared with the uncompressed length in its header. Streams
    of other coders (RLE, N-bit, SZIP, ...) carry no checksum and are not checked.

    The check runs once per file and process: files that pass are remembered by real
    path, inode, size and modification time (the last 65,536 such files). It costs one inflate of the file's pixel
    data (about 60 ms for the 0.5 MB MCD64A1 sample, whose five SDS inflate to 58 MB).

    Parameters
    ----------
    path
        The HDF4 file.
    dds
        Its data descriptors, as returned by :func:`check_hdf4_complete`; read when None.

    Raises
    ------
    CorruptFileError
        If the file is incomplete (see :func:`check_hdf4_complete`) or a compressed stream
        fails its checksum, is cut short, or inflates to a length other than its header's.
    """
    p = Path(path)
    try:
        st = p.stat()
        key = (os.path.realpath(p), st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None:
        with _VERIFIED_LOCK:
            if key in _VERIFIED:
                _VERIFIED.move_to_end(key)
                return
    if dds is None:
        dds = check_hdf4_complete(p)
    try:
        with open(p, "rb") as fh:
            for tag, ref, offset, length, expected in _compressed_elements(fh, dds):
                fh.seek(offset)
                why = zlib_stream_problem(fh.read(length), expected)
                if why is not None:
                    raise CorruptFileError(
                        f"compressed data element (tag {tag}, ref {ref}) at byte {offset}: {why}", path=p
                    )
    except KeyError as exc:
        raise CorruptFileError(f"{exc.args[0]} (file corrupt)", path=p) from exc
    except (OSError, struct.error) as exc:
        raise CorruptFileError(f"cannot read file ({exc})", path=p) from exc
    if key is not None:
        with _VERIFIED_LOCK:
            _VERIFIED[key] = None
            while len(_VERIFIED) > _VERIFIED_MAX:
                _VERIFIED.popitem(last=False)


@contextmanager
def open_sd(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open an HDF4 file read-only with pyhdf, holding :data:`HDF4_LOCK` throughout.

    The file is first checked with :func:`check_hdf4_complete` and
    :func:`verify_hdf4_data`, so truncated files and corrupt compressed pixel data are
    refused here, before pyhdf sees them.

    Raises
    ------
    CorruptFileError
        If the file is missing, empty, not HDF4, truncated, its compressed data fail their
        checksum, or pyhdf cannot open it.
    """
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    p = Path(path)
    verify_hdf4_data(p)  # outside the lock: plain file reads (completeness, then checksums)
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
