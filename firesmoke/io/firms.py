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
(``.gz``/``.zip``) CSVs are not read; decompress them first.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.errors import CorruptFileError, InputError, MissingColumnError

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

REQUIRED_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "acq_date", "acq_time", "frp")
OPTIONAL_COLUMNS: tuple[str, ...] = ("confidence", "satellite", "instrument", "daynight", "type")
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
CONFIDENCE_CATEGORIES: tuple[str, ...] = ("low", "nominal", "high")
SATELLITE_CATEGORIES: tuple[str, ...] = ("S-NPP", "NOAA-20", "NOAA-21", "Terra", "Aqua")
INSTRUMENT_CATEGORIES: tuple[str, ...] = ("VIIRS", "MODIS")
DAYNIGHT_CATEGORIES: tuple[str, ...] = ("D", "N")

#: MODIS numeric confidence: ``nominal`` from this value (FIRMS convention), ``low`` below.
MODIS_CONFIDENCE_NOMINAL_FROM = 30.0
#: MODIS numeric confidence: ``high`` from this value (FIRMS convention).
MODIS_CONFIDENCE_HIGH_FROM = 80.0

UNITS: dict[str, str] = {
    "latitude": "degrees_north",
    "longitude": "degrees_east",
    "time": "UTC",
    "frp": "MW",
    "confidence_pct": "percent",
}

#: How many line numbers a report keeps per reason.
MAX_REPORTED_LINES = 5

_SNIFF_BYTES = 1 << 16
_NS_PER_DAY = 86_400_000_000_000
_NS_PER_MINUTE = 60_000_000_000
_NAT = np.iinfo(np.int64).min
_MIN_DATE, _MAX_DATE = date(1678, 1, 1), date(2262, 1, 1)

_SATELLITE_ALIASES: dict[str, str] = {
    **dict.fromkeys(("n", "npp", "snpp", "suominpp", "suomi", "nppviirs"), "S-NPP"),
    **dict.fromkeys(("1", "n20", "j1", "noaa20", "jpss1"), "NOAA-20"),
    **dict.fromkeys(("n21", "j2", "noaa21", "jpss2"), "NOAA-21"),
    **dict.fromkeys(("t", "terra"), "Terra"),
    **dict.fromkeys(("a", "aqua"), "Aqua"),
}
_VIIRS_SATELLITES = frozenset(("S-NPP", "NOAA-20", "NOAA-21"))
_MODIS_SATELLITES = frozenset(("Terra", "Aqua"))

# Reasons for dropping a row, in the order they are checked (a row is reported once,
# under the first reason that applies).
_R_FIELDS = "wrong number of fields"
_R_PARTIAL = "partial last line (no newline at end of file: truncated?)"
_REASONS: tuple[str, ...] = (
    "unparseable latitude",
    "latitude outside [-90, 90]",
    "unparseable longitude",
    "longitude outside [-180, 180]",
    "unparseable acq_date",
    "unparseable acq_time",
    "unparseable frp",
    "frp negative or not finite",
    "unparseable confidence",
    "confidence outside [0, 100]",
    "unparseable daynight",
    "unparseable type",
)
_REASON_FIELD: dict[str, str] = {
    "unparseable latitude": "latitude",
    "latitude outside [-90, 90]": "latitude",
    "unparseable longitude": "longitude",
    "longitude outside [-180, 180]": "longitude",
    "unparseable acq_date": "acq_date",
    "unparseable acq_time": "acq_time",
    "unparseable frp": "frp",
    "frp negative or not finite": "frp",
    "unparseable confidence": "confidence",
    "confidence outside [0, 100]": "confidence",
    "unparseable daynight": "daynight",
    "unparseable type": "type",
}

_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE_RE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})\s*")
_HHMM_RE = re.compile(r"\s*(\d{1,4})\s*")
_HH_MM_RE = re.compile(r"\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*")
_INT_RE = re.compile(r"\s*[+-]?\d+\s*")


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


class BadRowError(InputError):
    """A bad row in strict mode; ``line`` is its 1-based line number in the file."""

    def __init__(self, message: str, path: str | os.PathLike[str], line: int, field: str | None = None) -> None:
        self.line = int(line)
        super().__init__(f"line {line}: {message}", path=path, field=field)


