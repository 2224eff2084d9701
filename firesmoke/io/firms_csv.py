"""FIRMS CSV layouts: header detection, the pyarrow parse and per-column decoding.

This is the lower layer of :func:`firesmoke.io.firms.read_firms`: it knows what FIRMS
CSV files look like and turns their columns into numpy arrays plus validity flags; the
per-file report, filtering and the final table are assembled in :mod:`firesmoke.io.firms`.

Layouts (detected from the header, never from the file name):

* VIIRS 375 m (S-NPP ``VNP14IMG``, NOAA-20 ``VJ114IMG``, NOAA-21 ``VJ214IMG``), NRT and
  standard/archive: ``bright_ti4``/``bright_ti5`` columns, confidence ``l/n/h`` or
  ``low/nominal/high``, ``version`` like ``2.0NRT``, ``1`` or ``2``; archive files add
  ``instrument`` and ``type``.
* MODIS C6/C6.1 (``MCD14DL`` NRT, ``MCD14ML`` archive): ``brightness``/``bright_t31``,
  numeric confidence 0-100, optional ``instrument`` and ``type``.

The delimiter (``,``, else ``;``, tab or ``|``), quoting and a UTF-8 byte-order mark are
recognised from the header line. MODIS numeric confidence is mapped to classes with the
FIRMS convention (:data:`MODIS_CONFIDENCE_NOMINAL_FROM`, :data:`MODIS_CONFIDENCE_HIGH_FROM`).
Satellite codes are normalised by :func:`normalize_satellite`.

Parsing is done by ``pyarrow.csv`` with explicit column types; categorical columns are
read dictionary-encoded and decoded once per distinct value (:func:`decode_table`), so
there is no per-row Python. Clean files are parsed multi-threaded; a file with a
malformed row is parsed again single-threaded to get physical line numbers
(:func:`read_csv_columns`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from firesmoke.errors import CorruptFileError, InputError, MissingColumnError
from firesmoke.io._core.text import blank_bad_lines

__all__ = [
    "CONFIDENCE_CATEGORIES",
    "DAYNIGHT_CATEGORIES",
    "INSTRUMENT_CATEGORIES",
    "MAX_REPORTED_LINES",
    "MODIS_CONFIDENCE_HIGH_FROM",
    "MODIS_CONFIDENCE_NOMINAL_FROM",
    "OPTIONAL_COLUMNS",
    "REASON_FIELD",
    "REQUIRED_COLUMNS",
    "ROW_REASONS",
    "SATELLITE_CATEGORIES",
    "CsvHeader",
    "InvalidRows",
    "bad_row_reasons",
    "decode_table",
    "header_notes",
    "normalize_satellite",
    "read_csv_columns",
    "row_lines",
    "sniff_header",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "acq_date", "acq_time", "frp")
OPTIONAL_COLUMNS: tuple[str, ...] = ("confidence", "satellite", "instrument", "daynight", "type")
CONFIDENCE_CATEGORIES: tuple[str, ...] = ("low", "nominal", "high")
SATELLITE_CATEGORIES: tuple[str, ...] = ("S-NPP", "NOAA-20", "NOAA-21", "Terra", "Aqua")
INSTRUMENT_CATEGORIES: tuple[str, ...] = ("VIIRS", "MODIS")
DAYNIGHT_CATEGORIES: tuple[str, ...] = ("D", "N")

#: MODIS numeric confidence: ``nominal`` from this value (FIRMS convention), ``low`` below.
MODIS_CONFIDENCE_NOMINAL_FROM = 30.0
#: MODIS numeric confidence: ``high`` from this value (FIRMS convention).
MODIS_CONFIDENCE_HIGH_FROM = 80.0

#: How many line numbers a report keeps per reason.
MAX_REPORTED_LINES = 5

_SNIFF_BYTES = 1 << 16
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

# Reasons for dropping a decoded row, in the order they are checked (a row is reported
# once, under the first reason that applies); :func:`bad_row_reasons` codes index this.
ROW_REASONS: tuple[str, ...] = (
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
REASON_FIELD: dict[str, str] = {
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


# ----------------------------------------------------------------------------- satellites
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


# ----------------------------------------------------------------------------- sniffing
@dataclass(frozen=True)
class CsvHeader:
    """What the header line of a FIRMS CSV file says."""

    names: tuple[str, ...]
    """Column names, lower-cased; blank or repeated names get a ``_<index>`` suffix."""
    delimiter: str
    quoted: bool
    """Whether the header uses ``"`` quotes (fields are read as standard CSV either way)."""
    layout: str
    """``"VIIRS"``, ``"MODIS"`` or ``"unknown"``."""
    has_data: bool
    """Whether anything follows the header line."""


