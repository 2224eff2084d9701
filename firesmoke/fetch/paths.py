"""Output paths that stay inside the output folder, whatever name a server gives."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from firesmoke.errors import InputError

__all__ = ["filename_from_url", "safe_join", "write_atomic"]

_BAD = re.compile(r"[^A-Za-z0-9._+\-=@,]")


def _clean_part(part: str, what: str) -> str:
    if part in ("", ".", "..") or "\x00" in part:
        raise InputError(f"unsafe path component {part!r}", field=what)
    cleaned = _BAD.sub("_", part)
    if cleaned.startswith("."):  # no hidden files (also rules out '..' after cleaning)
        cleaned = "_" + cleaned[1:]
    return cleaned[:200]


def safe_join(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / parts...`` guaranteed to stay inside ``root``.

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
        rel.extend(_clean_part(p, "path") for p in PurePosixPath(text).parts)
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
    return _clean_part(name or "download", "url")


def write_atomic(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` through ``dest.part`` (created exclusively, never via a symlink)."""
    from firesmoke.fetch.http import FetchError

    part = dest.with_name(dest.name + ".part")
    if part.is_symlink() or dest.is_symlink():
        raise FetchError(f"{dest}: refusing to write through a symlink")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, dest)
