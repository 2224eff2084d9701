"""Where a store lives: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://``).

:class:`Location` hides the difference for the few operations the store layer needs
besides Zarr itself: small files inside the store (ledger markers, lock, metadata),
listing and deleting them, and clearing a store's Zarr contents before an overwrite.

On a local disk every one of these operations is confined to the store folder and
never follows a symbolic link (:mod:`firesmoke.paths`); object stores have no links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firesmoke.errors import InputError
from firesmoke.paths import (
    UnsafePathError,
    atomic_write_bytes,
    check_inside,
    is_url,
    makedirs_inside,
    open_exclusive,
    remove_tree,
)

__all__ = ["META", "Location", "StoreOptions", "read_small", "write_small"]

#: folder inside every store for firesmoke's own files (ledger, lock, template marker)
META = ".firesmoke"

StoreOptions = dict[str, Any] | None


_is_url = is_url


@dataclass(frozen=True)
class Location:
    """A store's address (local path or URL) with its fsspec ``storage_options``.

    Build one with :meth:`of`. Picklable (fsspec filesystems are), so workers of a
    distributed cluster use the same object store without a shared disk.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, store: Any, storage_options: StoreOptions = None) -> Location:
        """A Location from a path, a URL or a Location (options given here win)."""
        if isinstance(store, Location):
            if storage_options:
                return cls(store.url, dict(storage_options))
            return store
        text = os.fspath(store)
        if not text:
            raise InputError("empty store path", field="store")
        if text.startswith("file://"):
            text = text[len("file://"):]
        if not _is_url(text):
            if storage_options:
                raise InputError("storage_options given for a local path", path=text,
                                 field="storage_options")
            text = os.path.abspath(text)
        return cls(text.rstrip("/") or "/", dict(storage_options or {}))

    # ------------------------------------------------------------------ basics
    @property
    def local(self) -> bool:
        return not _is_url(self.url)

    @property
    def path(self) -> Path:
        """The local folder (local stores only)."""
        if not self.local:
            raise InputError("not a local store", path=self.url)
        return Path(self.url)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:  # lets old code call Path(location) on local stores
        return self.url

    @property
    def fs(self) -> Any:
        from fsspec.core import url_to_fs

        return url_to_fs(self.url, **self.storage_options)[0]

    @property
    def _root(self) -> str:
        from fsspec.core import url_to_fs

        return url_to_fs(self.url, **self.storage_options)[1].rstrip("/")

    def zarr_args(self) -> dict[str, Any]:
        """``store`` (and ``storage_options``) arguments for ``xarray`` / ``zarr``."""
        if self.local:
            return {"store": self.url}
        return {"store": self.url, "storage_options": dict(self.storage_options)}

    def sibling(self, suffix: str) -> Location:
        """The location named like this one plus ``suffix`` (e.g. ``.part``)."""
        return Location(self.url + suffix, dict(self.storage_options))

    def _full(self, key: str) -> str:
        return f"{self._root}/{key}" if key else self._root

    def _local(self, key: str) -> Path:
        p = self.path / key if key else self.path
        # the store folder's parent is the output root: nothing below it may be a link
        check_inside(self.path.parent, p)
        return p

    def same_as(self, other: Any) -> bool:
        """Whether ``other`` (path, URL or Location) names this very store.

        Local paths are compared after resolving links (``c.zarr`` and ``./x/../c.zarr``
        and a link to it are the same store); URLs after normalising their protocol
        (``s3a://`` is ``s3://``) and trailing slashes.
        """
        o = Location.of(other)
        if self.local != o.local:
            return False
        if self.local:
            a, b = self.path, o.path
            if a.exists() and b.exists():
                return os.path.samefile(a, b)
            return os.path.realpath(a) == os.path.realpath(b)
        from fsspec.core import split_protocol

        def norm(url: str) -> tuple[str, str]:
            proto, rest = split_protocol(url)
            proto = {"s3a": "s3", "gcs": "gs"}.get(proto or "", proto or "")
            return proto, rest.rstrip("/")

        return norm(self.url) == norm(o.url)

    # ------------------------------------------------------------------ queries
    def exists(self, key: str = "") -> bool:
        if self.local:
            return os.path.lexists(self._local(key))
        fs = self.fs
        full = self._full(key)
        fs.invalidate_cache(full)
        return bool(fs.exists(full))

    def is_zarr(self) -> bool:
        """A Zarr group is at this location (v3 ``zarr.json`` or v2 ``.zgroup``)."""
        return self.exists("zarr.json") or self.exists(".zgroup")

    def listdir(self, key: str = "") -> list[str]:
        """Names directly under ``key`` (empty list when missing)."""
        if self.local:
            p = self._local(key)
            if not p.is_dir() or p.is_symlink():
                return []
            return sorted(os.listdir(p))
        fs = self.fs
        full = self._full(key)
        fs.invalidate_cache(full)
        try:
            entries = fs.ls(full, detail=False)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def read_bytes(self, key: str) -> bytes | None:
        """Content of a small file of the store (None when missing)."""
        if self.local:
            p = self._local(key)
            try:
                fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                return None
            except OSError as exc:  # ELOOP: a link
                raise UnsafePathError(f"cannot read ({exc})", path=p) from exc
            with os.fdopen(fd, "rb") as f:
                return f.read()
        fs = self.fs
        full = self._full(key)
        fs.invalidate_cache(full)
        try:
            return bytes(fs.cat_file(full))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ writes
    def makedirs(self, key: str = "") -> None:
        if self.local:
            makedirs_inside(self.path.parent, self._local(key))
        # object stores have no folders

    def write_bytes(self, key: str, data: bytes, exclusive: bool = False) -> None:
        """Write a small file of the store.

        ``exclusive``: fail with :class:`FileExistsError` when it exists (local: created
        with ``O_EXCL | O_NOFOLLOW``; object stores: a conditional put); otherwise the
        file is replaced atomically.
        """
        if self.local:
            p = self._local(key)
            makedirs_inside(self.path.parent, p.parent)
            if exclusive:
                try:
                    f = open_exclusive(p)
                except UnsafePathError:
                    raise FileExistsError(os.fspath(p)) from None
                with f:
                    f.write(data)
            else:
                atomic_write_bytes(p, data, root=self.path.parent)
            return
        fs = self.fs
        full = self._full(key)
        if exclusive:
            fs.invalidate_cache(full)
            if fs.exists(full):  # some fsspec backends ignore mode "xb"
                raise FileExistsError(full)
            try:
                with fs.open(full, "xb") as f:
                    f.write(data)
            except ValueError:  # backend without exclusive mode: best effort
                fs.pipe_file(full, data)
        else:
            fs.pipe_file(full, data)
        fs.invalidate_cache(full)

    def delete(self, key: str) -> None:
        """Delete one file of the store (no error when missing; never through a link)."""
        if self.local:
            p = self._local(key)
            try:
                os.unlink(p)  # unlink removes a link itself, never its target
            except FileNotFoundError:
                pass
            return
        fs = self.fs
        full = self._full(key)
        try:
            fs.rm_file(full)
        except FileNotFoundError:
            pass
        fs.invalidate_cache(full)

    def remove_entry(self, name: str) -> None:
        """Delete a top-level entry of the store (file or folder) without following links."""
        if self.local:
            remove_tree(self._local(name), root=self.path)
            return
        fs = self.fs
        full = self._full(name)
        fs.invalidate_cache(full)
        try:
            fs.rm(full, recursive=True)
        except FileNotFoundError:
            pass
        fs.invalidate_cache(self._root)

    def remove_all(self) -> None:
        """Delete the whole store (callers check it is firesmoke's first)."""
        if self.local:
            remove_tree(self.path, root=self.path.parent)
            return
        fs = self.fs
        fs.invalidate_cache(self._root)
        try:
            fs.rm(self._root, recursive=True)
        except FileNotFoundError:
            pass
        fs.invalidate_cache(self._root)


