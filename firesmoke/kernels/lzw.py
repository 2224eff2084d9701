"""Structure check of TIFF LZW streams (a Numba kernel): lengths, not bytes.

LZW carries no checksum, so a flipped bit in an LZW-compressed GeoTIFF block reads back as
other pixels without an error from GDAL. But a flip usually changes the code sequence
after it, and with it the number of bytes the stream decodes to or where its
end-of-information code lies. :func:`lzw_scan` walks a TIFF LZW stream (MSB-first codes
of 9 to 12 bits, Clear = 256, EOI = 257, the code width growing one code early as in
libtiff) keeping only the length and first byte of each table entry and the set of
entries defined (about 100 KB, no output buffer, whatever the block size). Besides bad codes and a missing end code it checks the
one redundancy every LZW encoder leaves (libtiff's, GDAL's, imagecodecs'): encoders are
greedy, they emit the code of the longest string already in the table, so the entry a
decoder adds (previous string + next first byte) is never already in the table. A code
changed by a flip usually breaks this within a few codes. The caller compares the decoded
length with the block's size and the end of the stream with the block's byte count.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["LZW_BAD_CODE", "LZW_NOT_GREEDY", "LZW_NO_EOI", "LZW_OK", "lzw_scan"]

#: Status codes returned by :func:`lzw_scan`.
LZW_OK = 0
LZW_BAD_CODE = 1  # a code beyond the table, or a first code after Clear that is not a byte
LZW_NO_EOI = 2  # the stream ends without its end-of-information code
LZW_NOT_GREEDY = 3  # an entry defined twice: no greedy encoder wrote this stream

_CLEAR = 256
_EOI = 257
_FIRST = 258
_MAX_BITS = 12
_TABLE = 1 << _MAX_BITS
_HASH = 2 * _TABLE  # slots of the entry set (at most half full)


@numba.njit(cache=True, nogil=True)
def lzw_scan(data: np.ndarray) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Walk the TIFF LZW stream ``data`` (uint8) without decoding it.

    Returns
    -------
    decoded, end_bit, status
        Bytes the stream decodes to (up to the end or the first bad code), the bit
        position just after its EOI code (-1 without one) and one of :data:`LZW_OK`,
        :data:`LZW_BAD_CODE`, :data:`LZW_NO_EOI`.
    """
    lens = np.zeros(_TABLE, np.int64)
    first = np.zeros(_TABLE, np.int64)
    for i in range(256):
        lens[i] = 1
        first[i] = i
    # the entries defined since the last Clear, as a set of keys (prefix code << 8 | byte):
    # open addressing, a slot counts only when stamped with the current generation, so a
    # Clear is one increment instead of a reset
    keys = np.zeros(_HASH, np.int32)
    stamps = np.zeros(_HASH, np.int32)
    gen = 1
    n_bytes = data.shape[0]
    nbits = n_bytes * 8
    pos = 0
    width = 9
    nxt = _FIRST
    prev = -1
    total = 0
    while pos + width <= nbits:
        i = pos >> 3  # MSB first: the code lies within 3 bytes from byte i
        word = np.int64(data[i]) << 16
        if i + 1 < n_bytes:
            word |= np.int64(data[i + 1]) << 8
        if i + 2 < n_bytes:
            word |= np.int64(data[i + 2])
        code = (word >> (24 - (pos & 7) - width)) & ((1 << width) - 1)
        pos += width
        if code == _CLEAR:
            gen += 1
            width = 9
            nxt = _FIRST
            prev = -1
            continue
        if code == _EOI:
            return total, pos, LZW_OK
        if prev < 0:
            if code >= 256:
                return total, -1, LZW_BAD_CODE
            total += 1
            prev = code
            continue
        if code < nxt:
            n = lens[code]
            head = first[code]
        elif code == nxt:  # the KwKwK case: the entry being defined
            n = lens[prev] + 1
            head = first[prev]
        else:
            return total, -1, LZW_BAD_CODE
        if nxt < _TABLE:
            key = (prev << 8) | head
            h = (key * 40503) & (_HASH - 1)
            while stamps[h] == gen:
                if keys[h] == key:
                    return total, -1, LZW_NOT_GREEDY
                h = (h + 1) & (_HASH - 1)
            keys[h] = key
            stamps[h] = gen
            lens[nxt] = lens[prev] + 1
            first[nxt] = first[prev]
            nxt += 1
            if nxt >= (1 << width) - 1 and width < _MAX_BITS:
                width += 1
        total += n
        prev = code
    return total, -1, LZW_NO_EOI
