"""Checksum verification of zlib streams, shared by the HDF4 and GeoTIFF readers.

HDF4 and GDAL store deflate-compressed pixels as zlib streams, each ending in an adler32
checksum of its uncompressed bytes, and neither library checks it: a flipped bit in
compressed data reads back as plausible, wrong values. :mod:`zlib` does check it.
"""

from __future__ import annotations

import zlib

__all__ = ["INFLATE_STEP", "zlib_stream_problem"]

#: Bytes inflated per step: memory stays bounded whatever a stream or its header claims.
INFLATE_STEP = 1 << 22


def zlib_stream_problem(stream: bytes, expected: int | None = None) -> str | None:
    """Why ``stream`` is not one intact zlib stream (of ``expected`` bytes), or None.

    The stream is inflated in steps of :data:`INFLATE_STEP` bytes, its output discarded;
    zlib verifies the adler32 checksum when it reaches the end of the stream.

    Parameters
    ----------
    stream
        The compressed bytes (zlib format: header, deflate data, adler32).
    expected
        The uncompressed length the container declares, if it declares one.

    Returns
    -------
    str or None
        ``"deflate stream corrupt (... incorrect data check)"``, ``"... cut short ..."``,
        a length mismatch, or None when the stream is intact.
    """
    inflater = zlib.decompressobj()
    total, data = 0, stream
    try:
        while not inflater.eof:
            produced = len(inflater.decompress(data, INFLATE_STEP))
            total += produced
            if expected is not None and total > expected:
                return f"inflates to more than the {expected} bytes its header declares"
            data = inflater.unconsumed_tail
            if not produced and not data:
                break  # input used up and no more output: the stream ends early
    except zlib.error as exc:
        return f"deflate stream corrupt ({exc})"
    if not inflater.eof:
        return "deflate stream cut short (no end-of-stream marker)"
    if expected is not None and total != expected:
        return f"inflates to {total} bytes, its header declares {expected}"
    return None
