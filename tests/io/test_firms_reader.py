"""FIRMS CSV reader: real samples, every layout, bad rows, strict mode, filters, fuzzing."""

from __future__ import annotations

import csv
import logging
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firesmoke.errors import CorruptFileError, InputError, MissingColumnError
from firesmoke.io.firms import (
    OUTPUT_COLUMNS,
    BadRowError,
    empty_firms_table,
    firms_report,
    normalize_satellite,
    read_firms,
)

VIIRS_REAL = "firms/SUOMI_VIIRS_C2_Europe_24h_20220905.csv"
MODIS_REAL = "firms/fire_archive_M6_96619.csv"

VIIRS_NRT_HEADER = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight"
VIIRS_ARCHIVE_HEADER = (
    "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight,type"
)
MODIS_NRT_HEADER = "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence,version,bright_t31,frp,daynight"
MODIS_ARCHIVE_HEADER = (
    "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_t31,frp,daynight,type"
)

EXPECTED_DTYPES = {
    "latitude": "float64",
    "longitude": "float64",
    "time": "datetime64[ns]",
    "frp": "float32",
    "confidence": "category",
    "confidence_pct": "float32",
    "satellite": "category",
    "instrument": "category",
    "daynight": "category",
    "type": "Int8",
    "source_file": "category",
}


def write(path: Path, header: str, rows: list[str], newline_at_end: bool = True) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + ("\n" if newline_at_end and rows else ""), encoding="utf-8")
    return path


