"""Safe local output paths: names confined to an output root, no symlink followed.

Every file firesmoke writes, renames or deletes on a local disk goes through these
helpers:

- :func:`safe_join` joins user-influenced names under an output root (no ``..``, no
  separators, no absolute paths): a bad name is refused;
- :func:`server_path` joins names a *server* chose (sub-folders allowed): unsafe
  characters are replaced, traversal refused, so a download never lands outside its
  folder; :func:`filename_from_url` cleans the last part of a URL the same way;
- :func:`check_inside` refuses a path that leaves its root or crosses a symbolic link
  below it (a planted link must never redirect a write or a delete out of the output);
- :func:`open_exclusive` creates a new file with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a
  temporary file is never an existing file or a link's target;
- :func:`atomic_write_bytes` / :func:`atomic_write_text` write through such a temporary
  file and rename it into place (a file that exists is complete); :func:`atomic_writer`
  does the same for a file written piece by piece (a stream);
- :func:`remove_tree` deletes a folder firesmoke made without following links.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from firesmoke.errors import InputError, UnsafePathError

__all__ = [
    "UnsafePathError",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_writer",
    "check_inside",
    "check_no_symlinks",
    "clean_name",
    "filename_from_url",
    "is_url",
    "makedirs_inside",
    "open_exclusive",
    "remove_tree",
    "safe_join",
    "server_path",
]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def is_url(path: str | os.PathLike[str]) -> bool:
    """An fsspec URL (``s3://``, ``gs://``, ``memory://``, ...), not a local path."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def safe_join(root: str | os.PathLike[str], *parts: str) -> Any:
    """Join user-influenced names under ``root`` refusing path traversal.

    Each part must be a plain name (letters, digits, ``.``, ``_``, ``-``; not starting
    with a dot), so ``..``, absolute paths and separators are rejected. A part that is
    an existing symbolic link is refused too (:func:`check_inside`). A URL ``root``
    (object storage) gives a URL string; a local one a :class:`pathlib.Path`.
    """
    for part in parts:
        if not isinstance(part, str) or not _SAFE.match(part) or part in (".", ".."):
            raise UnsafePathError(f"unsafe output name {part!r} (plain names only)", path=root)
    if is_url(root):
        return "/".join([os.fspath(root).rstrip("/"), *parts])
    base = Path(os.path.abspath(root))
    out = base.joinpath(*parts)
    check_inside(base, out)
    return out


def check_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``path`` (absolute) after checking it lies under ``root`` with no link on the way.

    Every existing component from ``root`` (exclusive) down to ``path`` (inclusive) must
    not be a symbolic link; missing components are fine (they will be created).

    Raises
    ------
    UnsafePathError
        Naming the offending path.
    """
    base = Path(os.path.abspath(root))
    p = Path(os.path.abspath(path))
    if p != base and base not in p.parents:
        raise UnsafePathError(f"refusing to write outside the output folder {base}", path=p)
    cur = base
    for part in p.relative_to(base).parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(
                "is a symbolic link; refusing to follow it out of the output folder", path=cur)
    return p


def check_no_symlinks(folder: str | os.PathLike[str]) -> None:
    """Refuse a folder that is, or contains anywhere below it, a symbolic link."""
    top = Path(folder)
    if top.is_symlink():
        raise UnsafePathError("is a symbolic link; refusing to use it as an output", path=top)
    if not top.is_dir():
        return
    stack = [os.fspath(top)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_symlink():
                    raise UnsafePathError(
                        "is a symbolic link inside an output store; refusing to follow it",
                        path=e.path)
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)


def makedirs_inside(root: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and parents below ``root``) after :func:`check_inside`."""
    p = check_inside(root, folder)
    p.mkdir(parents=True, exist_ok=True)
    return check_inside(root, p)  # a link raced in while creating is still refused


def open_exclusive(path: str | os.PathLike[str], mode: int = 0o644) -> BinaryIO:
    """Open a NEW file for binary writing: ``O_CREAT | O_EXCL | O_NOFOLLOW``.

    Raises :class:`UnsafePathError` when the name exists already (file or link).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise UnsafePathError("exists already (file or link); refusing to write through it",
                              path=path) from None
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[tuple[Path, BinaryIO]]:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.part")
    f = open_exclusive(tmp)
    try:
        yield tmp, f
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes,
                       root: str | os.PathLike[str] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (exclusive temporary file, then rename).

    ``root``: the output root the file must stay inside (default: its own folder).
    The destination may exist as a regular file (replaced); a link there is refused.
    """
    p = Path(os.path.abspath(path))
    check_inside(root if root is not None else p.parent, p)
    with _temp_beside(p) as (tmp, f):
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        check_inside(root if root is not None else p.parent, p)
        os.replace(tmp, p)  # rename replaces a link itself, never writes through it
    return p


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str],
                  root: str | os.PathLike[str] | None = None) -> Iterator[BinaryIO]:
    """Context manager: a binary file that becomes ``path`` only when the block ends cleanly.

    The data go to an exclusive temporary file beside ``path`` (see
    :func:`atomic_write_bytes` for ``root`` and links); an exception inside the block
    deletes it and leaves ``path`` as it was.
    """
    p = Path(os.path.abspath(path))
    inside = root if root is not None else p.parent
    check_inside(inside, p)
    with _temp_beside(p) as (tmp, f):
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        check_inside(inside, p)
        os.replace(tmp, p)