# ----------------------------------------------------------------------------- helpers
def normalize_satellite(name: str | None) -> str | None:
    """Normalised satellite name (``"S-NPP"``, ``"NOAA-20"``, ...); None for blanks.

    Unknown names are returned stripped, unchanged otherwise.
    """
    if name is None:
        return None
    text = str(name).strip()
    if not text:
        return None
    key = re.sub(r"[\s_\-]", "", text).casefold()
    return _SATELLITE_ALIASES.get(key, text)


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
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot interpret {value!r} as a date", field=name) from exc
    if ts is pd.NaT:
        raise InputError(f"cannot interpret {value!r} as a date", field=name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.normalize().value // _NS_PER_DAY)


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        left, bottom, right, top = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bbox must be (left, bottom, right, top), got {bbox!r}", field="bbox") from exc
    if not all(math.isfinite(v) for v in (left, bottom, right, top)) or bottom > top:
        raise InputError(f"bbox must be finite with bottom <= top, got {bbox!r}", field="bbox")
    return left, bottom, right, top


# ----------------------------------------------------------------------------- sniffing
@dataclass(frozen=True)
class _Header:
    names: tuple[str, ...]
    delimiter: str
    quoted: bool
    layout: str
    has_data: bool


def _sniff(path: Path) -> _Header | None:
    """Read the header; None for an empty file. Raise for binary or non-FIRMS files."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc})", path=path) from exc
    if not head.strip():
        return None
    if b"\x00" in head:
        raise CorruptFileError("binary content (NUL bytes): not a FIRMS CSV text file", path=path)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) == _SNIFF_BYTES and exc.start >= len(head) - 3:
            text = head[: exc.start].decode("utf-8", errors="replace")
        else:
            raise CorruptFileError(
                f"not UTF-8 text (byte {exc.start}): not a FIRMS CSV file", path=path
            ) from exc
    text = text.lstrip("\ufeff")
    nl = text.find("\n")
    if nl < 0 and size > len(head):
        raise CorruptFileError("no line break in the first 64 KiB: not a CSV file", path=path)
    header = (text if nl < 0 else text[:nl]).rstrip("\r")
    has_data = nl >= 0 and bool(text[nl + 1 :].strip() or size > len(head))
    delimiter = ","
    if "," not in header:
        for cand in (";", "\t", "|"):
            if cand in header:
                delimiter = cand
                break
    raw_names = [n.strip().strip('"').strip().lower() for n in header.split(delimiter)]
    names: list[str] = []
    for i, n in enumerate(raw_names):
        names.append(n if n and n not in names else f"{n or 'column'}_{i}")
    for col in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        if raw_names.count(col) > 1:
            raise InputError(f"column {col!r} appears more than once in the header", path=path, field=col)
    for col in REQUIRED_COLUMNS:
        if col not in names:
            shown = ", ".join(raw_names[:20]) if len(header) < 2000 else header[:80] + "..."
            raise MissingColumnError(
                f"required column missing: not a FIRMS CSV (header: {shown})", path=path, field=col
            )
    if "bright_ti4" in names or "bright_ti5" in names:
        layout = "VIIRS"
    elif "brightness" in names or "bright_t31" in names:
        layout = "MODIS"
    else:
        layout = "unknown"
    return _Header(tuple(names), delimiter, '"' in header, layout, has_data)


# ----------------------------------------------------------------------------- arrow read
@dataclass
class _Invalid:
    lines: list[int] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    unnumbered: int = 0


def _read_arrow(path: Path, header: _Header) -> tuple[Any, _Invalid]:
    """Parse the used columns with pyarrow.

    Fast path: multi-threaded with float columns typed. When it meets a row with the
    wrong number of fields (whose line number threads do not give) or an unparseable
    number, the file is parsed again single-threaded with numbers as strings, which gives
    physical line numbers and per-cell validation.
    """
    import pyarrow as pa

    try:
        table, invalid = _arrow_csv(path, header, fast=True)
        if not invalid.lines and not invalid.unnumbered:
            return table, invalid
    except pa.ArrowInvalid:
        pass
    return _arrow_csv(path, header, fast=False)


def _arrow_csv(path: Path, header: _Header, fast: bool) -> tuple[Any, _Invalid]:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    invalid = _Invalid()

    def on_invalid(row: Any) -> str:
        if row.number is None:  # multi-threaded parsing gives no line numbers
            invalid.unnumbered += 1
        else:
            invalid.lines.append(int(row.number))
            if len(invalid.texts) < MAX_REPORTED_LINES:
                invalid.texts[int(row.number)] = str(row.text)[:200]
        return "skip"

    used = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in header.names]
    dict_type = pa.dictionary(pa.int32(), pa.string())
    number = pa.float64() if fast else pa.string()
    types = {c: (number if c in ("latitude", "longitude", "frp") else dict_type) for c in used}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                use_threads=fast,  # single-threaded parsing keeps physical line numbers
                block_size=1 << 24,
                skip_rows=1,
                column_names=list(header.names),
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=header.delimiter,
                quote_char='"' if header.quoted else False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=used,
                null_values=[""] if fast else [],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        if fast:
            raise
        raise CorruptFileError(f"cannot parse as CSV ({exc})", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read file ({exc})", path=path) from exc
    return table, invalid


def _row_lines(rows: np.ndarray, invalid_lines: np.ndarray) -> np.ndarray:
    """1-based physical line numbers of table rows, given the lines arrow skipped."""
    rows = np.asarray(rows, dtype=np.int64)
    if invalid_lines.size == 0:
        return rows + 2
    s = np.sort(invalid_lines)
    before = s - 2 - np.arange(s.size)
    return rows + 2 + np.searchsorted(before, rows, side="right")


def _float_column(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """Parse a string column to float64; return (values, parsed) with NaN where not parsed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(col)
    if n == 0:
        return np.empty(0, np.float64), np.empty(0, bool)
    try:
        values = col if col.type == pa.float64() else pc.cast(col, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        col = pc.utf8_trim_whitespace(col)
        ok = pc.match_substring_regex(col, _NUMBER_RE)
        ok = pc.or_(ok, pc.match_substring_regex(col, r"^(?i)[+-]?(nan|inf|infinity)$"))
        masked = pc.if_else(ok, col, pa.scalar(None, pa.string()))
        try:
            values = pc.cast(masked, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # pragma: no cover - defensive
            values = pa.array(pd.to_numeric(pd.Series(masked.to_pylist()), errors="coerce"))
    out = values.to_numpy(zero_copy_only=False) if isinstance(values, pa.ChunkedArray) else np.asarray(values)
    out = np.asarray(out, dtype=np.float64)
    parsed = ~np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
    return out, parsed


def _dict_column(col: Any, decode: Callable[[str], tuple], dtypes: Sequence[Any]) -> list[np.ndarray]:
    """Decode a dictionary-encoded column once per distinct value, then gather per row.

    ``decode`` maps one string to a tuple of values (one per output array).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[list[np.ndarray]] = [[] for _ in dtypes]
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        values = [*chunk.dictionary.to_pylist(), ""]  # the extra entry stands for nulls
        luts = [np.asarray(v, dtype=dt) for v, dt in zip(zip(*(decode(s) for s in values), strict=True), dtypes, strict=True)]
        idx = pc.fill_null(chunk.indices, len(values) - 1).to_numpy(zero_copy_only=False)
        for k, lut in enumerate(luts):
            parts[k].append(lut[idx])
    return [np.concatenate(p) if p else np.empty(0, dtype=dt) for p, dt in zip(parts, dtypes, strict=True)]


def _decode_date(s: str) -> tuple[int]:
    m = _DATE_RE.fullmatch(s)
    if not m:
        return (_NAT,)
    try:
        d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return (_NAT,)
    if not (_MIN_DATE <= d <= _MAX_DATE):  # datetime64[ns] covers 1677-09-21 .. 2262-04-11
        return (_NAT,)
    return ((d - date(1970, 1, 1)).days,)


def _decode_time(s: str) -> tuple[int]:
    m = _HHMM_RE.fullmatch(s)
    if m:
        hours, minutes = divmod(int(m.group(1)), 100)
    else:
        m = _HH_MM_RE.fullmatch(s)
        if not m:
            return (-1,)
        hours, minutes = int(m.group(1)), int(m.group(2))
    if hours > 23 or minutes > 59:
        return (-1,)
    return (hours * 60 + minutes,)


_CONF_WORDS = {"l": 0, "low": 0, "n": 1, "nominal": 1, "h": 2, "high": 2}


def _decode_confidence(s: str) -> tuple[int, float, int]:
    """-> (class code or -1, percent or NaN, status 0 ok / 1 unparseable / 2 out of range)."""
    key = s.strip().casefold()
    if not key:
        return (-1, math.nan, 0)
    if key in _CONF_WORDS:
        return (_CONF_WORDS[key], math.nan, 0)
    try:
        pct = float(key)
    except ValueError:
        return (-1, math.nan, 1)
    if not (0.0 <= pct <= 100.0):
        return (-1, math.nan, 2)
    code = 0 if pct < MODIS_CONFIDENCE_NOMINAL_FROM else (1 if pct < MODIS_CONFIDENCE_HIGH_FROM else 2)
    return (code, pct, 0)


def _decode_daynight(s: str) -> tuple[int, bool]:
    key = s.strip().casefold()
    if not key:
        return (-1, True)
    if key in ("d", "day"):
        return (0, True)
    if key in ("n", "night"):
        return (1, True)
    return (-1, False)


def _decode_type(s: str) -> tuple[int, bool, bool]:
    """-> (value, is_na, ok)."""
    if not s.strip():
        return (0, True, True)
    if _INT_RE.fullmatch(s):
        v = int(s)
        if -128 <= v <= 127:
            return (v, False, True)
    return (0, True, False)


def _normalize_instrument(s: str) -> str | None:
    text = s.strip()
    if not text:
        return None
    up = text.upper()
    return up if up in INSTRUMENT_CATEGORIES else text


class _Labeller:
    """Decode labels to category codes, growing the category list with unknown labels."""

    def __init__(self, categories: Sequence[str], normalise: Callable[[str], str | None]) -> None:
        self.categories = list(categories)
        self.normalise = normalise

    def __call__(self, s: str) -> tuple[int]:
        label = self.normalise(s)
        if label is None:
            return (-1,)
        if label not in self.categories:
            self.categories.append(label)
        return (self.categories.index(label),)


# ----------------------------------------------------------------------------- one file
@dataclass
class _Part:
    """Decoded, filtered columns of one file (numpy only)."""

    cols: dict[str, np.ndarray]
    satellites: list[str]
    instruments: list[str]


def _decode_table(table: Any, layout: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], list[str]]:
    """Decode every column; return (values, validity flags, satellite and instrument categories)."""
    n = table.num_rows
    names = set(table.column_names)
    v: dict[str, np.ndarray] = {}
    ok: dict[str, np.ndarray] = {}
    v["latitude"], ok["latitude"] = _float_column(table.column("latitude"))
    v["longitude"], ok["longitude"] = _float_column(table.column("longitude"))
    v["frp"], ok["frp"] = _float_column(table.column("frp"))
    (v["days"],) = _dict_column(table.column("acq_date"), _decode_date, [np.int64])
    (v["minutes"],) = _dict_column(table.column("acq_time"), _decode_time, [np.int32])
    if "confidence" in names:
        v["confidence"], v["confidence_pct"], ok["confidence"] = _dict_column(
            table.column("confidence"), _decode_confidence, [np.int8, np.float32, np.int8]
        )
    else:
        v["confidence"], v["confidence_pct"] = np.full(n, -1, np.int8), np.full(n, np.nan, np.float32)
        ok["confidence"] = np.zeros(n, np.int8)
    if "daynight" in names:
        v["daynight"], ok["daynight"] = _dict_column(table.column("daynight"), _decode_daynight, [np.int8, bool])
    else:
        v["daynight"], ok["daynight"] = np.full(n, -1, np.int8), np.ones(n, bool)
    if "type" in names:
        v["type"], v["type_na"], ok["type"] = _dict_column(table.column("type"), _decode_type, [np.int8, bool, bool])
    else:
        v["type"], v["type_na"], ok["type"] = np.zeros(n, np.int8), np.ones(n, bool), np.ones(n, bool)
    sats = _Labeller(SATELLITE_CATEGORIES, normalize_satellite)
    ins = _Labeller(INSTRUMENT_CATEGORIES, _normalize_instrument)
    v["satellite"] = _dict_column(table.column("satellite"), sats, [np.int16])[0] if "satellite" in names else np.full(n, -1, np.int16)
    v["instrument"] = _dict_column(table.column("instrument"), ins, [np.int16])[0] if "instrument" in names else np.full(n, -1, np.int16)
    # instrument where not given: from the layout, else from the satellite
    missing = v["instrument"] < 0
    if missing.any():
        if layout in INSTRUMENT_CATEGORIES:
            v["instrument"][missing] = INSTRUMENT_CATEGORIES.index(layout)
        else:
            lut = np.array(
                [0 if s in _VIIRS_SATELLITES else 1 if s in _MODIS_SATELLITES else -1 for s in sats.categories] + [-1],
                dtype=np.int16,
            )
            v["instrument"][missing] = lut[v["satellite"][missing]]
    return v, ok, sats.categories, ins.categories


def _bad_reasons(v: dict[str, np.ndarray], ok: dict[str, np.ndarray], idx: np.ndarray | None = None) -> np.ndarray:
    """Reason code (1-based index into ``_REASONS``, 0 = good) of rows ``idx`` (all if None)."""

    def g(a: np.ndarray) -> np.ndarray:
        return a if idx is None else a[idx]

    lat, lon, frp = g(v["latitude"]), g(v["longitude"]), g(v["frp"])
    lat_ok, lon_ok, frp_ok = g(ok["latitude"]), g(ok["longitude"]), g(ok["frp"])
    conf_status = g(ok["confidence"])
    checks = (
        ~lat_ok,
        ~(np.abs(lat) <= 90.0),
        ~lon_ok,
        ~(np.abs(lon) <= 180.0),
        g(v["days"]) == _NAT,
        g(v["minutes"]) < 0,
        ~frp_ok,
        ~((frp >= 0.0) & np.isfinite(frp)),
        conf_status == 1,
        conf_status == 2,
        ~g(ok["daynight"]),
        ~g(ok["type"]),
    )
    reason = np.zeros(lat.shape, np.int8)
    for k in range(len(checks), 0, -1):  # last assignment wins: the first reason that applies
        reason[checks[k - 1]] = k
    return reason


def _read_one(
    path: Path,
    *,
    day_range: tuple[int | None, int | None],
    bbox: tuple[float, float, float, float] | None,
    strict: bool,
) -> tuple[_Part, FileReport]:
    header = _sniff(path)
    if header is None or not header.has_data:
        note = "empty file" if header is None else "header only, no data rows"
        log.info("%s: %s", path, note)
        layout = "empty" if header is None else header.layout
        return _empty_part(), FileReport(str(path), layout, 0, 0, 0, notes=(note,))

    table, invalid = _read_arrow(path, header)
    n = table.num_rows
    v, ok, sat_categories, ins_categories = _decode_table(table, header.layout)

    # quick screen, then reasons for the suspicious rows only
    suspect = np.flatnonzero(_bad_reasons(v, ok) != 0) if n else np.empty(0, np.int64)
    reason_s = _bad_reasons(v, ok, suspect)
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
    notes: list[str] = []
    ends_with_newline = _ends_with_newline(path)
    last_line = 0
    if n:
        last_line = int(_row_lines(np.array([n - 1]), inv_lines)[0])
    if inv_lines.size:
        last_line = max(last_line, int(inv_lines.max()))
        partial = (not ends_with_newline) and int(inv_lines[-1]) == last_line
        regular = inv_lines[:-1] if partial else inv_lines
        if regular.size:
            issues.append(RowIssue(_R_FIELDS, int(regular.size), tuple(int(x) for x in regular[:MAX_REPORTED_LINES])))
            first_bad = (int(regular[0]), _R_FIELDS, None, invalid.texts.get(int(regular[0]), ""))
        if partial:
            issues.append(RowIssue(_R_PARTIAL, 1, (int(inv_lines[-1]),)))
            if first_bad is None:
                first_bad = (int(inv_lines[-1]), _R_PARTIAL, None, invalid.texts.get(int(inv_lines[-1]), ""))
    if invalid.unnumbered:  # pragma: no cover - only with threads
        issues.append(RowIssue(_R_FIELDS, invalid.unnumbered, ()))
    if bad_idx.size:
        bad_lines = _row_lines(bad_idx, inv_lines)
        for k, text in enumerate(_REASONS, start=1):
            sel = bad_reason == k
            if sel.any():
                issues.append(RowIssue(text, int(sel.sum()), tuple(int(x) for x in bad_lines[sel][:MAX_REPORTED_LINES])))
        if first_bad is None or int(bad_lines[0]) < first_bad[0]:
            why = _REASONS[int(bad_reason[0]) - 1]
            col = _REASON_FIELD[why]
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