def independent_time(acq_date: str, acq_time: str) -> np.datetime64:
    """acq_date + acq_time decoded with the standard library only."""
    hhmm = int(acq_time)
    day = datetime.strptime(acq_date, "%Y-%m-%d")
    return np.datetime64(day + timedelta(hours=hhmm // 100, minutes=hhmm % 100), "ns")


def check_dtypes(df: pd.DataFrame) -> None:
    assert tuple(df.columns) == OUTPUT_COLUMNS
    for col, dtype in EXPECTED_DTYPES.items():
        assert str(df[col].dtype) == dtype, col
    assert list(df["confidence"].cat.categories) == ["low", "nominal", "high"]
    assert list(df["daynight"].cat.categories) == ["D", "N"]


# ----------------------------------------------------------------------------- real files
@pytest.mark.real
def test_real_viirs_file(real_data: Path) -> None:
    path = real_data / VIIRS_REAL
    df = read_firms(path)
    check_dtypes(df)
    assert len(df) == 1205
    assert df["daynight"].value_counts().to_dict() == {"N": 939, "D": 266}
    assert set(df["satellite"].astype(str)) == {"S-NPP"}
    assert set(df["instrument"].astype(str)) == {"VIIRS"}
    assert df["type"].isna().all() and df["confidence_pct"].isna().all()

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1205
    expected_time = np.array([independent_time(r["acq_date"], r["acq_time"]) for r in rows])
    np.testing.assert_array_equal(df["time"].to_numpy(), expected_time)
    np.testing.assert_array_equal(df["latitude"].to_numpy(), [float(r["latitude"]) for r in rows])
    np.testing.assert_array_equal(df["longitude"].to_numpy(), [float(r["longitude"]) for r in rows])
    np.testing.assert_array_equal(df["frp"].to_numpy(), np.array([float(r["frp"]) for r in rows], np.float32))
    assert list(df["confidence"].astype(str)) == [r["confidence"] for r in rows]
    rep = firms_report(df)
    assert rep.files[0].layout == "VIIRS" and rep.bad_rows == 0 and rep.files[0].rows_kept == 1205


@pytest.mark.real
def test_real_modis_archive_file(real_data: Path) -> None:
    path = real_data / MODIS_REAL
    df = read_firms(path)
    check_dtypes(df)
    assert len(df) == 36011
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected_time = np.array([independent_time(r["acq_date"], r["acq_time"]) for r in rows])
    np.testing.assert_array_equal(df["time"].to_numpy(), expected_time)
    pct = np.array([float(r["confidence"]) for r in rows])
    np.testing.assert_array_equal(df["confidence_pct"].to_numpy(), pct.astype(np.float32))
    expected_cls = np.where(pct < 30, "low", np.where(pct < 80, "nominal", "high"))
    np.testing.assert_array_equal(df["confidence"].astype(str).to_numpy(), expected_cls)
    assert list(df["satellite"].astype(str)) == [r["satellite"] for r in rows]
    assert set(df["instrument"].astype(str)) == {"MODIS"}
    assert df["type"].to_numpy(dtype=int).tolist() == [int(r["type"]) for r in rows]
    assert df["daynight"].astype(str).tolist() == [r["daynight"] for r in rows]
    assert firms_report(df).files[0].layout == "MODIS"


@pytest.mark.real
def test_real_folder_reads_both_in_order(real_data: Path) -> None:
    df = read_firms(real_data / "firms")
    assert len(df) == 1205 + 36011
    counts = df["source_file"].value_counts()
    assert sorted(counts.tolist()) == [1205, 36011]
    assert set(df["instrument"].astype(str)) == {"VIIRS", "MODIS"}
    # glob gives the same
    df2 = read_firms(str(real_data / "firms" / "*.csv"))
    pd.testing.assert_frame_equal(df, df2)


# ----------------------------------------------------------------------------- layouts
def test_viirs_nrt_layout(tmp_path: Path) -> None:
    p = write(tmp_path / "viirs_nrt.csv", VIIRS_NRT_HEADER, [
        "46.06979,13.63111,297.87,0.58,0.52,2022-09-04,0024,N,nominal,2.0NRT,283.65,0.99,N",
        "45.1,10.4,310.6,0.41,0.6,2022-09-04,1250,N,h,2.0NRT,286.45,12.5,D",
        "44.5,20.9,306.6,0.42,0.38,2022-09-05,0005,N,l,2.0NRT,279.87,0.84,N",
    ])
    df = read_firms(p)
    check_dtypes(df)
    assert df["confidence"].astype(str).tolist() == ["nominal", "high", "low"]
    assert df["time"].tolist() == [pd.Timestamp("2022-09-04 00:24"), pd.Timestamp("2022-09-04 12:50"),
                                   pd.Timestamp("2022-09-05 00:05")]
    assert df["instrument"].astype(str).tolist() == ["VIIRS"] * 3
    assert df["satellite"].astype(str).tolist() == ["S-NPP"] * 3


def test_viirs_archive_numeric_version(tmp_path: Path) -> None:
    p = write(tmp_path / "fire_archive_SV-C2_1.csv", VIIRS_ARCHIVE_HEADER, [
        "-12.1,131.2,330.2,0.39,0.36,2019-08-01,416,N,VIIRS,n,1,295.2,3.2,D,0",
        "-12.2,131.3,331.2,0.39,0.36,2019-08-01,1642,N,VIIRS,h,2,296.2,9.1,N,2",
    ])
    df = read_firms(p)
    assert df["time"].tolist() == [pd.Timestamp("2019-08-01 04:16"), pd.Timestamp("2019-08-01 16:42")]
    assert df["type"].tolist() == [0, 2]
    assert df["confidence"].astype(str).tolist() == ["nominal", "high"]
    assert df["instrument"].astype(str).tolist() == ["VIIRS", "VIIRS"]


@pytest.mark.parametrize(("code", "name"), [("1", "NOAA-20"), ("N20", "NOAA-20"), ("N21", "NOAA-21"), ("NOAA-21", "NOAA-21")])
def test_noaa_satellites(tmp_path: Path, code: str, name: str) -> None:
    p = write(tmp_path / f"J_{code}.csv", VIIRS_NRT_HEADER, [
        f"35.1,-118.2,340.5,0.4,0.4,2023-07-01,0950,{code},nominal,2.0NRT,300.1,5.5,D",
    ])
    df = read_firms(p)
    assert df["satellite"].astype(str).tolist() == [name]
    assert df["instrument"].astype(str).tolist() == ["VIIRS"]


def test_modis_nrt_without_type(tmp_path: Path) -> None:
    p = write(tmp_path / "MODIS_C6_1_Global_24h.csv", MODIS_NRT_HEADER, [
        "-20.5,30.1,320.1,1.2,1.1,2021-09-01,56,Terra,29,6.1NRT,295.3,12.4,D",
        "-20.6,30.2,330.1,1.2,1.1,2021-09-01,1135,Aqua,30,6.1NRT,296.3,22.4,D",
        "-20.7,30.3,340.1,1.2,1.1,2021-09-01,2359,A,79,6.1NRT,297.3,32.4,N",
        "-20.8,30.4,350.1,1.2,1.1,2021-09-02,0,T,80,6.1NRT,298.3,42.4,N",
    ])
    df = read_firms(p)
    check_dtypes(df)
    assert df["time"].tolist() == [pd.Timestamp("2021-09-01 00:56"), pd.Timestamp("2021-09-01 11:35"),
                                   pd.Timestamp("2021-09-01 23:59"), pd.Timestamp("2021-09-02 00:00")]
    assert df["confidence"].astype(str).tolist() == ["low", "nominal", "nominal", "high"]
    assert df["confidence_pct"].tolist() == [29.0, 30.0, 79.0, 80.0]
    assert df["satellite"].astype(str).tolist() == ["Terra", "Aqua", "Aqua", "Terra"]
    assert df["instrument"].astype(str).tolist() == ["MODIS"] * 4
    assert df["type"].isna().all()


def test_modis_archive_with_type(tmp_path: Path) -> None:
    p = write(tmp_path / "fire_archive_M-C61.csv", MODIS_ARCHIVE_HEADER, [
        "-11.8,142.05,313,1,1,2019-08-01,0056,Terra,MODIS,48,6.3,297.3,6.6,D,0",
        "-11.7,142.08,319.3,1,1,2019-08-01,0057,Aqua,MODIS,100,6.3,297.3,11.3,N,3",
    ])
    df = read_firms(p)
    assert df["type"].tolist() == [0, 3]
    assert df["confidence"].astype(str).tolist() == ["nominal", "high"]


def test_layout_without_brightness_infers_instrument_from_satellite(tmp_path: Path) -> None:
    p = write(tmp_path / "minimal.csv", "latitude,longitude,acq_date,acq_time,frp,satellite", [
        "1,2,2020-01-01,0100,1.0,N20",
        "1,2,2020-01-01,0100,1.0,Aqua",
        "1,2,2020-01-01,0100,1.0,Landsat-9",
        "1,2,2020-01-01,0100,1.0,",
    ])
    df = read_firms(p)
    assert df["instrument"].astype(str).tolist()[:2] == ["VIIRS", "MODIS"]
    assert df["instrument"].isna().tolist()[2:] == [True, True]
    assert df["satellite"].astype(str).tolist()[:3] == ["NOAA-20", "Aqua", "Landsat-9"]
    assert df["satellite"].isna().tolist() == [False, False, False, True]
    assert df["confidence"].isna().all() and df["daynight"].isna().all()


def test_normalize_satellite() -> None:
    assert normalize_satellite("N") == "S-NPP"
    assert normalize_satellite("Suomi NPP") == "S-NPP"
    assert normalize_satellite("noaa-20") == "NOAA-20"
    assert normalize_satellite("NOAA 21") == "NOAA-21"
    assert normalize_satellite("  ") is None
    assert normalize_satellite("Sentinel-3A") == "Sentinel-3A"


def test_concat_keeps_source_file_and_categories(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", VIIRS_NRT_HEADER, ["1,2,300,0.4,0.4,2022-01-01,0100,N,n,2.0NRT,290,1.0,D"])
    b = write(tmp_path / "b.csv", MODIS_NRT_HEADER, ["3,4,300,1,1,2022-01-02,0200,Aqua,90,6.1NRT,290,2.0,N",
                                                      "3,4,300,1,1,2022-01-02,0200,Sentinel-X,90,6.1NRT,290,2.0,N"])
    df = read_firms([a, b])
    assert df["source_file"].astype(str).tolist() == [str(a), str(b), str(b)]
    assert df["satellite"].astype(str).tolist() == ["S-NPP", "Aqua", "Sentinel-X"]
    assert df["instrument"].astype(str).tolist() == ["VIIRS", "MODIS", "MODIS"]
    assert [f.path for f in firms_report(df).files] == [str(a), str(b)]
    assert [f.path for f in firms_report(df)] == [str(a), str(b)] and len(firms_report(df)) == 2


# ----------------------------------------------------------------------------- bad input
BAD_ROWS = [
    "10,20,300,0.4,0.4,2022-01-01,0056,N,n,2.0NRT,290,1.5,D",  # line 2 good
    "abc,20,300,0.4,0.4,2022-01-01,0056,N,n,2.0NRT,290,1.5,D",  # 3 unparseable latitude
    "",  # 4 blank (ignored)
    "95,20,300,0.4,0.4,2022-01-01,0056,N,n,2.0NRT,290,1.5,D",  # 5 latitude out of range
    "10,20,300,0.4",  # 6 wrong number of fields
    "10,20,300,0.4,0.4,2022-13-01,0056,N,n,2.0NRT,290,1.5,D",  # 7 bad date
    "10,20,300,0.4,0.4,2022-01-01,2460,N,n,2.0NRT,290,1.5,D",  # 8 bad time
    "10,20,300,0.4,0.4,2022-01-01,0001,N,x,2.0NRT,290,1.5,D",  # 9 bad confidence
    "10,20,300,0.4,0.4,2022-01-01,0001,N,n,2.0NRT,290,1.5,Q",  # 10 bad daynight
    "10,-181,300,0.4,0.4,2022-01-01,0001,N,n,2.0NRT,290,1.5,N",  # 11 longitude out of range
    "10,20,300,0.4,0.4,2022-01-01,0001,N,n,2.0NRT,290,?,N",  # 12 bad frp
    "-10,-20,300,0.4,0.4,2022-01-02,2359,N,h,2.0NRT,290,2.5,N",  # 13 good
    "10,20,300,0.4,0.4,2022-01-01,0001,N,n,2.0NRT,290,1.5,D,extra",  # 14 wrong number of fields
]


def test_bad_rows_dropped_counted_with_line_numbers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = write(tmp_path / "bad.csv", VIIRS_NRT_HEADER, BAD_ROWS)
    with caplog.at_level(logging.WARNING, logger="firesmoke.io.firms"):
        df = read_firms(p)
    assert len(df) == 2
    assert df["latitude"].tolist() == [10.0, -10.0]
    rep = firms_report(df).files[0]
    got = {i.reason: (i.count, i.lines) for i in rep.issues}
    assert got == {
        "unparseable latitude": (1, (3,)),
        "latitude outside [-90, 90]": (1, (5,)),
        "wrong number of fields": (2, (6, 14)),
        "unparseable acq_date": (1, (7,)),
        "unparseable acq_time": (1, (8,)),
        "unparseable confidence": (1, (9,)),
        "unparseable daynight": (1, (10,)),
        "longitude outside [-180, 180]": (1, (11,)),
        "unparseable frp": (1, (12,)),
    }
    assert rep.bad_rows == 10 and rep.rows_read == 12 and rep.rows_kept == 2 and rep.blank_lines == 1
    assert any("skipped 10 of 12 rows" in r.getMessage() and str(p) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("rows", "line", "field"),
    [
        (BAD_ROWS, 3, "latitude"),
        (BAD_ROWS[:1] + BAD_ROWS[2:], 4, "latitude"),  # blank line does not count as bad
        (BAD_ROWS[:1] + BAD_ROWS[4:], 3, None),  # wrong number of fields first
        (BAD_ROWS[:1] + BAD_ROWS[6:], 3, "acq_time"),
    ],
)
def test_strict_mode_reports_first_bad_line(tmp_path: Path, rows: list[str], line: int, field: str | None) -> None:
    p = write(tmp_path / "bad.csv", VIIRS_NRT_HEADER, rows)
    with pytest.raises(BadRowError) as err:
        read_firms(p, strict=True)
    assert isinstance(err.value, InputError)
    assert err.value.line == line
    assert err.value.field == field
    assert str(p) in str(err.value) and f"line {line}" in str(err.value)


def test_strict_mode_passes_clean_file(tmp_path: Path) -> None:
    p = write(tmp_path / "ok.csv", VIIRS_NRT_HEADER, [BAD_ROWS[0], BAD_ROWS[11]])
    assert len(read_firms(p, strict=True)) == 2


def test_missing_required_column(tmp_path: Path) -> None:
    p = write(tmp_path / "nofrp.csv", VIIRS_NRT_HEADER.replace(",frp", ",power"), [BAD_ROWS[0]])
    with pytest.raises(MissingColumnError) as err:
        read_firms(p)
    assert err.value.field == "frp" and err.value.path == str(p)
    p2 = write(tmp_path / "text.csv", "hello world", ["this is not a table"])
    with pytest.raises(MissingColumnError) as err:
        read_firms(p2)
    assert err.value.field == "latitude"


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text(VIIRS_NRT_HEADER + "\n")
    header_no_newline = tmp_path / "header2.csv"
    header_no_newline.write_text(VIIRS_NRT_HEADER)
    df = read_firms([empty, header_only, header_no_newline])
    check_dtypes(df)
    assert len(df) == 0
    notes = [f.notes for f in firms_report(df).files]
    assert notes == [("empty file",), ("header only, no data rows",), ("header only, no data rows",)]
    e = empty_firms_table()
    check_dtypes(e)
    pd.testing.assert_frame_equal(e.drop(columns="source_file"), df.drop(columns="source_file"))


def test_binary_garbage_is_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "garbage.csv"
    p.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CorruptFileError) as err:
        read_firms(p)
    assert str(p) in str(err.value)
    p2 = tmp_path / "latin1.csv"
    p2.write_bytes(b"\xff\xfe\x00l\x00a\x00t")
    with pytest.raises(CorruptFileError):
        read_firms(p2)


@pytest.mark.parametrize("crlf", [False, True])
def test_lines_that_are_not_utf8_are_bad_rows_not_a_bad_file(tmp_path: Path, crlf: bool) -> None:
    # damaged bytes in a number, in a text field, and mixed with other bad rows
    rows = [r.encode() for r in BAD_ROWS]
    rows[1] = b"10,20,300,0.4,0.4,2022-01-01,0056,N,n,2.0NRT,290,1.\xff5,D"  # line 3
    rows[8] = b"10,20,300,0.4,0.4,2022-01-01,0001,\xe9\xe9,n,2.0NRT,290,1.5,D"  # line 10
    end = b"\r\n" if crlf else b"\n"
    p = tmp_path / "damaged.csv"
    p.write_bytes(VIIRS_NRT_HEADER.encode() + end + end.join(rows) + end)
    df = read_firms(p)
    assert df["latitude"].tolist() == [10.0, -10.0]  # the good rows are kept
    rep = firms_report(df).files[0]
    got = {i.reason: (i.count, i.lines) for i in rep.issues}
    assert got["not UTF-8 text"] == (2, (3, 10))
    assert got["wrong number of fields"] == (2, (6, 14))  # line numbers unchanged
    assert got["unparseable acq_time"] == (1, (8,))
    assert "unparseable daynight" not in got and rep.rows_read == 12
    with pytest.raises(BadRowError) as err:
        read_firms(p, strict=True)
    assert err.value.line == 3 and "not UTF-8" in str(err.value) and str(p) in str(err.value)
    # a header that is not text is still a bad file
    q = tmp_path / "badheader.csv"
    q.write_bytes(b"lat\xffitude,longitude\n1,2\n")
    with pytest.raises(CorruptFileError, match="header line not UTF-8"):
        read_firms(q)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_firms(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no FIRMS CSV"):
        read_firms(tmp_path)


def test_unpadded_times_and_hh_mm(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", "latitude,longitude,acq_date,acq_time,frp", [
        "1,1,2020-02-29,5,1", "1,1,2020-02-29,56,1", "1,1,2020-02-29,456,1", "1,1,2020-02-29,1456,1",
        "1,1,2020-02-29,14:56,1",
    ])
    df = read_firms(p)
    assert df["time"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2020-02-29 00:05", "2020-02-29 00:56", "2020-02-29 04:56", "2020-02-29 14:56", "2020-02-29 14:56",
    ]


def test_partial_last_line_reported(tmp_path: Path) -> None:
    p = tmp_path / "cut.csv"
    p.write_text(VIIRS_NRT_HEADER + "\n" + BAD_ROWS[0] + "\n" + "10,20,300,0.4,0.4,2022-0")
    df = read_firms(p)
    assert len(df) == 1
    issue = firms_report(df).files[0].issues[0]
    assert issue.reason.startswith("partial last line") and issue.lines == (3,)


# ----------------------------------------------------------------------------- filters
def test_start_end_bbox_filters(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 500
    lat = np.round(rng.uniform(-89, 89, n), 4)
    lon = np.round(rng.uniform(-179, 179, n), 4)
    day = rng.integers(0, 10, n)
    hhmm = rng.integers(0, 24, n) * 100 + rng.integers(0, 60, n)
    rows = [
        f"{a},{b},300,0.4,0.4,{np.datetime64('2022-01-01') + int(d)},{t:04d},N,n,2.0NRT,290,1.0,D"
        for a, b, d, t in zip(lat, lon, day, hhmm, strict=True)
    ]
    p = write(tmp_path / "f.csv", VIIRS_NRT_HEADER, rows)
    full = read_firms(p)
    sub = read_firms(p, start="2022-01-03", end=pd.Timestamp("2022-01-05"), bbox=(-50, -20, 60, 45))
    days = full["time"].dt.floor("D")
    m = (days >= "2022-01-03") & (days <= "2022-01-05") & full["latitude"].between(-20, 45) & full["longitude"].between(-50, 60)
    assert 0 < m.sum() < n
    pd.testing.assert_frame_equal(sub.reset_index(drop=True), full[m].reset_index(drop=True))
    assert firms_report(sub).files[0].rows_selected == int(m.sum())
    # a box crossing the antimeridian
    wrap = read_firms(p, bbox=(170, -90, -170, 90))
    mw = (full["longitude"] >= 170) | (full["longitude"] <= -170)
    pd.testing.assert_frame_equal(wrap.reset_index(drop=True), full[mw].reset_index(drop=True))
    # aware times are converted to UTC days
    aware = read_firms(p, start=pd.Timestamp("2022-01-03 01:00", tz="Etc/GMT+3"), end="2022-01-03")
    assert set(aware["time"].dt.floor("D")) == {pd.Timestamp("2022-01-03")}
    with pytest.raises(InputError):
        read_firms(p, bbox=(0, 10, 5, 0))
    with pytest.raises(InputError):
        read_firms(p, start="not a date")


# ----------------------------------------------------------------------------- fuzzing
_cell = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=8),
    st.sampled_from(["", "nan", "-inf", "1e400", "0056", "2022-02-30", "9999", "n", "N20", "D", "x,y", '"', "  1"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_cell, min_size=9, max_size=11), min_size=1, max_size=8))
def test_fuzz_garbage_cells_parse_or_input_error(tmp_path: Path, rows: list[list[str]]) -> None:
    header = "latitude,longitude,acq_date,acq_time,frp,confidence,satellite,daynight,type,version"
    p = tmp_path / "fuzz.csv"
    p.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    try:
        df = read_firms(p)
    except InputError:
        return
    rep = firms_report(df).files[0]
    assert len(df) == rep.rows_kept == rep.rows_selected
    assert rep.rows_kept + rep.bad_rows == rep.rows_read
    assert df["latitude"].between(-90, 90).all() and df["longitude"].between(-180, 180).all()
    assert not df["time"].isna().any()
    try:
        read_firms(p, strict=True)
    except BadRowError as exc:
        assert rep.bad_rows > 0 and exc.line >= 2
    else:
        assert rep.bad_rows == 0


_valid_row = st.tuples(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
    st.dates(min_value=datetime(1990, 1, 1).date(), max_value=datetime(2100, 12, 31).date()),
    st.integers(0, 23),
    st.integers(0, 59),
    st.floats(0, 1e5, allow_nan=False),
    st.one_of(st.sampled_from(["l", "n", "h", "low", "nominal", "high"]), st.integers(0, 100).map(str)),
    st.sampled_from(["N", "1", "N20", "N21", "Terra", "Aqua", "T", "A"]),
    st.sampled_from(["D", "N"]),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_valid_row, min_size=1, max_size=20))
