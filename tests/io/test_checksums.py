"""zlib stream verification shared by the HDF4 and GeoTIFF readers."""

from __future__ import annotations

import tracemalloc
import zlib

import numpy as np

from firesmoke.io._core.checksums import INFLATE_STEP, zlib_stream_problem


def test_intact_streams_pass_including_ones_larger_than_a_step():
    small = zlib.compress(b"firesmoke" * 100)
    assert zlib_stream_problem(small) is None
    assert zlib_stream_problem(small, 900) is None
    # random bytes plus a long run: output pending after the input is used up
    data = np.random.default_rng(0).integers(0, 255, 3 * INFLATE_STEP, dtype=np.uint8).tobytes() + bytes(5 * INFLATE_STEP)
    assert zlib_stream_problem(zlib.compress(data, 6), len(data)) is None


def test_damage_is_reported():
    data = np.random.default_rng(1).integers(0, 255, 100_000, dtype=np.uint8).tobytes()
    stream = bytearray(zlib.compress(data))
    assert "cut short" in zlib_stream_problem(bytes(stream[: len(stream) // 2]))
    assert "inflates to 100000 bytes, its header declares 100001" == zlib_stream_problem(bytes(stream), 100_001)
    assert "more than the 99999 bytes" in zlib_stream_problem(bytes(stream), 99_999)
    flipped = bytearray(stream)
    flipped[len(flipped) // 2] ^= 0x04
    assert "deflate stream corrupt" in zlib_stream_problem(bytes(flipped))
    adler = bytearray(stream)
    adler[-1] ^= 0x01  # only the checksum itself damaged
    assert "incorrect data check" in zlib_stream_problem(bytes(adler))
    assert "deflate stream corrupt" in zlib_stream_problem(b"not zlib at all")


def test_memory_is_bounded_for_a_compression_bomb():
    # 256 MiB of zeros in 255 kB: 64 steps, 16 times the bound below (800 MiB took 3 s more
    # to compress and inflate and showed nothing more)
    bomb = zlib.compress(bytes(64 * INFLATE_STEP), 9)
    assert len(bomb) < 300_000
    tracemalloc.start()
    try:
        assert "more than the 1000 bytes" in zlib_stream_problem(bomb, 1000)
        assert zlib_stream_problem(bomb) is None  # no declared length: inflated in steps
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * INFLATE_STEP
