"""The process's cache of open HDF4 and netCDF4/HDF5 files (least recently used closed first).

Opening an HDF4 or netCDF4/HDF5 file costs more than reading a window of it, so the
window readers keep handles open. :data:`OPEN_FILES` is the one cache of them: pyhdf
``SD`` handles (kind ``"hdf4"``) and ``netCDF4.Dataset`` handles (kind ``"netcdf"``) side
by side, each kind with its own opener and closer. Every use holds :data:`FILE_LOCK`,
the one process-wide lock around pyhdf and netCDF4 calls (neither library is
thread-safe); :func:`close_cached_files` closes them.

:class:`HandleCache` itself keys a value by the process id, its kind and the version
``(path, mtime, size)`` of each file it was made from: a forked worker never reuses (nor
closes) its parent's handles, and a file rewritten or truncated since is opened afresh.
Values built from several files (e.g. the decoded arrays of a swath granule, see
:mod:`firesmoke.io.viirs.readers`) are cached the same way. The class is not
thread-safe: its user holds a lock.

An HDF4 file is checked (:func:`~firesmoke.io._core.hdf4.verify_hdf4_data`) once per file
version and process: before its first handle is opened, unless it was checked already
(:func:`mark_checked`, e.g. by metadata validation).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from firesmoke.errors import CorruptFileError
from firesmoke.io._core import hdf4
from firesmoke.io._core.hdf4 import FILE_LOCK

__all__ = ["FILE_LOCK", "OPEN_FILES", "FileKind", "HandleCache", "close_cached_files", "mark_checked"]

log = logging.getLogger(__name__)

#: ``(path, mtime_ns, size)`` of one file as it is now
FileVersion = tuple[str, int, int]


@dataclass(frozen=True)
class FileKind:
    """How values of one kind are opened and closed.

    Attributes
    ----------
    opener
        ``opener(paths, stats, *args) -> value`` (``paths`` and their ``os.stat`` results,
        then the ``args`` of :meth:`HandleCache.get`); raises
        :class:`~firesmoke.errors.CorruptFileError`.
    closer
        ``closer(value)``, quiet about errors (on eviction, :meth:`~HandleCache.forget`,
        :meth:`~HandleCache.clear`).
    alive
        ``alive(value) -> bool``: a cached value that is no longer usable is opened again.
    """

    opener: Callable[..., Any]
    closer: Callable[[Any], None]
    alive: Callable[[Any], bool] | None = None


class HandleCache:
    """Values by ``(pid, kind, file versions, args)``, at most ``maxsize`` of them.

    Parameters
    ----------
    kinds
        Kind name -> :class:`FileKind`.
    maxsize
        Values kept (all kinds together).
    """

    def __init__(self, kinds: Mapping[str, FileKind], maxsize: int) -> None:
        self.kinds = dict(kinds)
        self.maxsize = maxsize
        self._pid = os.getpid()
        self._values: OrderedDict[tuple[int, str, tuple[FileVersion, ...], tuple[Hashable, ...]], Any] = (
            OrderedDict())

    def _own(self) -> None:
        """After a fork: drop, without closing, what the parent process opened."""
        pid = os.getpid()
        if pid != self._pid:
            self._values = OrderedDict()
            self._pid = pid

    def get(self, kind: str, *paths: str | os.PathLike[str], args: tuple[Hashable, ...] = ()) -> Any:
        """The value of ``kind`` for ``paths`` as they are now (opened and cached if needed)."""
        spec = self.kinds[kind]
        self._own()
        ps = tuple(os.fspath(p) for p in paths)
        stats = []
        for p in ps:
            try:
                stats.append(os.stat(p))
            except OSError as exc:
                raise CorruptFileError(f"cannot stat file ({exc})", path=p) from exc
        versions = tuple((p, st.st_mtime_ns, st.st_size) for p, st in zip(ps, stats, strict=True))
        key = (self._pid, kind, versions, args)
        value = self._values.get(key)
        if value is not None and (spec.alive is None or spec.alive(value)):
            self._values.move_to_end(key)
            return value
        if value is not None:  # no longer usable: closed and opened again
            self._close(key)
        value = spec.opener(ps, tuple(stats), *args)
        self._values[key] = value
        while len(self._values) > self.maxsize:
            self._close(next(iter(self._values)))
        return value

    def _close(self, key: tuple[int, str, tuple[FileVersion, ...], tuple[Hashable, ...]]) -> None:
        self.kinds[key[1]].closer(self._values.pop(key))

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Close and drop the values made from ``path`` (after an error, before a rewrite)."""
        self._own()
        p = os.fspath(path)
        for key in [k for k in self._values if any(v[0] == p for v in k[2])]:
            self._close(key)

    def clear(self, kind: str | None = None) -> None:
        """Close every value (of ``kind``)."""
        self._own()
        for key in [k for k in self._values if kind is None or k[1] == kind]:
            self._close(key)

    def keys(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(kind, paths)`` of the cached values, least recently used first."""
        self._own()
        return [(k[1], tuple(v[0] for v in k[2])) for k in self._values]

    def __len__(self) -> int:
        self._own()
        return len(self._values)


# --------------------------------------------------------------------------- HDF4
#: ``(path, mtime, size)`` of HDF4 files checked complete in this process (by validation
#: or by opening a handle)
_CHECKED: set[FileVersion] = set()


def mark_checked(path: str | os.PathLike[str]) -> None:
    """Remember that ``path``, as it is now, passed :func:`~firesmoke.io._core.hdf4.verify_hdf4_data`."""
    p = os.fspath(path)
    st = os.stat(p)
    _CHECKED.add((p, st.st_mtime_ns, st.st_size))


def _open_sd(paths: tuple[str, ...], stats: tuple[os.stat_result, ...]) -> Any:
    """Open an HDF4 file with pyhdf (the caller holds :data:`FILE_LOCK`), after the same
    completeness and checksum checks as :func:`firesmoke.io._core.hdf4.open_sd` unless this
    process already checked the file as it is now."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    (path,), (st,) = paths, stats
    version = (path, st.st_mtime_ns, st.st_size)
    if version not in _CHECKED:
        hdf4.verify_hdf4_data(path)
    try:
        sd = SD(path, SDC.READ)
    except HDF4Error as exc:
        raise CorruptFileError(f"cannot open HDF4 file ({exc})", path=path) from exc
    _CHECKED.add(version)
    return sd


def _end_sd(sd: Any) -> None:
    from pyhdf.error import HDF4Error

    try:
        sd.end()
    except HDF4Error:  # pragma: no cover - closing a broken file
        log.debug("error closing an HDF4 handle", exc_info=True)


# --------------------------------------------------------------------------- netCDF4
def _open_nc(paths: tuple[str, ...], stats: tuple[os.stat_result, ...]) -> Any:
    """``netCDF4.Dataset`` read-only (the caller holds :data:`FILE_LOCK`)."""
    import netCDF4

    (path,), (st,) = paths, stats
    if st.st_size == 0:
        raise CorruptFileError("file is empty", path=path)
    try:
        return netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise CorruptFileError(
            f"cannot open netCDF4/HDF5 file ({exc}); truncated or not netCDF?", path=path
        ) from exc


def _close_nc(ds: Any) -> None:
    try:
        if ds.isopen():
            ds.close()
    except (OSError, RuntimeError):  # pragma: no cover - closing a broken file
        log.debug("error closing a netCDF handle", exc_info=True)


_MAX_OPEN_FILES = 48
#: The open HDF4 (``"hdf4"``: pyhdf ``SD``) and netCDF4/HDF5 (``"netcdf"``:
#: ``netCDF4.Dataset``) files of this process; use it holding :data:`FILE_LOCK`.
OPEN_FILES = HandleCache(
    {
        "hdf4": FileKind(_open_sd, _end_sd),
        "netcdf": FileKind(_open_nc, _close_nc, alive=lambda ds: ds.isopen()),
    },
    _MAX_OPEN_FILES,
)


def close_cached_files(path: str | os.PathLike[str] | None = None) -> None:
    """Close the files :data:`OPEN_FILES` keeps open (all, or those of ``path``).

    Needed only before rewriting, in the same process, a file that was read (HDF5 refuses
    to open for writing a file that is open for reading), or to release file descriptors.
    """
    with FILE_LOCK:
        if path is not None:
            OPEN_FILES.forget(path)
        else:
            OPEN_FILES.clear()
