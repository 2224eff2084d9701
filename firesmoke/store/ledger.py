"""Inside every store: a ledger of finished blocks, a template marker and a writer lock.

All live in the store's ``.firesmoke/`` folder (:data:`~firesmoke.store.location.META`),
so a store on any object store carries its own resume state and a cluster needs no
shared disk:

- ``.firesmoke/ledger/``: one small JSON file per finished block (written after the
  block's data), plus the marker file ``FIRESMOKE_LEDGER`` that identifies the folder
  as firesmoke's: :meth:`Ledger.clear` deletes nothing in a folder without it;
- ``.firesmoke/template.json``: written once the store's metadata (the template) is
  complete, so a template torn by a kill is recognised and rebuilt;
- ``.firesmoke/lock``: the writer lock (:class:`StoreLock`), holder host, pid and time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Mapping
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from firesmoke.errors import (
    InputError,
    StoreLockedError,
)
from firesmoke.paths import UnsafePathError, check_no_symlinks
from firesmoke.store.location import META, Location, StoreOptions

__all__ = ["LEDGER_MARKER", "Ledger", "StoreLock", "StoreLockedError"]

log = logging.getLogger(__name__)

LEDGER_DIR = f"{META}/ledger"
TAKEOVER = f"{META}/lock.takeover"
LEDGER_MARKER = "FIRESMOKE_LEDGER"
TEMPLATE_MARKER = f"{META}/template.json"
LOCK = f"{META}/lock"
_BLOCK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


class Ledger:
    """Markers of the finished blocks of a store (one small file per block, inside it).

    Parameters
    ----------
    store
        Path, fsspec URL or :class:`~firesmoke.store.location.Location` of the store.
    storage_options
        fsspec options for a URL.
    """

    def __init__(self, store: Any, storage_options: StoreOptions = None) -> None:
        self.location = Location.of(store, storage_options)

    @property
    def root(self) -> Any:
        """The ledger folder: a :class:`pathlib.Path` for local stores, else a URL."""
        if self.location.local:
            return self.location.path / LEDGER_DIR
        return f"{self.location.url}/{LEDGER_DIR}"

    @staticmethod
    def _name(block_id: str) -> str:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", block_id)
        if not name or name.startswith("."):
            name = "b" + name
        return name

    @property
    def is_firesmoke(self) -> bool:
        """The store has firesmoke's ledger (its marker file)."""
        return self.location.exists(f"{LEDGER_DIR}/{LEDGER_MARKER}")

    def create(self) -> None:
        """Create the ledger folder and its marker (idempotent)."""
        if not self.is_firesmoke:
            self.location.write_bytes(f"{LEDGER_DIR}/{LEDGER_MARKER}",
                                      b'{"firesmoke_ledger": 1}\n')

    def done(self, block_id: str) -> bool:
        return self.location.exists(f"{LEDGER_DIR}/{self._name(block_id)}")

    def mark(self, block_id: str, info: Mapping[str, Any] | None = None) -> None:
        """Record a finished block (atomic: a marker is complete or absent)."""
        self.create()
        self.location.write_bytes(f"{LEDGER_DIR}/{self._name(block_id)}",
                                  json.dumps(dict(info or {}), default=str).encode())

    def finished(self) -> set[str]:
        return {n for n in self.location.listdir(LEDGER_DIR)
                if n != LEDGER_MARKER and ".part" not in n and _BLOCK.match(n)}

    def clear(self) -> None:
        """Forget every finished block (and the template marker).

        Only files firesmoke wrote are deleted: the folder must carry the ledger marker
        (otherwise :class:`~firesmoke.paths.UnsafePathError`), is never followed when it
        is a symbolic link, and only block-marker names are removed.
        """
        loc = self.location
        loc.delete(TEMPLATE_MARKER)
        if not loc.exists(LEDGER_DIR):
            return
        if not self.is_firesmoke:
            raise UnsafePathError("is not a firesmoke ledger (no marker file); refusing to "
                                  "delete anything in it", path=self.root)
        for name in self.finished():
            loc.delete(f"{LEDGER_DIR}/{name}")

    # -------------------------------------------------------------- template marker
    def template_done(self) -> bool:
        return self.location.exists(TEMPLATE_MARKER)

    def mark_template(self, info: Mapping[str, Any] | None = None) -> None:
        self.location.write_bytes(TEMPLATE_MARKER, json.dumps(dict(info or {}), default=str).encode())

    def unmark_template(self) -> None:
        self.location.delete(TEMPLATE_MARKER)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreLock:
    """An exclusive writer lock inside a store (``.firesmoke/lock``).

    The lock file records the holder's host, pid and start time and is created
    exclusively (``O_EXCL | O_NOFOLLOW`` on a local disk, a conditional put on object
    stores). A lock left by a process that died on this host is stale and taken over;
    any other holder makes :meth:`acquire` raise :class:`StoreLockedError` naming it.

    ``check_links`` (default): refuse a local store that contains a symbolic link.

    Use as a context manager::

        with StoreLock(store, purpose="firesmoke cube"):
            ...
    """

    def __init__(self, store: Any, storage_options: StoreOptions = None, purpose: str = "",
                 check_links: bool = True) -> None:
        self.location = Location.of(store, storage_options)
        self.purpose = purpose
        self.check_links = check_links
        self.token = uuid.uuid4().hex
        self.held = False

    @property
    def path(self) -> str:
        return f"{self.location.url}/{LOCK}"

    def _holder(self) -> dict[str, Any] | None:
        """The lock file's holder (``None``: no lock file), validated.

        A lock that is not a JSON object, or whose ``pid`` is not a plausible process id,
        reads as ``{"damaged": reason}``: held by nobody we can check, so never taken over.
        The file's raw content (``_raw``) and, for a local lock, its inode (``_ino``, read
        from the same open file) are added, so that a takeover can tell this lock from a
        newer one (a new lock holds a new token).
        """
        loc = self.location
        ino = None
        if loc.local:
            p = loc._local(LOCK)
            if os.path.lexists(p) and (p.is_symlink() or not p.is_file()):
                raise InputError(f"the store lock {LOCK} is not a regular file (a folder or a "
                                 "link); if no firesmoke process writes this store, remove it",
                                 path=loc.url)
            try:
                fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                return None
            with os.fdopen(fd, "rb") as f:
                ino = os.fstat(f.fileno()).st_ino
                raw = f.read(1 << 16)
        else:
            raw = loc.read_bytes(LOCK)
            if raw is None:
                return None
        if not raw.strip():  # created, its content not written yet: a live writer
            return {"_ino": ino, "_raw": raw}
        try:
            holder = json.loads(raw.decode())
        except (ValueError, UnicodeDecodeError):
            holder = None
        if not isinstance(holder, dict):
            return {"damaged": "not a JSON object", "_ino": ino, "_raw": raw}
        pid = holder.get("pid")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)
                                or not 0 < pid < 1 << 31):
            return {"damaged": f"implausible pid {str(pid)[:40]}", "_ino": ino, "_raw": raw}
        holder.update(_ino=ino, _raw=raw)
        return holder

    def _take_over(self, holder: Mapping[str, Any]) -> None:
        """Remove the stale lock described by ``holder``, and only that one.

        Several writers may see the same dead holder at once. On a local disk takeovers
        are serialised by an advisory ``flock`` on ``.firesmoke/lock.takeover`` (released
        by the kernel if its holder dies): under it the lock file is read again and
        removed only if it is still the one read before (same inode and content). A lock
        created meanwhile by another writer holds a new token, so it is never removed,
        and no moment exists without a lock file once a live writer has created one.
        Object stores have no such primitive: the file is deleted (their conditional
        create still lets only one writer win the new lock).
        """
        loc = self.location
        if not loc.local:
            loc.delete(LOCK)
            return
        if fcntl is None:  # pragma: no cover - platforms without flock
            raise StoreLockedError(
                f"{loc.url}: the store lock {self.path} was left by a process that is gone; "
                "delete it to write this store")
        fd = os.open(loc._local(TAKEOVER), os.O_RDWR | os.O_CREAT
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = self._holder()
            if (now is not None and now.get("_ino") == holder.get("_ino")
                    and now.get("_raw") == holder.get("_raw")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(loc._local(LOCK))
        finally:
            os.close(fd)  # releases the flock

    def acquire(self) -> StoreLock:
        loc = self.location
        if loc.local and self.check_links:
            check_no_symlinks(loc.path)
        if loc.local and os.path.lexists(loc.path) and not loc.path.is_dir():
            raise InputError("exists and is not a store folder; refusing to write into it",
                             path=loc.path)  # nothing in a store we write may point elsewhere
        loc.makedirs(META)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
              "purpose": self.purpose,
              "since": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"}
        for _ in range(2):
            try:
                loc.write_bytes(LOCK, json.dumps(me).encode(), exclusive=True)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # released meanwhile
                    continue
                if "damaged" in holder:
                    raise StoreLockedError(
                        f"{loc.url}: the store lock {self.path} is damaged "
                        f"({holder['damaged']}); if no firesmoke process writes this store, "
                        "delete it") from None
                if (holder.get("host") == me["host"] and isinstance(holder.get("pid"), int)
                        and not _pid_alive(holder["pid"])):
                    log.warning("taking over the stale lock of %s (pid %s is gone)",
                                loc.url, holder["pid"])
                    self._take_over(holder)
                    continue
                who = (f"{holder.get('purpose') or 'a writer'} on host {holder.get('host', '?')} "
                       f"pid {holder.get('pid', '?')} since {holder.get('since', '?')}")
                raise StoreLockedError(
                    f"{loc.url}: store is being written by {who}; wait for it to finish "
                    f"(or, if that process is gone, delete {self.path})") from None
            self.held = True
            return self
        raise StoreLockedError(f"{loc.url}: could not take the store lock {self.path}")

    def release(self) -> None:
        if not self.held:
            return
        holder = self._holder()
        if holder is not None and holder.get("token") == self.token:
            self.location.delete(LOCK)
        self.held = False

    def moved_to(self, store: Any) -> None:
        """The locked folder was renamed to ``store`` (the lock file moved with it)."""
        self.location = Location.of(store, self.location.storage_options or None)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.release()
