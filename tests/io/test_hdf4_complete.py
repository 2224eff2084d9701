"""hdf4.check_hdf4_complete: truncated real VIIRS / MCD64A1 files are refused, intact ones pass.

The expected cut-off is computed here with an independent plain-Python walk of the HDF4
data-descriptor chain (``struct``, one descriptor at a time), so the check is tested
against the file format, not against itself.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from firesmoke.errors import CorruptFileError
from firesmoke.io._core import hdf4
from firesmoke.io._core.hdf4 import check_hdf4_complete

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


# ----------------------------------------------------------------------------- verified data (issue 14)
def _compressed_elements(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every DFTAG_COMPRESSED (40) element, by a plain walk."""
    out, offset = [], 4
    while offset:
        ndds, nxt = struct.unpack(">hi", data[offset : offset + 6])
        for i in range(ndds):
            tag, _ref, off, length = struct.unpack(">HHii", data[offset + 6 + 12 * i : offset + 18 + 12 * i])
            if tag == 40 and length > 0:
                out.append((off, length))
        offset = nxt
    return out


@pytest.mark.real
def test_bit_flip_in_compressed_mcd64_data_is_refused_and_listed(real_data: Path, tmp_path: Path) -> None:
    """The issue's case: one flipped bit silently changed 340,743 first_day pixels."""
    from firesmoke.grid import Region
    from firesmoke.io.burned_area.fraction import daily_burned_fraction
    from firesmoke.io.burned_area.mcd64 import open_mcd64a1

    src = _sample(real_data, "mcd64")
    data = bytearray(src.read_bytes())
    elements = _compressed_elements(bytes(data))
    assert len(elements) == 20  # 5 SDS x 4 deflate-compressed chunks
    off, length = max(elements, key=lambda e: e[1])
    data[off + length // 2] ^= 0x10
    p = _write(tmp_path, src.name, bytes(data))
    with pytest.raises(CorruptFileError, match="incorrect data check") as info:
        open_mcd64a1(p)
    assert info.value.path == str(p) and f"at byte {off}" in str(info.value)
    # in the pipeline it is skipped and listed, like a truncated tile
    frac = daily_burned_fraction(Region("T", (-121, 41, -120, 42), 0.05), [p], "2001-08-01", "2001-08-02")
    listed = [s for s in frac.attrs["skipped_inputs"] if str(p) in s]
    assert len(listed) == 1 and "incorrect data check" in listed[0], frac.attrs["skipped_inputs"]


@pytest.mark.real
def test_every_flip_in_compressed_viirs_data_is_refused(real_data: Path, tmp_path: Path) -> None:
    src = _sample(real_data, "viirs")
    data = src.read_bytes()
    ((off, length),) = _compressed_elements(data)
    hdf4.verify_hdf4_data(src)  # intact: no exception
    for k, pos in enumerate(range(off, off + length, 97)):
        bad = bytearray(data)
        bad[pos] ^= 1 << (k % 8)
        p = _write(tmp_path, f"f{pos}_{src.name}", bytes(bad))
        err = _assert_refused_data(p)
        assert "deflate stream" in err.reason or "inflates" in err.reason, err.reason
        p.unlink()


def _assert_refused_data(p: Path) -> CorruptFileError:
    with pytest.raises(CorruptFileError) as info:
        hdf4.verify_hdf4_data(p)
    assert info.value.path == str(p)
    return info.value


@pytest.mark.real
def test_verification_is_cached_per_file_version(real_data: Path, tmp_path: Path, monkeypatch) -> None:
    src = _sample(real_data, "mcd64")
    p = _write(tmp_path, src.name, src.read_bytes())
    calls = []
    real_inflate = hdf4.zlib_stream_problem
    monkeypatch.setattr(hdf4, "zlib_stream_problem", lambda *a: calls.append(1) or real_inflate(*a))
    hdf4.verify_hdf4_data(p)
    assert len(calls) == 20
    hdf4.verify_hdf4_data(p)
    with hdf4.open_sd(p):
        pass
    assert len(calls) == 20  # cached by (path, inode, size, mtime)
    data = bytearray(p.read_bytes())
    off, _length = _compressed_elements(bytes(data))[0]
    data[off + 10] ^= 0x01
    p.write_bytes(bytes(data))  # a new version of the file (new mtime): checked again


    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    _assert_refused_data(p)


@pytest.mark.real
def test_overlapping_descriptors_are_refused(real_data: Path, tmp_path: Path) -> None:
    """A damaged offset that makes an element overlap another (read as someone else's bytes)."""
    src = _sample(real_data, "mcd64")
    data = bytearray(src.read_bytes())
    (a_off, a_len), (b_off, _b_len) = _compressed_elements(bytes(data))[:2]
    # point the second compressed element's descriptor into the middle of the first
    at = bytes(data).find(struct.pack(">HHii", 40, 2, b_off, _b_len))
    assert at > 0
    data[at + 4 : at + 8] = struct.pack(">i", a_off + a_len // 2)
    _assert_refused(_write(tmp_path, src.name, bytes(data)), match="overlap")


def test_zeroed_bytes_in_a_compressed_layer_skip_the_granule(tmp_path: Path) -> None:
    """The issue's synthetic case: 64 zeroed bytes in an M7 element gave 32,778 wrong NIR values."""
    import json
    import shutil

    import numpy as np

    from firesmoke.cube.build import build_cube
    from firesmoke.grid import Region
    from firesmoke.synthetic import generate_scenario

    region = Region.from_shape("ZB", -7.0, 41.0, 0.01, 48, 64)
    start, end = "2020-07-10", "2020-07-12"
    scn = generate_scenario(region, start, end, tmp_path / "scn", seed=5)
    victim = sorted(scn.viirs_dir.glob("*Reflectance_M7.hdf"))[0]
    granule = victim.name.split(".Reflectance_M7")[0]
    damaged_dir, without_dir = tmp_path / "damaged", tmp_path / "without"
    shutil.copytree(scn.viirs_dir, damaged_dir)
    shutil.copytree(scn.viirs_dir, without_dir, ignore=lambda _d, names: [n for n in names if n.startswith(granule)])
    data = bytearray(victim.read_bytes())
    ((off, length),) = _compressed_elements(bytes(data))
    data[off + length // 2 : off + length // 2 + 64] = bytes(64)
    (damaged_dir / victim.name).write_bytes(bytes(data))

    damaged = build_cube(region, start, end, viirs=damaged_dir)
    skipped = json.loads(damaged.attrs["skipped_inputs"])
    assert len(skipped) == 1 and victim.name in skipped[0]["path"], skipped
    assert "deflate" in skipped[0]["reason"] or "inflates" in skipped[0]["reason"], skipped
    # nothing silently wrong: the cube is the one built without that granule
    reference = build_cube(region, start, end, viirs=without_dir)
    assert {"red", "nir", "mir"} <= set(reference.data_vars)
    for name in reference.data_vars:
        np.testing.assert_array_equal(damaged[name].values, reference[name].values)
    assert np.isfinite(damaged["nir"].values).any()


@pytest.mark.real
def test_reader_handles_verify_files_not_validated_in_this_process(real_data: Path, tmp_path: Path) -> None:
    """Dask workers open cached pyhdf handles without the validation step: checked there too."""
    from firesmoke.io.viirs import readers

    src = _sample(real_data, "viirs")
    data = bytearray(src.read_bytes())
    ((off, length),) = _compressed_elements(bytes(data))
    data[off + length // 2] ^= 0x01
    p = _write(tmp_path, src.name, bytes(data))
    with pytest.raises(CorruptFileError, match="deflate stream") as info:
        readers._read_sds_window(str(p), "Reflectance_M5", (0, 0, 10, 10))
    assert info.value.path == str(p)


@pytest.mark.real
def test_non_finite_scale_or_offset_is_refused(real_data: Path, tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    from firesmoke.io.viirs.gridded import open_vmaes_granule
    from firesmoke.io.viirs.readers import VmaesReader

    src = _sample(real_data, "viirs")
    p = _write(tmp_path, src.name, src.read_bytes())
    sd = SD(str(p), SDC.WRITE)
    try:
        sds = sd.select("Reflectance_M5")
        sds.attr("Offset").set(SDC.FLOAT32, float("nan"))
        sds.endaccess()
    finally:
        sd.end()
    for call in (lambda: open_vmaes_granule([p], layers=["M05"]), lambda: VmaesReader.open([p], ("M05",))):
        with pytest.raises(CorruptFileError, match="implausible Scale/Offset") as info:
            call()
        assert info.value.path == str(p) and info.value.field == "Reflectance_M5"