def atomic_write_text(path: str | os.PathLike[str], text: str,
                      root: str | os.PathLike[str] | None = None) -> Path:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), root=root)


def remove_tree(folder: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
    """Delete ``folder`` and its contents without following any symbolic link.

    A link found inside is removed as a link (its target is untouched); ``folder`` itself
    must not be a link and must lie under ``root`` (when given).
    """
    p = Path(os.path.abspath(folder))
    if root is not None:
        check_inside(root, p)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError("is a symbolic link; refusing to delete through it", path=p)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(p)
        return
    import shutil

    # shutil.rmtree never follows links inside the tree (it unlinks them)
    shutil.rmtree(p)


_BAD = re.compile(r"[^A-Za-z0-9._+\-=@,]")


def clean_name(part: str, what: str = "path") -> str:
    """A server-chosen name made safe: unsafe characters replaced, no hidden file."""
    if part in ("", ".", "..") or "\x00" in part:
        raise InputError(f"unsafe path component {part!r}", field=what)
    cleaned = _BAD.sub("_", part)
    if cleaned.startswith("."):  # no hidden files (also rules out '..' after cleaning)
        cleaned = "_" + cleaned[1:]
    return cleaned[:200]


def server_path(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / parts...`` for names a server chose, guaranteed to stay inside ``root``.

    Each part may hold ``/``-separated sub-folders (e.g. ``"VNP64A1/2020"``); absolute
    paths, ``..``, empty components, backslashes and characters outside
    ``[A-Za-z0-9._+-=@,]`` are refused or replaced, so a name chosen by a server can never
    write outside ``root`` (a final check compares resolved paths).
    """
    base = Path(root)
    rel: list[str] = []
    for part in parts:
        text = str(part).replace("\\", "/")
        if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
            raise InputError(f"absolute path {part!r} not allowed inside {base}", field="path")
        rel.extend(clean_name(p, "path") for p in PurePosixPath(text).parts)
    if not rel:
        raise InputError("empty file name", field="path")
    out = base.joinpath(*rel)
    root_res = base.resolve()
    if os.path.commonpath([root_res, out.resolve()]) != str(root_res):
        raise InputError(f"{out} resolves outside {base}", field="path")
    return out


def filename_from_url(url: str) -> str:
    """The last path component of ``url`` (percent-decoded), cleaned for use as a file name."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return clean_name(name or "download", "url")
