"""Deterministic, atomic HDF4 (SD) file writing for the synthetic products.

* Files are created under a staging folder by their bare name and moved into place:
  HDF4 records the path given at creation inside the file, so writing by bare name keeps
  the bytes independent of the output folder (same seed, same bytes anywhere), and a file
  exists either complete or not at all.
* Attributes keep the order and HDF types they are given; SDS are deflate-compressed
  (level 4, like the NASA products).
* pyhdf fills character attributes one byte at a time in Python; filled buffers are
  cached (LRU) because the same long strings (``StructMetadata.0``: 32000 characters)
  recur in every file.
* All HDF4 calls hold :data:`firesmoke.io._core.hdf4.HDF4_LOCK` (the library is not thread-safe).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.io._core.hdf4 import HDF4_LOCK

__all__ = ["write_hdf4"]

_SDC_OF_DTYPE = {
    np.dtype(np.uint16): 23,  # SDC.UINT16
    np.dtype(np.float32): 5,  # SDC.FLOAT32
    np.dtype(np.int16): 22,  # SDC.INT16
    np.dtype(np.uint8): 21,  # SDC.UINT8
}


def _sdc_type(name: str) -> int:
    from pyhdf.SD import SDC

    return {
        "CHAR8": SDC.CHAR8,
        "FLOAT32": SDC.FLOAT32,
        "FLOAT64": SDC.FLOAT64,
        "UINT8": SDC.UINT8,
        "INT8": SDC.INT8,
        "INT16": SDC.INT16,
        "UINT16": SDC.UINT16,
        "INT32": SDC.INT32,
    }[name]


def _py(value: Any) -> Any:
    """Attribute values as plain Python numbers/lists (what pyhdf accepts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_py(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: Filled pyhdf CHAR8 buffers by string value: pyhdf fills attribute buffers one
#: character at a time in Python, which dominates the cost of writing the 32000-char
#: ``StructMetadata.0`` of every file; the same strings recur across files.
_CHAR_BUFFERS: OrderedDict[str, Any] = OrderedDict()
_CHAR_BUFFERS_MAX = 256


def _set_char_attr(sd_or_sds: Any, name: str, value: str) -> None:
    """Set a CHAR8 attribute through a cached, pre-filled pyhdf buffer."""
    from pyhdf import hdfext
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SDC

    buf = _CHAR_BUFFERS.get(value)
    if buf is None:
        while len(_CHAR_BUFFERS) >= _CHAR_BUFFERS_MAX:
            _CHAR_BUFFERS.popitem(last=False)  # least recently used
        data = value.encode("latin-1")
        buf = hdfext.array_byte(len(data))
        for i, byte in enumerate(data):
            buf[i] = byte
        _CHAR_BUFFERS[value] = buf
    else:
        _CHAR_BUFFERS.move_to_end(value)
    status = hdfext.SDsetattr(sd_or_sds._id, name, SDC.CHAR8, len(value), buf)
    if status < 0:
        raise HDF4Error(f"cannot set attribute {name!r}")


def _create_sd(folder: Path, name: str) -> Any:
    """Create an HDF4 SD file by its bare name from inside ``folder``.

    HDF4 records the path given to ``SDstart`` inside the file; opening by the bare name
    (the working directory is switched for that call only) keeps the bytes independent
    of where the scenario is written. The path is not used after ``SDstart``.
    """
    from pyhdf.SD import SD, SDC

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return SD(name, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    finally:
        os.chdir(cwd)


def write_hdf4(
    path: Path,
    global_attrs: list[tuple[str, str, Any]],
    datasets: list[tuple[str, np.ndarray, tuple[str, str], list[tuple[str, str, Any]]]],
    staging: Path,
) -> Path:
    """Write an HDF4 SD file atomically: under ``staging`` with its final name, then moved.

    ``datasets`` items are ``(name, array, (ydim name, xdim name), attributes)``; arrays
    are deflate-compressed (level 4, as the real products). Attribute values of type
    ``"FILL"`` are set with ``SDsetfillvalue`` (the ``_FillValue`` attribute).
    """
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SDC

    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / path.name
    with HDF4_LOCK:
        if tmp.exists():
            tmp.unlink()
        sd = _create_sd(staging, path.name)
        try:
            for name, typ, value in global_attrs:
                if typ == "CHAR8":
                    _set_char_attr(sd, name, value)
                else:
                    sd.attr(name).set(_sdc_type(typ), _py(value))
            for name, arr, dims, attrs in datasets:
                sdc = _SDC_OF_DTYPE[arr.dtype]
                ds = sd.create(name, sdc, arr.shape)
                ds.dim(0).setname(dims[0])
                ds.dim(1).setname(dims[1])
                for aname, atyp, aval in attrs:
                    if atyp == "FILL":
                        ds.setfillvalue(_py(aval))
                    elif atyp == "CHAR8":
                        _set_char_attr(ds, aname, aval)
                    else:
                        ds.attr(aname).set(_sdc_type(atyp), _py(aval))
                ds.setcompress(SDC.COMP_DEFLATE, value=4)
                ds[:] = arr
                ds.endaccess()
        except BaseException as exc:
            sd.end()
            tmp.unlink(missing_ok=True)
            if isinstance(exc, HDF4Error):
                raise OSError(f"cannot write HDF4 file {path}: {exc}") from exc
            raise
        sd.end()
    os.replace(tmp, path)
    return path
