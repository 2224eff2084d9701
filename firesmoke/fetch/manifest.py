"""The download manifest: one JSON object per line, appended as files are fetched.

Each line holds ``url`` (secrets masked), ``path`` (relative to the output folder),
``size`` (bytes), ``checksum`` (``"ALGO:hex"`` or null), ``status`` (``downloaded``,
``resumed``, ``skipped`` (already present and verified), ``written`` (made locally, e.g. a
STAC item JSON), ``failed``), ``error`` (for failures), ``source`` (which client) and
``time`` (UTC, ISO 8601). Appending one line at a time means an interrupted run still has
a manifest of what it finished; readers take the last line per path.

The manifest is never opened through a symbolic link (``O_NOFOLLOW``; a planted link is
refused, not followed) and each line goes out in one ``write`` on an ``O_APPEND`` file, so
two processes fetching into one folder do not interleave lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firesmoke.errors import UnsafePathError

__all__ = ["Manifest", "ManifestEntry", "read_manifest"]

MANIFEST_NAME = "manifest.jsonl"


@dataclass
class ManifestEntry:
    """What happened to one file."""

    url: str
    path: str
    size: int | None
    checksum: str | None
    status: str
    source: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class Manifest:
    """Append-only JSON-lines manifest in ``root/manifest.jsonl`` (thread-safe)."""

    def __init__(self, root: str | os.PathLike[str], name: str = MANIFEST_NAME) -> None:
        self.root = Path(root)
        self.path = self.root / name
        self._lock = threading.Lock()
        self.entries: list[ManifestEntry] = []

    def add(self, entry: ManifestEntry) -> ManifestEntry:
        rec = asdict(entry)
        rec["time"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not rec["extra"]:
            rec.pop("extra")
        line = (json.dumps(rec, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise UnsafePathError(f"cannot append to the manifest ({exc.strerror}; "
                                      "a symbolic link is refused, not followed)", path=self.path) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UnsafePathError("the manifest is not a regular file", path=self.path)
                os.write(fd, line)
            finally:
                os.close(fd)
            self.entries.append(entry)
        return entry


def read_manifest(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The manifest as ``{path: last record}`` (a folder means its ``manifest.jsonl``)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    out: dict[str, dict[str, Any]] = {}
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise UnsafePathError(f"cannot read the manifest ({exc.strerror}; a symbolic link is "
                              "refused, not followed)", path=p) from None
    with os.fdopen(fd, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut by a crash: the others still count
            continue
        if isinstance(rec, dict) and isinstance(rec.get("path"), str):
            out[rec["path"]] = rec
    return out
