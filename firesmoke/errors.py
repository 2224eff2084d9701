"""Exceptions raised by firesmoke.

Every error about user input derives from :class:`InputError` and names the file
(when there is one) and what was wrong with it, so a failing campaign can say which
of thousands of inputs to look at. Library tracebacks (pyhdf, netCDF4, rasterio, ...)
are chained as ``__cause__``, never shown bare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = [
    "AuthError",
    "BadRowError",
    "ChecksumError",
    "CorruptFileError",
    "FetchError",
    "FiresmokeError",
    "GridMismatchError",
    "IncompleteStoreError",
    "IncompleteStoreWarning",
    "InputError",
    "InvalidRegionError",
    "MissingColumnError",
    "MissingLayerError",
    "SkippedInput",
    "StoreLockedError",
    "UnobservedPeriodWarning",
    "UnsafePathError",
    "WeightsError",
    "WrongProductError",
]


class FiresmokeError(Exception):
    """Base class of every firesmoke exception."""


class InputError(FiresmokeError, ValueError):
    """Bad user input: a file, a parameter or a configuration.

    Parameters
    ----------
    message
        What is wrong, in words.
    path
        The file concerned, if any; it is put at the front of the message.
    field
        The field, column, layer or attribute concerned, if any.
    """

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        field: str | None = None,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.field = field
        self.reason = message
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}:")
        if field is not None:
            parts.append(f"field {field!r}:")
        parts.append(message)
        super().__init__(" ".join(parts))


class InvalidRegionError(InputError):
    """A region definition (bbox, pixel size, JSON file) is invalid."""


class CorruptFileError(InputError):
    """A file is empty, truncated or cannot be decoded by its format library."""


class WrongProductError(InputError):
    """A file is readable but is not the product the reader expects."""


class MissingLayerError(InputError):
    """A required layer/variable/SDS is absent from a file."""


class MissingColumnError(InputError):
    """A required column is absent from a table."""


class GridMismatchError(InputError):
    """Arrays or files that must share one grid do not."""


class WeightsError(InputError):
    """A weights file is missing, fails its checksum or is not loadable safely."""


class UnsafePathError(InputError):
    """An output path leaves its output root or goes through a symbolic link."""


class FetchError(FiresmokeError):
    """A search or download failed (after retries); the message names the URL (secrets masked)."""


class AuthError(FetchError):
    """The server refused the credentials (HTTP 401/403) or none were given."""


class ChecksumError(FetchError):
    """A downloaded file does not have the size or checksum the server announced."""


class StoreLockedError(FiresmokeError):
    """Another writer holds the store's lock."""


class IncompleteStoreError(InputError):
    """A store's ledger does not cover all of it (a writer was interrupted)."""


class IncompleteStoreWarning(UserWarning):
    """An incomplete store was opened with ``partial=True``."""


class UnobservedPeriodWarning(UserWarning):
    """A whole period of a burned-area product has no observation (every pixel nodata)."""


class BadRowError(InputError):
    """A bad row in strict mode; ``line`` is its 1-based line number in the file."""

    def __init__(self, message: str, path: str | os.PathLike[str], line: int, field: str | None = None) -> None:
        self.line = int(line)
        super().__init__(f"line {line}: {message}", path=path, field=field)


@dataclass(frozen=True)
class SkippedInput:
    """An input that a folder scan or a pipeline skipped, and why.

    Returned in lists by every function that scans folders, so nothing is dropped
    silently.
    """

    path: str
    reason: str
    details: dict = field(default_factory=dict, compare=False)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return f"{self.path}: {self.reason}"
