"""FIRMS active-fire CSV reader: one normalised table from any FIRMS layout.

FIRMS (NASA's Fire Information for Resource Management System) distributes active-fire
detections as CSV files in several layouts; :func:`read_firms` reads all of them into one
table with fixed columns and dtypes:

===================  ==================================  ====================================
column               dtype                               meaning
===================  ==================================  ====================================
``latitude``         float64                             degrees north (WGS84)
``longitude``        float64                             degrees east (WGS84)
``time``             datetime64[ns] (tz-naive, **UTC**)  ``acq_date`` + ``acq_time`` (HHMM)
``frp``              float32                             fire radiative power, MW
``confidence``       category ``low/nominal/high``       detection confidence class
``confidence_pct``   float32                             0-100 where the source gives it
``satellite``        category                            ``S-NPP``, ``NOAA-20``, ``NOAA-21``,
                                                         ``Terra``, ``Aqua`` (others kept)
``instrument``       category                            ``VIIRS`` / ``MODIS``
``daynight``         category ``D/N``                    day or night detection
``type``             Int8 (nullable)                     inferred hot-spot type, when present
``source_file``      category                            the file the row came from
===================  ==================================  ====================================

Layouts (detected from the header, never from the file name):

* VIIRS 375 m (S-NPP ``VNP14IMG``, NOAA-20 ``VJ114IMG``, NOAA-21 ``VJ214IMG``), NRT and
  standard/archive: ``bright_ti4``/``bright_ti5`` columns, confidence ``l/n/h`` or
  ``low/nominal/high``, ``version`` like ``2.0NRT``, ``1`` or ``2``; archive files add
  ``instrument`` and ``type``.
* MODIS C6/C6.1 (``MCD14DL`` NRT, ``MCD14ML`` archive): ``brightness``/``bright_t31``,
  numeric confidence 0-100, optional ``instrument`` and ``type``.

MODIS numeric confidence is mapped to classes with the FIRMS convention: ``low`` below 30,
``nominal`` from 30 to 79, ``high`` from 80; the number itself is kept in
``confidence_pct`` (NaN for VIIRS, whose confidence is only a class).

Satellite codes are normalised: ``N``/``NPP``/``Suomi NPP`` -> ``S-NPP``; ``1``/``N20``/
``J1``/``NOAA-20`` -> ``NOAA-20``; ``N21``/``J2``/``NOAA-21`` -> ``NOAA-21``; ``T``/
``Terra`` -> ``Terra``; ``A``/``Aqua`` -> ``Aqua``; any other value is kept as written.
``instrument`` comes from the ``instrument`` column when there is one, otherwise from the
layout (``bright_ti4`` -> VIIRS, ``brightness`` -> MODIS), otherwise from the satellite.

Bad input is never silent. Rows with unparseable numbers, latitude outside [-90, 90],
longitude outside [-180, 180], unparseable dates/times (or confidence, day/night flag,
type), or the wrong number of fields are dropped, counted and reported per file with the
first few line numbers (1-based physical lines, the header is line 1); a warning is
logged. Blank lines are ignored (counted in the report). ``strict=True`` raises
:class:`BadRowError` (an :class:`~firesmoke.errors.InputError`) at the first bad line
instead. Missing required columns raise :class:`~firesmoke.errors.MissingColumnError`;
binary or undecodable files raise :class:`~firesmoke.errors.CorruptFileError`; empty and
header-only files give an empty table and a report entry.

The result is a :class:`pandas.DataFrame`; its per-file report is a :class:`FirmsReport`
in ``df.attrs["firesmoke_report"]`` (also returned by :func:`firms_report`), and
``df.attrs["units"]`` maps columns to units.

Parsing is done by ``pyarrow.csv`` with explicit column types; categorical columns are
read dictionary-encoded and decoded once per distinct value, and times are built with
integer arithmetic, so there is no per-row Python. Clean files are parsed multi-threaded;
a file with a malformed row is parsed again single-threaded to get physical line numbers.
10 million VIIRS rows take 10-16 s on a (busy) 2-core machine, about 7x faster than
``pandas.read_csv`` + ``to_datetime`` (``benchmarks/bench_firms.py``). Compressed
(``.gz``/``.zip``) CSVs are not read; decompress them first. Header detection, the
pyarrow parse and per-column decoding live in :mod:`firesmoke.io.firms_csv`; this
module filters, reports and assembles the table.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.dates import utc_day_number
from firesmoke.errors import (
    BadRowError,
    InputError,
)
from firesmoke.io.firms_csv import (
    CONFIDENCE_CATEGORIES,
    DAYNIGHT_CATEGORIES,
    INSTRUMENT_CATEGORIES,
    MAX_REPORTED_LINES,
    MODIS_CONFIDENCE_HIGH_FROM,
    MODIS_CONFIDENCE_NOMINAL_FROM,
    OPTIONAL_COLUMNS,
    REASON_FIELD,
    REQUIRED_COLUMNS,
    ROW_REASONS,
    SATELLITE_CATEGORIES,
    bad_row_reasons,
    decode_table,
    header_notes,
    normalize_satellite,
    read_csv_columns,
    row_lines,
    sniff_header,
)

__all__ = [
    "CONFIDENCE_CATEGORIES",
    "DAYNIGHT_CATEGORIES",
    "INSTRUMENT_CATEGORIES",
    "MODIS_CONFIDENCE_HIGH_FROM",
    "MODIS_CONFIDENCE_NOMINAL_FROM",
    "OPTIONAL_COLUMNS",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "SATELLITE_CATEGORIES",
    "BadRowError",
    "FileReport",
    "FirmsReport",
    "RowIssue",
    "empty_firms_table",
    "expand_firms_paths",
    "firms_report",
    "normalize_satellite",
    "read_firms",
]

log = logging.getLogger(__name__)

OUTPUT_COLUMNS: tuple[str, ...] = (
    "latitude",
    "longitude",
    "time",
    "frp",
    "confidence",
    "confidence_pct",
    "satellite",
    "instrument",
    "daynight",
    "type",
    "source_file",
)

UNITS: dict[str, str] = {
    "latitude": "degrees_north",
    "longitude": "degrees_east",
    "time": "UTC",
    "frp": "MW",
    "confidence_pct": "percent",
}

_NS_PER_DAY = 86_400_000_000_000
_NS_PER_MINUTE = 60_000_000_000

# Reasons for dropping a line that pyarrow could not split (the decoded-row reasons are
# :data:`firesmoke.io.firms_csv.ROW_REASONS`).
_R_FIELDS = "wrong number of fields"
_R_PARTIAL = "partial last line (no newline at end of file: truncated?)"
_R_UTF8 = "not UTF-8 text"


# ----------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class RowIssue:
    """Rows of one file dropped for one reason."""

    reason: str
    count: int
    lines: tuple[int, ...]
    """The first few (at most :data:`MAX_REPORTED_LINES`) 1-based line numbers."""

    def __str__(self) -> str:
        more = ", ..." if self.count > len(self.lines) else ""
        where = ", ".join(str(n) for n in self.lines)
        return f"{self.count} x {self.reason} (line {where}{more})"


@dataclass(frozen=True)
class FileReport:
    """What happened to one FIRMS file."""

    path: str
    layout: str
    """``"VIIRS"``, ``"MODIS"`` or ``"unknown"`` (from the header), ``"empty"`` for empty files."""
    rows_read: int
    """Data lines found (valid or not; blank lines excluded)."""
    rows_kept: int
    """Rows that decoded cleanly."""
    rows_selected: int
    """Rows left after the ``start``/``end``/``bbox`` filters."""
    issues: tuple[RowIssue, ...] = ()
    blank_lines: int = 0
    notes: tuple[str, ...] = ()

    @property
    def bad_rows(self) -> int:
        return sum(i.count for i in self.issues)

    def __str__(self) -> str:
        text = f"{self.path}: {self.layout}, {self.rows_read} rows read, {self.rows_kept} kept, {self.rows_selected} selected"
        parts = [str(i) for i in self.issues] + list(self.notes)
        return text + ("; " + "; ".join(parts) if parts else "")


@dataclass(frozen=True)
class FirmsReport:
    """Per-file reports of one :func:`read_firms` call."""

    files: tuple[FileReport, ...] = field(default_factory=tuple)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    def __iter__(self) -> Iterator[FileReport]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.files)


# ----------------------------------------------------------------------------- helpers
def expand_firms_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand one path, a list, folders (their ``*.csv``) and glob patterns into files.

    Raises
    ------
    InputError
        When a named file does not exist or nothing matches.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() == ".csv" and not q.name.startswith(".")
            )
            if not found:
                log.warning("%s: folder holds no *.csv file", p)
            out.extend(found)
        elif any(c in text for c in "*?[") and not p.exists():
            out.extend(sorted(Path(q) for q in glob.glob(text, recursive=True) if Path(q).is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError("file not found", path=p)
    if not out:
        raise InputError(f"no FIRMS CSV file found in {items!r}")
    return out


def _to_day(value: Any, name: str) -> int:
    return utc_day_number(value, name)


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        left, bottom, right, top = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bbox must be (left, bottom, right, top), got {bbox!r}", field="bbox") from exc
    if not all(math.isfinite(v) for v in (left, bottom, right, top)) or bottom > top:
        raise InputError(f"bbox must be finite with bottom <= top, got {bbox!r}", field="bbox")
    return left, bottom, right, top



# ----------------------------------------------------------------------------- one file
@dataclass
class _Part:
    """Decoded, filtered columns of one file (numpy only)."""

    cols: dict[str, np.ndarray]
    satellites: list[str]
    instruments: list[str]



def _read_one(
    path: Path,
    *,
    day_range: tuple[int | None, int | None],
    bbox: tuple[float, float, float, float] | None,
    strict: bool,
) -> tuple[_Part, FileReport]:
    header = sniff_header(path)
    column_notes = header_notes(header) if header is not None else []
    for note in column_notes:
        log.warning("%s: %s", path, note)
    if header is None or not header.has_data:
        note = "empty file" if header is None else "header only, no data rows"
        log.info("%s: %s", path, note)
        layout = "empty" if header is None else header.layout
        return _empty_part(), FileReport(str(path), layout, 0, 0, 0, notes=(note, *column_notes))

    table, invalid = read_csv_columns(path, header)
    n = table.num_rows
    v, ok, sat_categories, ins_categories = decode_table(table, header.layout)

    # quick screen, then reasons for the suspicious rows only
    suspect = np.flatnonzero(bad_row_reasons(v, ok) != 0) if n else np.empty(0, np.int64)
    reason_s = bad_row_reasons(v, ok, suspect)
    blank_s = np.zeros(suspect.size, bool)
    if suspect.size:  # blank lines (every field empty) are ignored, not errors
        import pyarrow as pa

        sub = table.take(pa.array(suspect))
        blank_s = np.ones(suspect.size, bool)
        for c in sub.column_names:
            blank_s &= np.asarray([x is None or x == "" for x in sub.column(c).to_pylist()], bool)
    bad_idx = suspect[~blank_s]
    bad_reason = reason_s[~blank_s]
    n_blank = int(blank_s.sum())

    inv_lines = np.asarray(invalid.lines, dtype=np.int64)
    issues: list[RowIssue] = []
    first_bad: tuple[int, str, str | None, str] | None = None  # line, reason, field, value
    notes: list[str] = list(column_notes)
    ends_with_newline = _ends_with_newline(path)
    last_line = 0
    if n:
        last_line = int(row_lines(np.array([n - 1]), inv_lines)[0])
    if inv_lines.size:
        last_line = max(last_line, int(inv_lines.max()))
        partial = (not ends_with_newline) and int(inv_lines[-1]) == last_line
        regular = inv_lines[:-1] if partial else inv_lines
        utf8 = np.isin(regular, np.asarray(invalid.not_utf8, np.int64))
        if utf8.any():
            issues.append(RowIssue(_R_UTF8, int(utf8.sum()), tuple(int(x) for x in regular[utf8][:MAX_REPORTED_LINES])))
            first_bad = (int(regular[utf8][0]), _R_UTF8, None, "")
            regular = regular[~utf8]
        if regular.size:
            issues.append(RowIssue(_R_FIELDS, int(regular.size), tuple(int(x) for x in regular[:MAX_REPORTED_LINES])))
            if first_bad is None or int(regular[0]) < first_bad[0]:
                first_bad = (int(regular[0]), _R_FIELDS, None, invalid.texts.get(int(regular[0]), ""))
        if partial:
            issues.append(RowIssue(_R_PARTIAL, 1, (int(inv_lines[-1]),)))
            if first_bad is None:
                first_bad = (int(inv_lines[-1]), _R_PARTIAL, None, invalid.texts.get(int(inv_lines[-1]), ""))
    if invalid.unnumbered:  # pragma: no cover - only with threads
        issues.append(RowIssue(_R_FIELDS, invalid.unnumbered, ()))
    if bad_idx.size:
        bad_lines = row_lines(bad_idx, inv_lines)
        for k, text in enumerate(ROW_REASONS, start=1):
            sel = bad_reason == k
            if sel.any():
                issues.append(RowIssue(text, int(sel.sum()), tuple(int(x) for x in bad_lines[sel][:MAX_REPORTED_LINES])))
        if first_bad is None or int(bad_lines[0]) < first_bad[0]:
            why = ROW_REASONS[int(bad_reason[0]) - 1]
            col = REASON_FIELD[why]
            value = table.column(col)[int(bad_idx[0])].as_py() if col in table.column_names else None
            first_bad = (int(bad_lines[0]), why, col, "" if value is None else str(value))
    if not ends_with_newline and last_line and not any(i.reason == _R_PARTIAL for i in issues):
        notes.append(f"no newline at end of file: the last line ({last_line}) may be truncated")
    issues.sort(key=lambda i: i.lines[0] if i.lines else 0)

    if strict and first_bad is not None:
        line, why, col, value = first_bad
        raise BadRowError(f"{why} ({value[:80]!r})", path=path, line=line, field=col)

    rows_read = int(n - n_blank + inv_lines.size + invalid.unnumbered)
    rows_kept = int(n - suspect.size)
    if rows_kept < rows_read:
        log.warning(
            "%s: skipped %d of %d rows: %s", path, rows_read - rows_kept, rows_read, "; ".join(map(str, issues))
        )

    keep = np.ones(n, bool)
    keep[suspect] = False
    days = v["days"]
    if day_range[0] is not None:
        keep &= days >= day_range[0]
    if day_range[1] is not None:
        keep &= days <= day_range[1]
    if bbox is not None:
        left, bottom, right, top = bbox
        lat, lon = v["latitude"], v["longitude"]
        keep &= (lat >= bottom) & (lat <= top)
        keep &= ((lon >= left) & (lon <= right)) if left <= right else ((lon >= left) | (lon <= right))
    idx = np.flatnonzero(keep) if not keep.all() else None

    def g(a: np.ndarray) -> np.ndarray:
        return a if idx is None else a[idx]

    time_ns = g(days) * _NS_PER_DAY + g(v["minutes"]).astype(np.int64) * _NS_PER_MINUTE
    cols = {
        "latitude": g(v["latitude"]),
        "longitude": g(v["longitude"]),
        "time": time_ns.view("datetime64[ns]"),
        "frp": g(v["frp"]).astype(np.float32),
        **{k: g(v[k]) for k in ("confidence", "confidence_pct", "daynight", "type", "type_na", "satellite", "instrument")},
    }
    report = FileReport(
        str(path),
        header.layout,
        rows_read,
        rows_kept,
        len(cols["latitude"]),
        issues=tuple(issues),
        blank_lines=n_blank,
        notes=tuple(notes),
    )
    return _Part(cols, sat_categories, ins_categories), report


def _ends_with_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return True
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) in (b"\n", b"\r")
    except OSError:  # pragma: no cover - read already succeeded
        return True


def _empty_part() -> _Part:
    cols = {
        "latitude": np.empty(0, np.float64),
        "longitude": np.empty(0, np.float64),
        "time": np.empty(0, "datetime64[ns]"),
        "frp": np.empty(0, np.float32),
        "confidence": np.empty(0, np.int8),
        "confidence_pct": np.empty(0, np.float32),
        "daynight": np.empty(0, np.int8),
        "type": np.empty(0, np.int8),
        "type_na": np.empty(0, bool),
        "satellite": np.empty(0, np.int16),
        "instrument": np.empty(0, np.int16),
    }
    return _Part(cols, list(SATELLITE_CATEGORIES), list(INSTRUMENT_CATEGORIES))


def _merge_codes(parts: list[_Part], key: str, base: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    categories = list(base)
    out = []
    for p in parts:
        local = p.satellites if key == "satellite" else p.instruments
        for c in local:
            if c not in categories:
                categories.append(c)
        lut = np.array([categories.index(c) for c in local] + [-1], dtype=np.int16)
        out.append(lut[p.cols[key]])
    return (np.concatenate(out) if out else np.empty(0, np.int16)), categories


def _assemble(parts: list[_Part], sources: list[str], report: FirmsReport) -> pd.DataFrame:
    if not parts:
        parts, sources = [_empty_part()], []

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p.cols[name] for p in parts]) if len(parts) > 1 else parts[0].cols[name]

    sat_codes, sat_categories = _merge_codes(parts, "satellite", SATELLITE_CATEGORIES)
    ins_codes, ins_categories = _merge_codes(parts, "instrument", INSTRUMENT_CATEGORIES)
    src_categories = list(dict.fromkeys(sources))
    src_codes = np.concatenate(
        [np.full(len(p.cols["latitude"]), src_categories.index(s) if sources else -1, np.int32)
         for p, s in zip(parts, sources or [""], strict=True)]
    )
    df = pd.DataFrame(
        {
            "latitude": cat("latitude"),
            "longitude": cat("longitude"),
            "time": cat("time"),
            "frp": cat("frp"),
            "confidence": pd.Categorical.from_codes(cat("confidence"), categories=list(CONFIDENCE_CATEGORIES)),
            "confidence_pct": cat("confidence_pct"),
            "satellite": pd.Categorical.from_codes(sat_codes, categories=sat_categories),
            "instrument": pd.Categorical.from_codes(ins_codes, categories=ins_categories),
            "daynight": pd.Categorical.from_codes(cat("daynight"), categories=list(DAYNIGHT_CATEGORIES)),
            "type": pd.arrays.IntegerArray(cat("type"), cat("type_na")),
            "source_file": pd.Categorical.from_codes(src_codes, categories=src_categories),
        }
    )
    df.attrs["firesmoke_report"] = report
    df.attrs["units"] = dict(UNITS)
    df.attrs["source"] = "NASA FIRMS active fire detections"
    return df


def empty_firms_table() -> pd.DataFrame:
    """A FIRMS table with no rows and the standard columns and dtypes."""
    return _assemble([], [], FirmsReport())


def firms_report(df: pd.DataFrame) -> FirmsReport:
    """The :class:`FirmsReport` attached to a table made by :func:`read_firms`."""
    report = df.attrs.get("firesmoke_report")
    if not isinstance(report, FirmsReport):
        raise InputError("this table carries no FIRMS read report (not made by read_firms?)")
    return report


def read_firms(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    start: Any = None,
    end: Any = None,
    bbox: Sequence[float] | None = None,
    strict: bool = False,
) -> pd.DataFrame:
    """Read FIRMS active-fire CSV files (any VIIRS or MODIS layout) into one table.

    Parameters
    ----------
    paths
        One file, a list of files, a folder (its ``*.csv`` files) or a glob pattern.
    start, end
        Keep detections whose UTC day lies in ``[start, end]`` (both inclusive; anything
        :class:`pandas.Timestamp` accepts; aware times are converted to UTC first).
    bbox
        ``(left, bottom, right, top)`` in degrees; edges inclusive. ``left > right``
        selects a box that crosses the antimeridian.
    strict
        Raise :class:`BadRowError` at the first bad line instead of dropping bad rows.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OUTPUT_COLUMNS` (see the module docstring for dtypes), rows in file
        order; ``df.attrs["firesmoke_report"]`` is a :class:`FirmsReport` with one
        :class:`FileReport` per file (rows read/kept/selected, dropped rows by reason with
        line numbers, notes such as "empty file").

    Raises
    ------
    MissingColumnError
        A file lacks one of :data:`REQUIRED_COLUMNS` (the error names file and column).
    CorruptFileError
        A file is binary or not decodable as CSV text.
    BadRowError
        In strict mode, at the first bad row (file and 1-based line number).
    InputError
        A path does not exist, or ``start``/``end``/``bbox`` are invalid.
    """
    files = expand_firms_paths(paths)
    day_range = (
        _to_day(start, "start") if start is not None else None,
        _to_day(end, "end") if end is not None else None,
    )
    box = _check_bbox(bbox) if bbox is not None else None
    parts: list[_Part] = []
    reports: list[FileReport] = []
    for path in files:
        part, rep = _read_one(path, day_range=day_range, bbox=box, strict=strict)
        parts.append(part)
        reports.append(rep)
    return _assemble(parts, [str(p) for p in files], FirmsReport(tuple(reports)))