def write_small(target: Any, text: str, root: Any = None) -> str:
    """Write a small text file (a report, a record) at a local path or a URL.

    Local files are written atomically inside ``root`` (default: their folder), never
    through a symbolic link; URLs are written with one put. Returns the path or URL.
    """
    loc = Location.of(target)
    if loc.local:
        return os.fspath(atomic_write_bytes(loc.path, text.encode("utf-8"), root=root))
    loc.fs.pipe_file(loc._root, text.encode("utf-8"))
    return loc.url


def read_small(target: Any) -> str | None:
    """The text of a small file at a local path or URL (None when missing)."""
    loc = Location.of(target)
    if loc.local:
        try:
            fd = os.open(loc.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read().decode("utf-8")
    try:
        return bytes(loc.fs.cat_file(loc._root)).decode("utf-8")
    except FileNotFoundError:
        return None


def check_credentials(store: Any, field: str = "out", storage_options: StoreOptions = None) -> None:
    """Refuse, before any work, an ``s3://`` output for which no credentials can be found.

    Looks where botocore looks (``AWS_*`` variables, ``~/.aws`` files, a profile, instance
    metadata) unless ``storage_options`` carry credentials or ``anon``; the keys are never
    read into a message. Other protocols are left to their libraries.
    """
    loc = Location.of(store, storage_options)
    if loc.local or loc.url.split("://", 1)[0].lower() not in ("s3", "s3a"):
        return
    opts = loc.storage_options
    if opts.get("anon") or opts.get("key") or opts.get("profile") or opts.get("session"):
        return
    try:
        import botocore.session
    except ImportError:  # pragma: no cover - s3fs brings botocore
        raise InputError("s3:// stores need s3fs (pip install s3fs)", path=loc.url,
                         field=field) from None
    if botocore.session.get_session().get_credentials() is None:
        raise InputError("no AWS credentials found for this s3:// store (set AWS_ACCESS_KEY_ID "
                         "and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials)",
                         path=loc.url, field=field)
