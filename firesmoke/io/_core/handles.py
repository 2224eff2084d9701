"""A small per-process cache of open file handles (least recently used closed first).

Opening an HDF4 or netCDF4/HDF5 file costs more than reading a window of it, so the
window readers keep handles open. The key holds the process id, the path, the
modification time and the size: a forked worker never reuses its parent's handle and a
file rewritten or truncated since is opened afresh. Not thread-safe: the caller holds the
file library's lock (:data:`~firesmoke.io._core.hdf4.HDF4_LOCK`, ``NETCDF_LOCK``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from firesmoke.errors import CorruptFileError

__all__ = ["HandleCache"]


class HandleCache:
    """Open handles by ``(pid, path, mtime, size)``, at most ``maxsize`` of them.

    Parameters
    ----------
    opener
        ``opener(path, stat) -> handle``; raises :class:`~firesmoke.errors.CorruptFileError`.
    closer
        ``closer(handle)``, quiet about errors (called on eviction, :meth:`forget`, :meth:`clear`).
    maxsize
        Handles kept open.
    alive
        ``alive(handle) -> bool``: a cached handle that is no longer usable is opened again.
    """

    def __init__(self, opener: Callable[[str, os.stat_result], Any], closer: Callable[[Any], None],
                 maxsize: int, alive: Callable[[Any], bool] | None = None) -> None:
        self._opener, self._closer, self._alive = opener, closer, alive
        self.maxsize = maxsize
        self._handles: OrderedDict[tuple[int, str, int, int], Any] = OrderedDict()

    def get(self, path: str | os.PathLike[str]) -> Any:
        """The open handle of ``path`` as it is now (opened and cached if needed)."""
        p = os.fspath(path)
        try:
            st = os.stat(p)
        except OSError as exc:
            raise CorruptFileError(f"cannot stat file ({exc})", path=p) from exc
        key = (os.getpid(), p, st.st_mtime_ns, st.st_size)
        handle = self._handles.get(key)
        if handle is not None and (self._alive is None or self._alive(handle)):
            self._handles.move_to_end(key)
            return handle
        handle = self._opener(p, st)
        self._handles[key] = handle
        while len(self._handles) > self.maxsize:
            self._closer(self._handles.popitem(last=False)[1])
        return handle

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Close and drop the handles of ``path`` (after an error)."""
        p = os.fspath(path)
        for key in [k for k in self._handles if k[1] == p]:
            self._closer(self._handles.pop(key))

    def clear(self) -> None:
        """Close every handle."""
        while self._handles:
            self._closer(self._handles.popitem()[1])

    def __len__(self) -> int:
        return len(self._handles)