def test_fuzz_valid_rows_round_trip(tmp_path: Path, rows: list[tuple]) -> None:
    lines = []
    for lat, lon, d, hh, mm, frp, conf, sat, dn, pad in rows:
        t = f"{hh * 100 + mm:04d}" if pad else str(hh * 100 + mm)
        lines.append(f"{lat!r},{lon!r},{d.isoformat()},{t},{frp!r},{conf},{sat},{dn}")
    p = tmp_path / "valid.csv"
    p.write_text("latitude,longitude,acq_date,acq_time,frp,confidence,satellite,daynight\n" + "\n".join(lines) + "\n")
    df = read_firms(p, strict=True)
    assert len(df) == len(rows)
    for (lat, lon, d, hh, mm, frp, conf, sat, dn, _), rec in zip(rows, df.itertuples(index=False), strict=True):
        assert rec.latitude == lat and rec.longitude == lon
        assert rec.time == pd.Timestamp(datetime(d.year, d.month, d.day, hh, mm))
        assert rec.frp == np.float32(frp)
        assert rec.daynight == dn
        assert rec.satellite == normalize_satellite(sat)
        if conf.isdigit():
            v = float(conf)
            assert rec.confidence_pct == v
            assert rec.confidence == ("low" if v < 30 else "nominal" if v < 80 else "high")
        else:
            assert math.isnan(rec.confidence_pct)
            assert rec.confidence == {"l": "low", "n": "nominal", "h": "high"}.get(conf, conf)


