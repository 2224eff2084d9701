"""One validation for every entry: the bounds of values users give.

The command line, the Python API and campaign specs check a value with the same function
here, before any work starts, so ``--batch-size -1``, ``batch_size = -1`` in a spec and
``predict_burned(..., batch_size=-1)`` get the same refusal. Each function returns the
value (normalised) or raises :class:`~firesmoke.errors.InputError` naming the field
(and the file, when given).

The bounds are practical, not physical: wide enough for every real use, narrow enough
that a typo cannot start a job that runs for days or asks for terabytes.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

from firesmoke.errors import InputError

__all__ = [
    "FIRST_DAY",
    "LAST_DAY",
    "MAX_BATCH_SIZE",
    "MAX_DAYS",
    "MAX_NAME",
    "MAX_SYNTHETIC_DAYS",
    "MAX_THREADS",
    "MAX_TILE",
    "MAX_WORKERS",
    "STORE_PROTOCOLS",
    "check_crs",
    "check_date_span",
    "check_integer",
    "check_memory_limit",
    "check_name_length",
    "check_scheduler",
    "check_store_url",
    "check_threshold",
]

#: Tiles per forward pass.
MAX_BATCH_SIZE = 4096
#: Tile side in pixels.
MAX_TILE = 8192
#: Worker processes of a LocalCluster, threads per worker, torch threads.
MAX_WORKERS = 1024
MAX_THREADS = 1024
#: Days in one date range (about 50 years; VIIRS has flown since 2012).
MAX_DAYS = 18_300
#: Days any date may take (satellite era, and what datetime64[ns] holds).
FIRST_DAY = dt.date(1950, 1, 1)
LAST_DAY = dt.date(2200, 12, 31)
#: Days of one synthetic scenario (each day is simulated and written).
MAX_SYNTHETIC_DAYS = 3_660
#: Characters of a name used in file names.
MAX_NAME = 200
#: fsspec protocols a store may be written to (local paths have none).
STORE_PROTOCOLS = ("file", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory")


def _error(message: str, field: str, path: Any = None) -> InputError:
    return InputError(message, path=path, field=field)


def check_integer(value: Any, field: str, minimum: int = 1, maximum: int | None = None,
                  path: Any = None) -> int:
    """An integer within ``[minimum, maximum]`` (booleans and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        else:
            raise _error(f"expected an integer, got {value!r}", field, path)
    if value < minimum or (maximum is not None and value > maximum):
        top = f" and <= {maximum:,}" if maximum is not None else ""
        raise _error(f"expected an integer >= {minimum}{top}, got {value!r}", field, path)
    return value


def check_threshold(value: Any, field: str = "threshold", path: Any = None) -> float | None:
    """A confidence threshold: ``None`` (the default) or a finite number in [0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= 1:
        raise _error(f"expected a number in [0, 1], got {value!r}", field, path)
    return float(value)


def check_memory_limit(value: Any, field: str = "memory_limit", path: Any = None) -> str | int:
    """A Dask worker memory limit: ``"auto"``, a size (``"4GiB"``) or bytes, > 0."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _error(f"expected 'auto', a size like '4GiB' or bytes, got {value!r}", field, path)
    from dask.utils import parse_bytes

    try:
        n = parse_bytes(value) if isinstance(value, str) else value
    except (ValueError, TypeError) as exc:
        raise _error(f"not a size: {value!r} ({exc}); use e.g. '4GiB' or 'auto'",
                     field, path) from None
    if n <= 0:
        raise _error(f"must be positive, got {value!r}", field, path)
    return value


def check_scheduler(value: Any, field: str = "scheduler", path: Any = None) -> str:
    """A Dask scheduler address (``tcp://host:8786``, ``host:8786``, ``tls://...``)."""
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise _error(f"expected a scheduler address like tcp://host:8786, got {value!r}",
                     field, path)
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        proto, loc = parse_address(value)
        if proto in ("tcp", "tls", "ws", "wss", "ucx"):
            _, port = parse_host_port(loc)
            if not 0 < int(port) < 65536:
                raise ValueError(f"port {port} out of range")
    except (ValueError, TypeError) as exc:
        raise _error(f"not a scheduler address: {value!r} ({exc}); use e.g. tcp://host:8786",
                     field, path) from None
    return value


def check_store_url(value: Any, field: str = "out", path: Any = None) -> str:
    """A store path or URL with a protocol stores can be written to (no ``ftp://``, ``http://``)."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not text:
        raise _error(f"expected a path or URL, got {value!r}", field, path)
    if "://" in text:
        proto = text.split("://", 1)[0].lower()
        if proto not in STORE_PROTOCOLS:
            raise _error(f"cannot write a store to {proto}:// (use a local path or one of "
                         f"{', '.join(p + '://' for p in STORE_PROTOCOLS if p != 'file')})",
                         field, path)
    return text


def check_date_span(start: dt.date, end: dt.date, field: str = "end", path: Any = None,
                    max_days: int = MAX_DAYS) -> int:
    """The number of days of ``start..end`` (inclusive); reversed or over-long spans refused."""
    if end < start:
        raise _error(f"end {end} is before start {start}", field, path)
    for d in (start, end):
        if not FIRST_DAY <= d <= LAST_DAY:
            raise _error(f"{d} is outside {FIRST_DAY}..{LAST_DAY}", field, path)
    days = (end - start).days + 1
    if days > max_days:
        raise _error(f"{start}..{end} is {days:,} days; at most {max_days:,} are allowed in one "
                     "run: split the period", field, path)
    return days


def check_name_length(value: str, field: str = "name", path: Any = None,
                      maximum: int = MAX_NAME) -> str:
    """A name used in file names is at most ``maximum`` characters."""
    if len(value) > maximum:
        raise _error(f"name of {len(value):,} characters; at most {maximum}", field, path)
    return value


def check_crs(value: Any, field: str = "crs", path: Any = None, equal_area: bool = False) -> str:
    """A CRS pyproj understands (``EPSG:6933``, WKT, PROJ); ``equal_area``: a projected one."""
    if not isinstance(value, str) or not value or len(value) > 10_000:
        raise _error(f"expected a CRS string like 'EPSG:6933', got {value!r}", field, path)
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError as exc:
        raise _error(f"not a CRS: {value!r} ({str(exc).splitlines()[0]})", field, path) from None
    if equal_area and not crs.is_projected:
        raise _error(f"{value!r} is not a projected CRS; areas need an equal-area projection "
                     "such as EPSG:6933", field, path)
    return value