def sniff_header(path: Path) -> CsvHeader | None:
    """Read and interpret the header line of a FIRMS CSV file.

    Returns
    -------
    CsvHeader or None
        None for an empty (or blank) file.

    Raises
    ------
    CorruptFileError
        Binary or non-UTF-8 content, or no line break in the first 64 KiB.
    MissingColumnError
        A column of :data:`REQUIRED_COLUMNS` is missing (the error names it).
    InputError
        The file cannot be read, or a known column appears twice.
    """
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
    first = head.find(b"\n")
    try:  # the header must be text; damaged data lines are dropped and listed later
        head[: first if first >= 0 else len(head)].decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (first < 0 and len(head) == _SNIFF_BYTES and exc.start >= len(head) - 3):
            raise CorruptFileError(
                f"header line not UTF-8 text (byte {exc.start}): not a FIRMS CSV file", path=path
            ) from exc
    text = head.decode("utf-8", errors="replace")
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
    return CsvHeader(tuple(names), delimiter, '"' in header, layout, has_data)


#: Columns of the FIRMS layouts that firesmoke knows and does not need.
_OTHER_FIRMS_COLUMNS: tuple[str, ...] = (
    "bright_ti4", "bright_ti5", "brightness", "bright_t31", "scan", "track", "version",
)


def header_notes(header: CsvHeader) -> list[str]:
    """Notes on header names that are not FIRMS columns, naming the column each may be.

    A damaged optional header (``confidenc3``) would otherwise make the column vanish
    silently; a name close to a missing optional column says which values are not read.
    """
    known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS + _OTHER_FIRMS_COLUMNS)
    missing = [c for c in OPTIONAL_COLUMNS + _OTHER_FIRMS_COLUMNS if c not in header.names]
    notes = []
    for name in header.names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, missing, n=1, cutoff=0.75)
        if close and close[0] in OPTIONAL_COLUMNS:
            notes.append(f"unknown column {name!r} ignored: a damaged {close[0]!r} header? {close[0]} not read")
        elif close:
            notes.append(f"unknown column {name!r} ignored (a damaged {close[0]!r} header?)")
        else:
            notes.append(f"unknown column {name!r} ignored")
    return notes


# ----------------------------------------------------------------------------- arrow read
@dataclass
class InvalidRows:
    """Lines pyarrow skipped: wrong number of fields, or (``not_utf8``) not UTF-8 text."""

    lines: list[int] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    unnumbered: int = 0
    not_utf8: list[int] = field(default_factory=list)


def read_csv_columns(path: Path, header: CsvHeader) -> tuple[Any, InvalidRows]:
    """Parse the used columns with pyarrow -> ``(pyarrow.Table, InvalidRows)``.

    Only :data:`REQUIRED_COLUMNS` and :data:`OPTIONAL_COLUMNS` are read; text columns
    come back dictionary-encoded, numbers as float64 (fast path) or strings.

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


def _arrow_csv(path: Path, header: CsvHeader, fast: bool, source: Any = None,
               not_utf8: Sequence[int] = ()) -> tuple[Any, InvalidRows]:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    invalid = InvalidRows(not_utf8=list(not_utf8))

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
            path if source is None else source,
            read_options=pacsv.ReadOptions(
                use_threads=fast,  # single-threaded parsing keeps physical line numbers
                block_size=1 << 24,
                skip_rows=1,
                column_names=list(header.names),
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=header.delimiter,
                quote_char='"',  # standard CSV: data rows may be quoted even if the header is not
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
        if source is None and "utf8" in str(exc).lower().replace("-", ""):
            cleaned, bad = blank_bad_lines(path)  # those lines become malformed rows
            if bad:
                return _arrow_csv(path, header, fast=False, source=cleaned, not_utf8=bad)
        raise CorruptFileError(f"cannot parse as CSV ({exc})", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read file ({exc})", path=path) from exc
    return table, invalid


def row_lines(rows: np.ndarray, invalid_lines: np.ndarray) -> np.ndarray:
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


# ----------------------------------------------------------------------------- table
def decode_table(table: Any, layout: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], list[str]]:
    """Decode every column of a table from :func:`read_csv_columns` (one pass per distinct value).

    Returns
    -------
    values : dict of numpy.ndarray
        ``latitude``/``longitude``/``frp`` float64 (NaN if unparsed), ``days`` since
        1970-01-01 (int64, ``NaT`` sentinel when bad), ``minutes`` of the day (-1 when
        bad), ``confidence`` class code (-1 none) and ``confidence_pct``, ``daynight``
        code, ``type``/``type_na``, ``satellite``/``instrument`` category codes (-1 none).
    ok : dict of numpy.ndarray
        Validity flags per column (``confidence``: 0 ok, 1 unparseable, 2 out of range).
    satellites, instruments : list of str
        Category lists the codes index (the standard ones plus any others met).
    """
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


def bad_row_reasons(v: dict[str, np.ndarray], ok: dict[str, np.ndarray], idx: np.ndarray | None = None) -> np.ndarray:
    """Reason code (1-based index into ``ROW_REASONS``, 0 = good) of rows ``idx`` (all if None)."""

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

