"""Remote files and downloading many of them into one folder with a manifest.

:func:`download_all` turns every per-file problem (a refused URL, a name that would leave
the folder, an HTTP failure, a wrong checksum, an ``s3://`` object it cannot read) into
one ``failed`` manifest entry and goes on with the others; only an :class:`AuthError`
stops it (every other file would fail the same way). Files without a published size or
checksum are checked against what this folder's manifest recorded for them.

``s3://`` URLs (Earth Search ``sentinel-2-l1c`` assets, in a requester-pays bucket) are
read with fsspec/s3fs when it is installed and AWS credentials are found (the requester
pays); otherwise they are listed as failed with the reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from firesmoke.errors import InputError
from firesmoke.fetch.config import redact
from firesmoke.fetch.download import Checksum, ProgressCallback, download_file
from firesmoke.fetch.http import AuthError, FetchError, RetryPolicy, shown
from firesmoke.fetch.manifest import Manifest, ManifestEntry, read_manifest
from firesmoke.fetch.s3 import download_s3
from firesmoke.paths import server_path

__all__ = ["FetchResult", "RemoteFile", "download_all"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its URL, where it goes (relative to the output folder) and what it should be."""

    url: str
    relpath: str
    size: int | None = None
    checksum: Checksum | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    resolve: Callable[[str], str] | None = field(default=None, compare=False, hash=False)
    """Turns ``url`` into the URL to download, called just before the download (e.g. signing
    it with a fresh SAS token); the manifest shows ``url``."""


@dataclass
class FetchResult:
    """What a fetch did: manifest entries (in order) and the manifest path."""

    entries: list[ManifestEntry]
    manifest: Path | None

    @property
    def paths(self) -> list[Path]:
        root = self.manifest.parent if self.manifest else Path()
        return [root / e.path for e in self.entries if e.ok]

    @property
    def failed(self) -> list[ManifestEntry]:
        return [e for e in self.entries if not e.ok]

    def __add__(self, other: FetchResult) -> FetchResult:
        return FetchResult(self.entries + other.entries, self.manifest or other.manifest)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for e in self.entries:
            counts[e.status] = counts.get(e.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to fetch"


def download_all(
    session: requests.Session,
    files: Sequence[RemoteFile],
    out: str | os.PathLike[str],
    *,
    manifest: Manifest | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """Download ``files`` into ``out`` (paths made safe), ``workers`` at a time.

    A file that fails (after retries) is recorded with status ``failed`` and its error;
    the others go on. An :class:`AuthError` stops everything (every other file would fail
    the same way) and is raised.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    manifest = manifest or Manifest(root)
    before = read_manifest(manifest.path)

    def recorded(rel: str) -> tuple[int | None, Checksum | None] | None:
        rec = before.get(rel)
        if not rec or rec.get("status") not in ("downloaded", "resumed", "skipped"):
            return None
        size = rec.get("size")
        try:
            checksum = Checksum.parse(rec.get("checksum"))
        except FetchError:  # a damaged manifest line: verify by size alone
            checksum = None
        return (size if isinstance(size, int) and not isinstance(size, bool) else None, checksum)

    def one(f: RemoteFile) -> ManifestEntry:
        url = f.url if isinstance(f.url, str) else str(f.url)
        try:
            dest = server_path(root, f.relpath)
        except InputError as exc:  # a server-given name that would leave the folder
            log.error("%s: %s; not downloaded", shown(url), exc)
            return manifest.add(ManifestEntry(shown(url), str(f.relpath), f.size, None, "failed", f.source,
                                              error=str(exc)))
        rel = os.path.relpath(dest, root)
        try:
            if f.resolve is not None and not url.startswith("s3://"):
                url_get = f.resolve(url)
            else:
                url_get = url
            if url.startswith("s3://"):
                entry = download_s3(url, dest, size=f.size, checksum=f.checksum, policy=policy,
                                    source=f.source, root=root, recorded=recorded(rel))
            else:
                entry = download_file(session, url_get, dest, size=f.size, checksum=f.checksum, policy=policy,
                                      progress=progress, source=f.source, root=root, sleep=sleep,
                                      recorded=recorded(rel))
                entry.url = shown(url)  # the URL as listed, not as signed
        except AuthError:
            raise
        except (FetchError, InputError) as exc:
            log.error("%s", redact(exc))
            entry = ManifestEntry(shown(url), rel, f.size, str(f.checksum) if f.checksum else None,
                                  "failed", f.source, error=redact(exc))
        return manifest.add(entry)

    if workers <= 1 or len(files) <= 1:
        entries = [one(f) for f in files]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            entries = list(pool.map(one, files))
    return FetchResult(entries, manifest.path)
