"""Truncated and corrupted copies of the real FIRMS and MCD64A1 samples.

Every cut must give either the good part of the data with a report, or a clear
firesmoke InputError naming the file; never a bare pandas/pyarrow/pyhdf error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from firesmoke.errors import CorruptFileError, InputError, MissingColumnError
from firesmoke.io.burned_area.fraction import daily_burned_fraction
from firesmoke.io.burned_area.mcd64 import open_mcd64a1
from firesmoke.io.firms import firms_report, read_firms

FIRMS_SAMPLES = ["firms/SUOMI_VIIRS_C2_Europe_24h_20220905.csv", "firms/fire_archive_M6_96619.csv"]
MCD64_SAMPLE = "mcd64a1/MCD64A1.A2001213.h08v04.006.2017012140005.hdf"


def firms_offsets(data: bytes) -> list[int]:
    header_end = data.index(b"\n") + 1
    lines = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    mid = lines[len(lines) // 2]
    return sorted({
        1, 10, header_end - 1, header_end, header_end + 1, header_end + 30,
        mid - 1, mid, mid + 7, mid + 40, len(data) - 3, len(data) - 1,
    })


@pytest.mark.real
@pytest.mark.parametrize("sample", FIRMS_SAMPLES)
def test_truncated_firms_gives_good_rows_or_input_error(real_data: Path, tmp_path: Path, sample: str) -> None:
    src = real_data / sample
    data = src.read_bytes()
    full = read_firms(src)
    header_end = data.index(b"\n") + 1
    for cut in firms_offsets(data):
        p = tmp_path / f"cut_{cut}.csv"
        p.write_bytes(data[:cut])
        try:
            df = read_firms(p)
        except InputError as exc:
            assert str(p) in str(exc)
            assert cut < header_end  # only a cut header may fail (missing columns)
            assert isinstance(exc, MissingColumnError)
            continue
        piece = data[:cut]
        complete = piece.count(b"\n") - 1 if cut >= header_end else 0
        partial = cut > header_end and not piece.endswith(b"\n")
        rep = firms_report(df).files[0]
        assert len(df) in (complete, complete + 1), cut
        if len(df) == complete + 1:  # the partial last line happened to parse
            assert any("may be truncated" in n for n in rep.notes)
        elif partial:
            assert rep.bad_rows == 1
            assert rep.issues[-1].lines == (complete + 2,)
        n = min(len(df), complete)
        pd.testing.assert_frame_equal(
            df.iloc[:n][["latitude", "longitude", "time", "confidence", "daynight"]].reset_index(drop=True),
            full.iloc[:n][["latitude", "longitude", "time", "confidence", "daynight"]].reset_index(drop=True),
        )
        # strict mode turns the partial line into an error with its line number, or passes
        if rep.bad_rows:
            with pytest.raises(InputError, match=f"line {complete + 2}"):
                read_firms(p, strict=True)


@pytest.mark.real
def test_corrupted_firms_bytes(real_data: Path, tmp_path: Path) -> None:
    data = bytearray((real_data / FIRMS_SAMPLES[0]).read_bytes())
    data[500:520] = b"\x00" * 20  # NUL bytes in the first block: binary
    p = tmp_path / "nul.csv"
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError) as err:
        read_firms(p)
    assert str(p) in str(err.value)


def mcd64_offsets(size: int) -> list[int]:
    return [0, 3, 4, 50, 1000, 30_000, 100_000, 272_000, 400_000, 430_000, size - 1000, size - 2]


@pytest.mark.real
def test_truncated_mcd64_is_corrupt_file_error(real_data: Path, tmp_path: Path) -> None:
    src = real_data / MCD64_SAMPLE
    data = src.read_bytes()
    for cut in mcd64_offsets(len(data)):
        p = tmp_path / f"MCD64A1.A2001213.h08v04.006.cut{cut}.hdf"
        p.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError) as err:
            open_mcd64a1(p).burn_date.values  # noqa: B018  (compute)
        assert str(p) in str(err.value), cut


@pytest.mark.real
def test_overwritten_mcd64_bytes_never_bare_errors(real_data: Path, tmp_path: Path) -> None:
    src = real_data / MCD64_SAMPLE
    data = src.read_bytes()
    good = open_mcd64a1(src).burn_date.values
    outcomes = set()
    for start in (30, 300, 1000, 20_000, 28_757, 271_911, 429_200):
        broken = bytearray(data)
        broken[start : start + 2000] = b"\xff" * 2000
        p = tmp_path / f"MCD64A1.A2001213.h08v04.006.x{start}.hdf"
        p.write_bytes(bytes(broken))
        try:
            values = open_mcd64a1(p).burn_date.values
        except CorruptFileError as exc:
            assert str(p) in str(exc)
            outcomes.add("error")
        else:  # damage outside the Burn Date data: values unchanged
            np.testing.assert_array_equal(values, good)
            outcomes.add("ok")
    assert "error" in outcomes


@pytest.mark.real
def test_truncated_mcd64_listed_as_skipped(real_data: Path, tmp_path: Path) -> None:
    from firesmoke.grid import Region

    data = (real_data / MCD64_SAMPLE).read_bytes()
    p = tmp_path / "MCD64A1.A2001213.h08v04.006.2017012140005.hdf"
    p.write_bytes(data[: len(data) // 2])
    frac = daily_burned_fraction(Region("T", (-121, 41, -120, 42), 0.05), [p], "2001-08-01", "2001-08-02")
    skipped = frac.attrs["skipped_inputs"]
    # the file, and the month it leaves without any file
    assert len(skipped) == 2 and str(p) in skipped[0] and "2001-08" in skipped[1]
    assert np.isnan(frac.values).all()
