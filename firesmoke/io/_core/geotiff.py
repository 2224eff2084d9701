"""Verified GeoTIFF reads: georeferencing checks and window reads whose errors name the file.

GDAL reports a damaged strip or tile only when it is read, which for lazy (dask) arrays
is at compute time, and rasterio's ``RasterioIOError: Read failed`` does not say which
file failed; a damaged header can also make GDAL drop the georeferencing (no CRS, or the
identity geotransform when the pixel scale tag is unreadable) with only a warning; and
GDAL does not check the adler32 checksum of deflate-compressed blocks (nor can anyone
check LZW blocks, which have none), so a flipped bit in compressed pixels reads back as
wrong values. The helpers here turn all of these into
:class:`~firesmoke.errors.InputError` subclasses that name the file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.enums import Compression, Interleaving
from rasterio.errors import RasterioError
from rasterio.windows import Window

from firesmoke.errors import CorruptFileError, InputError
from firesmoke.io._core.checksums import zlib_stream_problem

__all__ = [
    "CheckedGeoTiff",
    "check_georeferenced",
    "geotiff_error",
    "lzw_block_problem",
    "open_checked_geotiff",
    "verify_blocks",
    "verify_deflate_blocks",
]


def geotiff_error(path: Any, exc: BaseException, what: str = "cannot read as GeoTIFF") -> InputError:
    """The :class:`InputError` for a GDAL/rasterio failure on ``path`` (missing file or corrupt)."""
    if not os.path.exists(path):
        return InputError("file not found", path=path)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return CorruptFileError(f"{what} ({first}); file truncated or corrupt?", path=path)


def check_georeferenced(src: rasterio.DatasetReader, path: Any) -> None:
    """Raise :class:`CorruptFileError` unless ``src`` has a CRS and a real geotransform.

    GDAL gives the identity transform to a raster without a (readable) geotransform; a
    rotated or sheared transform is refused as well (no reader here supports it).
    """
    if src.crs is None:
        raise CorruptFileError("GeoTIFF has no CRS (georeferencing missing or unreadable)", path=path)
    t = src.transform
    if t.is_identity or not np.all(np.isfinite(tuple(t)[:6])) or t.a == 0 or t.e == 0:
        raise CorruptFileError(
            f"GeoTIFF has no usable geotransform ({tuple(t)[:6]}); pixel scale or tie point "
            "missing or unreadable",
            path=path,
        )
    if t.b != 0 or t.d != 0:
        raise CorruptFileError("rotated/sheared geotransforms are not supported", path=path)


#: Compression schemes whose blocks :func:`verify_blocks` checks.
CHECKED_CODECS = (Compression.deflate, Compression.lzw)


def _block_bytes(src: rasterio.DatasetReader, by: int, bands_per_block: int) -> int | None:
    """Bytes one block decodes to (strips: the last one may be shorter); None if unknown."""
    itemsize = np.dtype(src.dtypes[0]).itemsize
    if src.tags(ns="IMAGE_STRUCTURE").get("NBITS") or len(set(src.dtypes)) != 1:
        return None  # packed sub-byte samples or mixed dtypes: no simple size
    bh, bw = src.block_shapes[0]
    if src.is_tiled:
        rows = bh
    else:
        rows = min(bh, src.height - by * bh)
        bw = src.width
    return rows * bw * bands_per_block * itemsize


def lzw_block_problem(stream: bytes, expected: int | None) -> str | None:
    """Why an LZW block is damaged (None if its structure is intact).

    Checked with :func:`firesmoke.kernels.lzw.lzw_scan`: every code within the table and
    as a greedy encoder writes it, an end-of-information code, the decoded length equal to the block's size (when known)
    and nothing but padding after the end code.
    """
    from firesmoke.kernels.lzw import (  # deferred: numba kernel (~0.2 s), failed blocks only
        LZW_BAD_CODE,
        LZW_NO_EOI,
        LZW_NOT_GREEDY,
        lzw_scan,
    )

    data = np.frombuffer(stream, np.uint8)
    if len(data) >= 2 and data[0] == 0 and data[1] & 1:
        return None  # old-style (LSB-first) LZW of libtiff < 5: not checked
    decoded, end_bit, status = lzw_scan(data)
    if status == LZW_BAD_CODE:
        return f"invalid LZW code after {decoded} decoded bytes"
    if status == LZW_NOT_GREEDY:
        return f"LZW codes no encoder writes (a table entry defined twice) after {decoded} bytes"
    if status == LZW_NO_EOI:
        return f"LZW stream has no end code (cut short?) after {decoded} decoded bytes"
    if expected is not None and decoded != expected:
        return f"LZW stream decodes to {decoded} bytes, the block holds {expected}"
    tail = data[(end_bit + 7) // 8:]
    if len(tail) > 8 or tail.any():
        return f"{len(tail)} byte(s) of data after the LZW end code"
    return None


def verify_blocks(
    src: rasterio.DatasetReader,
    path: Any,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
    bands: Any = None,
) -> int:
    """Check the compressed blocks a read will use: deflate checksums, LZW structure.

    The blocks (tiles or strips) covering ``rows`` x ``cols`` (default: all) of ``bands``
    (1-based; default all) are located through GDAL's ``BLOCK_OFFSET_x_y`` /
    ``BLOCK_SIZE_x_y`` TIFF metadata. Deflate blocks are inflated with :mod:`zlib`, which
    verifies each stream's adler32 checksum. LZW has no checksum: each block's code
    stream is walked (:func:`lzw_block_problem`) and must decode to exactly the block's
    size and end with its end code, which catches most, not all, damage (see
    ``docs/safety.md`` for the measured rate). Files that are not local, uncompressed or
    otherwise compressed pass unchecked.

    Returns
    -------
    int
        The number of blocks checked.

    Raises
    ------
    CorruptFileError
        If a block's stream is corrupt, cut short or lies outside the file.
    """
    if src.compression not in CHECKED_CODECS or not os.path.isfile(path):
        return 0
    lzw = src.compression == Compression.lzw
    bh, bw = src.block_shapes[0]
    r0, r1 = rows if rows is not None else (0, src.height)
    c0, c1 = cols if cols is not None else (0, src.width)
    if r1 <= r0 or c1 <= c0:
        return 0
    pixel = src.interleaving == Interleaving.pixel or src.count == 1
    indexes = [1] if pixel else list(bands or src.indexes)
    per_block = src.count if pixel else 1
    name = "LZW" if lzw else "deflate"
    checked = 0
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        for bidx in indexes:
            for by in range(r0 // bh, (r1 - 1) // bh + 1):
                for bx in range(c0 // bw, (c1 - 1) // bw + 1):
                    offset = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=bidx)
                    length = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=bidx)
                    if not offset or not length or int(length) == 0:
                        continue  # sparse block: GDAL fills it with nodata
                    offset, length = int(offset), int(length)
                    where = f"{name} block ({bx}, {by}) of band {bidx} at byte {offset}"
                    if offset + length > size:
                        raise CorruptFileError(f"{where} runs past the end of the file (truncated?)", path=path)
                    fh.seek(offset)
                    stream = fh.read(length)
                    if lzw:
                        why = lzw_block_problem(stream, _block_bytes(src, by, per_block))
                    else:
                        why = zlib_stream_problem(stream)
                    if why is not None:
                        raise CorruptFileError(f"{where}: {why}", path=path)
                    checked += 1
    return checked


verify_deflate_blocks = verify_blocks
"""The former name of :func:`verify_blocks` (deflate only, then)."""


class CheckedGeoTiff:
    """Array-like ``(band, y, x)`` view of a GeoTIFF for :func:`dask.array.from_array`.

    Each read opens the file, reads one window and closes it; any GDAL error (a damaged
    strip, a file truncated or replaced since it was opened) becomes a
    :class:`~firesmoke.errors.CorruptFileError` naming the file, at compute time too, and
    compressed blocks are checked with :func:`verify_blocks` first.
    The file must still have the shape and dtype it had when the view was made.
    """

    def __init__(self, path: str | os.PathLike[str], shape: tuple[int, int, int], dtype: Any) -> None:
        self.path = os.fspath(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        # an integer (dask fuses e.g. a squeezed band into the read) is a slice of one, dropped
        drop = tuple(i for i, k in enumerate(key) if isinstance(k, int | np.integer))
        for i in drop:
            if not -self.shape[i] <= int(key[i]) < self.shape[i]:
                raise IndexError(f"index {key[i]} out of range for axis {i} of {self.shape}")
        key = tuple(
            slice(int(k) % n, int(k) % n + 1) if i in drop else k
            for i, (k, n) in enumerate(zip(key, self.shape, strict=True))
        )
        bands, rows, cols = (
            range(*k.indices(n)) if isinstance(k, slice) else None for k, n in zip(key, self.shape, strict=True)
        )
        if bands is None or rows is None or cols is None or rows.step != 1 or cols.step != 1:
            raise IndexError(f"CheckedGeoTiff supports contiguous slices only, got {key!r}")
        out = self._read(bands, rows, cols)
        return out.squeeze(axis=drop) if drop else out

    def _read(self, bands: range, rows: range, cols: range) -> np.ndarray:
        if len(bands) == 0 or len(rows) == 0 or len(cols) == 0:
            return np.empty((len(bands), len(rows), len(cols)), dtype=self.dtype)
        window = Window(cols.start, rows.start, len(cols), len(rows))
        try:
            with rasterio.open(self.path) as src:
                if (src.count, src.height, src.width) != self.shape or np.dtype(src.dtypes[0]) != self.dtype:
                    raise CorruptFileError(
                        f"file changed while open: now {src.count}x{src.height}x{src.width} "
                        f"{src.dtypes[0]}, was {'x'.join(map(str, self.shape))} {self.dtype}",
                        path=self.path,
                    )
                indexes = [b + 1 for b in bands]
                verify_blocks(src, self.path, (rows.start, rows.stop), (cols.start, cols.stop), indexes)
                return src.read(indexes=indexes, window=window)
        except InputError:
            raise
        except (RasterioError, OSError) as exc:
            raise geotiff_error(
                self.path, exc, f"cannot read rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop}"
            ) from exc


def open_checked_geotiff(path: str | os.PathLike[str], chunks: dict[str, Any]) -> xr.DataArray:
    """rioxarray's ``(band, y, x)`` view of a georeferenced GeoTIFF, read through :class:`CheckedGeoTiff`.

    The header is checked first (CRS and geotransform present, else CorruptFileError);
    coordinates and attributes are rioxarray's, pixels come from a dask array over
    :class:`CheckedGeoTiff`, so read errors name the file also at compute time.

    Parameters
    ----------
    path
        A local GeoTIFF.
    chunks
        Dask chunks per dimension, ``{"band": ..., "y": ..., "x": ...}`` (``-1``: whole).
    """
    import dask.array
    import rioxarray
    from dask.base import tokenize

    try:
        with rasterio.open(path) as src:
            check_georeferenced(src, path)
        st = os.stat(path)
        da = rioxarray.open_rasterio(path, mask_and_scale=False, lock=False, cache=False)
    except InputError:
        raise
    except (RasterioError, OSError) as exc:
        raise geotiff_error(path, exc) from exc
    backend = CheckedGeoTiff(path, da.shape, da.dtype)
    spec = tuple(chunks.get(dim, -1) for dim in ("band", "y", "x"))
    token = tokenize(os.path.realpath(path), st.st_mtime_ns, st.st_size, spec)
    meta = np.empty((0, 0, 0), dtype=da.dtype)
    data = dask.array.from_array(backend, chunks=spec, name=f"geotiff-{token}", meta=meta, asarray=False)
    return da.copy(data=data)