def test_dates_outside_datetime64_range_are_bad_rows(tmp_path: Path) -> None:
    p = write(tmp_path / "y.csv", "latitude,longitude,acq_date,acq_time,frp", [
        "1,1,9999-01-01,0100,1", "1,1,1500-05-01,0100,1", "1,1,2020-01-01,0100,1",
    ])
    df = read_firms(p)
    assert df["time"].tolist() == [pd.Timestamp("2020-01-01 01:00")]
    assert firms_report(df).files[0].issues[0].lines == (2, 3)


# ----------------------------------------------------------------------------- issue 14, item 10
def test_damaged_optional_header_is_noted_in_the_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = ["46.06979,13.63111,297.87,0.58,0.52,2022-09-04,0024,N,nominal,2.0NRT,283.65,0.99,N"]
    p = write(tmp_path / "v.csv", VIIRS_NRT_HEADER.replace("confidence", "confidenc3"), rows)
    with caplog.at_level(logging.WARNING, logger="firesmoke.io.firms"):
        df = read_firms(p)
    (rep,) = firms_report(df).files
    assert any("'confidenc3'" in n and "'confidence'" in n and "confidence not read" in n for n in rep.notes), rep.notes
    assert "confidenc3" in caplog.text
    assert df["confidence"].isna().all() and len(df) == 1
    # an extra column unrelated to any FIRMS column is noted as ignored too
    extra = write(tmp_path / "e.csv", VIIRS_NRT_HEADER + ",my_note", [rows[0] + ",hello"])
    assert firms_report(read_firms(extra)).files[0].notes == ("unknown column 'my_note' ignored",)
    # an intact header gives no notes
    assert firms_report(read_firms(write(tmp_path / "ok.csv", VIIRS_NRT_HEADER, rows))).files[0].notes == ()


def test_quoted_data_rows_under_an_unquoted_header(tmp_path: Path) -> None:
    plain = ["46.06979,13.63111,297.87,0.58,0.52,2022-09-04,0024,N,nominal,2.0NRT,283.65,0.99,N",
             "45.1,10.4,310.6,0.41,0.6,2022-09-04,1250,N,h,2.0NRT,286.45,12.5,D"]
    quoted = [",".join(f'"{v}"' for v in r.split(",")) for r in plain]
    a = read_firms(write(tmp_path / "plain.csv", VIIRS_NRT_HEADER, plain))
    b = read_firms(write(tmp_path / "quoted.csv", VIIRS_NRT_HEADER, quoted))
    assert len(b) == 2 and firms_report(b).files[0].rows_kept == 2
    pd.testing.assert_frame_equal(a.drop(columns="source_file"), b.drop(columns="source_file"))
    # the same file through the standard library csv module agrees
    with open(tmp_path / "quoted.csv", newline="") as fh:
        assert [r[0] for r in list(csv.reader(fh))[1:]] == ["46.06979", "45.1"]
