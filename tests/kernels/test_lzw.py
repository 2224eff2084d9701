"""The LZW structure scan against a plain-Python TIFF LZW decoder and encoder."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from firesmoke.kernels.lzw import LZW_BAD_CODE, LZW_NO_EOI, LZW_NOT_GREEDY, LZW_OK, lzw_scan


def _pack(codes: list[int]) -> bytes:
    """TIFF LZW bit packing (MSB first, width growing one code early), as libtiff writes."""
    bits, width, nxt = [], 9, 258
    for i, c in enumerate(codes):
        bits.extend((c >> (width - 1 - k)) & 1 for k in range(width))
        if c == 256:
            width, nxt = 9, 258
        elif c != 257 and i > 0 and codes[i - 1] != 256:
            nxt += 1
            if nxt >= (1 << width) - 1 and width < 12:
                width += 1
    bits.extend([0] * (-len(bits) % 8))
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _encode(data: bytes) -> list[int]:
    """A greedy LZW encoder (Clear first, Clear when the table is full, EOI last)."""
    table = {bytes([i]): i for i in range(256)}
    codes, w = [256], b""
    for byte in data:
        wc = w + bytes([byte])
        if wc in table:
            w = wc
            continue
        codes.append(table[w])
        table[wc] = 258 + len(table) - 256
        if len(table) - 256 + 258 >= 4094:
            codes.append(256)
            table = {bytes([i]): i for i in range(256)}
        w = bytes([byte])
    codes += ([table[w]] if w else []) + [257]
    return codes


def _decode(stream: bytes) -> bytes:
    """A plain TIFF LZW decoder (the reference for the scan's decoded length)."""
    bits = "".join(f"{b:08b}" for b in stream)
    pos, width, table, prev, out = 0, 9, None, None, bytearray()
    while pos + width <= len(bits):
        code = int(bits[pos:pos + width], 2)
        pos += width
        if code == 256:
            table, prev, width = {i: bytes([i]) for i in range(256)}, None, 9
            continue
        if code == 257:
            break
        if prev is None:
            entry = table[code]
        else:
            entry = table[code] if code in table else prev + prev[:1]
            table[258 + len(table) - 256] = prev + entry[:1]
            if 258 + len(table) - 256 >= (1 << width) - 1 and width < 12:
                width += 1
        out += entry
        prev = entry
    return bytes(out)


@pytest.mark.parametrize("data", [b"", b"A", b"ABABABABABAB" * 50, bytes(range(256)) * 40,
                                  np.random.default_rng(0).integers(0, 4, 20000, np.uint8).tobytes()])
def test_scan_matches_the_reference_on_greedy_streams(data):
    stream = _pack(_encode(data))
    assert _decode(stream) == data
    total, end, status = lzw_scan(np.frombuffer(stream, np.uint8))
    assert status == LZW_OK and total == len(data)
    assert (end + 7) // 8 == len(stream)


def test_scan_agrees_with_gdal_written_blocks(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 300, (3, 40, 50)).astype(np.uint16)
    path = tmp_path / "a.tif"
    with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=3, dtype="uint16",
                       crs="EPSG:32631", transform=from_origin(0, 0, 10, 10), compress="lzw",
                       blockysize=16) as dst:
        dst.write(pixels)
    raw = path.read_bytes()
    with rasterio.open(path) as src:
        for by in range(3):
            off = int(src.get_tag_item(f"BLOCK_OFFSET_0_{by}", "TIFF", bidx=1))
            size = int(src.get_tag_item(f"BLOCK_SIZE_0_{by}", "TIFF", bidx=1))
            block = raw[off:off + size]
            rows = min(16, 40 - by * 16)
            expect = pixels[:, by * 16:by * 16 + rows].transpose(1, 2, 0).tobytes()
            assert _decode(block) == expect
            total, _, status = lzw_scan(np.frombuffer(block, np.uint8))
            assert status == LZW_OK and total == len(expect)


def test_damaged_streams():
    good = _encode(b"ABCABCABCABC" * 20)
    _, _, status = lzw_scan(np.frombuffer(_pack(good)[:-3], np.uint8))
    assert status == LZW_NO_EOI
    bad = list(good)
    bad[5] = 1000  # beyond the table
    assert lzw_scan(np.frombuffer(_pack(bad), np.uint8))[2] == LZW_BAD_CODE
    # 'A','B','A','B' as single bytes: "AB" defined twice, which no greedy encoder writes
    literal = [256, 65, 66, 65, 66, 257]
    assert _decode(_pack(literal)) == b"ABAB"
    assert lzw_scan(np.frombuffer(_pack(literal), np.uint8))[2] == LZW_NOT_GREEDY
