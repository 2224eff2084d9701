"""hdf4.check_hdf4_complete: truncated real VIIRS / MCD64A1 files are refused, intact ones pass.

The expected cut-off is computed here with an independent plain-Python walk of the HDF4
data-descriptor chain (``struct``, one descriptor at a time), so the check is tested
against the file format, not against itself.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from firesmoke.errors import CorruptFileError
from firesmoke.io import hdf4
from firesmoke.io.hdf4 import check_hdf4_complete

VIIRS_GLOB = "viirs750/NPP_VMAES_L1.*.Reflectance_M5.hdf"
MCD64_SAMPLE = "mcd64a1/MCD64A1.A2001213.h08v04.006.2017012140005.hdf"


def _sample(real_data: Path, which: str) -> Path:
    if which == "viirs":
        found = sorted(real_data.glob(VIIRS_GLOB))
        if not found:
            pytest.skip(f"no {VIIRS_GLOB} in {real_data}")
        return found[0]
    p = real_data / MCD64_SAMPLE
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


def _descriptor_walk(data: bytes) -> tuple[list[int], int]:
    """(offsets of the descriptor blocks, byte where the last data element ends)."""
    blocks, end, offset = [], 0, 4
    while offset:
        blocks.append(offset)
        ndds, nxt = struct.unpack(">hi", data[offset : offset + 6])
        for i in range(ndds):
            tag, _ref, off, length = struct.unpack(">HHii", data[offset + 6 + 12 * i : offset + 18 + 12 * i])
            if tag != 1 and off > 0 and length > 0:
                end = max(end, off + length)
        offset = nxt
    return blocks, end


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _assert_refused(p: Path, match: str | None = None) -> CorruptFileError:
    with pytest.raises(CorruptFileError) as info:
        check_hdf4_complete(p)
    assert info.value.path == str(p)
    assert str(p) in str(info.value)
    if match is not None:
        assert match in str(info.value), str(info.value)
    return info.value


@pytest.mark.real
@pytest.mark.parametrize("which", ["viirs", "mcd64"])
def test_intact_samples_pass(real_data: Path, which: str) -> None:
    src = _sample(real_data, which)
    check_hdf4_complete(src)  # no exception
    check_hdf4_complete(str(src))  # str paths too
    blocks, end = _descriptor_walk(src.read_bytes())
    assert len(blocks) >= 2 and 0 < end <= src.stat().st_size


@pytest.mark.real
@pytest.mark.parametrize("which", ["viirs", "mcd64"])
def test_truncated_samples_are_refused(real_data: Path, tmp_path: Path, which: str) -> None:
    src = _sample(real_data, which)
    data = src.read_bytes()
    blocks, end = _descriptor_walk(data)
    cuts = sorted({1, 3, 4, 5, 100, blocks[1] + 3, len(data) // 3, len(data) // 2, end - 1000, end - 1})
    for cut in cuts:
        p = _write(tmp_path, f"cut{cut}_{src.name}", data[:cut])
        err = _assert_refused(p)
        assert any(w in err.reason for w in ("truncated", "signature", "descriptor")), (cut, err.reason)
        p.unlink()
    # the exact cut-off: everything up to the end of the last data element is enough
    p = _write(tmp_path, f"exact_{src.name}", data[:end])
    check_hdf4_complete(p)
    p = _write(tmp_path, f"short1_{src.name}", data[: end - 1])
    _assert_refused(p, match=f"data run to byte {end} but the file has {end - 1} bytes")


@pytest.mark.real
def test_broken_descriptor_chain(real_data: Path, tmp_path: Path) -> None:
    src = _sample(real_data, "mcd64")
    data = bytearray(src.read_bytes())
    blocks, _ = _descriptor_walk(bytes(data))
    # next-block offset pointing past the end of the file
    bad = bytearray(data)
    bad[blocks[0] + 2 : blocks[0] + 6] = struct.pack(">i", len(data) + 10)
    _assert_refused(_write(tmp_path, "past_end.hdf", bytes(bad)), match="descriptor chain")
    # a chain that loops back on itself must not hang
    bad = bytearray(data)
    bad[blocks[-1] + 2 : blocks[-1] + 6] = struct.pack(">i", blocks[0])
    _assert_refused(_write(tmp_path, "loop.hdf", bytes(bad)), match="descriptor chain")
    # a negative descriptor count
    bad = bytearray(data)
    bad[blocks[1] : blocks[1] + 2] = struct.pack(">h", -5)
    _assert_refused(_write(tmp_path, "negative.hdf", bytes(bad)), match="descriptor block")
    # a descriptor whose element ends beyond the file (length inflated, size unchanged)
    bad = bytearray(data)
    ndds, _ = struct.unpack(">hi", bytes(bad[blocks[0] : blocks[0] + 6]))
    for i in range(ndds):
        at = blocks[0] + 6 + 12 * i
        tag, _ref, off, length = struct.unpack(">HHii", bytes(bad[at : at + 12]))
        if tag != 1 and off > 0 and length > 0:
            bad[at + 8 : at + 12] = struct.pack(">i", len(data) - off + 1)
            break
    _assert_refused(_write(tmp_path, "long_element.hdf", bytes(bad)), match=f"but the file has {len(data)} bytes")


def test_not_hdf4(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "missing.hdf", match="file not found")
    _assert_refused(_write(tmp_path, "empty.hdf", b""), match="file is empty")
    _assert_refused(_write(tmp_path, "text.hdf", b"hello, not hdf"), match="bad signature")
    folder = tmp_path / "folder.hdf"
    folder.mkdir()
    _assert_refused(folder, match="not a regular file")


@pytest.mark.real
@pytest.mark.parametrize("which", ["viirs", "mcd64"])
def test_open_sd_and_read_sds_refuse_truncated(real_data: Path, tmp_path: Path, which: str) -> None:
    """Every HDF4 reader goes through open_sd, which runs the check before pyhdf."""
    src = _sample(real_data, which)
    data = src.read_bytes()
    _, end = _descriptor_walk(data)
    p = _write(tmp_path, src.name, data[: end - 500])
    for call in (lambda: hdf4.read_attributes(p), lambda: hdf4.sds_info(p)):
        with pytest.raises(CorruptFileError, match="file truncated") as info:
            call()
        assert info.value.path == str(p)
    with pytest.raises(CorruptFileError, match="file truncated"), hdf4.open_sd(p):
        pass  # pragma: no cover - never entered
    # the intact file still opens and reads
    with hdf4.open_sd(src) as sd:
        assert len(sd.datasets()) >= 1
