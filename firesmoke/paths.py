"""Output paths built from user-influenced names, refusing path traversal."""

from __future__ import annotations

import os
import re
from pathlib import Path

from firesmoke.errors import InputError

__all__ = ["safe_join"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def safe_join(root: str | os.PathLike[str], *parts: str) -> Path:
    """Join user-influenced names under ``root`` refusing path traversal.

    Each part must be a plain name (letters, digits, ``.``, ``_``, ``-``; not starting
    with a dot), so ``..``, absolute paths and separators are rejected.
    """
    base = Path(root).resolve()
    out = base
    for part in parts:
        if not _SAFE.match(part) or part in (".", ".."):
            raise InputError(f"unsafe output name {part!r} (plain names only)", path=root)
        out = out / part
    resolved = out.resolve()
    if base != resolved and base not in resolved.parents:
        raise InputError(f"output name {'/'.join(parts)!r} escapes the output folder", path=root)
    return resolved
