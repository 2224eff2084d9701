"""The download manifest: one JSON object per line, appended as files are fetched.

Each line holds ``url`` (secrets masked), ``path`` (relative to the output folder),
``size`` (bytes), ``checksum`` (``"ALGO:hex"`` or null), ``status`` (``downloaded``,
``resumed``, ``skipped`` (already present and verified), ``written`` (made locally, e.g. a
STAC item JSON), ``failed``), ``error`` (for failures), ``source`` (which client) and
``time`` (UTC, ISO 8601). Appending one line at a time means an interrupted run still has
a manifest of what it finished; readers take the last line per path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
            self.entries.append(entry)
        return entry


def read_manifest(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The manifest as ``{path: last record}`` (a folder means its ``manifest.jsonl``)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    out: dict[str, dict[str, Any]] = {}
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["path"]] = rec
    return out
